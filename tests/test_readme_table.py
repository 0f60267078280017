"""The README's "Does it help?" table agrees with the committed comparison reports.

Every `benchmarks/results/<name>/report.json` written by `discomkd-keras compare` is
summarised again here (the report's own statistics code), and each of its paired differences,
DisCoM-KD minus each baseline per modality, must appear in the README's table as the report
prints it ("+0.8 [+0.4, +1.2]"), with the right seed count, on the row of the right modality.
So a re-run comparison whose figures change fails this test until the README follows.
No training, no backend.
"""

import json
import re
from pathlib import Path

import pytest

from discomkd_keras.comparison.statistics import summarise

ROOT = Path(__file__).resolve().parents[1]
REPORTS = sorted((ROOT / "benchmarks" / "results").glob("*/report.json"))
COLUMN = {"unimodal": 2, "single": 3}  # the table's column of each baseline


def _table_rows():
    """The README's 'Does it help?' rows as lists of cells, the data set cell carried down
    over continuation rows (whose first cell is empty)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Does it help?", 1)[1].split("\n## ", 1)[0]
    rows, current = [], None
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith("|---") or "modality |" in line:
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        current = cells[0] or current
        rows.append([current, *cells[1:]])
    return rows


def _interval(d):
    return f"{d['mean']:+.1f} [{d['low']:+.1f}, {d['high']:+.1f}]"


def test_the_table_is_found():
    rows = _table_rows()
    assert len(rows) >= 10 and all(len(r) == 6 for r in rows)


@pytest.mark.parametrize("report", REPORTS, ids=lambda p: p.parent.name)
def test_every_compare_report_is_in_the_readme_table(report):
    raw = json.loads(report.read_text(encoding="utf-8"))
    summary = summarise(raw)
    link = f"benchmarks/results/{report.parent.name}/report.md"
    assert link in (ROOT / "README.md").read_text(encoding="utf-8"), f"README cites no {link}"
    rows = _table_rows()
    for base, per_modality in summary["differences"].items():
        for modality, d in per_modality.items():
            wanted = _interval(d)
            matches = [r for r in rows if r[1] == modality and r[COLUMN[base]] == wanted
                       and r[4] == str(d["n"])]
            assert matches, (f"{report.parent.name}: DisCoM-KD - {base} on {modality} is "
                             f"{wanted} over {d['n']} seeds; no README row says so")


def test_interval_format_matches_the_report():
    text = (ROOT / "benchmarks" / "results" / "av-mnist-speaker" / "report.md").read_text()
    raw = json.loads((ROOT / "benchmarks" / "results" / "av-mnist-speaker" /
                      "report.json").read_text())
    d = summarise(raw)["differences"]["single"]["image"]
    mean, ci = _interval(d).split(" ", 1)
    assert re.search(rf"\| image \| single \| .* \| {re.escape(mean)} ± .* \| {re.escape(ci)} \|", text)
