"""Encoder families. Each maps one modality's input to a feature vector of size D.

Every family ends in a ReLU, so features are >= 0 (the cosine in L_perp then
lies in [0, 1], as method.md assumes). Families are chosen per modality by name:

- `resnet18`: the paper's encoder, ResNet-18 from scratch, first convolution
  adapted to the modality's channel count.
- `lenet`:    the paper's small encoder for 28x28 digit-like images.
- `dscnn`:    a light, edge-friendly depthwise-separable CNN (MobileNet-v1
  style blocks, ReLU6), about 20x fewer parameters than ResNet-18.
- `mlp`:      for vector modalities of shape (F,).
"""

import keras
from keras import layers

IMAGE_FAMILIES = ("resnet18", "lenet", "dscnn")
VECTOR_FAMILIES = ("mlp",)
ENCODER_FAMILIES = IMAGE_FAMILIES + VECTOR_FAMILIES


# Keras' BatchNormalization momentum 0.9 is PyTorch's 0.1, the paper's setting; Keras'
# default 0.99 leaves the moving statistics far from the data after a few hundred
# steps, which hurts both short runs and int8 calibration.
BN_MOMENTUM = 0.9


def batch_norm(name):
    return layers.BatchNormalization(momentum=BN_MOMENTUM, name=name)


def _to_feature_dim(x, width, feature_dim, name):
    """A Dense + ReLU to D only where the backbone's own width differs."""
    if width == feature_dim:
        return x
    return layers.Dense(feature_dim, activation="relu", name=f"{name}_to_d")(x)


def _conv_bn_relu(x, filters, kernel, strides, name):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same",
                      use_bias=False, name=f"{name}_conv")(x)
    x = batch_norm(f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _resnet18(inputs, feature_dim, name):
    # Stem: 7x7/2 convolution whose input channels follow the modality.
    x = _conv_bn_relu(inputs, 64, 7, 2, f"{name}_stem")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
    for stage, filters in enumerate((64, 128, 256, 512)):
        for block in range(2):
            strides = 2 if (stage > 0 and block == 0) else 1
            prefix = f"{name}_s{stage + 1}b{block + 1}"
            shortcut = x
            y = _conv_bn_relu(x, filters, 3, strides, f"{prefix}_a")
            y = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                              name=f"{prefix}_b_conv")(y)
            y = batch_norm(f"{prefix}_b_bn")(y)
            if strides != 1 or shortcut.shape[-1] != filters:
                shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False,
                                         name=f"{prefix}_down_conv")(shortcut)
                shortcut = batch_norm(f"{prefix}_down_bn")(shortcut)
            x = layers.Add(name=f"{prefix}_add")([y, shortcut])
            x = layers.ReLU(name=f"{prefix}_out")(x)
    x = layers.GlobalAveragePooling2D(name=f"{name}_gap")(x)
    return _to_feature_dim(x, 512, feature_dim, name)


def _lenet(inputs, feature_dim, name):
    x = layers.Conv2D(32, 5, padding="same", activation="relu", name=f"{name}_conv1")(inputs)
    x = layers.MaxPooling2D(2, padding="same", name=f"{name}_pool1")(x)
    x = layers.Conv2D(64, 5, padding="same", activation="relu", name=f"{name}_conv2")(x)
    x = layers.MaxPooling2D(2, padding="same", name=f"{name}_pool2")(x)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    return layers.Dense(feature_dim, activation="relu", name=f"{name}_fc")(x)


# (filters, stride) of the depthwise-separable blocks after the stem.
_DSCNN_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2))


def _dscnn(inputs, feature_dim, name):
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False,
                      name=f"{name}_stem_conv")(inputs)
    x = batch_norm(f"{name}_stem_bn")(x)
    x = layers.ReLU(6.0, name=f"{name}_stem_relu")(x)
    for i, (filters, strides) in enumerate(_DSCNN_BLOCKS):
        prefix = f"{name}_ds{i + 1}"
        x = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False,
                                   name=f"{prefix}_dw")(x)
        x = batch_norm(f"{prefix}_dw_bn")(x)
        x = layers.ReLU(6.0, name=f"{prefix}_dw_relu")(x)
        x = layers.Conv2D(filters, 1, use_bias=False, name=f"{prefix}_pw")(x)
        x = batch_norm(f"{prefix}_pw_bn")(x)
        x = layers.ReLU(6.0, name=f"{prefix}_pw_relu")(x)
    x = layers.GlobalAveragePooling2D(name=f"{name}_gap")(x)
    return _to_feature_dim(x, 512, feature_dim, name)


def _mlp(inputs, feature_dim, name):
    x = layers.Dense(max(256, feature_dim), use_bias=False, name=f"{name}_fc1")(inputs)
    x = batch_norm(f"{name}_bn1")(x)
    x = layers.ReLU(name=f"{name}_relu1")(x)
    x = layers.Dense(feature_dim, use_bias=False, name=f"{name}_fc2")(x)
    x = batch_norm(f"{name}_bn2")(x)
    return layers.ReLU(name=f"{name}_relu2")(x)


_BUILDERS = {"resnet18": _resnet18, "lenet": _lenet, "dscnn": _dscnn, "mlp": _mlp}


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


def build_encoder(family, input_shape, feature_dim, name):
    """A functional `keras.Model` from `input_shape` to a (D,) feature vector."""
    check_encoder(family, input_shape)
    inputs = keras.Input(shape=tuple(input_shape), name=f"{name}_input")
    outputs = _BUILDERS[family](inputs, int(feature_dim), name)
    return keras.Model(inputs, outputs, name=name)
