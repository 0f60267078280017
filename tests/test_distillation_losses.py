import numpy as np
import pytest
from keras import ops

from discomkd_keras.models.distillation_losses import dkd_loss, kd_loss, mlkd_loss

pytestmark = pytest.mark.portable

RNG = np.random.default_rng(7)
S = RNG.normal(scale=2.0, size=(5, 4)).astype("float32")
T = RNG.normal(scale=2.0, size=(5, 4)).astype("float32")
Y = np.array([0, 3, 1, 1, 2])


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def kl(p, q):
    return (p * (np.log(p) - np.log(q))).sum(1)


def value(x):
    return float(ops.convert_to_numpy(x))


def test_kd_matches_hand_computation():
    t = 4.0
    expected = kl(softmax(T / t), softmax(S / t)).mean() * t * t
    assert value(kd_loss(S, T, t)) == pytest.approx(expected, rel=1e-5)
    assert value(kd_loss(T, T, t)) == pytest.approx(0.0, abs=1e-6)


def test_dkd_matches_hand_computation():
    t, alpha, beta = 4.0, 1.0, 8.0
    ps, pt = softmax(S / t), softmax(T / t)
    rows = np.arange(len(Y))
    bs = np.stack([ps[rows, Y], 1 - ps[rows, Y]], 1)
    bt = np.stack([pt[rows, Y], 1 - pt[rows, Y]], 1)
    tckd = kl(bt, bs)
    nckd = []
    for i, y in enumerate(Y):
        keep = np.arange(4) != y
        nckd.append(kl(softmax(T[i:i + 1, keep] / t), softmax(S[i:i + 1, keep] / t))[0])
    expected = (alpha * tckd + beta * np.array(nckd)).mean() * t * t
    assert value(dkd_loss(S, T, Y, alpha, beta, t)) == pytest.approx(expected, rel=1e-4)
    # Both parts vanish when the student already matches the teacher.
    assert value(dkd_loss(T, T, Y)) == pytest.approx(0.0, abs=1e-5)


def mlkd_by_hand(rows, cols):
    expected = 0.0
    for t in (2.0, 3.0, 4.0, 5.0, 6.0):
        ps, pt = softmax(S / t), softmax(T / t)
        expected += (rows * kl(pt, ps)).sum() / rows.sum() * t * t
        expected += (np.outer(rows, rows) * (pt @ pt.T - ps @ ps.T) ** 2).sum() / 5
        expected += (np.outer(cols, cols) * (pt.T @ pt - ps.T @ ps) ** 2).sum() / 4
    return expected


def test_mlkd_matches_hand_computation():
    assert value(mlkd_loss(S, T, masking=False)) == pytest.approx(
        mlkd_by_hand(np.ones(5), np.ones(4)), rel=1e-5)
    assert value(mlkd_loss(T, T)) == pytest.approx(0.0, abs=1e-5)


def test_mlkd_confidence_masking_keeps_samples_and_classes_at_most_the_median():
    p = softmax(T)
    rows = (p.max(1) <= np.median(p.max(1))).astype(float)
    cols = (p.sum(0) <= np.median(p.sum(0))).astype(float)
    assert rows.sum() == 3 and 0 < cols.sum() < 4  # 5 samples: the 3 least confident
    assert value(mlkd_loss(S, T)) == pytest.approx(mlkd_by_hand(rows, cols), rel=1e-5)
    assert value(mlkd_loss(S, T)) != pytest.approx(value(mlkd_loss(S, T, masking=False)), rel=1e-3)
