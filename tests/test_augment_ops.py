"""Augmentation by named operations: each op does what it says, combinations
are normalised, batches stay a function of (seed, epoch, step), and the
whole policies are unchanged."""

import numpy as np
import pytest

from discomkd_keras.data.multimodal_dataset import MultiModalDataset
from discomkd_keras.data.unpaired_batches import (
    AUGMENT_OPS, AUGMENTATIONS, UnpairedBatches, augment_batch, augment_images, parse_augment)


def images(n=64, h=4, w=4, c=2, seed=0):
    return np.random.default_rng(seed).normal(size=(n, h, w, c)).astype("float32")


def dataset(n_img=24, n_vec=16):
    img = images(n_img, 6, 6, 1)
    vec = np.random.default_rng(1).normal(size=(n_vec, 5)).astype("float32")
    return MultiModalDataset(
        name="t", inputs={"img": img, "vec": vec},
        labels={"img": np.arange(n_img) % 2, "vec": np.arange(n_vec) % 2},
        splits={"img": {"train": np.arange(n_img), "valid": np.arange(0), "test": np.arange(0)},
                "vec": {"train": np.arange(n_vec), "valid": np.arange(0), "test": np.arange(0)}},
        class_names=["a", "b"], kinds={"img": "image", "vec": "vector"})


# --- parse_augment ---------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("noise,flip", "flip,noise"),
    ("crop, flip ,crop", "flip,crop"),
    ("contrast,noise,rot90,crop,flip", "flip,rot90,crop,contrast,noise"),
    ("rot90", "rot90"),
    ("none", "none"),
    ("flip-rotate", "flip-rotate"),
    ("flip-rotate-each", "flip-rotate-each"),
    ("released", "flip-rotate"),  # the names before 0.1 are read as the new ones
    ("independent", "flip-rotate-each"),
])
def test_parse_augment_normalises(text, expected):
    assert parse_augment(text) == expected


@pytest.mark.parametrize("text, message", [
    ("", "Empty augmentation"),
    ("blur", "Unknown augmentation 'blur'"),
    ("flip,blur", "Unknown augmentation 'blur'"),
    ("flip,", "Unknown augmentation ''"),
    ("none,flip", "'none' is a whole policy"),
    ("crop,flip-rotate", "'flip-rotate' is a whole policy"),
    ("independent,noise", "'flip-rotate-each' is a whole policy"),
])
def test_parse_augment_errors_name_the_word_and_the_valid_ones(text, message):
    with pytest.raises(ValueError, match=message) as error:
        parse_augment(text)
    text = str(error.value)
    assert "\n" not in text
    assert all(op in text for op in AUGMENT_OPS)


def test_augmentations_lists_policies_and_ops():
    assert AUGMENTATIONS == ("flip-rotate", "flip-rotate-each", "none") + AUGMENT_OPS


# --- each op ---------------------------------------------------------------

def test_flip_mirrors_left_right_about_half_the_samples():
    x = images(4000)
    out = augment_batch(x, np.random.default_rng(0), "flip")
    flipped = np.array([np.array_equal(o, s[:, ::-1]) for o, s in zip(out, x)])
    kept = np.array([np.array_equal(o, s) for o, s in zip(out, x)])
    assert (flipped ^ kept).all()  # each sample is exactly one of the two
    assert flipped.mean() == pytest.approx(0.5, abs=0.03)
    assert out.dtype == np.float32


def test_rot90_rotates_every_sample_by_some_quarter_turns():
    x = images(2000)
    out = augment_batch(x, np.random.default_rng(1), "rot90")
    ks = []
    for o, s in zip(out, x):
        matches = [k for k in range(4) if np.array_equal(o, np.rot90(s, k))]
        assert len(matches) == 1
        ks.append(matches[0])
    np.testing.assert_allclose(np.bincount(ks, minlength=4) / len(ks), 0.25, atol=0.04)


def test_rot90_of_non_square_images_keeps_the_shape():
    x = images(400, 4, 6)
    out = augment_batch(x, np.random.default_rng(2), "rot90")
    assert out.shape == x.shape
    half_turned = np.array([np.array_equal(o, np.rot90(s, 2)) for o, s in zip(out, x)])
    kept = np.array([np.array_equal(o, s) for o, s in zip(out, x)])
    assert (half_turned ^ kept).all()
    assert half_turned.mean() == pytest.approx(0.5, abs=0.08)


def test_crop_cuts_a_window_of_the_edge_padded_input():
    x = images(300, 16, 8, 1)  # pads 2 rows and 1 column on each side
    out = augment_batch(x, np.random.default_rng(3), "crop")
    assert out.shape == x.shape and out.dtype == x.dtype
    offsets = []
    for o, s in zip(out, x):
        padded = np.pad(s, ((2, 2), (1, 1), (0, 0)), mode="edge")
        found = [(t, l) for t in range(5) for l in range(3)
                 if np.array_equal(o, padded[t:t + 16, l:l + 8])]
        assert found  # (a window; edge rows may repeat, so possibly more than one)
        offsets.append(found[0])
    assert len(set(offsets)) == 15  # every offset in [0, 4] x [0, 2] is drawn


def test_crop_pads_at_least_one_pixel_on_tiny_images():
    x = images(200, 3, 3, 1)
    out = augment_batch(x, np.random.default_rng(4), "crop")
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    for o, p in zip(out, padded):
        assert any(np.array_equal(o, p[t:t + 3, l:l + 3]) for t in range(3) for l in range(3))
    assert not np.array_equal(out, x)


def test_contrast_keeps_each_channel_mean_and_scales_its_deviation():
    x = images(500, 5, 5, 3) + 2.0
    out = augment_batch(x, np.random.default_rng(5), "contrast")
    assert out.dtype == np.float32
    mean_in, mean_out = x.mean(axis=(1, 2)), out.mean(axis=(1, 2))
    np.testing.assert_allclose(mean_out, mean_in, atol=1e-5)
    dev_in = x - mean_in[:, None, None]
    dev_out = out - mean_out[:, None, None]
    factor = (dev_out * dev_in).sum(axis=(1, 2)) / (dev_in ** 2).sum(axis=(1, 2))  # (N, C)
    np.testing.assert_allclose(dev_out, factor[:, None, None] * dev_in, atol=1e-5)
    assert factor.min() >= 0.8 - 1e-5 and factor.max() <= 1.2 + 1e-5
    assert factor.min() < 0.82 and factor.max() > 1.18  # the whole range is used
    assert np.std(factor[:, 0] - factor[:, 1]) > 0.05  # channels get their own factors


@pytest.mark.parametrize("scale", [1.0, 1000.0])
def test_noise_is_small_and_scale_free(scale):
    x = images(400, 8, 8, 1) * scale
    out = augment_batch(x, np.random.default_rng(6), "noise")
    assert out.dtype == np.float32 and (out != x).mean() > 0.99
    std = x.std(axis=(1, 2, 3))[:, None, None, None]
    relative_change = np.abs(out - x) / std
    assert relative_change.mean() == pytest.approx(0.05 * np.sqrt(2 / np.pi), rel=0.05)


def test_noise_applies_to_vectors_and_other_ops_do_not():
    v = np.random.default_rng(7).normal(size=(300, 20)).astype("float32")
    out = augment_batch(v, np.random.default_rng(8), "noise")
    assert out.shape == v.shape and out.dtype == np.float32
    assert np.abs(out - v).mean() == pytest.approx(0.05 * np.sqrt(2 / np.pi), rel=0.1)
    for op in ("flip", "rot90", "crop", "contrast"):
        with pytest.raises(ValueError, match=f"'{op}' needs images"):
            augment_batch(v, np.random.default_rng(0), f"{op},noise")


def test_ops_combine_in_a_fixed_order_and_keep_dtype():
    x = images(32, 8, 8, 3)
    a = augment_batch(x, np.random.default_rng(9), "noise,crop,flip")
    b = augment_batch(x, np.random.default_rng(9), "flip,crop,noise")
    np.testing.assert_array_equal(a, b)
    assert a.shape == x.shape and a.dtype == np.float32
    assert augment_batch(x.astype("float64"), np.random.default_rng(9), "contrast").dtype == np.float64
    np.testing.assert_array_equal(augment_batch(x, np.random.default_rng(9), "none"), x)


def test_released_and_independent_are_augment_images_bit_for_bit():
    x = images(200)
    for policy in ("flip-rotate", "flip-rotate-each", "released"):
        np.testing.assert_array_equal(
            augment_batch(x, np.random.default_rng(11), policy),
            augment_images(x, np.random.default_rng(11), policy))
    # The default policy of an image modality in UnpairedBatches is the released script's.
    batches = UnpairedBatches(dataset(), batch_size=8, seed=3)
    assert batches.augment == {"img": "flip-rotate", "vec": "none"}
    raw = UnpairedBatches(dataset(), batch_size=8, seed=3, augment={"img": "none"})
    x_raw = raw.batch(1, 2)[0]["img"]
    expected = augment_images(x_raw, np.random.default_rng([3, 1, 2, 0, 1]), "flip-rotate")
    np.testing.assert_array_equal(batches.batch(1, 2)[0]["img"], expected)


# --- UnpairedBatches -------------------------------------------------------

def test_unpaired_batches_normalise_and_apply_ops_deterministically():
    policy = {"img": "noise,crop,flip,crop", "vec": "noise"}
    a = UnpairedBatches(dataset(), batch_size=8, seed=5, augment=policy)
    assert a.augment == {"img": "flip,crop,noise", "vec": "noise"}
    b = UnpairedBatches(dataset(), batch_size=8, seed=5, augment=policy)
    for m in ("img", "vec"):
        np.testing.assert_array_equal(a.batch(1, 2)[0][m], b.batch(1, 2)[0][m])
        assert not np.array_equal(a.batch(1, 2)[0][m], a.batch(1, 1)[0][m])
    # The same rows, unaugmented, differ from the augmented batch: the ops ran.
    raw = UnpairedBatches(dataset(), batch_size=8, seed=5, augment={"img": "none"})
    raw_x, raw_y = raw.batch(1, 2)
    got_x, got_y = a.batch(1, 2)
    np.testing.assert_array_equal(got_y["img"], raw_y["img"])
    assert got_x["img"].dtype == np.float32 and not np.array_equal(got_x["img"], raw_x["img"])
    expected = augment_batch(raw_x["img"], np.random.default_rng([5, 1, 2, 0, 1]), "flip,crop,noise")
    np.testing.assert_array_equal(got_x["img"], expected)


@pytest.mark.parametrize("augment, message", [
    ({"img": "blur"}, "Unknown augmentation 'blur' for 'img'"),
    ({"img": "none,flip"}, "'none' for 'img' is a whole policy"),
    ({"vec": "crop"}, "'vec'.*'crop' needs images"),
    ({"vec": "released"}, "'vec'.*'flip-rotate' needs images"),
])
def test_unpaired_batches_reject_bad_policies_naming_the_modality(augment, message):
    with pytest.raises(ValueError, match=message):
        UnpairedBatches(dataset(), batch_size=8, augment=augment)
