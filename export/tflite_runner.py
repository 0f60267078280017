"""Run an exported `.tflite` classifier with the LiteRT interpreter, taking
and returning float arrays whatever the model's I/O type (the same contract as
edge_demo's runner)."""

import numpy as np

# The device's own int8/uint8 conversions: the verifier does exactly what the demo does.
from discomkd_keras.edge_demo.classify import dequantize, quantize


def make_interpreter(model_path_or_bytes, num_threads=1, delegates=True):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kwargs = {"num_threads": num_threads}
    if not delegates:
        # The plain builtin kernels, no XNNPACK: used to list the model's own ops.
        kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    if isinstance(model_path_or_bytes, (bytes, bytearray)):
        interpreter = Interpreter(model_content=bytes(model_path_or_bytes), **kwargs)
    else:
        interpreter = Interpreter(model_path=str(model_path_or_bytes), **kwargs)
    interpreter.allocate_tensors()
    return interpreter


def op_names(model_bytes):
    """The builtin op names of a model, in first-use order."""
    interpreter = make_interpreter(model_bytes, delegates=False)
    names = []
    for op in interpreter._get_ops_details():  # the one public-ish way to list ops
        if op["op_name"] not in names:
            names.append(op["op_name"])
    return names


class TFLiteClassifier:
    """Float in, probabilities out, one sample per invoke (batch 1, as on a device)."""

    def __init__(self, model, num_threads=1):
        self.interpreter = make_interpreter(model, num_threads=num_threads)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    def __call__(self, x):
        """x: one float32 model input (no batch axis) -> float32 probabilities (K,)."""
        x = np.asarray(x, np.float32)[None]
        scale, zero_point = self.input["quantization"]
        if self.input["dtype"] != np.float32:
            x = quantize(x, scale, zero_point, self.input["dtype"])
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self.output["index"])[0]
        scale, zero_point = self.output["quantization"]
        if self.output["dtype"] != np.float32:
            y = dequantize(y, scale, zero_point)
        return y.astype(np.float32)

    def predict(self, xs):
        return np.stack([self(x) for x in xs]) if len(xs) else np.zeros((0,) + tuple(self.output["shape"][1:]), np.float32)
