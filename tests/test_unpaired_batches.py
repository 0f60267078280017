from concurrent.futures import ThreadPoolExecutor

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
    a.on_epoch_end()  # Keras' calls change nothing: item i is fixed by set_epoch alone
    np.testing.assert_array_equal(a[0][0]["vec"], first)
    a.set_epoch(1)
    assert a.epoch == 1
    assert not np.array_equal(a[0][0]["vec"], first)
    b = UnpairedBatches(unpaired(), batch_size=8, seed=1, epoch=1)  # a resumed run
    np.testing.assert_array_equal(b[3][0]["img"], a[3][0]["img"])
    np.testing.assert_array_equal(b[3][0]["vec"], a[3][0]["vec"])


def test_an_endless_stream_whose_items_depend_on_epoch_and_step_alone():
    data = unpaired()
    a = UnpairedBatches(data, batch_size=8, seed=1)
    assert a.num_batches is None and len(a) == 7  # fit takes steps_per_epoch=len(a)
    # Item i runs on into later epochs: item 7 + 2 is step 2 of epoch 1.
    same(a[9], a.batch(1, 2))
    # Asked for in any order, from many threads at once: every item is the same batch.
    expected = [a.batch(*divmod(i, 7)) for i in range(21)]
    order = np.random.default_rng(0).permutation(21)
    fresh = UnpairedBatches(data, batch_size=8, seed=1)
    with ThreadPoolExecutor(8) as pool:
        got = dict(zip(order, pool.map(fresh.__getitem__, order)))
    for i in range(21):
        same(got[i], expected[i])
    # A run resumed at step 4 of epoch 1 continues with exactly those batches, into epoch 2.
    resumed = UnpairedBatches(data, batch_size=8, seed=1)
    resumed.set_epoch(1, 4)
    same(resumed[0], expected[7 + 4])
    same(resumed[3], expected[2 * 7])
    with pytest.raises(ValueError, match="step must be"):
        resumed.set_epoch(1, 7)


def same(batch, other):
    for part, other_part in zip(batch, other):
        for m in part:
            np.testing.assert_array_equal(part[m], other_part[m])


def dihedral_frequencies(out, x):
    """Fraction of samples equal to each of the 8 flips/rotations of the input."""
    group = []
    for k in range(4):
        r = np.rot90(x, k, axes=(1, 2))
        group += [r, r[:, ::-1]]  # the 8 elements: rot^k and rot^k after a vertical flip
    matches = np.stack([(out == g).all(axis=(1, 2, 3)) for g in group])
    assert (matches.sum(axis=0) == 1).all()  # each sample is exactly one transform of itself
    return matches.mean(axis=1)


def expected_frequencies(draws):
    """Exact distribution over the same 8 elements of a process given as
    [(probability, h_flip, v_flip, quarter_turns)], applied in that order."""
    probe = np.arange(9, dtype="float32").reshape(1, 3, 3, 1)
    freq = np.zeros(8)
    for prob, h, v, k in draws:
        y = probe[:, :, ::-1] if h else probe
        y = y[:, ::-1] if v else y
        y = np.rot90(y, k, axes=(1, 2))
        freq += prob * dihedral_frequencies(y, probe)
    return freq


def test_released_augmentation_has_the_released_distribution():
    # Released: with p 0.5 transform; then h-flip p .5, v-flip p .5, and with p .5
    # a rotation by an angle from {0, 90, 180, 270}.
    x = np.random.default_rng(0).normal(size=(20000, 3, 3, 1)).astype("float32")
    freq = dihedral_frequencies(augment_images(x, np.random.default_rng(3)), x)
    draws = [(0.5, 0, 0, 0)]
    for h in (0, 1):
        for v in (0, 1):
            draws.append((0.5 * 0.25 * 0.5, h, v, 0))  # no rotation drawn
            draws += [(0.5 * 0.25 * 0.5 * 0.25, h, v, k) for k in range(4)]
    expected = expected_frequencies(draws)
    np.testing.assert_allclose(freq, expected, atol=0.012)
    assert 1 - expected[0] == pytest.approx(0.40625)  # share of samples that change


def test_independent_augmentation_has_its_distribution():
    x = np.random.default_rng(1).normal(size=(20000, 3, 3, 1)).astype("float32")
    freq = dihedral_frequencies(augment_images(x, np.random.default_rng(4), "independent"), x)
    draws = [(0.125, h, v, k) for h in (0, 1) for v in (0, 1) for k in (0, 1)]
    expected = expected_frequencies(draws)
    np.testing.assert_allclose(freq, expected, atol=0.012)
    assert 1 - expected[0] == pytest.approx(0.875)


@pytest.mark.parametrize("policy", ["released", "independent"])
def test_non_square_images_keep_their_shape(policy):
    wide = np.random.default_rng(0).normal(size=(50, 4, 6, 1))
    out = augment_images(wide, np.random.default_rng(0), policy)
    assert out.shape == wide.shape
    flips = [wide, wide[:, ::-1], wide[:, :, ::-1], wide[:, ::-1, ::-1]]
    assert all(any(np.array_equal(o, f[i]) for f in flips) for i, o in enumerate(out))


def test_no_augmentation_for_vectors_and_unknown_mode():
    batches = UnpairedBatches(unpaired(), batch_size=4, augment={"img": "none"})
    x, _ = batches[0]
    assert (x["img"] == x["img"][:, :1, :1]).all()
    with pytest.raises(ValueError, match="Unknown augmentation 'blur'"):
        UnpairedBatches(unpaired(), augment={"img": "blur"})


def test_processes_that_share_a_batch_get_its_halves():
    data = unpaired()
    whole = UnpairedBatches(data, batch_size=8, seed=1)
    halves = [UnpairedBatches(data, batch_size=8, seed=1, share=(p, 2)) for p in (0, 1)]
    for i in (0, 9):
        x, y = whole[i]
        parts = [h[i] for h in halves]
        for m in x:
            np.testing.assert_array_equal(np.concatenate([p[0][m] for p in parts]), x[m])
            np.testing.assert_array_equal(np.concatenate([p[1][m] for p in parts]), y[m])
    with pytest.raises(ValueError, match="multiple of the 3 processes"):
        UnpairedBatches(data, batch_size=8, share=(0, 3))
