"""Two workers on one machine: `--strategy multiworker` over 127.0.0.1 (TensorFlow:
TF_CONFIG; JAX: jax.distributed through JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES,
JAX_PROCESS_ID; free ports chosen at run time), the chief alone writing the run
directory, the result of a one-process run of the same global batch and replicas,
and (TensorFlow) a resume after one worker is killed."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from discomkd_keras.config import ConfigError
from discomkd_keras.run_directory import load_model_file, read_history
from discomkd_keras.training import multiworker_task
from helpers import write_released

tensorflow_only = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="--strategy multiworker is tf.distribute (TensorFlow only)")

ARGS = ["--epochs", 3, "--batch-size", 16, "--encoder", "rgb=lenet", "--feature-dim", 8,
        "--lr", 3e-3, "--quiet"]
LIMIT = 240  # seconds any one cluster may take before it is killed and the test fails

# One process, the same global batch split over 2 replicas (two logical CPUs).
ONE_PROCESS = r"""
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from discomkd_keras.cli import main
main(["train", "--strategy", "mirrored", *sys.argv[1:]])
"""


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Cluster:
    """`discomkd-keras train ARGS` in one process per worker, each with its TF_CONFIG
    and its own TMPDIR (where a worker's temporary run directory goes)."""

    def __init__(self, tmp, args, workers=2):
        hosts = [f"127.0.0.1:{p}" for p in free_ports(workers)]
        self.tmp, self.procs, self.logs = tmp, [], []
        for i in range(workers):
            scratch = tmp / f"tmp{i}"
            scratch.mkdir(exist_ok=True)
            log = open(tmp / f"worker{i}-{time.monotonic_ns()}.log", "w+")
            env = {**os.environ, "TMPDIR": str(scratch), "TF_CPP_MIN_LOG_LEVEL": "2",
                   "TF_CONFIG": json.dumps({"cluster": {"worker": hosts},
                                            "task": {"type": "worker", "index": i}})}
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "discomkd_keras.cli", "train", "--strategy", "multiworker",
                 *map(str, args)], stdout=log, stderr=subprocess.STDOUT, env=env))
            self.logs.append(log)

    def wait(self, timeout=LIMIT):
        deadline = time.monotonic() + timeout
        try:
            for p in self.procs:
                p.wait(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the cluster ran past {timeout} s:\n{self.output()}")
        return [p.returncode for p in self.procs]

    def kill(self):
        for p in self.procs:
            p.kill()
            p.wait()

    def output(self):
        text = []
        for i, log in enumerate(self.logs):
            log.seek(0)
            text.append(f"--- worker {i}\n{log.read()[-3000:]}")
        return "\n".join(text)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        for log in self.logs:
            log.close()


def scratch(tmp, i):
    """What worker i left in its TMPDIR."""
    return sorted(p.name for p in (tmp / f"tmp{i}").iterdir())


def test_the_chief_is_task_chief_or_else_worker_0():
    def task(cluster, kind, index):
        return multiworker_task({"TF_CONFIG": json.dumps(
            {"cluster": cluster, "task": {"type": kind, "index": index}})}, "tensorflow")

    workers = {"worker": ["a:1", "b:1", "c:1"]}
    assert task(workers, "worker", 0) == {"type": "worker", "index": 0, "chief": True,
                                          "workers": 3}
    assert not task(workers, "worker", 2)["chief"]
    with_chief = {"chief": ["a:1"], "worker": ["b:1"]}
    assert task(with_chief, "chief", 0)["chief"] and not task(with_chief, "worker", 0)["chief"]
    assert multiworker_task({}, "tensorflow") is None
    with pytest.raises(ConfigError, match="TF_CONFIG"):
        multiworker_task({"TF_CONFIG": '{"cluster": {}}'}, "tensorflow")
    # JAX: process 0 of JAX_NUM_PROCESSES is the chief.
    jax_env = {"JAX_PROCESS_ID": "1", "JAX_NUM_PROCESSES": "3"}
    assert multiworker_task(jax_env, "jax") == {"type": "process", "index": 1, "chief": False,
                                                "workers": 3}
    assert multiworker_task({}, "jax") is None


@tensorflow_only
def test_two_workers_train_like_one_process_and_only_the_chief_writes(tmp_path):
    data = write_released(tmp_path / "data", n_per_class=100)
    run = tmp_path / "run"
    with Cluster(tmp_path, ["--data-dir", data, "--run-dir", run, *ARGS]) as cluster:
        assert cluster.wait() == [0, 0], cluster.output()
        out = cluster.output()
    assert out.count("Training on 2 replicas") == 2
    assert "worker 1 of 2: training with the chief" in out
    assert "The chief saved the run; this worker kept no files." in out
    # The chief's run directory is complete; worker 1 wrote into its TMPDIR only, and
    # removed what it wrote.
    for name in ("config.json", "history.csv", "state.json", "results.json", "best/rgb.keras",
                 "best/vec.keras", "last-epoch0003.keras"):
        assert (run / name).exists(), name
    assert scratch(tmp_path, 0) == scratch(tmp_path, 1) == []

    one = tmp_path / "one"
    proc = subprocess.run([sys.executable, "-c", ONE_PROCESS, "--data-dir", str(data),
                           "--run-dir", str(one), *map(str, ARGS)],
                          capture_output=True, text=True, timeout=LIMIT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Same seed, same global batch of 16, two replicas of 8 each: the same run, to
    # float32 rounding of the all-reduce (measured: identical).
    two_workers, one_process = read_history(run), read_history(one)
    assert len(two_workers) == len(one_process) == 3
    for a, b in zip(two_workers, one_process):
        for key in ("val_rgb_f1", "val_vec_f1"):
            assert a[key] == pytest.approx(b[key], abs=1e-6), (key, a["epoch"])
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)


@tensorflow_only
def test_a_killed_worker_resumes_from_the_last_checkpoint(tmp_path):
    data = write_released(tmp_path / "data", n_per_class=200)
    run = tmp_path / "run"
    epochs, batch = 4, 16
    args = ["--data-dir", data, "--run-dir", run, *ARGS, "--epochs", epochs,
            "--checkpoint-every", 0]
    state_file = run / "state.json"
    with Cluster(tmp_path, args) as cluster:
        deadline = time.monotonic() + LIMIT
        while time.monotonic() < deadline and all(p.poll() is None for p in cluster.procs):
            if state_file.exists() and json.loads(state_file.read_text())["epoch"] >= 1:
                break
            time.sleep(0.05)
        cluster.procs[1].send_signal(signal.SIGKILL)
        # The chief's collectives abort once worker 1 misses its heartbeats (about 10 s).
        chief = cluster.procs[0]
        try:
            chief.wait(timeout=LIMIT)
        except subprocess.TimeoutExpired:
            pass
        out = cluster.output()
    assert chief.returncode == 2, out
    assert "Error: A worker of the cluster stopped or cannot be reached" in out
    assert f"discomkd-keras train --resume {run}" in out and "Traceback" not in out.split(
        "--- worker 1")[0]
    killed_at = json.loads(state_file.read_text())["epoch"]
    assert 1 <= killed_at < epochs, "the run finished before a worker could be killed:\n" + out
    left = scratch(tmp_path, 1)  # SIGKILL leaves worker 1's temporary directory behind

    with Cluster(tmp_path, ["--resume", run, "--quiet"]) as cluster:
        assert cluster.wait() == [0, 0], cluster.output()
    state = json.loads(state_file.read_text())
    assert state["epoch"] == epochs
    assert [r["epoch"] for r in read_history(run)] == list(range(1, epochs + 1))
    model = load_model_file(run / state["checkpoint"])
    steps_per_epoch = int(np.ceil(0.6 * 600 / batch))
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == epochs * steps_per_epoch
    assert scratch(tmp_path, 0) == [] and scratch(tmp_path, 1) == left


def test_jax_multiworker_without_its_environment_is_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    proc = subprocess.run(
        [sys.executable, "-m", "discomkd_keras.cli", "train", "--data-dir",
         str(write_released(tmp_path / "data")), "--run-dir", str(tmp_path / "run"),
         "--strategy", "multiworker"], capture_output=True, text=True, timeout=LIMIT,
        env={**env, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Error: --strategy multiworker on JAX needs JAX_COORDINATOR_ADDRESS" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


def test_two_jax_processes_train_like_one_and_only_process_0_writes(tmp_path):
    pytest.importorskip("jax")
    data = write_released(tmp_path / "data", n_per_class=100)
    run, one = tmp_path / "run", tmp_path / "one"
    args = ["--data-dir", data, *ARGS, "--epochs", 2]
    port = free_ports(1)[0]
    procs, logs = [], []
    try:
        for i in range(2):
            (tmp_path / f"tmp{i}").mkdir()
            logs.append(open(tmp_path / f"process{i}.log", "w+"))
            env = {**os.environ, "KERAS_BACKEND": "jax", "TMPDIR": str(tmp_path / f"tmp{i}"),
                   "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}", "JAX_NUM_PROCESSES": "2",
                   "JAX_PROCESS_ID": str(i), "TF_CPP_MIN_LOG_LEVEL": "2"}
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "discomkd_keras.cli", "train", "--strategy",
                 "multiworker", "--run-dir", str(run), *map(str, args)],
                stdout=logs[-1], stderr=subprocess.STDOUT, env=env))
        deadline = time.monotonic() + LIMIT
        for p in procs:
            p.wait(timeout=max(1, deadline - time.monotonic()))
        out = ""
        for log in logs:
            log.seek(0)
            out += log.read()[-3000:]
        assert [p.returncode for p in procs] == [0, 0], out
    finally:
        for p in procs:
            p.kill()
            p.wait()
        for log in logs:
            log.close()
    assert "process 1 of 2: training with the chief" in out
    assert "The chief saved the run; this worker kept no files." in out
    assert (run / "results.json").exists() and (run / "best" / "rgb.keras").exists()
    assert scratch(tmp_path, 0) == scratch(tmp_path, 1) == []

    # One process, DataParallel over two CPU devices, the same global batch of 16.
    proc = subprocess.run(
        [sys.executable, "-m", "discomkd_keras.cli", "train", "--strategy", "mirrored",
         "--run-dir", str(one), *map(str, args)], capture_output=True, text=True, timeout=LIMIT,
        env={**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2",
             "XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for a, b in zip(read_history(run), read_history(one), strict=True):
        for key in ("val_rgb_f1", "val_vec_f1"):
            assert a[key] == pytest.approx(b[key], abs=1e-6), (key, a["epoch"])
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
