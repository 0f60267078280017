import keras
import numpy as np
import pytest
from keras import ops

from discomkd_keras.models.modality_classifier import ModalityClassifier
from discomkd_keras.models.discomkd import OUTPUT_KEYS, DisCoMKD

pytestmark = pytest.mark.portable

SHAPES = {"resnet18": (32, 32, 4), "lenet": (28, 28, 1), "dscnn": (24, 24, 2), "mlp": (7,)}


def batch(shapes, n, seed=0):
    rng = np.random.default_rng(seed)
    return {m: rng.normal(size=(n,) + tuple(s)).astype("float32") for m, s in shapes.items()}


@pytest.mark.parametrize("family", ["resnet18", "lenet", "dscnn", "mlp"])
def test_shapes_for_each_encoder_family_m2(family):
    shapes = {"x": SHAPES[family], "y": (5,)}
    model = DisCoMKD(shapes, num_classes=6, encoders={"x": family}, feature_dim=24)
    out = model(batch(shapes, 3), training=False)
    for m in shapes:
        assert set(out[m]) == set(OUTPUT_KEYS)
        for key in ("z_inv", "z_inf", "z_irr"):
            assert tuple(out[m][key].shape) == (3, 12)
        for key in ("logits", "aux_inv", "aux_inf"):
            assert tuple(out[m][key].shape) == (3, 6)
        for key in ("adv", "mod_inf", "mod_irr"):
            assert tuple(out[m][key].shape) == (3, 2)
        # ReLU features: L_perp's cosine lies in [0, 1].
        assert ops.convert_to_numpy(ops.min(out[m]["z_inv"])) >= 0
        assert ops.convert_to_numpy(ops.min(out[m]["z_inf"])) >= 0


def test_resnet18_at_default_width_has_the_papers_size():
    model = DisCoMKD({"a": (32, 32, 3), "b": (32, 32, 1)}, 10)
    inv_encoder, spec_encoder = model.branches["a"].encoders
    assert (inv_encoder.name, spec_encoder.name) == ("a_inv_encoder", "a_spec_encoder")
    assert inv_encoder.count_params() == pytest.approx(11.17e6, rel=0.01)  # ResNet-18 minus its fc
    assert tuple(inv_encoder.output.shape) == (None, 512)
    # The first convolution follows the modality's channel count.
    b_inv = model.branches["b"].encoders[0]
    assert tuple(b_inv.get_layer("b_inv_encoder_stem_conv").kernel.shape) == (7, 7, 1, 64)


def test_three_modalities_heads_are_three_way():
    shapes = {"rgb": (16, 16, 3), "depth": (16, 16, 1), "audio": (9,)}
    model = DisCoMKD(shapes, 4, encoders={"rgb": "dscnn", "depth": "lenet"}, feature_dim=16)
    out = model(batch(shapes, 2), training=False)
    assert model.encoders == {"rgb": "dscnn", "depth": "lenet", "audio": "mlp"}
    for m in shapes:
        assert tuple(out[m]["adv"].shape) == (2, 3)
        assert tuple(out[m]["mod_inf"].shape) == (2, 3)
        assert tuple(out[m]["z_irr"].shape) == (2, 8)


def small_model():
    shapes = {"img": (12, 12, 2), "vec": (6,)}
    return shapes, DisCoMKD(shapes, 3, encoders={"img": "dscnn"}, feature_dim=16)


def test_classifier_matches_training_path_and_has_no_adversary():
    shapes, model = small_model()
    x = batch(shapes, 5)
    out = model(x, training=False)
    heads = {id(w) for w in model.weights} - {id(w) for b in model.branches.values() for w in b.weights}
    assert heads  # the shared heads' weights: the classifiers hold none of them
    for m in shapes:
        clf = model.classifier(m)
        assert isinstance(clf, ModalityClassifier) and clf.modality == m
        p = ops.convert_to_numpy(clf(x[m], training=False))
        np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-6)
        np.testing.assert_allclose(p, ops.convert_to_numpy(ops.softmax(out[m]["logits"])),
                                   rtol=1e-5, atol=1e-6)
        # Its weights are the branch's own variables (shared, not copies), none of a head's,
        # and all of the separate form's branch: both encoders, the projection, the head.
        ids = {id(w) for w in clf.weights}
        assert ids == {id(w) for w in model.branches[m].weights}
        assert not ids & heads
        assert [e.name for e in clf.layers if isinstance(e, keras.Model)] == \
            [f"{m}_inv_encoder", f"{m}_spec_encoder"]


def test_keras_file_round_trip_in_safe_mode(tmp_path):
    shapes, model = small_model()
    model.get_layer("gradient_reversal").grl_lambda.assign(0.25)
    x = batch(shapes, 4, seed=3)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert isinstance(loaded, DisCoMKD)
    assert loaded.get_config() == model.get_config()
    assert float(ops.convert_to_numpy(loaded.get_layer("gradient_reversal").grl_lambda)) == 0.25
    a, b = model(x, training=False), loaded(x, training=False)
    for m in shapes:
        for key in OUTPUT_KEYS:
            np.testing.assert_array_equal(ops.convert_to_numpy(a[m][key]), ops.convert_to_numpy(b[m][key]))

    clf = model.classifier("img")
    clf.save(tmp_path / "img.keras")
    clf2 = keras.saving.load_model(tmp_path / "img.keras", safe_mode=True)
    assert isinstance(clf2, ModalityClassifier) and clf2.get_config() == clf.get_config()
    np.testing.assert_array_equal(ops.convert_to_numpy(clf2(x["img"], training=False)),
                                  ops.convert_to_numpy(clf(x["img"], training=False)))


@pytest.mark.parametrize("kwargs, message", [
    (dict(encoders={"a": "vgg"}), "Unknown encoder 'vgg'.*resnet18, lenet, lenet-wide, dscnn, .*mlp"),
    (dict(encoders={"a": "lenet"}), "lenet' needs images of at least 12x12"),
    (dict(modality_targets="soft"), "Unknown modality targets 'soft'"),
    (dict(conventions="jax"), "Unknown conventions 'jax'"),
    (dict(encoders={"a": "mlp"}), "takes vectors of shape"),
    (dict(encoders={"b": "resnet18"}), "takes images of shape"),
    (dict(encoders={"c": "mlp"}), "unknown modalities"),
    (dict(feature_dim=15), "positive even integer"),
    (dict(feature_dim=0), "positive even integer"),
    (dict(feature_dim=-4), "positive even integer"),
    (dict(num_classes={"a": 3, "b": 4}), "class counts differ"),
    (dict(num_classes=1), "num_classes must be an integer >= 2"),
    (dict(loss_weights={"kl": 1.0}), "Unknown loss term 'kl'"),
    (dict(loss_weights={"adv": -1.0}), ">= 0"),
    (dict(perp_mode="l2"), "perp mode"),
    (dict(branch="single"), "Unknown branch form 'single'.*'separate', 'shared'"),
    (dict(loss_weights=dict.fromkeys(("cl", "adv", "mod", "aux", "perp"), 0)), "Every loss weight is 0"),
])
def test_bad_arguments_raise_clear_errors(kwargs, message):
    args = dict(input_shapes={"a": (8, 8, 1), "b": (4,)}, num_classes=3, feature_dim=8)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        DisCoMKD(**args)


def test_modality_count_and_names():
    with pytest.raises(ValueError, match="at least 2 modalities"):
        DisCoMKD({"a": (4,)}, 3, feature_dim=8)
    with pytest.raises(ValueError, match="Duplicate modality names: \\['a'\\]"):
        DisCoMKD([("a", (4,)), ("a", (5,))], 3, feature_dim=8)
    with pytest.raises(ValueError, match="must start with a letter"):
        DisCoMKD({"a/b": (4,), "c": (4,)}, 3, feature_dim=8)
    _, model = small_model()
    with pytest.raises(ValueError, match="Unknown modality 'depth'.*'img', 'vec'"):
        model.classifier("depth")
