import numpy as np
import pytest

from discomkd_keras.data.multimodal_dataset import MultiModalDataset
from discomkd_keras.data.unpaired_batches import UnpairedBatches, augment_images


def unpaired(n_img=50, n_vec=20):
    """Unpaired modalities of different sizes; each sample's value encodes its row."""
    img = np.arange(n_img, dtype="float32")[:, None, None, None] * np.ones((1, 4, 4, 1), "float32")
    vec = np.arange(n_vec, dtype="float32")[:, None] * np.ones((1, 3), "float32")
    y_img, y_vec = np.arange(n_img) % 2, np.arange(n_vec) % 2
    return MultiModalDataset(
        name="t", inputs={"img": img, "vec": vec}, labels={"img": y_img, "vec": y_vec},
        splits={"img": {"train": np.arange(n_img), "valid": np.arange(0), "test": np.arange(0)},
                "vec": {"train": np.arange(n_vec), "valid": np.arange(0), "test": np.arange(0)}},
        class_names=["a", "b"], kinds={"img": "image", "vec": "vector"})


def test_epoch_covers_largest_modality_and_cycles_the_smaller():
    batches = UnpairedBatches(unpaired(), batch_size=8, seed=1)
    assert len(batches) == 7  # ceil(50 / 8)
    img_rows, vec_rows = [], []
    for step in range(len(batches)):
        x, y = batches[step]
        assert x["img"].shape == (8, 4, 4, 1) and x["vec"].shape == (8, 3)  # always full
        img_rows += x["img"][:, 0, 0, 0].astype(int).tolist()
        vec_rows += x["vec"][:, 0].astype(int).tolist()
        np.testing.assert_array_equal(y["img"], x["img"][:, 0, 0, 0].astype(int) % 2)
        np.testing.assert_array_equal(y["vec"], x["vec"][:, 0].astype(int) % 2)
    assert set(img_rows) == set(range(50))
    assert set(vec_rows) == set(range(20))
    # Unpaired: the two modalities' batches hold different, independently shuffled rows.
    x, _ = batches[0]
    assert not np.array_equal(x["img"][:, 0, 0, 0], x["vec"][:, 0])


def test_reshuffles_per_epoch_and_is_reproducible():
    a = UnpairedBatches(unpaired(), batch_size=8, seed=1)
    first = a[0][0]["vec"].copy()
    a.on_epoch_end()
    assert a.epoch == 1
    assert not np.array_equal(a[0][0]["vec"], first)
    b = UnpairedBatches(unpaired(), batch_size=8, seed=1, epoch=1)  # a resumed run
    np.testing.assert_array_equal(b[3][0]["img"], a[3][0]["img"])
    np.testing.assert_array_equal(b[3][0]["vec"], a[3][0]["vec"])


def test_image_augmentation_is_flips_and_rot90_only():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5, 5, 2)).astype("float32")
    out = augment_images(x, np.random.default_rng(3))
    group = []
    for k in range(4):
        r = np.rot90(x, k, axes=(1, 2))
        group += [r, r[:, ::-1], r[:, :, ::-1], r[:, ::-1, ::-1]]
    matches = np.stack([(out == g).all(axis=(1, 2, 3)) for g in group])
    assert matches.any(axis=0).all()  # every sample is a dihedral transform of itself
    assert 0.05 < matches[0].mean() < 0.25  # identity: p = 1/8 ... 2/8 (two paths to identity)
    wide = rng.normal(size=(10, 4, 6, 1))
    assert augment_images(wide, np.random.default_rng(0)).shape == wide.shape  # no rot90 on non-square


def test_no_augmentation_for_vectors_and_unknown_mode():
    batches = UnpairedBatches(unpaired(), batch_size=4, augment={"img": "none"})
    x, _ = batches[0]
    assert (x["img"] == x["img"][:, :1, :1]).all()
    with pytest.raises(ValueError, match="Unknown augmentation 'blur'"):
        UnpairedBatches(unpaired(), augment={"img": "blur"})
