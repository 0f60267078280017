"""Encoder families. Each maps one modality's input to a feature vector of size D.

Every family ends in a ReLU, so features are >= 0 (the cosine in L_perp then
lies in [0, 1], as docs/method.md assumes). Families are chosen per modality by name:

- `resnet18`: the paper's encoder, ResNet-18 from scratch, first convolution
  adapted to the modality's channel count.
- `lenet`:    the released script's small encoder for 28x28 digit-like images
              (6 and 16 filters; 207,884 parameters at D = 512 on 28x28x1).
- `lenet-wide`: this project's first LeNet (32 and 64 filters), an option.
- `dscnn`:    a light, edge-friendly depthwise-separable CNN (MobileNet-v1
  style blocks, ReLU6), about 20x fewer parameters than ResNet-18.
- `keras.applications` backbones, any channel count, images of at least
  32x32, random weights unless pretrained ones are loaded (`load_pretrained`,
  `--pretrained`), the applications' own input preprocessing off (the data's
  normalisation applies), then global average pooling and Dense(D) + ReLU:
  - `mobilenetv3small`: MobileNetV3-Small, minimalistic (ReLU, 3x3 kernels,
    no squeeze-excite or hard-swish: hard-swish is a known int8 trouble spot);
  - `mobilenetv3small-hardswish`: the full MobileNetV3-Small;
  - `mobilenetv2`, `mobilenetv2-0.75`, `mobilenetv2-0.5`, `mobilenetv2-0.35`:
    MobileNetV2 at width alpha 1.0 or the suffix's;
  - `efficientnetv2b0`: EfficientNetV2-B0.
- `mlp`:      for vector modalities of shape (F,).

Size at D = 128 on 48x48x3 (`count_params`; multiply-accumulates of one image
by model_cost.py's `count_macs`):

| family | parameters | MACs |
|---|---:|---:|
| `resnet18` | 11,251,776 | 98,021,376 |
| `lenet` | 207,800 | 2,201,600 |
| `lenet-wide` | 1,233,472 | 36,200,448 |
| `dscnn` | 339,264 | 10,560,256 |
| `mobilenetv3small` | 514,856 | 2,955,528 |
| `mobilenetv3small-hardswish` | 1,012,976 | 3,627,400 |
| `mobilenetv2` | 2,421,952 | 16,730,240 |
| `mobilenetv2-0.75` | 1,546,032 | 11,432,752 |
| `mobilenetv2-0.5` | 870,192 | 5,461,536 |
| `mobilenetv2-0.35` | 574,176 | 3,346,464 |
| `efficientnetv2b0` | 6,083,280 | 40,274,944 |

In the Python API a modality's encoder may also be a `keras.Model` or a
function `input_shape -> keras.Model` (see `build_encoder`);
`encoder_spec_to_config` / `encoder_spec_from_config` keep it in a model's config.
The layer conventions live in conventions.py, pretrained weights in pretrained.py.
"""

import collections.abc
import contextlib
import warnings

import keras
from keras import layers

from discomkd_keras.choices import (APPLICATION_FAMILIES, CONVENTIONS, ENCODER_FAMILIES,  # noqa: F401
                                    IMAGE_FAMILIES, VECTOR_FAMILIES)
from discomkd_keras.models.conventions import (ADAM_EPSILON, BN_EPSILON,  # noqa: F401
                                               BN_MOMENTUM, Conventions)

# MobileNetV2 widths offered: the ones with ImageNet weights, at most the default width.
MOBILENETV2_ALPHAS = (1.0, 0.75, 0.5, 0.35)
# The smallest image side each family takes: lenet's unpadded 5x5 convolution
# needs a 5x5 map after the first pooling, and one pixel left after the second;
# keras.applications refuse inputs under 32x32 (five stride-2 stages).
MIN_IMAGE_SIDE = {"lenet": 12, **{family: 32 for family in APPLICATION_FAMILIES}}


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


def mobilenetv2_alpha(family):
    """The width alpha of a `mobilenetv2[-ALPHA]` family name."""
    suffix = family[len("mobilenetv2-"):] if family != "mobilenetv2" else "1.0"
    try:
        alpha = float(suffix)
    except ValueError:
        alpha = None
    if alpha not in MOBILENETV2_ALPHAS:
        offered = ", ".join(f for f in APPLICATION_FAMILIES if f.startswith("mobilenetv2"))
        raise ValueError(f"MobileNetV2 width {suffix!r} ({family!r}) is not offered; "
                         f"use one of {offered} (alpha 1.0, 0.75, 0.5, 0.35).")
    return alpha


def _application(family):
    """(keras.applications constructor, its keyword arguments) of an application family."""
    if family.startswith("mobilenetv3small"):
        return keras.applications.MobileNetV3Small, {
            "minimalistic": family == "mobilenetv3small", "include_preprocessing": False}
    if family == "efficientnetv2b0":
        return keras.applications.EfficientNetV2B0, {"include_preprocessing": False}
    return keras.applications.MobileNetV2, {"alpha": mobilenetv2_alpha(family)}


def build_backbone(family, input_shape, name=None, weights=None):
    """The keras.applications model of an application family without its top:
    (H, W, C) images -> globally average-pooled features, BatchNorm momentum BN_MOMENTUM.

    It is the model a `--pretrained MOD=PATH` file holds the weights of:
    `build_backbone("mobilenetv2-0.5", (96, 96, 4)).save_weights("b.weights.h5")`.
    weights: None (random) or "imagenet" (3 channels; downloaded by Keras).
    name: the model's name and its variables' path prefix (two backbones of one
    family in a model would otherwise share both).
    """
    application, arguments = _application(family)
    scope = keras.name_scope(name) if name else contextlib.nullcontext()
    with warnings.catch_warnings(), scope:
        # "usually expects 1 or 3 input channels" (any count trains from scratch) and
        # "weights for input shape (224, 224) will be loaded" (a convolution's weights
        # do not depend on the image size).
        warnings.simplefilter("ignore", UserWarning)
        backbone = application(include_top=False, weights=weights, input_shape=tuple(input_shape),
                               pooling="avg", **arguments)
    # Renamed afterwards: EfficientNetV2 looks its blocks and ImageNet file up by its name.
    if name:
        backbone.name = name
    for layer in backbone.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = BN_MOMENTUM
    return backbone


def _application_builder(family):
    def build(inputs, feature_dim, name, conv):
        # Named after the encoder: DisCoM-KD holds two copies of a family per modality.
        backbone = build_backbone(family, inputs.shape[1:], name=f"{name}_backbone")
        # MobileNetV3's hard-swish and EfficientNetV2's swish can be negative: always a ReLU.
        return conv.dense(backbone(inputs), feature_dim, f"{name}_fc", activation="relu")
    return build


_BUILDERS = {"resnet18": _resnet18, "lenet": _lenet, "lenet-wide": _lenet_wide, "dscnn": _dscnn,
             "mlp": _mlp}


def default_encoder(input_shape):
    """The paper's choice: ResNet-18 for images, an MLP for vectors."""
    return "mlp" if len(input_shape) == 1 else "resnet18"


def _is_custom(encoder):
    return not isinstance(encoder, str)


def _check_custom(encoder, input_shape):
    """A custom encoder: a keras.Model from the modality's input to a (None, F) vector, or a
    function input_shape -> such a model (checked when it is called, in build_encoder)."""
    if not isinstance(encoder, keras.Model):
        if not callable(encoder):
            raise ValueError(f"An encoder is a family name, a keras.Model or a function "
                             f"input_shape -> keras.Model; got {encoder!r}.")
        return
    try:
        inputs, outputs = encoder.inputs, encoder.outputs
    except (AttributeError, ValueError):
        raise ValueError(f"Custom encoder {encoder.name!r} has no defined input; build it "
                         "functionally from a keras.Input (or as a Sequential with one).") from None
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"Custom encoder {encoder.name!r} must have one input and one output; "
                         f"it has {len(inputs)} and {len(outputs)}.")
    shape = tuple(inputs[0].shape[1:])
    if len(shape) != len(input_shape) or any(
            d is not None and d != want for d, want in zip(shape, input_shape)):
        raise ValueError(f"Custom encoder {encoder.name!r} takes inputs of shape {shape}; "
                         f"the modality's are {tuple(input_shape)}.")
    _check_custom_output(encoder.name, outputs[0].shape)


def _check_custom_output(name, shape):
    if len(shape) != 2 or shape[-1] is None:
        raise ValueError(f"Custom encoder {name!r} must output feature vectors (batch, F); its "
                         f"output has shape {tuple(shape)} (end it with a pooling or a Flatten).")


def check_encoder(encoder, input_shape):
    """Raise a ValueError naming the problem if `encoder` (a family name, a keras.Model
    or a function input_shape -> keras.Model) cannot take `input_shape`."""
    input_shape = tuple(input_shape)
    if any(d is None or int(d) <= 0 for d in input_shape):
        raise ValueError(f"Input shape {input_shape} must have positive, known sizes.")
    if _is_custom(encoder):
        return _check_custom(encoder, input_shape)
    family = encoder
    if family.startswith("mobilenetv2-"):
        mobilenetv2_alpha(family)  # an unknown width says which are offered
    elif family not in ENCODER_FAMILIES:
        raise ValueError(
            f"Unknown encoder {family!r}; expected one of {', '.join(ENCODER_FAMILIES)}."
        )
    if family in VECTOR_FAMILIES and len(input_shape) != 1:
        raise ValueError(
            f"Encoder {family!r} takes vectors of shape (F,); got {input_shape}. "
            f"Image families: {', '.join(IMAGE_FAMILIES)}."
        )
    if family not in VECTOR_FAMILIES and len(input_shape) != 3:
        raise ValueError(
            f"Encoder {family!r} takes images of shape (H, W, C); got {input_shape}. "
            f"Vector families: {', '.join(VECTOR_FAMILIES)}."
        )
    side = MIN_IMAGE_SIDE.get(family, 32 if is_application_family(family) else None)
    if side and min(input_shape[:2]) < side:
        raise ValueError(
            f"Encoder {family!r} needs images of at least {side}x{side}; got {input_shape}. "
            f"Use dscnn or resnet18 for smaller images, or (file data) --image-size {side},{side}."
        )


def is_application_family(encoder):
    """Whether `encoder` names a keras.applications backbone (which can load pretrained weights)."""
    return isinstance(encoder, str) and (encoder in APPLICATION_FAMILIES
                                         or encoder.startswith("mobilenetv2-"))


def _custom_features(encoder, inputs, feature_dim, name, conv):
    """The D features of a custom encoder (see `build_encoder`)."""
    if isinstance(encoder, keras.Model):
        # A fresh copy: the two encoders of a DisCoM-KD branch must not share weights.
        model = keras.models.clone_model(encoder)
    else:
        model = encoder(tuple(inputs.shape[1:]))
        what = getattr(encoder, "__name__", repr(encoder))
        if not isinstance(model, keras.Model):
            raise ValueError(f"Encoder function {what} must return a keras.Model; "
                             f"it returned {type(model).__name__}.")
        _check_custom(model, tuple(inputs.shape[1:]))
    model.name = f"{name}_custom"
    features = model(inputs)
    _check_custom_output(model.name, features.shape)
    if features.shape[-1] != feature_dim:
        return conv.dense(features, feature_dim, f"{name}_to_d", activation="relu")
    # Already D wide: a ReLU alone keeps features >= 0 (a no-op after the model's own).
    return layers.ReLU(name=f"{name}_relu")(features)


def build_encoder(encoder, input_shape, feature_dim, name, conventions="torch"):
    """A functional `keras.Model` from `input_shape` to a (D,) feature vector.

    encoder: a family name (ENCODER_FAMILIES), or a custom encoder: a `keras.Model`
        from the modality's input to vectors (batch, F), or a function
        `input_shape -> keras.Model`. A Model instance is a template: each call
        builds a clone with fresh weights (`keras.models.clone_model`), since the
        two encoders of a DisCoM-KD branch must be independent and a model rebuilt
        from its config could not have the instance's weights anyway; a function
        is called once per encoder and must return a new model each time. Features
        of width F != D get a Dense(D) + ReLU, as the families do; F == D a ReLU.
    conventions: "torch" (the released script's initialisation, BatchNorm
        epsilon and padding) or "keras" (see `Conventions`); an application's
        backbone keeps its own initialisation and epsilon, its Dense(D) follows them.
    """
    check_encoder(encoder, input_shape)
    inputs = keras.Input(shape=tuple(input_shape), name=f"{name}_input")
    conv = Conventions(conventions)
    if _is_custom(encoder):
        outputs = _custom_features(encoder, inputs, int(feature_dim), name, conv)
    elif is_application_family(encoder):
        outputs = _application_builder(encoder)(inputs, int(feature_dim), name, conv)
    else:
        outputs = _BUILDERS[encoder](inputs, int(feature_dim), name, conv)
    model = keras.Model(inputs, outputs, name=name)
    if is_application_family(encoder):
        model.backbone_family = encoder  # what load_pretrained rebuilds with ImageNet weights
    return model


# --- custom encoders in a model's config ----------------------------------------------
class EncoderChoices(collections.abc.Mapping):
    """{modality: encoder} as a model keeps it. Keras tracks every Layer held in an
    attribute's dict, so a custom encoder's template Model kept in a plain dict would
    become a sub-layer of the model, its weights part of the model's (and its file's);
    this read-only mapping is not tracked."""

    def __init__(self, encoders):
        self._encoders = dict(encoders)

    def __getitem__(self, modality):
        return self._encoders[modality]

    def __iter__(self):
        return iter(self._encoders)

    def __len__(self):
        return len(self._encoders)

    def __repr__(self):
        return f"EncoderChoices({self._encoders!r})"


def encoder_spec_to_config(encoder):
    """A JSON-able form of an encoder argument for a model's `get_config`: a family name
    as it is, a keras.Model as its serialized config, a function by its registered name.

    A function must be registered (`@keras.saving.register_keras_serializable()`) for a
    saved model to find it again; an unregistered one is a ValueError, here (at
    `get_config` / save time) rather than when the file is loaded.
    """
    if isinstance(encoder, str):
        return encoder
    if isinstance(encoder, keras.Model):
        return keras.saving.serialize_keras_object(encoder)
    name = keras.saving.get_registered_name(encoder)
    if keras.saving.get_registered_object(name) is not encoder:
        what = getattr(encoder, "__qualname__", repr(encoder))
        raise ValueError(f"Encoder function {what} is not registered, so a saved model could "
                         "not rebuild it: decorate it with "
                         "@keras.saving.register_keras_serializable(), or pass a keras.Model.")
    return keras.saving.serialize_keras_object(encoder)


def encoder_spec_from_config(config):
    """The encoder argument `encoder_spec_to_config` wrote (under `load_model`'s safe
    mode, a function must be registered, a model made of registered layers); anything
    but such a dict (a family name, None, a Model or function itself) is returned as it is,
    so a constructor may pass every encoder argument through it."""
    if not isinstance(config, dict):
        return config
    return keras.saving.deserialize_keras_object(config)


# Loading pretrained weights lives in pretrained.py (it builds on this module); its names
# are still importable from here.
_MOVED_TO_PRETRAINED = ("check_pretrained", "backbone_of", "load_pretrained", "encoders_of",
                        "apply_pretrained")


def __getattr__(name):
    if name in _MOVED_TO_PRETRAINED:
        from discomkd_keras.models import pretrained
        return getattr(pretrained, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
