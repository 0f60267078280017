"""int8 with the input layers kept in float: what an int8 export falls back to when
its full-integer model disagrees with the Keras classifier on the validation split.

Why (issue 17; the quick start's run, seeds 0 and 1; benchmarks/int8_sensitivity.py,
results in benchmarks/results/int8-sensitivity-synthetic-rgbd.md): the RGB
classifier's int8 error is not a badly calibrated tensor but the rounding of one
activation, its spec encoder's stem output. One int8 step of uniform noise (its
calibrated step, 0.020) added there alone, in the float model, moves the logits by
0.070 rms on both seeds: 79% and 62% of the variance of the whole int8 model's logit
error (0.079 and 0.089 rms); the same at any other activation moves them by 0.027
or less (z_inv, rounded on the concatenation's coarser grid: 0.017-0.020). The
depthwise convolution behind the stem, batch norm folded in, takes small local
differences of smooth colour images (batch-norm sqrt(var) 0.09-0.15 on the channels
that amplify most, 0.14-0.28 for depth) and multiplies that rounding by up to 7.2
(depth: 3.8), and the head leans on the spec encoder's z_inf (logit contribution
std 2.7, z_inv's 0.55).

Keeping in float the ops from the model input up to the second weighted op of every
path (dscnn: the stem and the first depthwise convolution of each encoder, 0.3% of
the weights) removes that rounding: RGB test agreement 96.7% -> 99.2% (seed 0) and
97.3% -> 99.3% (seed 1) at +3.5 KiB and the same latency. Calibrating on all 2,100
training rows (96.8%), splitting the head over the concatenation (96.0%),
percentile ranges (p99.99: 98.2% / 98.3% on the test split but 97.7% / 98.1% on all
3,000 rows, the logit error unchanged) and per-channel range equalisation through
the ReLU6 (97.2%) did not.
"""

import contextlib

# Ops whose weights make them a "layer" when counting from the input.
WEIGHTED_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV",
                          "CONV_3D", "BATCH_MATMUL"})
# Conversions between float and integer: neither a layer nor kept float.
CONVERSIONS = frozenset({"QUANTIZE", "DEQUANTIZE"})


def input_layer_ops(flatbuffer, layers=2):
    """[(op name, output tensor name)] of the ops on every path from the model's
    inputs up to and including its `layers`-th weighted op (in execution order).

    Any TFLite model of the classifier works: the names are the converter's own
    op locations, the same in its float and its quantized models."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    graph = model.subgraphs[0]
    # Tensor -> the fewest weighted ops on a path from an input to it.
    depth = {int(t): 0 for t in graph.inputs}
    chosen = []
    for op in graph.operators:  # stored in execution order: producers come first
        reached = [depth[int(t)] for t in op.inputs if int(t) in depth]
        if not reached:
            continue
        name = flatbuffer_utils.opcode_to_name(model, op.opcodeIndex)
        count = min(reached)
        if name not in CONVERSIONS:
            count += name in WEIGHTED_OPS
            chosen.extend((name, graph.tensors[int(t)].name.decode()) for t in op.outputs)
        if count < layers:
            for t in op.outputs:
                depth[int(t)] = min(count, depth.get(int(t), count))
    return chosen


@contextlib.contextmanager
def kept_float(nodes):
    """While active, TFLite's full-integer quantizer leaves the ops whose outputs
    are named in `nodes` in float (the converter inserts the (de)quantize ops).

    The converter's own option for it exists only inside its quantization debugger
    (which drops the integer I/O types); this passes the same list to the quantizer
    the converter calls, so the rest of the conversion is unchanged."""
    from tensorflow.lite.python import lite

    original = getattr(lite, "_mlir_quantize", None)
    if original is None:
        raise RuntimeError("This TensorFlow's converter has no quantizer entry point "
                           "(tensorflow.lite.python.lite._mlir_quantize) to keep layers in float.")

    def quantize(*args, **kwargs):
        kwargs["denylisted_nodes"] = sorted(set(kwargs.get("denylisted_nodes") or ()) | set(nodes))
        return original(*args, **kwargs)

    lite._mlir_quantize = quantize
    try:
        yield
    finally:
        lite._mlir_quantize = original
