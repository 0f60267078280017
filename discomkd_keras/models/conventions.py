"""The numerical conventions layers are built with: PyTorch's (the released script's:
initialisation, BatchNorm epsilon, padding, Adam epsilon) or Keras' own
(`--layer-defaults kaiming|glorot`; config.json's `conventions` torch|keras)."""

import math

import keras
from keras import layers

from discomkd_keras.choices import CONVENTIONS

# Keras' BatchNormalization momentum 0.9 is PyTorch's 0.1, the paper's setting; Keras'
# default 0.99 (and the applications' 0.999) leaves the moving statistics far from the
# data after a few hundred steps, which hurts both short runs and int8 calibration.
# The applications' backbones get it too; their epsilon stays 1e-3 under both
# conventions: their ImageNet weights were trained with it, and torchvision's own
# MobileNetV3 and EfficientNetV2 use it as well.
BN_MOMENTUM = 0.9
BN_EPSILON = {"torch": 1e-5, "keras": 1e-3}
ADAM_EPSILON = {"torch": 1e-8, "keras": 1e-7}


class Conventions:
    """The numerical defaults layers are built with (docs/method.md, "Training protocol").

    `torch` (the default) reproduces the released PyTorch script: weights and
    biases uniform in +-1/sqrt(fan_in) (PyTorch's kaiming-uniform with
    a = sqrt 5), ResNet-18's convolutions kaiming-normal over fan_out (as
    torchvision initialises them), BatchNorm epsilon 1e-5 and symmetric
    padding before every strided convolution or pooling. `keras` is what the
    same layers get from Keras: Glorot-uniform weights, zero biases, epsilon
    1e-3 and "same" padding (extra row and column at the bottom and right).
    """

    def __init__(self, name="torch"):
        if name not in CONVENTIONS:
            raise ValueError(f"Unknown conventions {name!r}; expected one of {CONVENTIONS}.")
        self.name = name
        self.torch = name == "torch"

    def _uniform(self, fan_in):
        bound = 1.0 / math.sqrt(max(1, fan_in))
        return keras.initializers.RandomUniform(-bound, bound)

    def _weights(self, relu_fan_out=False):
        if not self.torch:
            return "glorot_uniform"
        if relu_fan_out:  # torchvision's ResNet: kaiming_normal_(mode="fan_out", relu)
            return keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")
        # kaiming_uniform_(a=sqrt(5)): U(+-sqrt(3 * (1/3) / fan_in)) = U(+-1/sqrt(fan_in)).
        return keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform")

    def _bias(self, fan_in):
        return self._uniform(fan_in) if self.torch else "zeros"

    def dense_layer(self, fan_in, units, name, activation=None, use_bias=True):
        """A Dense layer for inputs of `fan_in` features (for heads shared by several inputs)."""
        return layers.Dense(units, activation=activation, use_bias=use_bias,
                            kernel_initializer=self._weights(),
                            bias_initializer=self._bias(int(fan_in)), name=name)

    def dense(self, x, units, name, activation=None, use_bias=True):
        return self.dense_layer(x.shape[-1], units, name, activation, use_bias)(x)

    def conv(self, x, filters, kernel, name, strides=1, padding="same", activation=None,
             use_bias=True, relu_fan_out=False):
        """Conv2D; "same" padding is made symmetric (PyTorch's k // 2) under torch."""
        fan_in = int(x.shape[-1]) * kernel * kernel
        x, padding = self._pad(x, kernel, strides, padding, name)
        return layers.Conv2D(filters, kernel, strides=strides, padding=padding,
                             activation=activation, use_bias=use_bias,
                             kernel_initializer=self._weights(relu_fan_out),
                             bias_initializer=self._bias(fan_in), name=name)(x)

    def depthwise_conv(self, x, kernel, name, strides=1):
        channels = int(x.shape[-1])
        x, padding = self._pad(x, kernel, strides, "same", name)
        # PyTorch's fan_in of a depthwise kernel is k*k (one input channel per
        # group); Keras counts k*k*channels, so the scale makes up the difference.
        init = (keras.initializers.VarianceScaling(channels / 3.0, "fan_in", "uniform")
                if self.torch else "glorot_uniform")
        return layers.DepthwiseConv2D(kernel, strides=strides, padding=padding, use_bias=False,
                                      depthwise_initializer=init, name=name)(x)

    def max_pool(self, x, size, strides, name):
        # Zero padding equals PyTorch's -inf padding here: pooling follows a ReLU.
        x, padding = self._pad(x, size, strides, "same", name)
        return layers.MaxPooling2D(size, strides=strides, padding=padding, name=name)(x)

    def _pad(self, x, kernel, strides, padding, name):
        if padding == "same" and self.torch and strides > 1 and kernel > 1:
            return layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x), "valid"
        return x, padding

    def batch_norm(self, x, name):
        return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON[self.name],
                                         name=name)(x)
