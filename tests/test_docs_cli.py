"""docs/cli.md is what the commands' --help print today (docs/make_cli_md.py)."""

import importlib.util
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_cli_md_is_current():
    spec = importlib.util.spec_from_file_location("make_cli_md", DOCS / "make_cli_md.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    expected = make.cli_markdown()
    assert "## discomkd-keras train" in expected and "Training options:" in expected
    assert (DOCS / "cli.md").read_text() == expected, \
        "docs/cli.md is out of date: run python docs/make_cli_md.py"
