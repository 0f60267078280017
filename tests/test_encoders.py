import re

import keras
import numpy as np
import pytest

from discomkd_keras.models.encoders import Conventions, build_encoder
from discomkd_keras.models.discomkd import DisCoMKD

pytestmark = pytest.mark.portable


def test_lenet_is_the_released_one():
    # Conv(6, 5x5, pad 2) - pool - Conv(16, 5x5) - pool - Dense(512): 207,884 parameters.
    encoder = build_encoder("lenet", (28, 28, 1), 512, "e")
    assert encoder.count_params() == 6 * 25 + 6 + 16 * 6 * 25 + 16 + 16 * 5 * 5 * 512 + 512 == 207_884
    assert tuple(encoder.get_layer("e_flatten").output.shape) == (None, 400)
    wide = build_encoder("lenet-wide", (28, 28, 1), 512, "w")
    assert wide.count_params() == 32 * 25 + 32 + 64 * 32 * 25 + 64 + 7 * 7 * 64 * 512 + 512


def test_torch_conventions_initialise_like_pytorch():
    keras.utils.set_random_seed(0)
    lenet = build_encoder("lenet", (28, 28, 1), 512, "e")
    # nn.Conv2d / nn.Linear defaults: weights and biases uniform in +-1/sqrt(fan_in).
    for name, fan_in in (("e_conv1", 25), ("e_conv2", 150), ("e_fc", 400)):
        kernel, bias = (keras.ops.convert_to_numpy(w) for w in lenet.get_layer(name).weights)
        bound = 1 / np.sqrt(fan_in)
        for w in (kernel, bias):
            assert np.abs(w).max() <= bound
        assert np.abs(kernel).max() > 0.9 * bound and np.std(kernel) == pytest.approx(
            bound / np.sqrt(3), rel=0.2)
        assert np.abs(bias).max() > 0.3 * bound  # not zeros
    resnet = build_encoder("resnet18", (32, 32, 1), 512, "r")
    # torchvision's ResNet: kaiming_normal_(mode="fan_out", nonlinearity="relu").
    kernel = keras.ops.convert_to_numpy(resnet.get_layer("r_s2b1_a_conv").kernel)  # 3x3, 64->128
    assert np.std(kernel) == pytest.approx(np.sqrt(2 / (128 * 9)), rel=0.05)
    for layer in resnet.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            assert layer.epsilon == 1e-5 and layer.momentum == 0.9


def test_keras_conventions_keep_keras_defaults():
    lenet = build_encoder("lenet", (28, 28, 1), 64, "e", conventions="keras")
    bias = keras.ops.convert_to_numpy(lenet.get_layer("e_conv1").bias)
    assert not bias.any()
    mlp = build_encoder("mlp", (5,), 8, "m", conventions="keras")
    assert mlp.get_layer("m_bn1").epsilon == 1e-3


def test_torch_padding_is_symmetric_at_stride_2():
    # PyTorch's Conv2d(k=3, stride=2, padding=1) on 8x8 ones with an all-ones kernel:
    # the top-left output sees 4 pixels (one padded row and column), the bottom-right 9.
    # Keras' "same" pads bottom/right only: the other way round.
    x = keras.Input((8, 8, 1))
    outs = {}
    for name in ("torch", "keras"):
        y = Conventions(name).conv(x, 1, 3, f"{name}_conv", strides=2, use_bias=False)
        model = keras.Model(x, y)
        model.get_layer(f"{name}_conv").set_weights([np.ones((3, 3, 1, 1), "float32")])
        outs[name] = model.predict(np.ones((1, 8, 8, 1), "float32"), verbose=0)[0, :, :, 0]
    assert outs["torch"].shape == outs["keras"].shape == (4, 4)
    assert (outs["torch"][0, 0], outs["torch"][-1, -1]) == (4.0, 9.0)
    assert (outs["keras"][0, 0], outs["keras"][-1, -1]) == (9.0, 4.0)


def test_conventions_round_trip_through_the_model_config(tmp_path):
    shapes = {"a": (12, 12, 1), "b": (4,)}
    model = DisCoMKD(shapes, 3, encoders={"a": "lenet"}, feature_dim=8, conventions="keras",
                     modality_targets="released")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert (loaded.conventions, loaded.modality_targets) == ("keras", "released")
    assert loaded.branches["a"].get_layer("a_proj_bn").epsilon == 1e-3
    x = {"a": np.ones((2, 12, 12, 1), "float32"), "b": np.ones((2, 4), "float32")}
    np.testing.assert_allclose(loaded(x)["a"]["logits"], model(x)["a"]["logits"], atol=1e-6)
    # A file written before the option existed (no "conventions" key) was built with Keras'.
    config = model.get_config()
    del config["conventions"], config["modality_targets"]
    old = DisCoMKD.from_config(config)
    assert (old.conventions, old.modality_targets) == ("keras", "labels")


# --- keras.applications families ---------------------------------------------------------
APPLICATIONS = ("mobilenetv3small", "mobilenetv3small-hardswish", "mobilenetv2", "mobilenetv2-0.75",
                "mobilenetv2-0.5", "mobilenetv2-0.35", "efficientnetv2b0")


def test_the_application_families_are_listed():
    from discomkd_keras.models.encoders import APPLICATION_FAMILIES, ENCODER_FAMILIES, IMAGE_FAMILIES

    assert APPLICATION_FAMILIES == APPLICATIONS
    assert set(APPLICATIONS) <= set(IMAGE_FAMILIES) <= set(ENCODER_FAMILIES)


@pytest.mark.parametrize("family", APPLICATIONS)
def test_application_families_take_any_channel_count(family):
    from discomkd_keras.models.encoders import BN_MOMENTUM

    rng = np.random.default_rng(0)
    for channels in (1, 5):
        encoder = build_encoder(family, (32, 40, channels), 16, "img_inv_encoder")
        backbone = encoder.get_layer("img_inv_encoder_backbone")  # named after the encoder
        features = keras.ops.convert_to_numpy(
            encoder(rng.normal(size=(2, 32, 40, channels)).astype("float32") * 3, training=False))
        assert features.shape == (2, 16) and features.min() >= 0.0
        norms = [layer for layer in backbone.layers
                 if isinstance(layer, keras.layers.BatchNormalization)]
        assert norms and {(n.momentum, n.epsilon) for n in norms} == {(BN_MOMENTUM, 1e-3)}
        # Variables carry the backbone's name: E_inv's and E_spec's paths differ.
        assert all(w.path.startswith("img_inv_encoder_backbone/") for w in backbone.weights)
        # The applications' own input scaling is off: the data's normalisation applies.
        assert not any(isinstance(layer, (keras.layers.Rescaling, keras.layers.Normalization))
                       for layer in backbone.layers)


def test_mobilenetv3small_is_minimalistic_unless_hardswish():
    def activations(family):
        backbone = build_encoder(family, (32, 32, 3), 8, "e").get_layer("e_backbone")
        return {type(layer).__name__ for layer in backbone.layers}

    plain, full = activations("mobilenetv3small"), activations("mobilenetv3small-hardswish")
    assert "Multiply" not in plain  # no squeeze-excite, no hard-swish (x * relu6(x + 3) / 6)
    assert "Multiply" in full


def test_mobilenetv2_width_comes_from_the_name():
    from discomkd_keras.models.encoders import check_encoder

    def stem_filters(family):
        backbone = build_encoder(family, (32, 32, 3), 8, "e").get_layer("e_backbone")
        return backbone.get_layer("Conv1").filters

    assert [stem_filters(f) for f in ("mobilenetv2", "mobilenetv2-0.5", "mobilenetv2-0.35")] \
        == [32, 16, 16]
    assert stem_filters("mobilenetv2-0.75") == 24
    for bad in ("mobilenetv2-0.6", "mobilenetv2-1.4", "mobilenetv2-wide"):
        with pytest.raises(ValueError, match=r"is not offered; use one of mobilenetv2, "
                           r"mobilenetv2-0\.75, mobilenetv2-0\.5, mobilenetv2-0\.35"):
            check_encoder(bad, (32, 32, 3))


def test_applications_need_32_pixels_and_images():
    from discomkd_keras.models.encoders import check_encoder

    with pytest.raises(ValueError, match=r"at least 32x32; got \(28, 64, 1\).*--image-size 32,32"):
        check_encoder("efficientnetv2b0", (28, 64, 1))
    with pytest.raises(ValueError, match=r"takes images of shape \(H, W, C\)"):
        check_encoder("mobilenetv3small", (64,))
    check_encoder("mobilenetv3small", (32, 32, 7))


@pytest.mark.parametrize("family", APPLICATIONS)
def test_application_families_round_trip_in_safe_mode(tmp_path, family):
    rng = np.random.default_rng(0)
    model = DisCoMKD({"img": (32, 32, 5), "vec": (4,)}, 3, encoders={"img": family}, feature_dim=8)
    x = {"img": rng.normal(size=(2, 32, 32, 5)).astype("float32"),
         "vec": rng.normal(size=(2, 4)).astype("float32")}
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    for m in ("img", "vec"):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)[m]["logits"]),
                                      keras.ops.convert_to_numpy(model(x)[m]["logits"]))


def test_mac_count_recurses_into_nested_models_by_hand():
    from discomkd_keras.model_cost import count_macs

    # Two levels of nesting, as an application inside an encoder inside a model.
    deep_in = keras.Input((4, 4, 3))
    deep = keras.Model(deep_in, keras.layers.DepthwiseConv2D(3, padding="same",
                                                             depth_multiplier=2)(deep_in))
    mid_in = keras.Input((8, 8, 2))
    y = keras.layers.Conv2D(3, 3, strides=2, padding="same")(mid_in)    # 4*4 * 3*3*2 * 3 =   864
    y = deep(y)                                                          # 4*4 * 3*3*3 * 2 =   864
    y = keras.layers.GlobalAveragePooling2D()(y)
    mid = keras.Model(mid_in, y)
    x = keras.Input((8, 8, 2))
    out = keras.layers.Dense(5)(keras.layers.ReLU()(mid(x)))            # 6 * 5           =    30
    assert count_macs(keras.Model(x, out)) == 864 + 864 + 30


def test_mac_count_of_an_application_encoder():
    from discomkd_keras.model_cost import count_macs

    encoder = build_encoder("mobilenetv3small", (48, 48, 3), 128, "e")
    assert count_macs(encoder) == count_macs(encoder.get_layer("e_backbone")) + 576 * 128
    # MobileNetV2 (alpha 1, 224x224, no top) against its paper's ~300M multiply-adds.
    backbone = keras.applications.MobileNetV2(include_top=False, weights=None,
                                              input_shape=(224, 224, 3))
    assert count_macs(backbone) == pytest.approx(300e6, rel=0.01)


# --- pretrained backbones -----------------------------------------------------------------
def _perturbed_backbone(family, shape, seed=0):
    from discomkd_keras.models.encoders import build_backbone

    backbone = build_backbone(family, shape)
    rng = np.random.default_rng(seed)
    backbone.set_weights([w + rng.normal(size=w.shape).astype(w.dtype)
                          for w in backbone.get_weights()])
    return backbone


def _assert_same_weights(model, expected):
    actual = model.get_weights()
    assert len(actual) == len(expected)
    for a, b in zip(actual, expected):
        np.testing.assert_array_equal(a, b)


def test_pretrained_file_loads_into_the_backbone(tmp_path):
    from discomkd_keras.models.encoders import load_pretrained

    source = _perturbed_backbone("mobilenetv2-0.35", (32, 32, 4))
    path = tmp_path / "mnv2.weights.h5"
    source.save_weights(path)
    encoder = build_encoder("mobilenetv2-0.35", (48, 40, 4), 8, "e")  # any image size
    head = [keras.ops.convert_to_numpy(w) for w in encoder.get_layer("e_fc").weights]
    load_pretrained(encoder, str(path))
    _assert_same_weights(encoder.get_layer("e_backbone"), source.get_weights())
    for before, after in zip(head, encoder.get_layer("e_fc").weights):  # the Dense to D: untouched
        np.testing.assert_array_equal(before, keras.ops.convert_to_numpy(after))


@pytest.mark.parametrize("family, shape", [("mobilenetv2-0.5", (32, 32, 4)),  # another width
                                           ("mobilenetv2-0.35", (32, 32, 3))])  # other channels
def test_a_wrong_pretrained_file_is_one_line(tmp_path, family, shape):
    from discomkd_keras.models.encoders import build_backbone, load_pretrained

    path = tmp_path / "other.weights.h5"
    build_backbone(family, shape).save_weights(path)
    encoder = build_encoder("mobilenetv2-0.35", (32, 32, 4), 8, "e")
    with pytest.raises(ValueError) as err:
        load_pretrained(encoder, str(path))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path} does not hold the weights of a mobilenetv2-0.35 backbone "
                              "on 4-channel images: ")


def test_imagenet_weights_are_copied_from_the_application(tmp_path, monkeypatch):
    """Offline: Keras' download returns a file written here, as it would the real one."""
    from keras.src.utils import file_utils

    from discomkd_keras.models.encoders import load_pretrained

    source = _perturbed_backbone("mobilenetv3small", (32, 32, 3), seed=1)
    path = tmp_path / "imagenet.weights.h5"
    source.save_weights(path)
    fetched = []
    monkeypatch.setattr(file_utils, "get_file", lambda name, origin, **kw: fetched.append(origin)
                        or str(path))
    encoder = build_encoder("mobilenetv3small", (40, 40, 3), 8, "e")
    load_pretrained(encoder, "imagenet")
    assert fetched and "minimalistic" in fetched[0] and "no_top" in fetched[0]
    _assert_same_weights(encoder.get_layer("e_backbone"), source.get_weights())


def test_imagenet_offline_is_one_line(monkeypatch):
    from keras.src.utils import file_utils

    from discomkd_keras.models.encoders import load_pretrained

    def offline(name, origin, **kwargs):  # what Keras' get_file raises without a network
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -3] Temporary failure "
                        "in name resolution")

    monkeypatch.setattr(file_utils, "get_file", offline)
    encoder = build_encoder("efficientnetv2b0", (32, 32, 3), 8, "e")
    with pytest.raises(ValueError) as err:
        load_pretrained(encoder, "imagenet")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("The ImageNet weights of efficientnetv2b0 could not be downloaded "
                              "(no network?): URL fetch failure")
    assert message.endswith("(--pretrained MOD=PATH).")


def test_pretrained_sources_are_checked():
    from discomkd_keras.models.encoders import check_pretrained, load_pretrained

    with pytest.raises(ValueError, match="ImageNet weights take 3-channel images; this input has"):
        load_pretrained(build_encoder("mobilenetv3small", (32, 32, 1), 8, "e"), "imagenet")
    with pytest.raises(ValueError, match="not into encoder 'dscnn'"):
        check_pretrained("dscnn", (32, 32, 3), "imagenet")
    with pytest.raises(ValueError, match="has no keras.applications backbone"):
        load_pretrained(build_encoder("dscnn", (32, 32, 3), 8, "e"), "imagenet")
    with pytest.raises(ValueError, match="does not exist"):
        check_pretrained("mobilenetv2", (32, 32, 3), "/nowhere/b.weights.h5")
    with pytest.raises(ValueError, match=r"a \.weights\.h5 file"):
        check_pretrained("mobilenetv2", (32, 32, 3), "b.h5")


def _images(n=12):
    from discomkd_keras.data import MultiModalDataset

    rng = np.random.default_rng(0)
    labels = np.arange(n) % 2
    splits = {"train": np.arange(8), "valid": np.arange(8, 10), "test": np.arange(10, 12)}
    return MultiModalDataset(
        name="t", inputs={"rgb": rng.normal(size=(n, 32, 32, 3)).astype("float32"),
                          "depth": rng.normal(size=(n, 32, 32, 1)).astype("float32")},
        labels={"rgb": labels, "depth": labels}, splits={"rgb": splits, "depth": splits},
        class_names=["a", "b"], kinds={"rgb": "image", "depth": "image"}).validate()


def test_pretrained_option_loads_into_every_encoder_of_its_modality(tmp_path):
    from discomkd_keras.config import resolve_config
    from discomkd_keras.models.encoders import apply_pretrained, encoders_of
    from discomkd_keras.training import build_model

    source = _perturbed_backbone("mobilenetv3small", (32, 32, 1))
    path = tmp_path / "depth.weights.h5"
    source.save_weights(path)
    options = {"encoders": {"rgb": "mobilenetv3small", "depth": "mobilenetv3small"},
               "pretrained": {"depth": str(path)}, "feature_dim": 8}
    config = resolve_config({"source": "x"}, _images(), options)
    assert config["pretrained"] == {"depth": str(path.resolve())}
    model = build_model(config)
    apply_pretrained(model, config["pretrained"])
    depth = encoders_of(model, "depth")
    assert len(depth) == 2  # E_inv and E_spec
    for encoder in depth:
        _assert_same_weights(encoder.get_layer(f"{encoder.name}_backbone"), source.get_weights())
    for encoder in encoders_of(model, "rgb"):  # not named: random (BatchNorm gammas still 1)
        gamma = encoder.get_layer(f"{encoder.name}_backbone").get_weights()[1]
        assert (gamma == 1).all() and not np.array_equal(gamma, source.get_weights()[1])


@pytest.mark.parametrize("pretrained, encoders, error", [
    ({"ir": "imagenet"}, {}, "Unknown modality 'ir'"),
    ({"rgb": "imagenet"}, {"rgb": "dscnn"}, "--pretrained rgb: pretrained weights load into "
                                            "keras.applications backbones"),
    ({"depth": "imagenet"}, {"depth": "mobilenetv2"}, "--pretrained depth: ImageNet weights take "
                                                      "3-channel images; this input has 1"),
    ({"rgb": "missing.weights.h5"}, {"rgb": "efficientnetv2b0"}, "does not exist"),
])
def test_pretrained_option_is_checked_with_the_config(pretrained, encoders, error):
    from discomkd_keras.config import ConfigError, resolve_config
    from discomkd_keras.data import DataError

    with pytest.raises((ConfigError, DataError), match=error):
        resolve_config({"source": "x"}, _images(), {"encoders": encoders, "pretrained": pretrained,
                                                    "feature_dim": 8})


@pytest.mark.parametrize("command", ["train", "compare"])
def test_pretrained_option_reaches_the_config_from_the_cli(tmp_path, command):
    from click.testing import CliRunner

    from discomkd_keras.cli import main
    from helpers import write_released

    data = write_released(tmp_path / "data", image=(3, 32, 32))
    where = ["--run-dir", str(tmp_path / "run")] if command == "train" else [
        "--out", str(tmp_path / "out"), "--seeds", "1"]
    result = CliRunner().invoke(main, [command, "--data-dir", str(data), *where, "--encoder",
                                       "rgb=mobilenetv3small", "--pretrained",
                                       "rgb=missing.weights.h5", "--epochs", "1", "--quiet"])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "--pretrained rgb: pretrained weights file" in errors[0]
    assert "does not exist" in errors[0]


def test_a_wrong_pretrained_file_stops_train_before_anything_is_written(tmp_path):
    from click.testing import CliRunner

    from discomkd_keras.cli import main
    from discomkd_keras.models.encoders import build_backbone
    from helpers import write_released

    data = write_released(tmp_path / "data", image=(3, 32, 32))
    wrong = tmp_path / "wrong.weights.h5"
    build_backbone("mobilenetv2-0.35", (32, 32, 3)).save_weights(wrong)  # another family's
    result = CliRunner().invoke(main, ["train", "--data-dir", str(data), "--run-dir",
                                       str(tmp_path / "run"), "--encoder", "rgb=mobilenetv3small",
                                       "--pretrained", f"rgb={wrong}", "--epochs", "1", "--quiet"])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and f"--pretrained rgb: {wrong} does not hold" in errors[0]
    assert not (tmp_path / "run").exists()


# --- custom encoders ----------------------------------------------------------------------
def _small_cnn(input_shape, width=6, name="small_cnn"):
    x = keras.Input(input_shape)
    y = keras.layers.Conv2D(width, 3, activation="relu")(x)
    return keras.Model(x, keras.layers.GlobalAveragePooling2D()(y), name=name)


@keras.saving.register_keras_serializable(package="test_encoders")
def registered_cnn(input_shape):
    return _small_cnn(input_shape, width=4)


def unregistered_cnn(input_shape):
    return _small_cnn(input_shape, width=4)


def test_a_model_instance_is_cloned_with_fresh_weights():
    template = _small_cnn((16, 16, 3))
    first = build_encoder(template, (16, 16, 3), 8, "a_inv_encoder")
    second = build_encoder(template, (16, 16, 3), 8, "a_spec_encoder")
    inner = [e.get_layer(f"{e.name}_custom") for e in (first, second)]
    assert inner[0] is not template and inner[1] is not template
    kernels = [keras.ops.convert_to_numpy(m.layers[1].kernel) for m in (template, *inner)]
    assert not np.array_equal(kernels[0], kernels[1]) and not np.array_equal(kernels[1], kernels[2])
    x = np.random.default_rng(0).normal(size=(3, 16, 16, 3)).astype("float32")
    features = keras.ops.convert_to_numpy(first(x))
    assert features.shape == (3, 8) and features.min() >= 0
    assert first.get_layer("a_inv_encoder_to_d").units == 8  # F = 6 != D: Dense + ReLU
    # F == D: a ReLU alone (features >= 0 whatever the model ends with).
    same = build_encoder(_small_cnn((16, 16, 3), width=8), (16, 16, 3), 8, "s")
    assert [type(layer).__name__ for layer in same.layers[-1:]] == ["ReLU"]


def test_a_function_is_called_once_per_encoder():
    calls = []

    def make(input_shape):
        calls.append(input_shape)
        return _small_cnn(input_shape)

    a = build_encoder(make, (12, 12, 2), 4, "a")
    b = build_encoder(make, (12, 12, 2), 4, "b")
    assert calls == [(12, 12, 2), (12, 12, 2)]
    kernels = [keras.ops.convert_to_numpy(e.get_layer(f"{e.name}_custom").layers[1].kernel)
               for e in (a, b)]
    assert not np.array_equal(*kernels)


def test_custom_encoders_are_checked():
    from discomkd_keras.models.encoders import check_encoder

    with pytest.raises(ValueError, match=r"takes inputs of shape \(16, 16, 3\); the modality's "
                                         r"are \(16, 16, 1\)"):
        check_encoder(_small_cnn((16, 16, 3)), (16, 16, 1))
    flat_in = keras.Input((16, 16, 3))
    feature_map = keras.Model(flat_in, keras.layers.Conv2D(4, 3)(flat_in), name="map")
    with pytest.raises(ValueError, match=r"must output feature vectors \(batch, F\)"):
        check_encoder(feature_map, (16, 16, 3))
    with pytest.raises(ValueError, match="must return a keras.Model"):
        build_encoder(lambda shape: "not a model", (16, 16, 3), 4, "e")
    with pytest.raises(ValueError, match="a family name, a keras.Model or a function"):
        check_encoder(3, (16, 16, 3))
    check_encoder(_small_cnn((None, None, 3)), (16, 16, 3))  # free spatial sizes fit any image


@keras.saving.register_keras_serializable(package="test_encoders")
class OneEncoder(keras.Model):
    """A model keeping its encoder argument as the package's models do."""

    def __init__(self, input_shape, encoder, **kwargs):
        from discomkd_keras.models.encoders import EncoderChoices

        x = keras.Input(tuple(input_shape))
        super().__init__(x, build_encoder(encoder, tuple(input_shape), 6, "e")(x), **kwargs)
        self.sample_shape = tuple(input_shape)
        self.encoders = EncoderChoices({"m": encoder})

    def get_config(self):
        from discomkd_keras.models.encoders import encoder_spec_to_config

        return {"name": self.name, "input_shape": list(self.sample_shape),
                "encoder": encoder_spec_to_config(self.encoders["m"])}

    @classmethod
    def from_config(cls, config):
        from discomkd_keras.models.encoders import encoder_spec_from_config

        return cls(**dict(config, encoder=encoder_spec_from_config(config["encoder"])))


@pytest.mark.parametrize("kind", ["model", "function"])
def test_custom_encoders_round_trip_in_safe_mode(tmp_path, kind):
    spec = _small_cnn((16, 16, 3)) if kind == "model" else registered_cnn
    model = OneEncoder((16, 16, 3), spec)
    # The template is not tracked as a layer of the model: its weights are not the model's.
    assert len(model.weights) == len(build_encoder(spec, (16, 16, 3), 6, "x").weights)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)),
                                  keras.ops.convert_to_numpy(model(x)))
    if kind == "function":
        assert loaded.encoders["m"] is registered_cnn


@pytest.mark.parametrize("kind,branch", [("model", "separate"), ("function", "shared")])
def test_a_discomkd_with_a_custom_encoder_round_trips_in_safe_mode(tmp_path, kind, branch):
    from discomkd_keras.models.discomkd import DisCoMKD

    spec = _small_cnn((16, 16, 3)) if kind == "model" else registered_cnn
    model = DisCoMKD({"rgb": (16, 16, 3), "depth": (16, 16, 1)}, 3,
                     encoders={"rgb": spec, "depth": "dscnn"}, feature_dim=8, branch=branch)
    # Two independent encoders in the separate form, one backbone in the shared one.
    assert len(model.branches["rgb"].encoders) == (2 if branch == "separate" else 1)
    rng = np.random.default_rng(0)
    x = {"rgb": rng.normal(size=(2, 16, 16, 3)).astype("float32"),
         "depth": rng.normal(size=(2, 16, 16, 1)).astype("float32")}
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(x)["rgb"]["logits"]),
        keras.ops.convert_to_numpy(model(x)["rgb"]["logits"]))
    # The deployed classifier alone, as best/rgb.keras holds it.
    classifier = model.classifier("rgb")
    classifier.save(tmp_path / "rgb.keras")
    again = keras.saving.load_model(tmp_path / "rgb.keras", safe_mode=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again(x["rgb"])),
                               keras.ops.convert_to_numpy(classifier(x["rgb"])), atol=1e-7)
    assert again.count_params() == classifier.count_params()


def test_an_unregistered_encoder_function_fails_at_save_time(tmp_path):
    from discomkd_keras.models.encoders import encoder_spec_from_config, encoder_spec_to_config

    model = OneEncoder((16, 16, 3), unregistered_cnn)
    with pytest.raises(ValueError, match=r"Encoder function unregistered_cnn is not registered.*"
                                         r"register_keras_serializable"):
        model.save(tmp_path / "m.keras")
    with pytest.raises(ValueError, match="is not registered"):
        encoder_spec_to_config(lambda shape: _small_cnn(shape))
    assert encoder_spec_to_config("dscnn") == encoder_spec_from_config("dscnn") == "dscnn"


def test_a_new_run_starts_from_the_pretrained_weights(tmp_path, monkeypatch):
    from discomkd_keras import training
    from discomkd_keras.config import ConfigError, resolve_config
    from discomkd_keras.models.encoders import apply_pretrained, backbone_of, encoders_of
    from discomkd_keras.run_directory import prepare_run_dir

    source = _perturbed_backbone("mobilenetv3small", (32, 32, 1))
    path = tmp_path / "depth.weights.h5"
    source.save_weights(path)
    data = _images()
    options = {"encoders": {"rgb": "dscnn", "depth": "mobilenetv3small"}, "feature_dim": 8,
               "batch_size": 4, "epochs": 1, "pretrained": {"depth": str(path)}}
    config = resolve_config({"source": "x"}, data, options)

    class Started(Exception):
        pass

    def check_then_stop(model, pretrained):  # before any training step
        apply_pretrained(model, pretrained)
        for encoder in encoders_of(model, "depth"):
            _assert_same_weights(backbone_of(encoder), source.get_weights())
        raise Started

    with monkeypatch.context() as patch:
        patch.setattr(training, "apply_pretrained", check_then_stop)
        with pytest.raises(Started):
            training.train_run(config, prepare_run_dir(tmp_path / "run"), data=data, verbose=0,
                               log=lambda *_: None)
    # A file of another backbone (3 channels, not depth's 1) stops the run in one line.
    _perturbed_backbone("mobilenetv3small", (32, 32, 3)).save_weights(path)
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))} does not hold the weights "
                                          "of a mobilenetv3small backbone on 1-channel images"):
        training.train_run(config, prepare_run_dir(tmp_path / "other"), data=data, verbose=0,
                           log=lambda *_: None)
