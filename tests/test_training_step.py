import keras
import numpy as np
import pytest
from keras import ops

from discomkd_keras.models.gradient_reversal import GRLScheduler
from discomkd_keras.models.losses import LOSS_TERMS
from discomkd_keras.models.discomkd import DisCoMKD

pytestmark = pytest.mark.portable


def toy_data(n, seed):
    """Two unpaired modalities sharing 3 classes: a 6-d and a 10-d Gaussian per class."""
    rng = np.random.default_rng(seed)
    means_a = rng.normal(scale=1.5, size=(3, 6))
    means_b = rng.normal(scale=1.5, size=(3, 10))
    ya, yb = rng.integers(0, 3, n), rng.integers(0, 3, n)  # independent: no pairing
    xa = (means_a[ya] + rng.normal(size=(n, 6))).astype("float32")
    xb = (means_b[yb] + rng.normal(size=(n, 10))).astype("float32")
    return {"a": xa, "b": xb}, {"a": ya, "b": yb}


def test_fit_learns_both_classifiers_and_the_modality():
    x, y = toy_data(384, seed=0)
    model = DisCoMKD({"a": (6,), "b": (10,)}, 3, feature_dim=16)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    epochs, batch = 25, 32  # 300 steps
    ramp = GRLScheduler("dann", epochs=epochs, steps_per_epoch=384 // batch)
    history = model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, callbacks=[ramp])
    logs = history.history
    assert set(LOSS_TERMS) | {"loss", "a_acc", "b_acc"} <= set(logs)
    assert logs["cl"][-1] < 0.5 * logs["cl"][0]
    # The reported loss is the weighted sum of the reported terms.
    assert logs["loss"][-1] == pytest.approx(sum(logs[t][-1] for t in LOSS_TERMS), rel=1e-4)
    # The ramp reached its last value through the compiled step (jax included).
    lam = float(ops.convert_to_numpy(model.get_layer("gradient_reversal").grl_lambda))
    assert lam == pytest.approx(ramp.value_at(epochs * 12 - 1), rel=1e-6) and 0.99 < lam < 1.0

    xt, yt = toy_data(300, seed=0)  # same class means, fresh samples
    out = model.predict(xt, verbose=0)
    for i, m in enumerate(["a", "b"]):
        acc = (out[m]["logits"].argmax(1) == yt[m]).mean()
        assert acc > 0.8, (m, acc)  # chance is 1/3
        mod_acc = (out[m]["mod_inf"].argmax(1) == i).mean()
        assert mod_acc > 0.95, (m, mod_acc)  # z_inf carries the modality
        clf_acc = (model.classifier(m).predict(xt[m], verbose=0).argmax(1) == yt[m]).mean()
        assert clf_acc == acc


def test_zero_weight_switches_a_term_off():
    x, y = toy_data(64, seed=1)
    weights = {"adv": 0.0, "mod": 0.0, "aux": 0.0, "perp": 0.0}
    model = DisCoMKD({"a": (6,), "b": (10,)}, 3, feature_dim=8, loss_weights=weights)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    d_adv = model.get_layer("adv_discriminator")
    # Heads whose only term is off are frozen: no optimizer state, no "missing gradient" warning.
    for name in ("adv_discriminator", "inf_discriminator", "irr_discriminator", "aux_classifier"):
        assert not model.get_layer(name).trainable
    assert all(branch.trainable for branch in model.branches.values())
    before = [ops.convert_to_numpy(w).copy() for w in d_adv.weights]
    logs = model.fit(x, y, batch_size=64, epochs=1, verbose=0).history
    assert logs["loss"][0] == pytest.approx(logs["cl"][0], rel=1e-5)
    assert logs["adv"][0] > 0  # still reported
    # With L_adv off, D_adv gets no gradient and keeps its initial weights.
    for w0, w in zip(before, d_adv.weights):
        np.testing.assert_array_equal(ops.convert_to_numpy(w), w0)
    ev = model.evaluate(x, y, verbose=0, return_dict=True)
    assert ev["loss"] == pytest.approx(ev["cl"], rel=1e-5)
