"""How the CLI answers: a user's mistake is one "Error:" line and exit 2; a bug
(any other exception, a Keras or NumPy ValueError included) keeps its traceback,
asks to be reported and exits 1."""

import pytest
from click.testing import CliRunner

from discomkd_keras.cli import main
from discomkd_keras.cli_support import BUG_EXIT, REPORT_BUG
from helpers import write_released


TINY = ["--encoder", "rgb=lenet", "--feature-dim", "8", "--batch-size", "16", "--epochs", "1",
        "--quiet"]


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_a_failure_deep_in_training_shows_its_traceback_and_exits_1(tmp_path, monkeypatch):
    from discomkd_keras.data import unpaired_batches

    def broken(self, step):
        raise ValueError("injected: operands could not be broadcast together")

    monkeypatch.setattr(unpaired_batches.UnpairedBatches, "__getitem__", broken)
    d = write_released(tmp_path / "data")
    result = run_cli("train", "--data-dir", d, "--run-dir", tmp_path / "run", *TINY)
    assert result.exit_code == BUG_EXIT == 1, result.output
    assert "Traceback (most recent call last)" in result.output
    assert "ValueError: injected: operands could not be broadcast together" in result.output
    assert "in broken" in result.output  # where it happened, not just what
    assert REPORT_BUG in result.output
    assert not any(line.startswith("Error:") for line in result.output.splitlines())


def test_a_failure_in_evaluate_is_a_bug_too(tmp_path, monkeypatch):
    from discomkd_keras import evaluation

    def broken(*args, **kwargs):
        raise KeyError("val_rgb_f1")

    monkeypatch.setattr(evaluation, "evaluate_run", broken)
    result = run_cli("evaluate", tmp_path)
    assert result.exit_code == 1 and "KeyError: 'val_rgb_f1'" in result.output
    assert REPORT_BUG in result.output


@pytest.mark.parametrize("args, message", [
    (["--augment", "rgb=sideways"], "Unknown augmentation 'sideways' for 'rgb'"),
    (["--feature-dim", "7"], "positive even integer"),
    (["--method", "kd"], "needs --teacher RUN_DIR"),
    (["--method", "unimodal", "--loss-weight", "adv=0"], "--loss-weight applies to DisCoM-KD only"),
    (["--checkpoint-every", "-1"], "checkpoint interval must be >= 0"),
])
def test_a_bad_option_is_one_line_exit_2_and_writes_nothing(tmp_path, args, message):
    d = write_released(tmp_path / "data")
    run = tmp_path / "run"
    result = run_cli("train", "--data-dir", d, "--run-dir", run, *TINY, *args)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert "Traceback" not in result.output and REPORT_BUG not in result.output
    assert not run.exists()


def test_clicks_own_usage_errors_stay_exit_2(tmp_path):
    result = run_cli("train", "--loss-weight", "adv", "--run-dir", tmp_path / "run")
    assert result.exit_code == 2 and "expected NAME=VALUE" in result.output
    assert "Traceback" not in result.output


def test_library_callers_still_get_value_errors():
    from discomkd_keras.config import ConfigError, merged_options

    with pytest.raises(ValueError, match="learning rate must be > 0"):
        merged_options({"learning_rate": 0})
    assert issubclass(ConfigError, ValueError)
