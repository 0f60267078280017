"""Small on-disk data sets for tests, in the released layout."""

import numpy as np


def write_released(directory, n_per_class=20, classes=3, image=(3, 12, 12), vector=5, seed=0,
                   splits=True):
    """A learnable two-modality set: `rgb` images (N, C, H, W) and `vec` vectors (N, F)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n_per_class)
    n = len(y)
    a = rng.normal(size=(n,) + image).astype("float32")
    a[:, :, : image[1] // 2, : image[2] // 2] += 1.5 * y[:, None, None, None]
    b = rng.normal(size=(n, vector)).astype("float32")
    b[:, 0] += 2.0 * y
    np.save(directory / "rgb_data_normalized.npy", a)
    np.save(directory / "vec_data_normalized.npy", b)
    np.save(directory / "labels.npy", y)
    if splits:
        order = rng.permutation(n)
        cut = [int(0.6 * n), int(0.8 * n)]
        np.save(directory / "train_idx.npy", np.sort(order[: cut[0]]))
        np.save(directory / "valid_idx.npy", np.sort(order[cut[0]: cut[1]]))
        np.save(directory / "test_idx.npy", np.sort(order[cut[1]:]))
    return directory
