import numpy as np
import pytest

from discomkd_keras.data.multimodal_dataset import DataError, stratified_split
from discomkd_keras.data.released_layout import load_released_layout
from helpers import write_released


def test_reads_channels_first_as_channels_last(tmp_path):
    d = write_released(tmp_path / "d")
    data = load_released_layout(d)
    assert data.modalities == ["rgb", "vec"]
    raw = np.load(d / "rgb_data_normalized.npy")
    assert data.inputs["rgb"].shape == (60, 12, 12, 3)
    np.testing.assert_array_equal(data.inputs["rgb"][7, 2, 5, :], raw[7, :, 2, 5])
    assert data.kinds == {"rgb": "image", "vec": "vector"}
    assert data.class_names == ["0", "1", "2"]
    np.testing.assert_array_equal(data.splits["rgb"]["test"], np.load(d / "test_idx.npy"))
    assert load_released_layout(d, modalities=["vec", "rgb"]).modalities == ["vec", "rgb"]


def test_split_seed_makes_stratified_splits(tmp_path):
    d = write_released(tmp_path / "d", n_per_class=30, splits=False)
    with pytest.raises(DataError, match="--split-seed"):
        load_released_layout(d)
    data = load_released_layout(d, split_seed=3)
    for split, share in (("train", 0.7), ("valid", 0.1), ("test", 0.2)):
        counts = np.bincount(data.labels["rgb"][data.splits["rgb"][split]], minlength=3)
        assert (counts == round(30 * share)).all(), (split, counts)
    again = stratified_split(data.labels["rgb"], 3)
    np.testing.assert_array_equal(again["test"], data.splits["rgb"]["test"])
    assert not np.array_equal(stratified_split(data.labels["rgb"], 4)["test"], again["test"])


def _corrupt(d, what):
    if what == "missing_dir":
        return d / "nope", "not found"
    if what == "missing_labels":
        (d / "labels.npy").unlink()
        return d, "Missing file: .*labels.npy"
    if what == "float_labels":
        np.save(d / "labels.npy", np.load(d / "labels.npy").astype("float32"))
        return d, "labels.npy must hold integers"
    if what == "out_of_range":
        y = np.load(d / "labels.npy")
        y[y == 2] = 5
        np.save(d / "labels.npy", y)
        return d, "without gaps"
    if what == "rank":
        np.save(d / "vec_data_normalized.npy", np.zeros((60, 2, 2), "float32"))
        return d, "got rank 3"
    if what == "mismatched_n":
        np.save(d / "vec_data_normalized.npy", np.zeros((59, 5), "float32"))
        return d, "has 59 rows but labels.npy has 60"
    if what == "nan":
        a = np.load(d / "rgb_data_normalized.npy")
        a[3, 0, 0, 0] = np.nan
        np.save(d / "rgb_data_normalized.npy", a)
        return d, "1 sample\\(s\\) contain NaN or inf"
    if what == "overlap":
        train = np.load(d / "train_idx.npy")
        np.save(d / "test_idx.npy", np.concatenate([np.load(d / "test_idx.npy"), train[:2]]))
        return d, "splits 'train' and 'test' overlap"
    if what == "index_out_of_range":
        np.save(d / "valid_idx.npy", np.array([0, 1, 60]))
        return d, "only 60 samples"
    if what == "class_missing_in_train":
        y = np.load(d / "labels.npy")
        train = np.load(d / "train_idx.npy")
        keep = train[y[train] != 2]
        np.save(d / "train_idx.npy", keep)
        return d, "classes \\['2'\\] have no training sample"
    if what == "pickle":
        np.save(d / "labels.npy", np.array([{"a": 1}] * 60, dtype=object), allow_pickle=True)
        return d, "unpickling"
    if what == "corrupt":
        (d / "rgb_data_normalized.npy").write_bytes(b"\x93NUMPY garbage")
        return d, "not a readable .npy"
    if what == "unknown_modality":
        return d, "Unknown modality 'depth'; .* has: rgb, vec"
    raise AssertionError(what)


@pytest.mark.parametrize("what", [
    "missing_dir", "missing_labels", "float_labels", "out_of_range", "rank", "mismatched_n", "nan",
    "overlap", "index_out_of_range", "class_missing_in_train", "pickle", "corrupt", "unknown_modality",
])
def test_bad_input_is_one_clear_error(tmp_path, what):
    d = write_released(tmp_path / "d")
    d, message = _corrupt(d, what)
    modalities = ["rgb", "depth"] if what == "unknown_modality" else None
    with pytest.raises(DataError, match=message):
        load_released_layout(d, modalities=modalities)
