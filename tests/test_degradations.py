import numpy as np
import pytest

from discomkd_keras.data.degradations import (babble_noise, mix_at_snr, noisy_clips, pca_degrade,
                                              pink_noise)


def images(n=60, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(4, 8, 8))
    return np.clip(base[rng.integers(0, 4, n)] + rng.normal(0, 20, (n, 8, 8)), 0, 255).astype(np.uint8)


def test_pca_keeps_the_fewest_components_reaching_the_energy_fit_on_train_rows():
    x = images()
    train = np.arange(40)
    out, k = pca_degrade(x, train, 0.5)
    flat = x.reshape(60, -1).astype(np.float64) / 255
    centred = flat[train] - flat[train].mean(0)
    ratios = np.cumsum(np.linalg.svd(centred, compute_uv=False) ** 2)
    ratios /= ratios[-1]
    assert ratios[k - 1] >= 0.5 > (ratios[k - 2] if k > 1 else 0)
    assert out.dtype == np.uint8 and out.shape == x.shape and not np.array_equal(out, x)
    # Only training rows shape the projection: changing a test image changes only itself.
    changed = x.copy()
    changed[50] = 255 - changed[50]
    again, k2 = pca_degrade(changed, train, 0.5)
    assert k2 == k and np.array_equal(np.delete(again, 50, 0), np.delete(out, 50, 0))
    with pytest.raises(ValueError, match="energy must lie in"):
        pca_degrade(x, train, 0.0)


def test_mix_at_snr_hits_the_snr_exactly():
    rng = np.random.default_rng(1)
    clips = (0.1 * rng.normal(size=(3, 800))).astype(np.float32)
    noise = pink_noise(rng, 3, 800)
    np.testing.assert_allclose(np.sqrt(np.mean(noise ** 2, axis=1)), 1.0, rtol=1e-9)
    for snr in (0.0, -2.0, 6.0):
        mixed = mix_at_snr(clips, noise, snr)
        added = mixed.astype(np.float64) - clips
        ratio = np.mean(clips.astype(np.float64) ** 2, 1) / np.mean(added ** 2, 1)
        np.testing.assert_allclose(10 * np.log10(ratio), snr, atol=1e-3)


def test_babble_comes_from_other_clips_of_the_same_split():
    # Training clips are positive constants, test clips negative: babble keeps the sign of its split.
    clips = np.array([1, 2, 3, 4, -1, -2, -3, -4], np.float64)[:, None] * np.ones((8, 16))
    pools = [np.arange(4)] * 4 + [np.arange(4, 8)] * 4
    noise = babble_noise(np.random.default_rng(0), clips, pools, talkers=3)
    np.testing.assert_allclose(noise, np.sign(clips))  # unit-RMS talkers, summed, unit RMS again
    splits = {"train": np.arange(4), "test": np.arange(4, 8)}
    a = noisy_clips(clips.astype(np.float32) / 10, splits, 0.0, seed=3)
    b = noisy_clips(clips.astype(np.float32) / 10, splits, 0.0, seed=3)
    np.testing.assert_array_equal(a, b)  # deterministic from the seed
    with pytest.raises(ValueError, match="Unknown noise 'white'"):
        noisy_clips(clips, splits, 0.0, noise="white")
