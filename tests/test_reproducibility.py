"""Same seed, same result: two runs with one seed give identical weights and
history, whatever the checkpoint schedule, the number of data workers and the
load on the machine; a run stopped mid-epoch and resumed ends where the
uninterrupted run does."""

import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from discomkd_keras.cli import main
from discomkd_keras.run_directory import load_model_file, read_history, read_run
from helpers import stop_after_steps, write_released

pytestmark = pytest.mark.portable

TIMES = {"seconds", "samples_per_s", "validation_seconds", "wall_seconds", "checkpoint_seconds"}
# A busy loop that ends by itself even if the test is killed before it can stop it.
BUSY = "import time\nend = time.monotonic() + 90\nwhile time.monotonic() < end:\n    pass\n"


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def train(data, run, *extra):
    result = cli("train", "--data-dir", data, "--run-dir", run, "--epochs", 3, "--batch-size", 16,
                 "--encoder", "rgb=lenet", "--feature-dim", 8, "--lr", 3e-3, "--seed", 7,
                 "--quiet", *extra)
    assert result.exit_code == 0, result.output
    return outcome(run)


def outcome(run):
    """History (without its timings), the last checkpoint's and best classifiers' weights."""
    config, state = read_run(run)
    rows = [{k: v for k, v in r.items() if k not in TIMES} for r in read_history(run)]
    weights = {"last": load_model_file(run / state["checkpoint"]).get_weights()}
    for m in ("rgb", "vec"):
        weights[m] = load_model_file(run / "best" / f"{m}.keras").get_weights()
    return rows, weights, state["best"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Quiet, one data worker (no threads), a single checkpoint after the last epoch."""
    data = write_released(tmp_path_factory.mktemp("data"), n_per_class=100)
    return data, train(data, tmp_path_factory.mktemp("runs") / "quiet", "--workers", 1,
                       "--checkpoint-every", 1000)


def assert_same_weights(weights, expected):
    for name in expected:
        assert len(weights[name]) == len(expected[name])
        for a, b in zip(expected[name], weights[name]):
            np.testing.assert_array_equal(a, b, err_msg=name)


def test_same_seed_same_weights_and_history_on_a_loaded_machine(reference, tmp_path):
    data, quiet = reference

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(min(16, cores))]
    try:
        # Loaded, three worker threads, a checkpoint after every epoch (each draws from
        # Python's global random: Keras seeds the initializers it deserializes from it).
        loaded = train(data, tmp_path / "loaded", "--workers", 3, "--checkpoint-every", 0)
    finally:
        for p in busy:
            p.kill()
            p.wait()

    rows_q, weights_q, best_q = quiet
    rows_l, weights_l, best_l = loaded
    assert [r["epoch"] for r in rows_q] == [1, 2, 3]
    assert rows_l == rows_q  # losses, accuracies and F1 of every epoch, exactly
    assert best_l == best_q
    assert_same_weights(weights_l, weights_q)


def test_a_run_stopped_mid_epoch_and_resumed_ends_with_the_uninterrupted_weights(
        reference, tmp_path, monkeypatch):
    data, (rows, weights, best) = reference
    stop_after_steps(monkeypatch, 1, 5)  # as Ctrl-C does, at step 5 of epoch 2
    run = tmp_path / "run"
    result = cli("train", "--data-dir", data, "--run-dir", run, "--epochs", 3, "--batch-size", 16,
                 "--encoder", "rgb=lenet", "--feature-dim", 8, "--lr", 3e-3, "--seed", 7,
                 "--quiet", "--checkpoint-every", 1000)
    assert result.exit_code == 130, result.output
    assert read_run(run)[1]["step"] == 5
    monkeypatch.undo()

    result = cli("train", "--resume", run, "--quiet")
    assert result.exit_code == 0, result.output
    resumed_rows, resumed_weights, resumed_best = outcome(run)
    assert_same_weights(resumed_weights, weights)
    assert resumed_best == best
    # Epoch 2's losses are means over the steps after the resume; the rest is the same.
    assert [r for r in resumed_rows if r["epoch"] != 2] == [r for r in rows if r["epoch"] != 2]
