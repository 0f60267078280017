"""A run's output in a log file (stdout not a terminal): one plain line per epoch."""

import re

from click.testing import CliRunner

from discomkd_keras.cli import main
from helpers import write_released


TINY = ["--encoder", "rgb=lenet", "--feature-dim", "8", "--batch-size", "16", "--lr", "3e-3"]


def test_stdout_to_a_file_gets_one_plain_line_per_epoch(tmp_path):
    d = write_released(tmp_path / "data")
    result = CliRunner().invoke(main, ["train", "--data-dir", str(d), "--run-dir",
                                       str(tmp_path / "run"), "--epochs", "3", *TINY])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "\x1b" not in out and "\r" not in out and "\b" not in out
    epochs = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/3", "2/3", "3/3"]
    for line in epochs:
        assert re.search(r"\bloss \d+\.\d{4}\b", line) and re.search(r"\bcl \d+\.\d{4}\b", line)
        assert re.search(r"val F1 rgb \d\.\d{4}  vec \d\.\d{4}", line), line
    # Nothing of Keras' bar: no step counters, no "Epoch i/n" headers.
    assert not re.search(r"\d+/\d+ [━=]", out) and "Epoch 1/3" not in out
    assert len(out) < 3000, out


def test_quiet_prints_no_epoch_lines(tmp_path):
    d = write_released(tmp_path / "data")
    result = CliRunner().invoke(main, ["train", "--data-dir", str(d), "--run-dir",
                                       str(tmp_path / "run"), "--epochs", "2", "--quiet", *TINY])
    assert result.exit_code == 0, result.output
    assert not [line for line in result.output.splitlines() if line.startswith("epoch ")]
