import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from discomkd_keras.cli import main
from discomkd_keras.metrics import weighted_f1
from discomkd_keras.run_directory import read_history
from helpers import write_released

pytestmark = pytest.mark.portable

TINY = ["--encoder", "rgb=lenet", "--feature-dim", "8", "--batch-size", "16", "--lr", "3e-3",
        "--quiet"]


def run_cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


def test_weighted_f1_matches_hand_computation():
    y = np.array([0, 0, 0, 1, 1, 2])
    p = np.array([0, 0, 1, 1, 2, 2])
    # class 0: P=1, R=2/3 -> 0.8; class 1: 1/2,1/2 -> 0.5; class 2: 1/2, 1 -> 2/3
    assert weighted_f1(y, p, 3) == pytest.approx((3 * 0.8 + 2 * 0.5 + 1 * 2 / 3) / 6)


def test_train_then_evaluate_through_the_cli(tmp_path):
    d = write_released(tmp_path / "data")
    run = tmp_path / "run"
    result = run_cli("train", "--data-dir", d, "--epochs", 4, "--run-dir", run,
                     "--checkpoint-every", 1000, *TINY)
    assert result.exit_code == 0, result.output
    assert "discomkd-keras export" in result.output
    for name in ("config.json", "history.csv", "state.json", "results.json", "last-epoch0004.keras",
                 "best/rgb.keras", "best/vec.keras", "plots/loss_terms.png", "plots/valid_f1.png"):
        assert (run / name).exists(), name
    assert not list(run.glob("last-epoch000[123].keras"))  # older checkpoints removed
    config = json.loads((run / "config.json").read_text())
    assert config["versions"]["keras"] == keras.__version__
    assert config["versions"]["tensorflow"] or config["versions"]["backend"] != "tensorflow"
    assert config["encoders"] == {"rgb": "lenet"} and config["feature_dim"] == 8

    rows = read_history(run / "history.csv")
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    # Short epochs, a long interval: one checkpoint, after the last epoch; the best
    # classifiers waited in memory until then.
    assert [r["checkpoint_seconds"] is not None for r in rows] == [False, False, False, True]
    # Each figure is rounded to the millisecond on its own, so the sum may pass the total by 2 ms.
    assert all(r["wall_seconds"] >= r["seconds"] + r["validation_seconds"] - 0.002 for r in rows)
    for m in ("rgb", "vec"):
        # best/<m> is the epoch with the highest validation F1 (first one on ties).
        f1s = [r[f"val_{m}_f1"] for r in rows]
        best = json.loads((run / "best" / f"{m}.json").read_text())
        assert best["epoch"] == 1 + int(np.argmax(f1s)) and best["f1"] == pytest.approx(max(f1s))
        # ... and the saved classifier reproduces that validation score.
        from discomkd_keras.data import load_data
        data = load_data(config["data"])
        clf = keras.saving.load_model(run / "best" / f"{m}.keras", safe_mode=True)
        x, y = data.split(m, "valid")
        pred = np.asarray(clf.predict(x, verbose=0)).argmax(1)
        assert weighted_f1(y, pred, 3) == pytest.approx(best["f1"])
    for term in ("cl", "adv", "mod", "aux", "perp", "loss"):
        assert term in rows[0]

    result = run_cli("evaluate", run)
    assert result.exit_code == 0, result.output
    ev = json.loads((run / "evaluation" / "results.json").read_text())
    assert set(ev["_modality_separation"]) == {"z_inv", "z_inf", "z_irr"}
    assert np.array(ev["rgb"]["confusion_matrix"]).sum() == len(np.load(d / "test_idx.npy"))
    for name in ("confusion_rgb.png", "confusion_vec.png", "embeddings.png"):
        assert (run / "evaluation" / name).exists()


def test_existing_run_dir_is_refused_and_nothing_written(tmp_path):
    d = write_released(tmp_path / "data")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    result = run_cli("train", "--data-dir", d, "--epochs", 1, "--run-dir", run, *TINY)
    assert result.exit_code == 2 and "already holds a run" in result.output
    assert sorted(p.name for p in run.iterdir()) == ["config.json"]
    assert (run / "config.json").read_text() == "{}"


@pytest.mark.parametrize("args, message", [
    (["--data-dir", "{d}", "--modalities", "rgb,depth"], "Unknown modality 'depth'"),
    (["--data-dir", "{missing}"], "Data directory not found"),
    (["--data-dir", "{d}", "--encoder", "rgb=vgg"], "Unknown encoder 'vgg'"),
    (["--data-dir", "{d}", "--feature-dim", "7"], "positive even integer"),
    (["--data-dir", "{d}", "--loss-weight", "foo=1"], "Unknown loss term 'foo'"),
    (["--data", "released"], "needs --data-dir"),
    (["--resume", "{missing}"], "is not a run directory"),
    (["--data", "av-mnist", "--fsdd-dir", "{missing}"], "--fsdd-dir"),
])
def test_bad_train_input(tmp_path, args, message):
    d = write_released(tmp_path / "data")
    run = tmp_path / "run"
    args = [a.format(d=d, missing=tmp_path / "missing") for a in args]
    result = run_cli("train", *args, "--run-dir", run, "--epochs", 1, "--quiet")
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not run.exists()


@pytest.mark.parametrize("option, value, message", [
    ("--epochs", "0", "epochs must be an integer >= 1; got 0."),
    ("--batch-size", "0", "batch size must be an integer >= 1; got 0."),
    ("--workers", "0", "workers must be an integer >= 1; got 0."),
    ("--lr", "0", "learning rate must be > 0; got 0.0."),
    ("--lr", "-0.001", "learning rate must be > 0; got -0.001."),
])
def test_an_explicit_zero_is_validated_not_replaced_by_the_preset(tmp_path, option, value, message):
    # `--epochs 0` once silently meant "the preset" (300 ResNet-18 epochs on released data).
    d = write_released(tmp_path / "data")
    run = tmp_path / "run"
    result = run_cli("train", "--data-dir", d, "--run-dir", run, option, value, "--quiet")
    assert result.exit_code == 2, result.output
    assert f"Error: {message}" in result.output
    assert not run.exists()


def test_evaluate_bad_run_dir(tmp_path):
    result = run_cli("evaluate", tmp_path)
    assert result.exit_code == 2 and "not a run directory" in result.output


def _cli_subprocess(*args, env=None):
    return subprocess.Popen([sys.executable, "-m", "discomkd_keras.cli", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})})


def test_resume_after_sigkill_continues_epoch_count_with_same_config(tmp_path):
    d = write_released(tmp_path / "data", n_per_class=200)
    run = tmp_path / "run"
    epochs = 8
    proc = _cli_subprocess("train", "--data-dir", d, "--epochs", epochs, "--run-dir", run,
                           "--batch-size", "8", "--encoder", "rgb=lenet", "--feature-dim", "8",
                           "--checkpoint-every", "0", "--quiet")
    state_file = run / "state.json"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if state_file.exists() and json.loads(state_file.read_text())["epoch"] >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(state_file.read_text())["epoch"]
    assert 2 <= killed_at < epochs, "the run finished before it could be killed"
    config_before = (run / "config.json").read_text()

    result = run_cli("train", "--resume", run, "--quiet")
    assert result.exit_code == 0, result.output
    assert (run / "config.json").read_text() == config_before
    state = json.loads(state_file.read_text())
    assert state["epoch"] == epochs
    assert [r["epoch"] for r in read_history(run / "history.csv")] == list(range(1, epochs + 1))
    # Optimizer state came back with the weights: Adam kept counting its steps.
    model = keras.saving.load_model(run / state["checkpoint"], safe_mode=True)
    steps_per_epoch = int(np.ceil(0.6 * 600 / 8))
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == epochs * steps_per_epoch
    result = run_cli("train", "--resume", run, "--quiet")
    assert result.exit_code == 2 and "already finished" in result.output


TWO_DEVICES = r"""
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from discomkd_keras.cli import main
main(["train", "--data-dir", sys.argv[1], "--run-dir", sys.argv[2], "--strategy", "mirrored",
      "--epochs", "3", "--batch-size", "16", "--encoder", "rgb=lenet", "--feature-dim", "8",
      "--lr", "3e-3", "--quiet"])
"""


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.distribute is TensorFlow-only")
    d = write_released(tmp_path / "data")
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", TWO_DEVICES, str(d), str(run)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 replicas" in proc.stdout
    rows = read_history(run / "history.csv")
    assert len(rows) == 3
    for r in rows:
        # The logged loss is the global one: unscaled back from the per-replica share.
        terms = sum(r[t] for t in ("cl", "adv", "mod", "aux", "perp"))
        assert r["loss"] == pytest.approx(terms, rel=1e-4)
    assert rows[-1]["cl"] < rows[0]["cl"]
    assert Path(run / "results.json").exists()


def test_a_run_trains_in_its_own_precision_and_gives_the_callers_back(tmp_path):
    """--mixed-precision is the run's: the process's policy (a notebook's, the next test's)
    is the same after train_run as before it."""
    from discomkd_keras.config import resolve_config
    from discomkd_keras.data import load_data
    from discomkd_keras.run_directory import prepare_run_dir
    from discomkd_keras.training import train_run

    spec = {"source": "released", "directory": str(write_released(tmp_path / "data")),
            "split_seed": None, "modalities": None}
    data = load_data(spec)
    config = resolve_config(spec, data, {"encoders": {"rgb": "dscnn", "vec": "mlp"},
                                         "feature_dim": 8, "batch_size": 8, "epochs": 1,
                                         "precision": "mixed_bfloat16"})
    before = keras.mixed_precision.global_policy().name
    run_dir = prepare_run_dir(tmp_path / "run")
    train_run(config, run_dir, data=data, verbose=0, log=lambda *_: None)
    assert json.loads((run_dir / "config.json").read_text())["precision"] == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == before == "float32"
