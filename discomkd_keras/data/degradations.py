"""Degradations that make AV-MNIST a benchmark where each modality is weak on
its own (Vielzeuf et al., "CentralNet", 2018, as MultiBench builds it): digit
images keep only part of their PCA energy, spoken digits are mixed with noise
at a fixed signal-to-noise ratio. NumPy only, deterministic from a seed.
"""

import numpy as np

NOISES = ("babble", "pink")


def pca_degrade(images, train_rows, energy):
    """uint8 images (N, H, W) rebuilt from the fewest principal components that keep
    at least `energy` of the training rows' variance; returns (uint8 images, k).

    The mean and the components come from `train_rows` only, so no validation
    or test image shapes the projection. The reconstruction is rounded back
    to 8 bits: the degraded image is what a (poor) sensor delivers.
    """
    if not 0.0 < energy <= 1.0:
        raise ValueError(f"PCA energy must lie in (0, 1]; got {energy}.")
    flat = images.reshape(len(images), -1).astype(np.float64) / 255.0
    train = flat[train_rows]
    mean = train.mean(axis=0)
    _, singular, components = np.linalg.svd(train - mean, full_matrices=False)
    kept = np.cumsum(singular ** 2) / np.sum(singular ** 2)
    k = int(np.searchsorted(kept, energy - 1e-12) + 1)
    basis = components[:k]
    rebuilt = (flat - mean) @ basis.T @ basis + mean
    out = np.clip(np.round(rebuilt * 255.0), 0, 255).astype(np.uint8)
    return out.reshape(images.shape), k


def pink_noise(rng, n, length):
    """(n, length) noise with a 1/f power spectrum, unit RMS per row."""
    spectrum = rng.normal(size=(n, length // 2 + 1)) + 1j * rng.normal(size=(n, length // 2 + 1))
    freqs = np.arange(length // 2 + 1, dtype=np.float64)
    spectrum *= 1.0 / np.sqrt(np.maximum(freqs, 1.0))
    spectrum[:, 0] = 0.0
    noise = np.fft.irfft(spectrum, n=length, axis=1)
    return noise / np.sqrt(np.mean(noise ** 2, axis=1, keepdims=True))


def babble_noise(rng, clips, pools, talkers=4):
    """(N, T) babble: for each clip, the sum of `talkers` other clips of its own
    split (pools[i] holds the candidate rows of clip i), each at unit RMS and
    circularly shifted at random, scaled to unit RMS."""
    n, length = clips.shape
    rms = np.sqrt(np.mean(clips ** 2, axis=1, keepdims=True))
    unit = clips / np.maximum(rms, 1e-12)
    noise = np.zeros_like(clips, dtype=np.float64)
    for i in range(n):
        pool = pools[i][pools[i] != i]
        for j in rng.choice(pool, size=min(talkers, len(pool)), replace=False):
            noise[i] += np.roll(unit[j], int(rng.integers(length)))
    return noise / np.sqrt(np.mean(noise ** 2, axis=1, keepdims=True))


def mix_at_snr(clips, noise, snr_db):
    """clips + noise scaled so that 10 log10(P_clip / P_noise) = snr_db per row, where
    P is the mean power over the whole (fixed-length) clip; clipped to [-1, 1]."""
    power = np.mean(clips.astype(np.float64) ** 2, axis=1, keepdims=True)
    scale = np.sqrt(power / 10.0 ** (snr_db / 10.0))
    return np.clip(clips + scale * noise, -1.0, 1.0).astype(np.float32)


def noisy_clips(clips, splits, snr_db, noise="babble", seed=0):
    """The clips (N, T) mixed with `noise` at `snr_db`; babble is drawn from other
    clips of the same split only (a test clip never hears a training clip)."""
    if noise not in NOISES:
        raise ValueError(f"Unknown noise {noise!r}; expected one of {NOISES}.")
    rng = np.random.default_rng([seed, 303])
    if noise == "pink":
        return mix_at_snr(clips, pink_noise(rng, *clips.shape), snr_db)
    pools = [None] * len(clips)
    for rows in splits.values():
        for i in rows:
            pools[i] = rows
    return mix_at_snr(clips, babble_noise(rng, clips, pools), snr_db)
