"""The one TFLite interpreter wrapper of the project: float input in, class
probabilities out, one sample per call (batch 1, as on a device), whatever the
model's I/O type.

The device demo (classify.py), the export verifier and `bench-export` all run
models through `Classifier`, so the int8/uint8 conversions that are verified at
export time are the ones the device uses. Needs LiteRT (ai-edge-litert, or the
older tflite-runtime) and NumPy; never TensorFlow.
"""

import contextlib
import os
import sys
import time
from pathlib import Path

import numpy as np


class ModelFileError(ValueError):
    """A model that cannot be loaded or does not fit its card; the message is one line."""


def _interpreter_module():
    try:
        from ai_edge_litert import interpreter
        return interpreter
    except ImportError:
        pass
    try:  # the older runtime package, still found on some devices
        from tflite_runtime import interpreter
        return interpreter
    except ImportError:
        raise ModelFileError("the LiteRT runtime is not installed: pip install ai-edge-litert "
                             "(wheels for 64-bit Linux/macOS, Python 3.11-3.13).") from None


@contextlib.contextmanager
def quiet_native_stderr():
    """Hide the runtime's own start-up lines ("INFO: Created TensorFlow Lite XNNPACK
    delegate ...") so that stderr carries only the caller's notes and errors."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # a captured stream without a descriptor
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    try:
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def quantize(x, scale, zero_point, dtype):
    """float -> int8/uint8 with the tensor's scale and zero point (round half to even, clamped)."""
    info = np.iinfo(dtype)
    return np.clip(np.round(x / np.float32(scale)) + zero_point, info.min, info.max).astype(dtype)


def dequantize(q, scale, zero_point):
    return (q.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


class Classifier:
    """A `.tflite` classifier (a file path or the model's bytes) with float I/O.

    delegates=False uses the plain builtin kernels (no XNNPACK), which is what
    `op_names` needs to list the model's own ops."""

    def __init__(self, model, num_threads=1, delegates=True):
        module = _interpreter_module()
        kwargs = {"num_threads": int(num_threads)}
        if not delegates:
            kwargs["experimental_op_resolver_type"] = \
                module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        if isinstance(model, (bytes, bytearray)):
            kwargs["model_content"], what = bytes(model), "the model bytes"
        else:
            kwargs["model_path"], what = str(model), str(model)
        try:
            with quiet_native_stderr():
                self.interpreter = module.Interpreter(**kwargs)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ModelFileError(f"{what}: not a loadable TFLite model ({first}).") from None
        self.threads = int(num_threads)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.input_shape = tuple(int(d) for d in self.input["shape"][1:])
        self.num_classes = int(self.output["shape"][-1])

    def __call__(self, x):
        """x: one float model input (no batch axis) -> float32 probabilities (K,)."""
        x = np.asarray(x, np.float32)[None]
        if self.input["dtype"] != np.float32:
            scale, zero_point = self.input["quantization"]
            x = quantize(x, scale, zero_point, self.input["dtype"])
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self.output["index"])[0]
        if self.output["dtype"] != np.float32:
            scale, zero_point = self.output["quantization"]
            y = dequantize(y, scale, zero_point)
        return np.asarray(y, np.float32)

    def timed(self, x):
        """(probabilities, milliseconds of quantize + invoke + dequantize)."""
        started = time.perf_counter()
        probs = self(x)
        return probs, 1000.0 * (time.perf_counter() - started)

    def predict(self, xs):
        """(N, K) probabilities of N inputs, one invocation each."""
        if not len(xs):
            return np.zeros((0, self.num_classes), np.float32)
        return np.stack([self(x) for x in xs])

    def op_names(self):
        """The builtin op names of the model, in first-use order."""
        names = []
        for op in self.interpreter._get_ops_details():  # the one way LiteRT lists ops
            if op["op_name"] not in names:
                names.append(op["op_name"])
        return names


def op_names(model):
    """The builtin op names of a model (path or bytes), without delegates."""
    return Classifier(model, delegates=False).op_names()


def open_export(folder, card, labels, num_threads=1):
    """The Classifier of an export folder, checked against its (validated) card and labels."""
    path = Path(folder) / card["model_file"]
    if not path.is_file():
        raise ModelFileError(f"{path} is missing (named by the card's model_file).")
    model = Classifier(path, num_threads=num_threads)
    want = list(card["input"]["shape"])
    actual = [int(d) for d in model.input["shape"]]
    if actual != want:
        raise ModelFileError(f"{path}: the model's input shape {actual} does not match the card's "
                             f"{want}; the folder mixes files of different exports.")
    if model.num_classes != len(labels):
        raise ModelFileError(f"{path}: the model has {model.num_classes} outputs but there are "
                             f"{len(labels)} labels; the folder mixes files of different exports.")
    return model
