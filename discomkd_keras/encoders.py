"""Encoder families. Each maps one modality's input to a feature vector of size D.

Every family ends in a ReLU, so features are >= 0 (the cosine in L_perp then
lies in [0, 1], as method.md assumes). Families are chosen per modality by name:

- `resnet18`: the paper's encoder, ResNet-18 from scratch, first convolution
  adapted to the modality's channel count.
- `lenet`:    the released script's small encoder for 28x28 digit-like images
              (6 and 16 filters; 207,884 parameters at D = 512 on 28x28x1).
- `lenet-wide`: this project's first LeNet (32 and 64 filters), an option.
- `dscnn`:    a light, edge-friendly depthwise-separable CNN (MobileNet-v1
  style blocks, ReLU6), about 20x fewer parameters than ResNet-18.
- `mlp`:      for vector modalities of shape (F,).
"""

import math

import keras
from keras import layers

IMAGE_FAMILIES = ("resnet18", "lenet", "lenet-wide", "dscnn")
VECTOR_FAMILIES = ("mlp",)
ENCODER_FAMILIES = IMAGE_FAMILIES + VECTOR_FAMILIES
CONVENTIONS = ("torch", "keras")
# The smallest image side each family takes: lenet's unpadded 5x5 convolution
# needs a 5x5 map after the first pooling, and one pixel left after the second.
MIN_IMAGE_SIDE = {"lenet": 12}

# Keras' BatchNormalization momentum 0.9 is PyTorch's 0.1, the paper's setting; Keras'
# default 0.99 leaves the moving statistics far from the data after a few hundred
# steps, which hurts both short runs and int8 calibration.
BN_MOMENTUM = 0.9
BN_EPSILON = {"torch": 1e-5, "keras": 1e-3}
ADAM_EPSILON = {"torch": 1e-8, "keras": 1e-7}


class Conventions:
    """The numerical defaults layers are built with (method.md, "Training protocol").

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


def _to_feature_dim(x, width, feature_dim, name, conv):
    """A Dense + ReLU to D only where the backbone's own width differs."""
    if width == feature_dim:
        return x
    return conv.dense(x, feature_dim, f"{name}_to_d", activation="relu")


def _conv_bn_relu(x, filters, kernel, strides, name, conv, relu_fan_out=True):
    x = conv.conv(x, filters, kernel, f"{name}_conv", strides=strides, use_bias=False,
                  relu_fan_out=relu_fan_out)
    x = conv.batch_norm(x, f"{name}_bn")
    return layers.ReLU(name=f"{name}_relu")(x)


def _resnet18(inputs, feature_dim, name, conv):
    # Stem: 7x7/2 convolution whose input channels follow the modality. The
    # released script replaces torchvision's conv1 by a fresh nn.Conv2d, so it
    # keeps PyTorch's default initialisation, not the ResNet one.
    x = _conv_bn_relu(inputs, 64, 7, 2, f"{name}_stem", conv, relu_fan_out=False)
    x = conv.max_pool(x, 3, 2, f"{name}_pool")
    for stage, filters in enumerate((64, 128, 256, 512)):
        for block in range(2):
            strides = 2 if (stage > 0 and block == 0) else 1
            prefix = f"{name}_s{stage + 1}b{block + 1}"
            shortcut = x
            y = _conv_bn_relu(x, filters, 3, strides, f"{prefix}_a", conv)
            y = conv.conv(y, filters, 3, f"{prefix}_b_conv", use_bias=False, relu_fan_out=True)
            y = conv.batch_norm(y, f"{prefix}_b_bn")
            if strides != 1 or shortcut.shape[-1] != filters:
                shortcut = conv.conv(shortcut, filters, 1, f"{prefix}_down_conv", strides=strides,
                                     padding="valid", use_bias=False, relu_fan_out=True)
                shortcut = conv.batch_norm(shortcut, f"{prefix}_down_bn")
            x = layers.Add(name=f"{prefix}_add")([y, shortcut])
            x = layers.ReLU(name=f"{prefix}_out")(x)
    x = layers.GlobalAveragePooling2D(name=f"{name}_gap")(x)
    return _to_feature_dim(x, 512, feature_dim, name, conv)


def _lenet(inputs, feature_dim, name, conv):
    # The released script's LeNet: Conv(6, 5x5, padding 2) - ReLU - MaxPool 2 -
    # Conv(16, 5x5, no padding) - ReLU - MaxPool 2 - Flatten - Dense(D) - ReLU.
    x = conv.conv(inputs, 6, 5, f"{name}_conv1", activation="relu")
    x = layers.MaxPooling2D(2, name=f"{name}_pool1")(x)
    x = conv.conv(x, 16, 5, f"{name}_conv2", padding="valid", activation="relu")
    x = layers.MaxPooling2D(2, name=f"{name}_pool2")(x)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    return conv.dense(x, feature_dim, f"{name}_fc", activation="relu")


def _lenet_wide(inputs, feature_dim, name, conv):
    # This project's first LeNet (32 and 64 filters, "same" padding, ~8x the
    # parameters of the released one); kept as an option with its measured effect.
    x = conv.conv(inputs, 32, 5, f"{name}_conv1", activation="relu")
    x = layers.MaxPooling2D(2, padding="same", name=f"{name}_pool1")(x)
    x = conv.conv(x, 64, 5, f"{name}_conv2", activation="relu")
    x = layers.MaxPooling2D(2, padding="same", name=f"{name}_pool2")(x)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    return conv.dense(x, feature_dim, f"{name}_fc", activation="relu")


# (filters, stride) of the depthwise-separable blocks after the stem.
_DSCNN_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2))


def _dscnn(inputs, feature_dim, name, conv):
    x = conv.conv(inputs, 32, 3, f"{name}_stem_conv", strides=2, use_bias=False)
    x = conv.batch_norm(x, f"{name}_stem_bn")
    x = layers.ReLU(6.0, name=f"{name}_stem_relu")(x)
    for i, (filters, strides) in enumerate(_DSCNN_BLOCKS):
        prefix = f"{name}_ds{i + 1}"
        x = conv.depthwise_conv(x, 3, f"{prefix}_dw", strides=strides)
        x = conv.batch_norm(x, f"{prefix}_dw_bn")
        x = layers.ReLU(6.0, name=f"{prefix}_dw_relu")(x)
        x = conv.conv(x, filters, 1, f"{prefix}_pw", use_bias=False)
        x = conv.batch_norm(x, f"{prefix}_pw_bn")
        x = layers.ReLU(6.0, name=f"{prefix}_pw_relu")(x)
    x = layers.GlobalAveragePooling2D(name=f"{name}_gap")(x)
    return _to_feature_dim(x, 512, feature_dim, name, conv)


def _mlp(inputs, feature_dim, name, conv):
    x = conv.dense(inputs, max(256, feature_dim), f"{name}_fc1", use_bias=False)
    x = conv.batch_norm(x, f"{name}_bn1")
    x = layers.ReLU(name=f"{name}_relu1")(x)
    x = conv.dense(x, feature_dim, f"{name}_fc2", use_bias=False)
    x = conv.batch_norm(x, f"{name}_bn2")
    return layers.ReLU(name=f"{name}_relu2")(x)


_BUILDERS = {"resnet18": _resnet18, "lenet": _lenet, "lenet-wide": _lenet_wide, "dscnn": _dscnn,
             "mlp": _mlp}


def default_encoder(input_shape):
    """The paper's choice: ResNet-18 for images, an MLP for vectors."""
    return "mlp" if len(input_shape) == 1 else "resnet18"


def check_encoder(family, input_shape):
    """Raise a ValueError naming the problem if `family` cannot take `input_shape`."""
    if family not in ENCODER_FAMILIES:
        raise ValueError(
            f"Unknown encoder {family!r}; expected one of {', '.join(ENCODER_FAMILIES)}."
        )
    input_shape = tuple(input_shape)
    if any(d is None or int(d) <= 0 for d in input_shape):
        raise ValueError(f"Input shape {input_shape} must have positive, known sizes.")
    if family in VECTOR_FAMILIES and len(input_shape) != 1:
        raise ValueError(
            f"Encoder {family!r} takes vectors of shape (F,); got {input_shape}. "
            f"Image families: {', '.join(IMAGE_FAMILIES)}."
        )
    if family in IMAGE_FAMILIES and len(input_shape) != 3:
        raise ValueError(
            f"Encoder {family!r} takes images of shape (H, W, C); got {input_shape}. "
            f"Vector families: {', '.join(VECTOR_FAMILIES)}."
        )
    side = MIN_IMAGE_SIDE.get(family)
    if side and min(input_shape[:2]) < side:
        raise ValueError(
            f"Encoder {family!r} needs images of at least {side}x{side}; got {input_shape}. "
            "Use dscnn or resnet18 for smaller images."
        )


def build_encoder(family, input_shape, feature_dim, name, conventions="torch"):
    """A functional `keras.Model` from `input_shape` to a (D,) feature vector.

    conventions: "torch" (the released script's initialisation, BatchNorm
    epsilon and padding) or "keras" (see `Conventions`).
    """
    check_encoder(family, input_shape)
    inputs = keras.Input(shape=tuple(input_shape), name=f"{name}_input")
    outputs = _BUILDERS[family](inputs, int(feature_dim), name, Conventions(conventions))
    return keras.Model(inputs, outputs, name=name)
