"""Training data as files (discomkd_keras/data/file_layouts.py, file_cache.py): layouts,
readers shared with the device, the size policy, the cache and every bad-file case."""

import json
import os
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from discomkd_keras.cli import main
from discomkd_keras.data import DataError, load_data
from discomkd_keras.data.file_cache import DecodedInputs, cache_root
from discomkd_keras.data.file_layouts import load_files
from discomkd_keras.edge_demo.preprocessing import Preprocessor, decode_depth

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CLASSES = ("cat", "dog", "eel")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DISCOMKD_CACHE", str(tmp_path / "cache"))


def rgb_image(c, rng, shape=(20, 24)):
    img = rng.integers(0, 60, shape + (3,), dtype=np.uint8)
    img[..., c] += 150
    return img


def depth_image(c, rng, shape=(20, 24)):
    """uint16 millimetres far above 255: 8 bits could not hold them."""
    d = (rng.integers(500, 900, shape) + 1000 * c).astype(np.uint16)
    d[0, 0] = 0  # a hole
    return d


def write_tree(root, n=8, rgb_suffix=".png", depth=True, counts=None):
    """root/rgb/<class>/i.png (8-bit RGB), root/depth/<class>/i.png (16-bit mm)."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(CLASSES):
        for m in ("rgb", "depth") if depth else ("rgb",):
            (root / m / name).mkdir(parents=True, exist_ok=True)
        for i in range((counts or {}).get("rgb", n)):
            Image.fromarray(rgb_image(c, rng)).save(root / "rgb" / name / f"{i}{rgb_suffix}",
                                                    quality=95)
        for i in range((counts or {}).get("depth", n) if depth else 0):
            Image.fromarray(depth_image(c, rng)).save(root / "depth" / name / f"{i}.png")
    return root


def device_input(data, modality, path):
    """What the device demo's Preprocessor makes of `path` under the run's preprocessing."""
    card = {"preprocessing": data.preprocessing[modality], "kind": data.kinds[modality],
            "input": {"shape": [1, *data.input_shape(modality)]}}
    [(_, x)] = Preprocessor(card, warn=lambda m: None).load(path)
    return x


def row_of(data, modality, directory, rel):
    return data.inputs[modality].files.index(rel)


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def error_line(result):
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1, result.output
    return lines[0]


# --------------------------------------------------------------------------- layouts and readers


def test_modality_trees_decode_png_and_16_bit_depth_as_the_device_does(tmp_path):
    tree = write_tree(tmp_path / "tree")
    data = load_files(tree, image_size={"*": [16, 16]})
    assert data.description.startswith(f"Found modality trees in {tree}: depth 24 image files "
                                       "(16-bit depth (mm), 16x16x1); rgb 24 image files "
                                       "(8-bit RGB, 16x16x3); 3 classes")
    assert data.class_names == list(CLASSES) and data.modalities == ["depth", "rgb"]
    assert data.preprocessing["depth"]["resize"] == {"interpolation": "nearest",
                                                     "crop_to_aspect": True}
    assert data.preprocessing["rgb"]["resize"]["interpolation"] == "bilinear"
    depth = data.inputs["depth"]
    assert isinstance(depth, DecodedInputs) and isinstance(depth.raw, np.memmap)
    assert depth.raw.dtype == np.uint16 and data.inputs["rgb"].raw.dtype == np.uint8
    # Full precision: the cache holds the millimetres themselves (nearest: no new values).
    png = np.array(Image.open(tree / "depth" / "eel" / "3.png"))
    i = row_of(data, "depth", tree, "depth/eel/3.png")
    assert set(np.unique(depth.raw[i])) <= set(np.unique(png)) and depth.raw[i].max() > 2500
    # Training's float input of a file is the device's, bit for bit, in both modalities.
    for m, rel in (("depth", "depth/eel/3.png"), ("rgb", "rgb/dog/5.png")):
        j = row_of(data, m, tree, rel)
        np.testing.assert_array_equal(data.inputs[m][j], device_input(data, m, tree / rel))
    # Normalisation statistics come from the training split alone.
    train = np.asarray(depth.raw[np.sort(data.splits["depth"]["train"])], np.float64)
    pre = data.preprocessing["depth"]
    assert pre["scale"] == pytest.approx(1 / train.std()) and \
        pre["offset"] == pytest.approx(-train.mean() / train.std())
    x_train = data.split("depth", "train")[0]
    assert abs(float(np.asarray(x_train).mean())) < 1e-4


def test_split_folders_unpaired_counts_and_class_names_file(tmp_path):
    tree = tmp_path / "tree"
    rng = np.random.default_rng(1)
    for split, n in (("train", 6), ("test", 2)):
        for c, name in enumerate(CLASSES):
            for m, k in (("rgb", n), ("gray", n + 1)):
                folder = tree / m / split / name
                folder.mkdir(parents=True, exist_ok=True)
                for i in range(k):
                    img = rgb_image(c, rng) if m == "rgb" else rgb_image(c, rng)[..., 0]
                    Image.fromarray(img).save(folder / f"{i}.png")
    (tree / "class_names.txt").write_text("eel\ncat\ndog\n")
    data = load_files(tree)
    assert data.class_names == ["eel", "cat", "dog"]
    assert data.preprocessing["gray"]["encoding"] == "gray8" and data.input_shape("gray") == (20, 24, 1)
    assert {s: len(i) for s, i in data.splits["rgb"].items()} == {"train": 15, "valid": 3, "test": 6}
    assert {s: len(i) for s, i in data.splits["gray"].items()} == {"train": 18, "valid": 3, "test": 9}
    assert not data.paired
    assert "train/test folders, validation 1/8 of train" in data.description
    # labels follow class_names.txt: the first rgb file of 'eel' is class 0
    assert data.labels["rgb"][row_of(data, "rgb", tree, "rgb/test/eel/0.png")] == 0


def test_manifest_with_a_missing_modality_row_trains(tmp_path):
    tree = write_tree(tmp_path / "files", n=6)
    rows = ["split,label,rgb,depth"]
    for c, name in enumerate(CLASSES):
        for i in range(6):
            split = "train" if i < 4 else ("valid" if i == 4 else "test")
            depth = "" if (name, i) == ("dog", 1) else f"depth/{name}/{i}.png"
            rows.append(f"{split},{name},rgb/{name}/{i}.png,{depth}")
    (tmp_path / "files" / "manifest.csv").write_text("\n".join(rows) + "\n")
    data = load_files(tree)
    assert len(data.labels["rgb"]) == 18 and len(data.labels["depth"]) == 17
    assert not data.paired and data.description.startswith("Found a manifest")
    assert len(data.splits["rgb"]["train"]) == 12 and len(data.splits["depth"]["train"]) == 11
    run = tmp_path / "run"
    result = cli("train", "--data-dir", tree, "--epochs", 1, "--encoder", "lenet",
                 "--feature-dim", 8, "--batch-size", 4, "--image-size", "16,16", "--run-dir", run,
                 "--quiet")
    assert result.exit_code == 0, result.output
    assert "Found a manifest in" in result.output
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["source"] == "files" and config["split_sizes"]["depth"]["train"] == 11
    assert config["preprocessing"]["depth"]["height"] == 16
    assert config["data_report"] == {"layout": "manifest", "skipped_files": {},
                                     "skipped_examples": {}}


def test_jpeg_wav_tiff_and_npy_readers_agree_with_the_device(tmp_path):
    tifffile = pytest.importorskip("tifffile", reason="TIFF is an optional extra (tifffile)")
    tree = tmp_path / "tree"
    rng = np.random.default_rng(2)
    for c, name in enumerate(CLASSES):
        for m in ("photo", "sound", "bands", "vec"):
            (tree / m / name).mkdir(parents=True)
        for i in range(7):
            Image.fromarray(rgb_image(c, rng, (30, 20))).save(tree / "photo" / name / f"{i}.jpg")
            n = int(rng.integers(3000, 5000))
            tone = 0.3 * np.sin(2 * np.pi * (300 + 400 * c) * np.arange(n) / 8000)
            with wave.open(str(tree / "sound" / name / f"{i}.wav"), "wb") as w:
                w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
                w.writeframes(np.round(tone * 32767).astype("<i2").tobytes())
            bands = rng.integers(0, 3000, (18, 18, 5)).astype(np.uint16)
            bands[..., c] += 20000
            if i % 2:  # planar: bands first on disk
                tifffile.imwrite(tree / "bands" / name / f"{i}.tif", np.moveaxis(bands, -1, 0),
                                 planarconfig="separate")
            else:
                tifffile.imwrite(tree / "bands" / name / f"{i}.tif", bands, planarconfig="contig")
            vec = rng.normal(size=6).astype(np.float32) * [1, 10, 100, 1, 1, 1]
            vec[c] += 3
            np.save(tree / "vec" / name / f"{i}.npy", vec)
    data = load_files(tree, image_size={"bands": [12, 12]}, clip_seconds=0.5)
    assert data.kinds == {"bands": "image", "photo": "image", "sound": "spectrogram", "vec": "vector"}
    assert data.input_shape("bands") == (12, 12, 5) and data.input_shape("photo") == (30, 20, 3)
    assert data.input_shape("sound") == (40, 30, 1) and data.input_shape("vec") == (6,)
    assert data.inputs["bands"].raw.dtype == np.uint16
    # bands and vectors get one statistic per channel / feature
    assert len(data.preprocessing["bands"]["scale"]) == 5 and len(data.preprocessing["vec"]["offset"]) == 6
    for m, rel in (("photo", "photo/cat/4.jpg"), ("sound", "sound/eel/2.wav"),
                   ("bands", "bands/dog/3.tif"), ("bands", "bands/dog/4.tif"),
                   ("vec", "vec/eel/6.npy")):
        i = row_of(data, m, tree, rel)
        np.testing.assert_array_equal(data.inputs[m][i], device_input(data, m, tree / rel))


@pytest.mark.skipif(not (SHARED / "fsdd").exists() or not (SHARED / "mnist").exists(),
                    reason="needs ../shared/data (FSDD recordings and MNIST digits)")
def test_fsdd_clips_and_mnist_digits_as_a_modality_tree(tmp_path):
    tree = tmp_path / "av"
    with np.load(SHARED / "mnist" / "mnist-10k.npz", allow_pickle=False) as f:
        x, y = f["x"], f["y"]
    for digit in range(3):
        (tree / "image" / str(digit)).mkdir(parents=True)
        (tree / "audio" / str(digit)).mkdir(parents=True)
        for i in np.flatnonzero(y == digit)[:8]:
            Image.fromarray(x[i]).save(tree / "image" / str(digit) / f"{i}.png")
        for take in range(8):
            shutil.copy(SHARED / "fsdd" / "recordings" / f"{digit}_jackson_{take}.wav",
                        tree / "audio" / str(digit))
    data = load_files(tree)
    assert data.preprocessing["audio"]["spectrogram"]["expected_rate"] == 8000
    assert data.input_shape("audio") == (40, 61, 1) and data.input_shape("image") == (28, 28, 1)
    for m, rel in (("audio", "audio/2/2_jackson_5.wav"), ("image", next(
            str(p.relative_to(tree)) for p in sorted((tree / "image" / "1").iterdir())))):
        i = row_of(data, m, tree, rel)
        np.testing.assert_array_equal(data.inputs[m][i], device_input(data, m, tree / rel))


def test_sun_rgbd_rotated_millimetres_and_scaled_units(tmp_path):
    mm = np.array([0, 1, 1234, 8191, 10000], np.uint16)
    sun = ((mm.astype(np.uint32) << 3) | (mm.astype(np.uint32) >> 13)).astype(np.uint16)
    np.testing.assert_array_equal(decode_depth(sun, {"rotate_right_bits": 3}), mm)
    np.testing.assert_array_equal(decode_depth(np.array([0, 5, 12345], np.uint16),
                                               {"mm_per_unit": 0.1}), [0, 1, 1235])
    tree = write_tree(tmp_path / "tree", n=6)
    for p in (tree / "depth").rglob("*.png"):
        v = np.array(Image.open(p)).astype(np.uint32)
        Image.fromarray(((v << 3) | (v >> 13)).astype(np.uint16)).save(p)
    data = load_files(tree, depth_units={"depth": "sunrgbd"})
    assert data.preprocessing["depth"]["depth_decode"] == {"rotate_right_bits": 3}
    i = row_of(data, "depth", tree, "depth/dog/2.png")
    stored = np.array(Image.open(tree / "depth" / "dog" / "2.png"))
    np.testing.assert_array_equal(data.inputs["depth"].raw[i][..., 0],
                                  decode_depth(stored, {"rotate_right_bits": 3}))
    assert data.inputs["depth"].raw[i].max() < 3000  # millimetres again, not rotated values
    np.testing.assert_array_equal(data.inputs["depth"][i],
                                  device_input(data, "depth", tree / "depth/dog/2.png"))


def test_size_policy_crop_or_stretch_and_nearest_depth(tmp_path):
    tree = write_tree(tmp_path / "tree", n=10)
    crop = load_files(tree, image_size={"*": [10, 10]})
    stretch = load_files(tree, image_size={"rgb": [10, 10]}, crop_to_aspect=False)
    assert stretch.input_shape("depth") == (20, 24, 1)  # its first file's size
    assert stretch.preprocessing["rgb"]["resize"]["crop_to_aspect"] is False
    i = row_of(crop, "rgb", tree, "rgb/cat/1.png")
    assert not np.array_equal(crop.inputs["rgb"].raw[i], stretch.inputs["rgb"].raw[i])
    src = np.array(Image.open(tree / "rgb/cat/1.png"))
    from discomkd_keras.edge_demo import image_ops
    np.testing.assert_array_equal(stretch.inputs["rgb"].raw[i],
                                  image_ops.fit(src, 10, 10, crop=False)[0])
    np.testing.assert_array_equal(crop.inputs["rgb"].raw[i], image_ops.fit(src, 10, 10)[0])


def test_cache_is_reused_and_renewed_when_a_file_changes(tmp_path, monkeypatch, capsys):
    tree = write_tree(tmp_path / "tree", n=10)
    first = load_files(tree)
    assert "decoding rgb: 30/30 files" in capsys.readouterr().err
    entries = sorted(p.name for p in cache_root().iterdir())
    assert len(entries) == 2
    calls = []
    with monkeypatch.context() as patched:
        patched.setattr(Preprocessor, "raw_samples", lambda self, path: calls.append(path) or [])
        again = load_files(tree)  # read from the cache: no file is decoded
    assert calls == [] and capsys.readouterr().err == ""
    np.testing.assert_array_equal(np.asarray(again.inputs["rgb"]), np.asarray(first.inputs["rgb"]))
    touched = tree / "rgb" / "cat" / "0.png"
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    load_files(tree)
    assert len(list(cache_root().iterdir())) == 3  # rgb decoded anew, depth reused


# --------------------------------------------------------------------------- bad files


def test_corrupt_file_names_it_and_writes_nothing_unless_skipped(tmp_path):
    tree = write_tree(tmp_path / "tree", n=6)
    (tree / "rgb" / "dog" / "3.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    run = tmp_path / "run"
    args = ["train", "--data-dir", tree, "--epochs", 1, "--encoder", "lenet", "--feature-dim", 8,
            "--batch-size", 4, "--image-size", "12,12", "--run-dir", run, "--quiet"]
    line = error_line(cli(*args))
    assert f"{tree / 'rgb' / 'dog' / '3.png'}: not a readable image" in line
    assert "--skip-bad-files" in line
    assert not run.exists() and not any(cache_root().glob("rgb-*"))
    result = cli(*args, "--skip-bad-files")
    assert result.exit_code == 0, result.output
    assert "Files left out as unreadable (--skip-bad-files): rgb 1" in result.output
    config = json.loads((run / "config.json").read_text())
    assert config["data_report"]["skipped_files"] == {"rgb": 1}
    assert "3.png: not a readable image" in config["data_report"]["skipped_examples"]["rgb"][0]
    assert sum(config["split_sizes"]["rgb"].values()) == 17
    # The cache entry holds the bad file too: without the flag, the same one line again.
    assert "3.png: not a readable image" in error_line(cli(*args[:-3], "--run-dir", tmp_path / "r2"))


def test_eight_bit_png_where_16_bit_depth_is_expected(tmp_path):
    tree = write_tree(tmp_path / "tree", n=5)
    bad = tree / "depth" / "eel" / "4.png"
    Image.fromarray(np.full((20, 24), 7, np.uint8)).save(bad)
    with pytest.raises(DataError) as info:
        load_files(tree)
    # the modality's encoding is its majority's (14 16-bit PNGs): the 8-bit one is named
    assert str(info.value) == ("depth: 14 files are 16-bit depth PNGs but 1 is 8-bit: "
                               f"{bad.relative_to(tree)}; remove or convert it, or pass "
                               "--skip-bad-files to leave it out.")


def test_empty_class_and_class_sets_that_differ(tmp_path):
    tree = write_tree(tmp_path / "tree", n=4)
    (tree / "rgb" / "fox").mkdir()
    with pytest.raises(DataError, match=r"rgb/fox: the class folder holds no sample files"):
        load_files(tree)
    Image.fromarray(rgb_image(0, np.random.default_rng(0))).save(tree / "rgb" / "fox" / "0.png")
    shutil.rmtree(tree / "depth" / "cat")
    with pytest.raises(DataError) as info:
        load_files(tree)
    assert "depth lacks ['cat', 'fox']" in str(info.value) and "rgb lacks" not in str(info.value)
    # split folders: a class with no training files is refused by name
    split_tree = tmp_path / "split"
    for m in ("a", "b"):
        for split, names in (("train", CLASSES[:2]), ("valid", CLASSES), ("test", CLASSES)):
            for name in names:
                (split_tree / m / split / name).mkdir(parents=True)
                Image.fromarray(rgb_image(0, np.random.default_rng(0))).save(
                    split_tree / m / split / name / "0.png")
    with pytest.raises(DataError, match=r"classes \['eel'\] have no training sample"):
        load_files(split_tree)


@pytest.mark.parametrize("cell, message", [
    ("rgb/cat/nope.png", "rgb file 'rgb/cat/nope.png' does not exist in"),
    ("../outside.png", "rgb path '../outside.png' leaves"),
    ("/etc/hostname", "rgb path '/etc/hostname' leaves"),
])
def test_manifest_paths_that_do_not_exist_or_leave_the_folder(tmp_path, cell, message):
    tree = write_tree(tmp_path / "d" / "files", n=2)
    (tmp_path / "d" / "outside.png").write_bytes(b"")
    rows = ["split,label,rgb,depth", "train,cat,rgb/cat/0.png,depth/cat/0.png",
            f"test,dog,{cell},depth/dog/0.png"]
    (tree / "manifest.csv").write_text("\n".join(rows) + "\n")
    line = error_line(cli("train", "--data-dir", tree, "--run-dir", tmp_path / "run"))
    assert f"manifest.csv, line 3: {message}" in line
    assert not (tmp_path / "run").exists()


def test_label_not_in_the_class_list(tmp_path):
    tree = write_tree(tmp_path / "files", n=2)
    (tree / "class_names.txt").write_text("cat\ndog\n")
    (tree / "manifest.csv").write_text("split,label,rgb,depth\ntrain,cat,rgb/cat/0.png,"
                                       "depth/cat/0.png\ntrain,eel,rgb/eel/0.png,\n")
    with pytest.raises(DataError, match=r"label\(s\) \['eel'\] are not in the class list .*"
                                        r"class_names.txt \(2 classes: cat, dog\)"):
        load_files(tree)
    (tree / "manifest.csv").unlink()  # the same check for class folders
    with pytest.raises(DataError, match=r"label\(s\) \['eel'\] are not in the class list"):
        load_files(tree)


def test_mixed_kinds_bad_options_and_a_single_modality(tmp_path):
    tree = write_tree(tmp_path / "tree", n=3)
    np.save(tree / "rgb" / "cat" / "9.npy", np.zeros(3))
    with pytest.raises(DataError, match=r"rgb: files of different kinds in one modality "
                                        r"\(image: rgb/.*\.png, npy: rgb/cat/9.npy\)"):
        load_files(tree)
    (tree / "rgb" / "cat" / "9.npy").unlink()
    with pytest.raises(DataError, match="Unknown modality 'sonar' in --depth-unit"):
        load_files(tree, depth_units={"sonar": "mm"})
    with pytest.raises(DataError, match="--depth-unit 'feet': expected mm, sunrgbd"):
        load_files(tree, depth_units={"depth": "feet"})
    line = error_line(cli("train", "--data-dir", tree, "--image-size", "rgb=0,5"))
    assert "--image-size" in line or "expected [MOD=]H,W" in line
    single = write_tree(tmp_path / "single", n=2, depth=False)
    with pytest.raises(DataError, match="at least 2 modality folders"):
        load_data({"source": "files", "directory": str(single)})


@pytest.mark.skipif(not (SHARED / "fsdd").exists() or not (SHARED / "mnist").exists(),
                    reason="needs ../shared/data (FSDD recordings and MNIST digits)")
def test_the_readme_worked_example_writes_a_tree_that_loads(tmp_path):
    """README, 'Your data': the script that writes AV-MNIST as modality trees, run as printed
    (only its two folders moved), and the tree it writes read back."""
    import re
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    script = re.search(r"<!-- av-mnist-tree -->\n```python\n(.*?)```", readme, re.S).group(1)
    script = script.replace('Path("../shared/data")', f"Path({str(SHARED)!r})")
    script = script.replace('Path("av-mnist-tree")', f"Path({str(tmp_path / 'tree')!r})")
    exec(compile(script, "README.md", "exec"), {})
    data = load_files(tmp_path / "tree", modalities=["image", "audio"])
    assert data.class_names == [str(d) for d in range(10)] and data.modalities == ["image", "audio"]
    assert {s: len(i) for s, i in data.splits["audio"].items()} == \
        {"train": 2360, "valid": 340, "test": 300}
    assert len(data.labels["image"]) == 10000 and data.input_shape("image") == (28, 28, 1)
    assert data.input_shape("audio") == (40, 61, 1) and not data.paired
    assert "audio: train/test folders, validation 1/8 of train" in data.description
