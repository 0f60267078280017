"""benchmarks/released_protocol.py: reading the released script's log and the report."""

import json

import pytest

from released_protocol import parse_released_log, write_report  # benchmarks/

LOG = """\
TRAIN LOSS at Epoch 0: 1.7448 BEST on MNIST F1 on TEST SET 46.27 BEST on SPECTRO F1 on TEST SET 66.34 with training time 16.5
some other line
TRAIN LOSS at Epoch 1: 0.9658 BEST on MNIST F1 on TEST SET 75.03 BEST on SPECTRO F1 on TEST SET 66.34 with training time 10.0
TRAIN LOSS at Epoch 2: 0.7174 BEST on MNIST F1 on TEST SET 75.03 BEST on SPECTRO F1 on TEST SET 98.33 with training time 12.0
"""


def test_released_log_gives_the_last_best_and_the_epoch_it_was_found():
    result = parse_released_log(LOG, train_rows=2200)
    assert result["f1"] == {"MNIST": pytest.approx(0.7503), "SPECTRO": pytest.approx(0.9833)}
    assert result["best_epoch"] == {"MNIST": 2, "SPECTRO": 3}
    assert result["epoch_seconds"] == [16.5, 10.0, 12.0]
    assert result["rows_per_s"] == pytest.approx(2200 / 11.0)  # median of epochs 2..
    with pytest.raises(RuntimeError, match="no BEST line"):
        parse_released_log("TRAIN LOSS at Epoch 0: 1.0 with training time 3.0", 10)


def run(row, seed, mnist, spectro):
    return {"row": row, "seed": seed, "f1": {"MNIST": mnist / 100, "SPECTRO": spectro / 100},
            "rows_per_s": 100.0, "command": f"train {row} {seed}"}


def test_report_states_each_gap_against_the_one_point_target(tmp_path):
    raw = {"command": "python benchmarks/released_protocol.py", "date": "2026-11-27", "data": "d",
           "epochs": 20, "seeds": [0, 1], "machine": "x86_64, 2 CPU cores",
           "runs": [run("released-discomkd", 0, 90, 98), run("released-discomkd", 1, 92, 98),
                    run("project-released", 0, 91, 97), run("project-released", 1, 92, 96),
                    run("released-twin", 0, 93, 97), run("project-twin", 0, 93.5, 97.2),
                    run("old-augment", 0, 70, 99)]}
    text = write_report(raw, tmp_path).read_text()
    assert "| released script, DisCoM-KD | 91.0 +- 1.4 | 98.0 +- 0.0 | 100.0 | 2 |" in text
    assert "| 70.0 | 99.0 | 100.0 | 1 |" in text  # one seed: no +-
    assert ("project-released against released-discomkd (2 and 2 seeds): MNIST +0.5 (within 1), "
            "SPECTRO -1.5 (NOT within 1)") in text
    assert "project-twin against released-twin (1 and 1 seeds): MNIST +0.5 (within 1), " \
           "SPECTRO +0.2 (within 1)" in text
    assert json.loads((tmp_path / "released-protocol.json").read_text()) == raw


def test_report_only_with_no_finished_runs_is_an_error_and_writes_nothing(tmp_path):
    from click.testing import CliRunner

    from released_protocol import main

    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["--data", str(tmp_path), "--report-only",
                                       "--work-dir", str(tmp_path / "work"), "--out-dir", str(out)])
    assert result.exit_code == 2 and "no finished runs" in result.output
    assert not out.exists()
