"""What every `discomkd-keras` command shares: the one-line error exit, NAME=VALUE
options, the quiet backend start-up and the errors a command reports as one line."""

import contextlib
import sys

import click


def fail(message):
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


def pairs(values, what, cast=str):
    """Parse repeated NAME=VALUE options into a dict."""
    out = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint=what)
        name, value = item.split("=", 1)
        try:
            out[name.strip()] = cast(value.strip())
        except ValueError:
            raise click.BadParameter(f"bad value in {item!r}", param_hint=what) from None
    return out


@contextlib.contextmanager
def quiet_backend_start(verbose=False):
    """Import Keras and its backend inside this block, hiding TensorFlow's C++
    start-up lines (oneDNN, CUDA probing), which go to the process's stderr
    before Python could filter them; `verbose` shows them."""
    if verbose:
        yield
        return
    from discomkd_keras.edge_demo.runtime import quiet_native_stderr

    with quiet_native_stderr():
        yield
        import keras
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf
            tf.config.list_physical_devices()  # the CUDA probe prints here


def errors():
    from discomkd_keras.data import DataError
    from discomkd_keras.export import ExportError
    from discomkd_keras.run_directory import RunError
    return DataError, ExportError, RunError, ValueError
