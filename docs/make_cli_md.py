"""Write docs/cli.md: every command's --help, as the command line prints it.

    python docs/make_cli_md.py

The page is generated from the click commands themselves, so it cannot drift from
them; tests/test_docs_cli.py fails when the committed page is not what this prints.
"""

import os
import sys
from pathlib import Path

from click.testing import CliRunner

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from discomkd_keras.cli import main  # noqa: E402

WIDTH = 100  # the help's max_content_width


def help_text(args):
    result = CliRunner().invoke(main, [*args, "--help"], terminal_width=WIDTH,
                                prog_name="discomkd-keras")
    if result.exit_code != 0:
        raise RuntimeError(f"discomkd-keras {' '.join(args)} --help failed: {result.output}")
    return result.output.rstrip()


def cli_markdown():
    lines = ["# The command line", "",
             "Every command's `--help`, generated from the commands by `python docs/make_cli_md.py`"
             " (tests/test_docs_cli.py checks that this page is current). Exit status everywhere:"
             " 0 done; 2 a mistake in the input or a failed check, said in one `Error:` line; 1 a"
             " bug (its traceback and a request to report it); 130 interrupted (Ctrl-C).", ""]
    lines += ["## discomkd-keras", "", "```text", help_text([]), "```", ""]
    for name in sorted(main.commands):
        lines += [f"## discomkd-keras {name}", "", "```text", help_text([name]), "```", ""]
    return "\n".join(lines)


def main_():
    path = HERE / "cli.md"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(cli_markdown())
    os.replace(tmp, path)
    print(f"Wrote {path}")


if __name__ == "__main__":
    main_()
