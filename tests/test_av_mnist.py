"""AV-MNIST from the real FSDD recordings and MNIST-10k in ../shared/data."""

from pathlib import Path

import numpy as np
import pytest

from discomkd_keras.data import av_mnist
from discomkd_keras.data.av_mnist import find_fsdd_files, load_av_mnist, load_fsdd, pair_by_label
from discomkd_keras.data.multimodal_dataset import SPLITS, DataError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FSDD = SHARED / "fsdd" / "recordings"
MNIST = SHARED / "mnist" / "mnist-10k.npz"

pytestmark = pytest.mark.skipif(
    not (FSDD.is_dir() and MNIST.is_file()),
    reason=f"real data not found under {SHARED} (needs fsdd/recordings and mnist/mnist-10k.npz)")


@pytest.fixture(scope="module")
def files():
    return find_fsdd_files(FSDD)


@pytest.fixture(scope="module")
def raw_audio():
    return load_fsdd(FSDD)


@pytest.fixture(scope="module")
def official():
    return load_av_mnist(FSDD, MNIST, split="official", seed=0)


@pytest.fixture(scope="module")
def paired():
    return load_av_mnist(FSDD, MNIST, split="official", seed=5, pairing="paired")


def assert_disjoint_cover(splits, n=None):
    idx = [splits[s] for s in SPLITS]
    joined = np.concatenate(idx)
    assert len(np.unique(joined)) == len(joined), "splits overlap"
    if n is not None:
        assert len(joined) == n


def test_official_dataset_shapes_and_interface(official, files):
    ds = official
    assert ds.name == "av-mnist" and ds.class_names == [str(d) for d in range(10)]
    assert ds.modalities == ["image", "audio"]
    assert ds.kinds == {"image": "image", "audio": "spectrogram"}
    assert ds.inputs["image"].shape == (10000, 28, 28, 1)
    assert ds.inputs["audio"].shape == (3000, 40, 61, 1)
    assert all(x.dtype == np.float32 for x in ds.inputs.values())
    assert 0.0 <= ds.inputs["image"].min() and ds.inputs["image"].max() <= 1.0
    np.testing.assert_array_equal(ds.labels["audio"], [f[1] for f in files])
    ds.validate()
    for m in ds.modalities:
        assert_disjoint_cover(ds.splits[m], len(ds.labels[m]))


def test_official_test_set_is_takes_0_to_4(official, files):
    test = official.splits["audio"]["test"]
    takes = np.array([f[3] for f in files])
    assert len(test) == 300
    assert set(takes[test].tolist()) == {0, 1, 2, 3, 4}
    assert len(np.flatnonzero(takes < 5)) == 300
    valid = official.splits["audio"]["valid"]
    assert np.bincount(official.labels["audio"][valid], minlength=10).tolist() == [27] * 10


def test_speaker_split_holds_out_one_speaker(files):
    ds = load_av_mnist(FSDD, MNIST, split="speaker", test_speaker="lucas", seed=1)
    speakers = np.array([f[2] for f in files])
    test = ds.splits["audio"]["test"]
    assert len(test) == 500 and set(speakers[test].tolist()) == {"lucas"}
    others = np.concatenate([ds.splits["audio"]["train"], ds.splits["audio"]["valid"]])
    assert "lucas" not in set(speakers[others].tolist())
    assert_disjoint_cover(ds.splits["audio"], 3000)


def test_audio_normalised_with_train_statistics_only(official, raw_audio):
    spec = raw_audio[0].astype(np.float64)
    train = spec[official.splits["audio"]["train"]]
    pre = official.preprocessing["audio"]
    assert pre["mean"] == pytest.approx(train.mean(), rel=1e-9)
    assert pre["std"] == pytest.approx(train.std(), rel=1e-9)
    # Statistics over all clips differ, so the check above can tell them apart.
    assert abs(spec.mean() - train.mean()) > 1e-4
    expected = (spec - pre["mean"]) / pre["std"]
    np.testing.assert_allclose(official.inputs["audio"][..., 0], expected, atol=1e-4)


def test_preprocessing_dicts(official):
    import json

    pre = official.preprocessing
    json.dumps(pre)
    assert pre["image"] == {"encoding": "gray8", "raw": "8-bit grayscale image, 28x28", "layout": "HWC",
                            "scale": 1 / 255, "offset": 0.0, "height": 28, "width": 28}
    assert pre["audio"]["spectrogram"] == av_mnist.SPECTROGRAM_PARAMS
    assert pre["audio"]["layout"] == "HWC (mels, frames, 1)"
    assert pre["audio"]["raw"] == "mono 16-bit PCM WAV"


def test_paired_is_aligned_per_split(paired):
    ds = paired
    assert ds.inputs["image"].shape == (3000, 28, 28, 1)
    assert ds.inputs["audio"].shape == (3000, 40, 61, 1)
    np.testing.assert_array_equal(ds.labels["image"], ds.labels["audio"])
    for s in SPLITS:
        np.testing.assert_array_equal(ds.splits["image"][s], ds.splits["audio"][s])
    ds.validate()
    # No MNIST image shows up in two splits, nor twice in one (MNIST-10k has no duplicates).
    owner = {}
    for s in SPLITS:
        rows = ds.inputs["image"][ds.splits["image"][s]]
        keys = [r.tobytes() for r in (rows * 255).round().astype(np.uint8)]
        assert len(set(keys)) == len(keys), f"an image repeats inside {s}"
        for k in keys:
            assert owner.setdefault(k, s) == s, "an MNIST image is used in two splits"


def test_pairing_draws_from_the_same_mnist_split(official):
    img, aud = official, official   # the unpaired splits the paired set is built from
    pick = pair_by_label(aud.labels["audio"], aud.splits["audio"],
                         img.labels["image"], img.splits["image"], seed=0)
    assert (pick >= 0).all()
    np.testing.assert_array_equal(img.labels["image"][pick], aud.labels["audio"])
    for s in SPLITS:
        assert np.isin(pick[aud.splits["audio"][s]], img.splits["image"][s]).all()
    again = load_av_mnist(FSDD, MNIST, seed=0, pairing="paired")
    np.testing.assert_array_equal(again.inputs["image"], img.inputs["image"][pick])


def test_seed_changes_valid_not_test(official):
    other = load_av_mnist(FSDD, MNIST, seed=1)
    a, b = official.splits["audio"], other.splits["audio"]
    np.testing.assert_array_equal(a["test"], b["test"])
    assert not np.array_equal(a["valid"], b["valid"])


def test_missing_data_names_the_cli_options(tmp_path):
    with pytest.raises(DataError, match="--fsdd-dir") as e:
        load_av_mnist(tmp_path / "nowhere", MNIST)
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match="--mnist"):
        load_av_mnist(FSDD, tmp_path / "none.npz")


def test_default_paths_fall_back_to_repository_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path, _ = av_mnist._default_path(Path("fsdd") / "recordings")
    assert path is not None and path.resolve() == FSDD.resolve()
    monkeypatch.setattr(av_mnist, "_SHARED_REL", Path("no") / "such" / "dir")
    with pytest.raises(DataError, match="FSDD.*--fsdd-dir"):
        load_av_mnist()


def test_unknown_speaker_split_and_pairing():
    with pytest.raises(DataError, match="george, jackson, lucas, nicolas, theo, yweweler"):
        load_av_mnist(FSDD, MNIST, split="speaker", test_speaker="bob")
    with pytest.raises(DataError, match="official, speaker"):
        load_av_mnist(FSDD, MNIST, split="random")
    with pytest.raises(DataError, match="unpaired, paired"):
        load_av_mnist(FSDD, MNIST, pairing="zip")


def test_bad_mnist_files(tmp_path):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(MNIST.read_bytes()[:1000])
    with pytest.raises(DataError, match="corrupt.npz"):
        av_mnist.load_mnist(corrupt)
    nokeys = tmp_path / "nokeys.npz"
    np.savez(nokeys, images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DataError, match=r"nokeys.npz.*\['x', 'y'\]"):
        av_mnist.load_mnist(nokeys)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, x=np.array([object()], dtype=object), y=np.zeros(1, np.uint8))
    with pytest.raises(DataError, match="pickled.npz"):
        av_mnist.load_mnist(pickled)


def test_bad_recordings_folder(tmp_path):
    (tmp_path / "0_bob_0.wav").write_text("not audio")
    with pytest.raises(DataError, match="0_bob_0.wav"):
        load_fsdd(tmp_path)
    (tmp_path / "hello.wav").write_text("")
    with pytest.raises(DataError, match="hello.wav"):
        find_fsdd_files(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="--fsdd-dir"):
        find_fsdd_files(empty)
