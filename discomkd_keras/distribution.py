"""Devices and processes: the strategy a run trains under (one device, mirrored GPUs
or CPUs, several machines), JAX's processes, TF_CONFIG, and the run's behaviour when a
worker of a cluster is lost.

Two Keras internals are replaced for multi-worker training on TensorFlow (see
`_mean_scalar_logs_over_workers` and `build_from_batch`); they were written against
Keras TESTED_KERAS and are refused on another minor version rather than risked.
"""

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import keras

from discomkd_keras.config import ConfigError
from discomkd_keras.run_directory import RunError

class LostWorkerError(RunError):
    """A peer of a multi-worker run stopped; the message says where the run stands. The
    process's collectives are aborted and the batch threads Keras started cannot be
    joined: a command ends the process right after saying so (cli.train)."""


# The Keras minor version whose trainer internals the multi-worker patches replace
# (pyproject.toml pins keras to it).
TESTED_KERAS = "3.15"


def check_patchable_keras(version=None):
    """Raise ConfigError unless Keras is the minor version the patches were written for."""
    version = version or keras.version()
    if version.split(".")[:2] != TESTED_KERAS.split("."):
        raise ConfigError(f"--strategy multiworker on TensorFlow replaces Keras internals tested "
                          f"on Keras {TESTED_KERAS}.x only; this is Keras {version} (pip install "
                          f"'keras=={TESTED_KERAS}.*').")


def make_strategy(name):
    """A context manager under which the model is built and trained."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf
        if name == "auto":
            return tf.distribute.get_strategy()
        if name == "multiworker":
            check_patchable_keras()
            _mean_scalar_logs_over_workers()
            return tf.distribute.MultiWorkerMirroredStrategy()  # reads TF_CONFIG
        # Mirror over all GPUs; with none, over the logical CPUs (how tests split one CPU in two).
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or \
                  [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "auto":
        return _NullScope()
    if name == "mirrored" and backend == "jax":
        keras.distribution.set_distribution(keras.distribution.DataParallel())
        return _NullScope()
    if name == "multiworker" and backend == "jax":
        start_jax_processes()
        distribution = keras.distribution.DataParallel()  # every device of every process
        distribution.auto_shard_dataset = False  # each process feeds its share (UnpairedBatches)
        keras.distribution.set_distribution(distribution)
        return _NullScope()
    raise ConfigError(f"--strategy {name} is not available on the {backend} backend "
                     "(jax: auto, mirrored or multiworker, via keras.distribution.DataParallel).")


def start_jax_processes():
    """jax.distributed.initialize from JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and
    JAX_PROCESS_ID (once per process, before any JAX computation); CPUs reach each
    other through gloo."""
    import jax

    if jax.distributed.is_initialized():
        return
    task = multiworker_task()
    if task is None or "JAX_COORDINATOR_ADDRESS" not in os.environ:
        raise ConfigError("--strategy multiworker on JAX needs JAX_COORDINATOR_ADDRESS (host:port "
                          "of process 0), JAX_NUM_PROCESSES and JAX_PROCESS_ID.")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=os.environ["JAX_COORDINATOR_ADDRESS"],
                               num_processes=task["workers"], process_id=task["index"])


def across_processes():
    return keras.backend.backend() == "jax" and _jax_process_count() > 1


def _jax_process_count():
    import jax

    return jax.process_count() if jax.distributed.is_initialized() else 1


@contextlib.contextmanager
def this_process_only():
    """No keras.distribution while models are made here: their variables stay on
    this process's devices, so predict can read their outputs."""
    if keras.backend.backend() != "jax":
        yield
        return
    saved = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(saved)


def _mean_scalar_logs_over_workers():
    """Keras 3.15's TF trainer averages a training step's logs over the workers of
    a MultiWorkerMirroredStrategy with strategy.reduce("MEAN", v, axis=0), which
    fails on a scalar ("Invalid reduction dimension 0 for input with 0
    dimensions"); every log is a scalar. Average them with axis=None instead."""
    from keras.src.backend.tensorflow import trainer as tf_trainer

    if getattr(tf_trainer.reduce_per_replica, "scalar_safe", False):
        return
    keras_reduce = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(strategy):
            return keras.tree.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None if v.shape.rank == 0 else 0), values)
        return keras_reduce(values, strategy, reduction)

    reduce_per_replica.scalar_safe = True
    tf_trainer.reduce_per_replica = reduce_per_replica


def build_from_batch(model, batch):
    """Under a tf.distribute strategy, Keras' TF fit builds the model from a batch
    it takes from a fresh training iterator and averages over replicas with
    strategy.reduce. MultiWorkerMirroredStrategy cannot reduce an (x, y) nest
    (Keras 3.15: "Attempt to convert a value ({'rgb': PerReplica ...}) to a
    Tensor"), and the batches that iterator takes or prefetches are lost to the
    stream. Build from `batch` (one global batch, NumPy) instead."""
    def build(iterator=None, data_batch=None):
        with model.distribute_strategy.scope():
            model._symbolic_build(data_batch=batch)

    model._maybe_symbolic_build = build


class _NullScope:
    num_replicas_in_sync = 1

    def scope(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def multiworker_task(environ=os.environ, backend=None):
    """This process's task: {"type", "index", "chief", "workers"}; None outside a cluster.
    TensorFlow: from TF_CONFIG; the chief is task "chief", or worker 0 of a cluster
    without one. JAX: from JAX_PROCESS_ID and JAX_NUM_PROCESSES; the chief is process 0."""
    if (backend or keras.backend.backend()) == "jax":
        if "JAX_PROCESS_ID" not in environ:
            return None
        try:
            index, count = int(environ["JAX_PROCESS_ID"]), int(environ["JAX_NUM_PROCESSES"])
        except (KeyError, ValueError) as err:
            raise ConfigError(f"JAX_PROCESS_ID and JAX_NUM_PROCESSES must be integers ({err!r}).") \
                from None
        if count < 1:
            raise ConfigError(f"JAX_NUM_PROCESSES={count}: a cluster has at least 1 process.")
        if not 0 <= index < count:
            raise ConfigError(f"JAX_PROCESS_ID={index} is outside the cluster: JAX_NUM_PROCESSES="
                              f"{count} numbers its processes 0 to {count - 1}.")
        return {"type": "process", "index": index, "chief": index == 0, "workers": count}
    raw = environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        tf_config = json.loads(raw)
        cluster, task = tf_config["cluster"], tf_config["task"]
        kind, index = task["type"], int(task.get("index", 0))
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"TF_CONFIG is not a cluster and task ({err!r}): {raw[:200]}") from None
    if not isinstance(cluster, dict) or not all(isinstance(v, list) for v in cluster.values()) \
            or not isinstance(kind, str):
        raise ConfigError("TF_CONFIG is not a cluster {task type: [addresses]} and a task "
                          f"{{\"type\": name, \"index\": number}}: {raw[:200]}")
    size = len(cluster.get(kind, []))
    if not 0 <= index < size:
        this = json.dumps({"type": kind, "index": index})
        if size:
            has = f"1 {kind!r} task (index 0)" if size == 1 else \
                f"{size} {kind!r} tasks (index 0 to {size - 1})"
        else:
            types = ", ".join(f"{len(v)} {k!r}" for k, v in cluster.items()) or "none"
            has = f"no {kind!r} task (its tasks: {types})"
        raise ConfigError(f"TF_CONFIG: task {this} is outside its cluster, which has {has}.")
    chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)
    workers = sum(len(cluster.get(k, [])) for k in ("chief", "worker"))
    return {"type": kind, "index": index, "chief": chief, "workers": workers}


@contextlib.contextmanager
def lost_worker(config, run_dir, recorder):
    """A multi-worker run whose peer died (its collectives abort within seconds):
    one line saying where the run stands and how to continue it, not a traceback."""
    try:
        yield
    except Exception as err:
        kind, text = type(err).__name__, str(err)
        lost = kind in ("UnavailableError", "AbortedError", "DeadlineExceededError",
                        "CancelledError") or (  # TensorFlow; JAX's collectives across CPUs:
            keras.backend.backend() == "jax" and ("Gloo" in text or "UNAVAILABLE" in text))
        if config["strategy"] != "multiworker" or not lost:
            raise
        cause = text.split("\n")[0].split("}} ")[-1][:300]
        raise LostWorkerError(
            f"A worker of the cluster stopped or cannot be reached ({kind}: {cause}). The run is "
            f"checkpointed after epoch {recorder.state['epoch']}; once every worker is back, "
            "continue it on each, with its TF_CONFIG or JAX_* variables: "
            "discomkd-keras train --resume "
            f"{run_dir if multiworker_task()['chief'] else 'RUN_DIR (the chief run directory)'}"
        ) from None


@contextlib.contextmanager
def worker_dir(worker, log):
    """A temporary run directory for a worker that is not the chief: it trains in
    step with the chief, and only the chief's run directory is the user's."""
    scratch = Path(tempfile.mkdtemp(prefix=f"discomkd-{worker['type']}{worker['index']}-"))
    log(f"{worker['type']} {worker['index']} of {worker['workers']}: training with the chief, "
        "which writes the run directory (this worker's files are temporary)")
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
