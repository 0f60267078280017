import keras
import numpy as np
import pytest

from discomkd_keras.encoders import Conventions, build_encoder
from discomkd_keras.model import DisCoMKD

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
    assert loaded.get_layer("a_proj_bn").epsilon == 1e-3
    x = {"a": np.ones((2, 12, 12, 1), "float32"), "b": np.ones((2, 4), "float32")}
    np.testing.assert_allclose(loaded(x)["a"]["logits"], model(x)["a"]["logits"], atol=1e-6)
    # A file written before the option existed (no "conventions" key) was built with Keras'.
    config = model.get_config()
    del config["conventions"], config["modality_targets"]
    old = DisCoMKD.from_config(config)
    assert (old.conventions, old.modality_targets) == ("keras", "labels")
