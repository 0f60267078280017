"""What a model costs on a device, counted from its layers: multiply-accumulates of
one forward pass, an int8 TFLite size estimate, and the walk over nested models
both use. Keras only (no converter), so planning and comparisons need no exporter."""

import numpy as np

# What an int8 TFLite file holds besides its weights: per output channel of every kernel a
# float32 scale and an int64 zero point, and the graph itself (measured: 8-15 KB here).
INT8_BYTES_PER_CHANNEL = 12
INT8_GRAPH_BYTES = 12 * 1024


def all_layers(model):
    """Every layer of `model`, those of its nested models included (depth first)."""
    import keras

    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from all_layers(layer)


def count_macs(model):
    """Multiply-accumulates of one forward pass (batch 1) through Conv2D,
    DepthwiseConv2D and Dense layers, nested models included."""
    import keras

    total = 0
    for layer in all_layers(model):
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            _, h, w, _ = layer.output.shape
            kh, kw, cin, mult = layer.kernel.shape
            total += h * w * kh * kw * cin * mult
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, _ = layer.output.shape
            kh, kw, cin_per_group, cout = layer.kernel.shape
            total += h * w * kh * kw * cin_per_group * cout
        elif isinstance(layer, keras.layers.Dense):
            fan_in, units = layer.kernel.shape
            total += fan_in * units
    return int(total)


def int8_bytes(model):
    """About what an int8 TFLite file of `model` weighs: one byte per element of every
    kernel (weights of 2 or more axes) plus its per-channel scale and zero point, four
    per element of the rest (biases become int32; BatchNorm folds into the kernels, so
    that part errs long), and the graph."""
    total = INT8_GRAPH_BYTES
    for weight in model.weights:
        shape = tuple(weight.shape)
        size = int(np.prod(shape))
        if len(shape) >= 2:
            # A depthwise kernel (kh, kw, C, 1) has C channels; any other, its last axis.
            channels = shape[2] if len(shape) == 4 and shape[3] == 1 else shape[-1]
            total += size + INT8_BYTES_PER_CHANNEL * int(channels)
        else:
            total += 4 * size
    return total
