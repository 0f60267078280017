import numpy as np
import pytest
from keras import ops

from discomkd_keras.models.losses import LOSS_TERMS, cosine_similarity, loss_terms, perpendicularity, total_loss

pytestmark = pytest.mark.portable


def np_ce(labels, logits):
    logits = logits - logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(labels)), labels]


def np_cos(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def fake_outputs(rng, modalities, batch_sizes, k, half):
    outputs, labels = {}, {}
    n_mod = len(modalities)
    for m, n in zip(modalities, batch_sizes):
        outputs[m] = {
            "z_inv": rng.uniform(0.0, 2.0, (n, half)).astype("float32"),
            "z_inf": rng.uniform(0.0, 2.0, (n, half)).astype("float32"),
            "z_irr": rng.normal(size=(n, half)).astype("float32"),  # signed on purpose
            "logits": rng.normal(size=(n, k)).astype("float32"),
            "aux_inv": rng.normal(size=(n, k)).astype("float32"),
            "aux_inf": rng.normal(size=(n, k)).astype("float32"),
            "adv": rng.normal(size=(n, n_mod)).astype("float32"),
            "mod_inf": rng.normal(size=(n, n_mod)).astype("float32"),
            "mod_irr": rng.normal(size=(n, n_mod)).astype("float32"),
        }
        labels[m] = rng.integers(0, k, n)
    return outputs, labels


def test_every_term_matches_numpy_with_three_modalities_and_unequal_batches():
    rng = np.random.default_rng(0)
    mods = ["rgb", "depth", "thermal"]
    outputs, labels = fake_outputs(rng, mods, [4, 3, 5], k=5, half=6)
    terms = {t: float(ops.convert_to_numpy(v)) for t, v in loss_terms(outputs, labels, mods).items()}

    expected = {t: [] for t in LOSS_TERMS}
    for i, m in enumerate(mods):
        o, y = outputs[m], labels[m]
        mod_label = np.full(len(y), i)
        expected["cl"].append(np_ce(y, o["logits"]))
        expected["adv"].append(np_ce(mod_label, o["adv"]))
        # L_mod: one mean over the rows of both heads (as released), i.e. per
        # sample the average of the two heads' losses.
        expected["mod"].append((np_ce(mod_label, o["mod_inf"]) + np_ce(mod_label, o["mod_irr"])) / 2)
        expected["aux"].append(np_ce(y, o["aux_inv"]) + np_ce(y, o["aux_inf"]))
        expected["perp"].append(np.abs(np_cos(o["z_inf"], o["z_irr"]))
                                + np.abs(np_cos(o["z_inf"], o["z_inv"])))
    for t in LOSS_TERMS:
        # Averaged over all 12 samples, not over the 3 per-modality means.
        assert terms[t] == pytest.approx(np.concatenate(expected[t]).mean(), rel=1e-5), t


def np_soft_ce(targets, logits):
    """PyTorch's CrossEntropyLoss with class-probability targets, per row."""
    logits = logits - logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -(targets * log_p).sum(axis=1)


def test_released_modality_targets_match_the_released_losses_by_hand():
    # The released script: targets torch.ones_like(first) / torch.zeros_like(second),
    # one CrossEntropyLoss (mean) over the concatenated rows; L_mod over the rows
    # of D_inf and D_irr of both modalities together.
    rng = np.random.default_rng(4)
    mods = ["MNIST", "SPECTRO"]
    outputs, labels = fake_outputs(rng, mods, [6, 6], k=10, half=4)
    terms = loss_terms(outputs, labels, mods, modality_targets="released")
    first, second = outputs["MNIST"], outputs["SPECTRO"]
    adv = np.concatenate([np_soft_ce(np.ones((6, 2)), first["adv"]),
                          np_soft_ce(np.zeros((6, 2)), second["adv"])]).mean()
    rows = [first["mod_inf"], first["mod_irr"], second["mod_inf"], second["mod_irr"]]
    targets = [np.ones((6, 2))] * 2 + [np.zeros((6, 2))] * 2
    mod = np.concatenate([np_soft_ce(t, r) for t, r in zip(targets, rows)]).mean()
    assert float(ops.convert_to_numpy(terms["adv"])) == pytest.approx(adv, rel=1e-5)
    assert float(ops.convert_to_numpy(terms["mod"])) == pytest.approx(mod, rel=1e-5)
    # The task terms do not depend on the modality targets.
    labelled = loss_terms(outputs, labels, mods)
    for t in ("cl", "aux", "perp"):
        assert float(ops.convert_to_numpy(terms[t])) == float(ops.convert_to_numpy(labelled[t]))
    # The all-ones target is minimal at a uniform prediction, where it is 2 log 2 per row.
    for m in mods:
        outputs[m]["adv"] = np.zeros((6, 2), "float32")
    adv = loss_terms(outputs, labels, mods, modality_targets="released")["adv"]
    assert float(ops.convert_to_numpy(adv)) == pytest.approx(6 * 2 * np.log(2) / 12, rel=1e-6)
    with pytest.raises(ValueError, match="Unknown modality targets 'soft'"):
        loss_terms(outputs, labels, mods, modality_targets="soft")


def test_modality_term_uses_integer_modality_labels():
    # A discriminator that is certain of the right modality has ~zero loss;
    # the same logits scored against a wrong modality label have a large one.
    mods = ["a", "b", "c"]
    rng = np.random.default_rng(1)
    outputs, labels = fake_outputs(rng, mods, [2, 2, 2], k=3, half=4)
    for i, m in enumerate(mods):
        confident = np.full((2, 3), -20.0, "float32")
        confident[:, i] = 20.0
        outputs[m]["mod_inf"] = confident
        outputs[m]["mod_irr"] = confident
    assert float(ops.convert_to_numpy(loss_terms(outputs, labels, mods)["mod"])) < 1e-6
    # Reversed order: "a" and "c" swap labels, each head then costs 40 on 4 of the 6 rows.
    reversed_mod = float(ops.convert_to_numpy(loss_terms(outputs, labels, mods[::-1])["mod"]))
    assert reversed_mod == pytest.approx(40 * 4 / 6, rel=1e-5)


def test_cosine_and_perp_modes():
    a = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]], "float32")
    b = np.array([[0.0, 3.0], [-2.0, -2.0], [1.0, 0.0]], "float32")
    cos = ops.convert_to_numpy(cosine_similarity(a, b))
    np.testing.assert_allclose(cos, [0.0, -1.0, 0.0], atol=1e-6)  # zero vector: 0, not NaN
    np.testing.assert_allclose(ops.convert_to_numpy(perpendicularity(a, b, "abs")), [0, 1, 0], atol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(perpendicularity(a, b, "cos")), [0, -1, 0], atol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(perpendicularity(a, b, "square")), [0, 1, 0], atol=1e-6)
    with pytest.raises(ValueError, match="perp mode"):
        perpendicularity(a, b, "l1")


def test_total_loss_weights_and_ablation():
    terms = {"cl": 1.0, "adv": 2.0, "mod": 3.0, "aux": 4.0, "perp": 5.0}
    assert total_loss(terms, dict.fromkeys(LOSS_TERMS, 1.0)) == 15.0
    assert total_loss(terms, {"cl": 1, "adv": 0, "mod": 1, "aux": 0.5, "perp": 1}) == 11.0
    # A switched-off term is left out, not multiplied by 0: a NaN there cannot leak in.
    assert total_loss(dict(terms, adv=float("nan")), {"cl": 1, "adv": 0, "mod": 0, "aux": 0, "perp": 0}) == 1.0
    with pytest.raises(ValueError, match="Every loss weight is 0"):
        total_loss(terms, dict.fromkeys(LOSS_TERMS, 0.0))
