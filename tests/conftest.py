import os
import sys
from pathlib import Path

# Benchmark tooling (benchmarks/comparison.py) is tested too, but is not part of the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
# Quiet TensorFlow's start-up chatter in test logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# `train` times a few steps for its plan; the tests that check the plan's timing ask for it.
os.environ.setdefault("DISCOMKD_PROBE_STEPS", "0")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def gradient(fn, x):
    """d sum(fn(x) * upstream)/dx on the active backend, as NumPy."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
        return tape.gradient(y, x).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(lambda v: fn(v).sum())(x))
    pytest.skip(f"no gradient helper for backend {backend}")


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session()
