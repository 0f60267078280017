"""ModalityBranch's forms, ModalityClassifier (the one softmax path) and the shared
branch of DisCoM-KD (issue 17)."""

import keras
import numpy as np
import pytest
from keras import ops

from discomkd_keras.models.encoders import build_encoder
from discomkd_keras.models.modality_branch import ModalityBranch
from discomkd_keras.models.modality_classifier import ModalityClassifier
from discomkd_keras.models.discomkd import DisCoMKD

pytestmark = pytest.mark.portable

SHAPES = {"img": (12, 12, 2), "vec": (6,)}
ENCODERS = {"img": "lenet"}
D, K = 8, 3


def batch(n=5, seed=0):
    rng = np.random.default_rng(seed)
    x = {m: rng.normal(size=(n,) + s).astype("float32") for m, s in SHAPES.items()}
    return x, {m: np.arange(n) % K for m in SHAPES}


def numpy(t):
    return ops.convert_to_numpy(t)


def projection_params(fan_in):
    """Dense_{D/2} (kernel, bias) + BatchNorm (gamma, beta, moving mean and variance)."""
    half = D // 2
    return fan_in * half + half + 4 * half


@pytest.mark.parametrize("form", ["separate", "shared", "single"])
def test_classifier_is_the_softmax_of_the_branch_logits(form):
    branch = ModalityBranch("img", SHAPES["img"], K, "lenet", D, form=form)
    x, _ = batch()
    logits = numpy(branch(x["img"], training=False)["logits"]).astype(np.float64)
    probs = numpy(ModalityClassifier(branch)(x["img"], training=False))
    assert probs.dtype == np.float32
    expected = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(probs, expected / expected.sum(1, keepdims=True), atol=1e-6)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)


def test_branch_outputs_and_encoders_of_each_form():
    x, _ = batch(3)
    for form, encoders in (("separate", ["img_inv_encoder", "img_spec_encoder"]),
                           ("shared", ["img_encoder"]), ("single", ["img_encoder"])):
        branch = ModalityBranch("img", SHAPES["img"], K, "lenet", D, form=form)
        assert [e.name for e in branch.encoders] == encoders
        assert all(isinstance(e, keras.Model) for e in branch.encoders)
        out = branch(x["img"], training=False)
        keys = {"logits"} if form == "single" else {"z_inv", "z_inf", "z_irr", "logits"}
        assert set(out) == keys and tuple(out["logits"].shape) == (3, K)
        for key in keys - {"logits"}:  # ReLU features: L_perp's cosine lies in [0, 1]
            assert tuple(out[key].shape) == (3, D // 2) and numpy(ops.min(out[key])) >= 0
        assert branch.has_embeddings == (form != "single")


def test_shared_classifier_holds_one_backbone_and_fewer_parameters():
    encoder = build_encoder("lenet", SHAPES["img"], D, "e").count_params()
    head = D * K + K  # Dense_K on concat(z_inv, z_inf), D wide
    expected = {"separate": 2 * encoder + projection_params(D) + head,
                "shared": encoder + 2 * projection_params(D) + head}
    for form, params in expected.items():
        model = DisCoMKD(SHAPES, K, encoders=ENCODERS, feature_dim=D, branch=form)
        clf = model.classifier("img")
        backbones = [layer for layer in clf.layers if isinstance(layer, keras.Model)]
        assert len(backbones) == (2 if form == "separate" else 1)
        assert clf.count_params() == params
        # Everything of the branch but z_irr's projection, which only training uses.
        left_out = projection_params(D) if form == "shared" else 0
        assert model.branches["img"].count_params() == params + left_out
    assert expected["shared"] < expected["separate"]


@pytest.mark.filterwarnings("ignore:Gradients do not exist")  # the heads of the other terms
@pytest.mark.parametrize("term", ["adv", "mod", "perp"])
def test_each_cross_modal_term_alone_reaches_the_shared_backbone(term):
    weights = {t: (1.0 if t == term else 0.0) for t in ("cl", "adv", "mod", "aux", "perp")}
    model = DisCoMKD(SHAPES, K, encoders=ENCODERS, feature_dim=D, branch="shared",
                     loss_weights=weights)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    backbone = model.branches["img"].encoders[0]
    before = [numpy(w).copy() for w in backbone.trainable_weights]
    model.train_on_batch(*batch(8))
    # Plain SGD moves a weight exactly where its gradient is not zero.
    moved = [not np.array_equal(numpy(w), b) for w, b in zip(backbone.trainable_weights, before)]
    assert any(moved), f"L_{term} alone left the shared backbone untouched"


def test_classifier_and_shared_model_round_trip_in_safe_mode(tmp_path):
    model = DisCoMKD(SHAPES, K, encoders=ENCODERS, feature_dim=D, branch="shared")
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x, y = batch(8)
    model.train_on_batch(x, y)  # moving statistics and weights away from their initial values
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    assert isinstance(loaded, DisCoMKD) and loaded.branch_form == "shared"
    assert loaded.get_config() == model.get_config()
    a, b = model(x, training=False), loaded(x, training=False)
    for m in SHAPES:
        for key, value in a[m].items():
            np.testing.assert_array_equal(numpy(value), numpy(b[m][key]))

    clf = model.classifier("img")
    clf.save(tmp_path / "img.keras")
    twin = keras.saving.load_model(tmp_path / "img.keras", safe_mode=True)
    assert isinstance(twin, ModalityClassifier) and twin.modality == "img"
    assert twin.get_config() == clf.get_config()
    assert twin.count_params() == clf.count_params()
    np.testing.assert_array_equal(numpy(twin(x["img"], training=False)),
                                  numpy(clf(x["img"], training=False)))


def test_classifier_follows_the_training_model():
    model = DisCoMKD(SHAPES, K, encoders=ENCODERS, feature_dim=D, branch="shared")
    clf = model.classifier("vec")
    model.compile(optimizer=keras.optimizers.Adam(1e-1))
    x, y = batch(8)
    before = numpy(clf(x["vec"], training=False))
    model.train_on_batch(x, y)
    after = numpy(clf(x["vec"], training=False))
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, numpy(ops.softmax(model(x, training=False)["vec"]["logits"])),
                               atol=1e-6)


def test_embedder_of_each_form():
    x, _ = batch(4)
    model = DisCoMKD(SHAPES, K, encoders=ENCODERS, feature_dim=D, branch="shared")
    z = model.embedder("img").predict(x["img"], verbose=0)
    out = model(x, training=False)["img"]
    for key in ("z_inv", "z_inf", "z_irr"):
        np.testing.assert_allclose(z[key], numpy(out[key]), atol=1e-6)
    with pytest.raises(ValueError, match="'single' branch has no z_inv"):
        ModalityBranch("img", SHAPES["img"], K, "lenet", D, form="single").embedder()


def test_z_irr_projection_trains_only_where_the_loss_reaches_it():
    from discomkd_keras.models.unimodal import UnimodalClassifiers

    task_only = {"cl": 1.0, "adv": 1.0, "mod": 0.0, "aux": 1.0, "perp": 0.0}
    for model, trained in ((DisCoMKD(SHAPES, K, encoders=ENCODERS, feature_dim=D, branch="shared"), True),
                           (DisCoMKD(SHAPES, K, encoders=ENCODERS, feature_dim=D, branch="shared",
                                     loss_weights=task_only), False),
                           (UnimodalClassifiers(SHAPES, K, encoders=ENCODERS, feature_dim=D,
                                                branch="shared"), False)):
        for branch in model.branches.values():
            irr = branch.training_only_layers()
            assert [layer.name for layer in irr if layer.weights] == \
                [f"{branch.modality}_irr_proj_dense", f"{branch.modality}_irr_proj_bn"]
            assert all(layer.trainable == trained for layer in irr)
            deployed = {id(w) for w in model.classifier(branch.modality).trainable_weights}
            assert deployed <= {id(w) for w in model.trainable_weights}
    separate = ModalityBranch("img", SHAPES["img"], K, "lenet", D, form="separate")
    assert separate.training_only_layers() == []


def test_a_checkpoint_of_the_layout_before_branches_is_refused_in_one_line(tmp_path):
    from discomkd_keras.run_directory import RunError, load_checkpoint

    (tmp_path / "last-epoch0002.keras").write_bytes(b"an old training model")
    state = {"epoch": 2, "checkpoint": "last-epoch0002.keras", "best": {}}
    with pytest.raises(RunError, match="layout before per-modality branches.*cannot be resumed"):
        load_checkpoint(tmp_path, {"method": "unimodal"}, state)  # config.json without "branch"
    with pytest.raises(RunError, match="damaged or unreadable"):  # a current run: tried, and said
        load_checkpoint(tmp_path, {"method": "unimodal", "branch": "separate"}, state)
