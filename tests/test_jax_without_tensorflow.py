"""The GPU path of the project's device machines: JAX, no TensorFlow. A fresh
virtual environment gets the package with its `jax` extra only (README's JAX
install line) and trains one epoch through the CLI, so nothing on the training
path can start needing TensorFlow unnoticed."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import write_released
from test_edge_demo import OFFLINE_SIGNS, clean_env

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def jax_env(tmp_path_factory):
    """(bin folder, environment) of a venv holding `pip install ROOT[jax]` and nothing else."""
    where = tmp_path_factory.mktemp("jax-venv")
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True,
                   env=clean_env(), timeout=300)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                          f"{ROOT}[jax]"], capture_output=True, text=True, env=clean_env(),
                         cwd=where, timeout=900)
    if pip.returncode != 0:
        output = pip.stdout + pip.stderr
        if any(sign in output for sign in OFFLINE_SIGNS):
            pytest.skip("pip cannot reach the package index: " + output.strip().splitlines()[-1])
        pytest.fail(f"pip install .[jax] failed:\n{output}")
    return venv / "bin", dict(clean_env(), KERAS_BACKEND="jax")


def test_the_jax_extra_pulls_no_tensorflow(jax_env):
    bin_dir, env = jax_env
    for module in ("tensorflow", "ai_edge_litert"):
        probe = subprocess.run([str(bin_dir / "python"), "-c", f"import {module}"],
                               capture_output=True, text=True, env=env)
        assert probe.returncode != 0 and "No module named" in probe.stderr, module


def test_one_epoch_through_the_cli_on_jax(jax_env, tmp_path):
    bin_dir, env = jax_env
    data = write_released(tmp_path / "data")
    run = tmp_path / "run"
    done = subprocess.run(
        [str(bin_dir / "discomkd-keras"), "train", "--data-dir", str(data), "--run-dir", str(run),
         "--epochs", "1", "--encoder", "rgb=lenet", "--feature-dim", "8", "--batch-size", "16",
         "--quiet"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["versions"]["backend"] == "jax" and config["versions"]["tensorflow"] is None
    results = json.loads((run / "results.json").read_text())
    assert set(results) == {"rgb", "vec"}
    assert all(0.0 <= r["test_weighted_f1"] <= 1.0 for r in results.values())
    # Export needs TensorFlow: one clear line, not a traceback.
    export = subprocess.run([str(bin_dir / "discomkd-keras"), "export", str(run), "--modality", "rgb"],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert export.returncode == 2
    assert "Error: Export needs TensorFlow and ai-edge-litert" in export.stderr
    assert "Traceback" not in export.stderr
