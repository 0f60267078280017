"""`python -m discomkd_edge ...` (installed) or `python -m discomkd_keras.edge_demo ...`:
the `discomkd-edge` command (console.py)."""

import sys

if __package__:
    from .console import main
else:  # `python edge_demo ...`: the folder itself is on sys.path
    from console import main

sys.exit(main())
