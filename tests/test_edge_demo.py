"""Proof that edge_demo/ runs an exported model with nothing but its own
requirements.txt, and predicts what the Keras classifier predicts.

A separate virtual environment gets only edge_demo/requirements.txt (no
TensorFlow, Keras or discomkd_keras), and edge_demo's Python files are copied
alone into a "device" folder, as on a Raspberry Pi; tiny runs are trained here,
exported (int8 and float32), their test samples written as the files a device
would have (.npy, 8-bit PNG, 16-bit depth PNG, WAV), and the copied
`classify.py --json` run in that environment as a subprocess. Its top-1
classes must equal the Keras classifier's (RUN/best/<m>.keras, class
probabilities) on the same samples.
"""

import json
import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from discomkd_keras.cli import main
from discomkd_keras.data import load_data
from discomkd_keras.edge_demo import classify, model_card
from discomkd_keras.edge_demo.preprocessing import Preprocessor
from discomkd_keras.edge_demo.runtime import Classifier
from discomkd_keras.export import export_modality
from helpers import write_released

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="TFLite conversion needs the TensorFlow backend")

ROOT = Path(__file__).resolve().parents[1]
EDGE = ROOT / "edge_demo"
DEVICE_MODULES = ("classify", "model_card", "runtime", "preprocessing", "image_ops", "camera",
                  "spectrogram")
# pip output meaning "the package index cannot be reached", the only reason to skip.
OFFLINE_SIGNS = ("No matching distribution found", "Could not find a version", "NewConnectionError",
                 "Temporary failure in name resolution", "Max retries exceeded",
                 "Network is unreachable", "Failed to establish a new connection")
QUIET = lambda *_: None  # noqa: E731


def clean_env():
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


@pytest.fixture(scope="module")
def demo_python(tmp_path_factory):
    """python of a fresh venv holding only edge_demo/requirements.txt; edge_demo's
    Python files are copied, without the package around them, to ../../device/."""
    where = tmp_path_factory.mktemp("demo-venv")
    (where / "device").mkdir()
    for module in DEVICE_MODULES:
        shutil.copy(EDGE / f"{module}.py", where / "device")
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True,
                   env=clean_env(), cwd=where, timeout=300)
    python = venv / "bin" / "python"
    pip = subprocess.run([str(python), "-m", "pip", "install", "-q", "-r",
                          str(EDGE / "requirements.txt")],
                         capture_output=True, text=True, env=clean_env(), cwd=where, timeout=600)
    if pip.returncode != 0:
        output = pip.stdout + pip.stderr
        if any(sign in output for sign in OFFLINE_SIGNS):
            pytest.skip("pip cannot reach the package index to install edge_demo/requirements.txt: "
                        + output.strip().splitlines()[-1])
        pytest.fail(f"pip install -r edge_demo/requirements.txt failed:\n{output}")
    return python


def run_demo(python, *args, cwd=None):
    classify_py = Path(python).parents[2] / "device" / "classify.py"
    return subprocess.run([str(python), str(classify_py), *[str(a) for a in args]],
                          capture_output=True, text=True, env=clean_env(),
                          cwd=cwd or Path(python).parents[2], timeout=300)


def demo_top(python, model_dir, files, k=3):
    """{name: top-k list} from classify.py --json, which must succeed."""
    done = run_demo(python, model_dir, *files, "--json", "--top-k", k)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    for row in rows:
        assert set(row) == {"file", "top_k", "inference_ms"} and row["inference_ms"] > 0
        assert len(row["top_k"]) == k
        assert set(row["top_k"][0]) == {"label", "index", "probability"}
    return {row["file"]: row["top_k"] for row in rows}, done.stderr


def one_error_line(done):
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    return lines[0]


def keras_probs(run_dir, modality, x):
    clf = keras.saving.load_model(Path(run_dir) / "best" / f"{modality}.keras", safe_mode=True)
    return np.asarray(clf.predict(x, verbose=0), np.float32)  # a ModalityClassifier


def assert_same_top1(demo, names, keras_p, labels, tflite_p):
    """Every demo top-1 equals Keras's argmax wherever Keras's top-2 margin exceeds
    twice the largest TFLite-vs-Keras probability error seen (`tflite_p`: the export
    runner's probabilities), so that rounding cannot explain a difference. For a
    float32 model that is every sample; for int8 most of them."""
    assert list(demo) == names
    pred = np.array([demo[n][0]["index"] for n in names])
    want = keras_p.argmax(1)
    assert [demo[n][0]["label"] for n in names] == [labels[i] for i in pred]
    error = float(np.abs(tflite_p - keras_p).max())
    top2 = np.sort(keras_p, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > max(2 * error, 1e-6)
    assert clear.mean() >= 0.5, f"too many near ties to compare (largest error {error:.3g})"
    np.testing.assert_array_equal(pred[clear], want[clear])
    return clear


def assert_same_as_runner(demo, names, folder, x, atol=1e-5):
    """The demo's probabilities equal those of the export verifier's runner fed the
    training inputs (same preprocessing, same quantization); returns the runner's."""
    ref = Classifier(folder / f"{folder.name}.tflite").predict(x)
    for i, name in enumerate(names):
        for entry in demo[name]:
            assert entry["probability"] == pytest.approx(float(ref[i, entry["index"]]), abs=atol)
    return ref


def train(args):
    result = CliRunner().invoke(main, ["train", *[str(a) for a in args], "--quiet"])
    assert result.exit_code == 0, result.output
    config = json.loads((Path(args[args.index("--run-dir") + 1]) / "config.json").read_text())
    return config


def save_png(path, array):
    from PIL import Image
    Image.fromarray(array).save(path)
    return path


def save_wav(path, pcm, rate=8000):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(pcm, "<i2").tobytes())
    return path


# --------------------------------------------------------------------------- runs


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """Released layout: `rgb` (N, 3, 12, 12) float images and `vec` (N, 5) vectors."""
    root = tmp_path_factory.mktemp("released")
    data_dir = write_released(root / "data", n_per_class=30)
    run = root / "run"
    train(["--data-dir", data_dir, "--run-dir", run, "--epochs", 4, "--encoder", "rgb=lenet",
           "--feature-dim", 16, "--batch-size", 32, "--lr", 3e-3])
    out = root / "export"
    export_modality(run, "rgb", quantization="int8", io_type="int8", out_dir=out / "int8",
                    representative_size=60, threshold=0.0, log=QUIET)
    export_modality(run, "rgb", quantization="float32", out_dir=out / "float32", log=QUIET)
    export_modality(run, "vec", quantization="float32", out_dir=out / "float32", log=QUIET)
    return root, run, data_dir, out


@pytest.fixture(scope="module")
def av_mnist(tmp_path_factory):
    """A tiny AV-MNIST-like set: ten tones as spoken digits (8 kHz WAVs of varied length),
    MNIST-like 28x28 uint8 images with a class-dependent bright block."""
    root = tmp_path_factory.mktemp("av")
    rng = np.random.default_rng(0)
    recordings = root / "recordings"
    recordings.mkdir()
    for digit in range(10):
        for take in range(12):
            n = int(rng.integers(5000, 9500))  # shorter and longer than the 1 s clip
            t = np.arange(n) / 8000
            x = 0.4 * np.sin(2 * np.pi * (250 + 320 * digit) * t) + 0.05 * rng.standard_normal(n)
            save_wav(recordings / f"{digit}_alice_{take}.wav", np.round(x * 32767).astype("<i2"))
    labels = np.repeat(np.arange(10), 20)
    images = rng.integers(0, 60, size=(len(labels), 28, 28)).astype(np.uint8)
    for i, c in enumerate(labels):
        r, col = 3 + 5 * (c % 5), 4 + 12 * (c // 5)
        images[i, r:r + 5, col:col + 8] = rng.integers(200, 256, size=(5, 8))
    np.savez(root / "mnist.npz", x=images, y=labels)
    run = root / "run"
    train(["--data", "av-mnist", "--fsdd-dir", recordings, "--mnist", root / "mnist.npz",
           "--run-dir", run, "--epochs", 8, "--feature-dim", 16, "--batch-size", 32,
           "--lr", 1e-2, "--augment", "image=none"])
    out = root / "export"
    export_modality(run, "image", quantization="int8", io_type="uint8", out_dir=out / "int8",
                    representative_size=60, threshold=0.0, log=QUIET)
    export_modality(run, "audio", quantization="float32", out_dir=out / "float32", log=QUIET)
    return root, run, images, recordings, out


@pytest.fixture(scope="module")
def rgbd(tmp_path_factory):
    """The built-in synthetic RGB-D set, tiny: 8-bit RGB and uint16 millimetre depth
    (barely trained: the point is the file formats, compared on float32 models)."""
    pytest.importorskip("discomkd_keras.data.synthetic_rgbd")
    root = tmp_path_factory.mktemp("rgbd")
    run = root / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DISCOMKD_CACHE", str(root / "cache"))
        config = train(["--data", "synthetic-rgbd", "--synthetic-size", 16,
                        "--synthetic-per-class", 6, "--run-dir", run, "--epochs", 2,
                        "--encoder", "lenet", "--feature-dim", 8, "--batch-size", 32])
        data = load_data(config["data"])
    out = root / "export"
    for modality in ("rgb", "depth"):
        export_modality(run, modality, quantization="float32", out_dir=out, data=data, log=QUIET)
    return root, run, data, out


# --------------------------------------------------------------------------- tests


def test_demo_environment_has_no_tensorflow(demo_python):
    for module in ("tensorflow", "keras", "discomkd_keras"):
        done = subprocess.run([str(demo_python), "-c", f"import {module}"], capture_output=True,
                              text=True, env=clean_env(), cwd=demo_python.parents[2])
        assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr, module
    done = subprocess.run([str(demo_python), "-c", "import ai_edge_litert, numpy, PIL"],
                          capture_output=True, text=True, env=clean_env())
    assert done.returncode == 0, done.stderr
    # Every device module imports from the copied folder alone, as a top-level module.
    done = subprocess.run([str(demo_python), "-c", f"import {', '.join(DEVICE_MODULES)}; "
                           "print(model_card.__file__)"], capture_output=True, text=True,
                          env=clean_env(), cwd=demo_python.parents[2] / "device")
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).parent == demo_python.parents[2] / "device"
    helped = run_demo(demo_python, "--help")
    assert helped.returncode == 0 and "--benchmark" in helped.stdout and "--camera" in helped.stdout


def test_released_npy_matches_keras(demo_python, released):
    root, run, data_dir, out = released
    config = json.loads((run / "config.json").read_text())
    data = load_data(config["data"])
    test_rows = np.load(data_dir / "test_idx.npy")
    for modality in ("rgb", "vec"):
        raw = np.load(data_dir / f"{modality}_data_normalized.npy")[test_rows]  # CHW on disk
        batch = root / f"{modality}_test.npy"
        np.save(batch, raw)
        x, _ = data.split(modality, "test")
        keras_p = keras_probs(run, modality, x)
        labels = config["class_names"]
        names = [f"{batch}[{i}]" for i in range(len(raw))]
        for quantization in ["float32"] + (["int8"] if modality == "rgb" else []):
            folder = out / quantization / modality
            demo, _ = demo_top(demo_python, folder, [batch])
            ref = assert_same_as_runner(demo, names, folder, x)
            clear = assert_same_top1(demo, names, keras_p, labels, ref)
            assert clear.all() or quantization == "int8"
        # One sample per file too, and the demo's own preprocessing equals training's.
        single = root / f"{modality}_one.npy"
        np.save(single, raw[0])
        demo, _ = demo_top(demo_python, out / "float32" / modality, [single], k=2)
        assert demo[str(single)][0]["index"] == int(keras_p[0].argmax())
        card, _ = model_card.read_export(out / "float32" / modality)
        assert card["preprocessing"]["encoding"] == "float_raw"
        pre = Preprocessor(card)
        np.testing.assert_array_equal(np.stack([v for _, v in pre.load(batch)]), x)


def test_av_mnist_png_and_wav_match_keras(demo_python, av_mnist):
    root, run, images, recordings, out = av_mnist
    config = json.loads((run / "config.json").read_text())
    data = load_data(config["data"])
    labels = config["class_names"]

    # Images: 8-bit grayscale PNGs of the test rows (raw uint8 as in mnist.npz).
    x, _ = data.split("image", "test")
    rows = data.splits["image"]["test"]
    pngs = [save_png(root / f"image_{r}.png", images[r]) for r in rows]
    folder = out / "int8" / "image"
    demo, stderr = demo_top(demo_python, folder, pngs)
    assert stderr == ""
    ref = assert_same_as_runner(demo, [str(p) for p in pngs], folder, x)
    assert_same_top1(demo, [str(p) for p in pngs], keras_probs(run, "image", x), labels, ref)
    card, _ = model_card.read_export(folder)
    assert card["preprocessing"]["encoding"] == "gray8"
    pre = Preprocessor(card)
    got = np.stack([pre.load(p)[0][1] for p in pngs])
    np.testing.assert_array_equal(got, x)  # bit-exact: both compute raw * float32(scale)

    # Audio: the test WAVs themselves, through the shared spectrogram.py.
    from discomkd_keras.data.av_mnist import find_fsdd_files
    files = find_fsdd_files(recordings)
    xa, _ = data.split("audio", "test")
    wavs = [files[r][0] for r in data.splits["audio"]["test"]]
    folder = out / "float32" / "audio"
    demo, _ = demo_top(demo_python, folder, wavs)
    ref = assert_same_as_runner(demo, [str(p) for p in wavs], folder, xa, atol=1e-4)
    assert assert_same_top1(demo, [str(p) for p in wavs], keras_probs(run, "audio", xa), labels,
                            ref).all()
    card, _ = model_card.read_export(folder)
    assert card["preprocessing"]["encoding"] == "wav_pcm16"
    pre = Preprocessor(card)
    np.testing.assert_allclose(np.stack([pre.load(p)[0][1] for p in wavs]), xa, atol=1e-4)

    # The benchmark, in text mode.
    done = run_demo(demo_python, folder, wavs[0], "--benchmark", 20, "--threads", 1)
    assert done.returncode == 0, done.stderr
    assert "median" in done.stdout and "p90" in done.stdout and "1 thread" in done.stdout
    assert "(inference" in done.stdout

    # Wrong sample rate: one line naming both rates.
    fast = save_wav(root / "fast.wav", np.zeros(16000, "<i2"), rate=16000)
    line = one_error_line(run_demo(demo_python, folder, fast))
    assert "16000" in line and "8000" in line and "fast.wav" in line
    # A 16-bit PNG given to the 8-bit image model; an RGB JPEG is converted (and said so).
    deep = save_png(root / "deep.png", np.full((28, 28), 1000, np.uint16))
    line = one_error_line(run_demo(demo_python, out / "int8" / "image", deep))
    assert "16-bit" in line and "8-bit" in line
    colour = save_png(root / "colour.png", np.repeat(images[rows[0]][..., None], 3, axis=2))
    demo, stderr = demo_top(demo_python, out / "int8" / "image", [colour])
    assert "grayscale" in stderr
    assert demo[str(colour)] == demo_top(demo_python, out / "int8" / "image", [pngs[0]])[0][str(pngs[0])]


def test_camera_loop_with_a_stand_in_opencv(av_mnist, monkeypatch, capsys):
    """--camera without a camera: picamera2 absent, a fake cv2 delivering two BGR frames,
    then Ctrl-C. Each frame is classified like the same picture given as a file."""
    root, run, images, recordings, out = av_mnist
    folder = out / "int8" / "image"
    rgb = np.repeat(np.kron(images[0], np.ones((2, 3), np.uint8))[..., None], 3, axis=2)
    rgb[..., 0] //= 2  # not grey: the luma conversion matters
    picture = save_png(root / "camera_frame.png", rgb)

    class FakeCapture:
        reads = 0

        def __init__(self, index):
            assert index == 0

        def isOpened(self):
            return True

        def read(self):
            FakeCapture.reads += 1
            if FakeCapture.reads > 2:
                raise KeyboardInterrupt
            return True, rgb[..., ::-1].copy()  # OpenCV frames are BGR

        def release(self):
            pass

    fake_cv2 = type(sys)("cv2")
    fake_cv2.VideoCapture = FakeCapture
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import picamera2 -> ImportError
    monkeypatch.setitem(sys.modules, "cv2", fake_cv2)
    assert classify.main([str(folder), "--camera", "--json"]) == 0
    frames = capsys.readouterr()
    rows = [json.loads(line) for line in frames.out.splitlines()]
    assert [r["file"] for r in rows] == ["camera:0", "camera:1"]
    assert frames.err.count("resized 84x56 -> 28x28") == 1 and frames.err.count("grayscale") == 1
    assert classify.main([str(folder), str(picture), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["top_k"] == rows[0]["top_k"] == rows[1]["top_k"]

    monkeypatch.setitem(sys.modules, "cv2", None)
    assert classify.main([str(folder), "--camera"]) == 2
    assert "neither is installed" in capsys.readouterr().err


def test_rgbd_png_and_depth_png_match_keras(demo_python, rgbd):
    root, run, data, out = rgbd
    pre_cfg = data.preprocessing
    labels = data.class_names
    xr, _ = data.split("rgb", "test")
    xd, _ = data.split("depth", "test")
    # The raw sensor values back from the inputs (exact: x = raw * scale, no clipping used).
    rgb8 = np.round(xr / np.float32(pre_cfg["rgb"]["scale"])).astype(np.uint8)
    depth16 = np.round(xd[..., 0] / np.float32(pre_cfg["depth"]["scale"])).astype(np.uint16)
    np.testing.assert_array_equal(rgb8.astype(np.float32) * np.float32(pre_cfg["rgb"]["scale"]), xr)

    rgb_pngs = [save_png(root / f"rgb_{i}.png", im) for i, im in enumerate(rgb8)]
    demo, _ = demo_top(demo_python, out / "rgb", rgb_pngs)
    ref = assert_same_as_runner(demo, [str(p) for p in rgb_pngs], out / "rgb", xr)
    assert assert_same_top1(demo, [str(p) for p in rgb_pngs], keras_probs(run, "rgb", xr),
                            labels, ref).all()

    depth_pngs = [save_png(root / f"depth_{i}.png", im) for i, im in enumerate(depth16)]
    folder = out / "depth"
    demo, _ = demo_top(demo_python, folder, depth_pngs)
    ref = assert_same_as_runner(demo, [str(p) for p in depth_pngs], folder, xd)
    assert assert_same_top1(demo, [str(p) for p in depth_pngs], keras_probs(run, "depth", xd),
                            labels, ref).all()
    card, _ = model_card.read_export(folder)
    assert card["preprocessing"]["encoding"] == "depth_mm_uint16"
    assert model_card.read_export(out / "rgb")[0]["preprocessing"]["encoding"] == "rgb8"
    for modality in ("rgb", "depth"):  # no path of this machine (the run, the data cache)
        assert str(root) not in (out / modality / "model_card.json").read_text()
    pre = Preprocessor(card)
    np.testing.assert_array_equal(np.stack([pre.load(p)[0][1] for p in depth_pngs]), xd)
    # A depth image twice the size is resized by nearest neighbour back to the very same input.
    big = save_png(root / "depth_big.png", np.kron(depth16[0], np.ones((2, 2), np.uint16)))
    done = run_demo(demo_python, folder, big, "--json")
    assert done.returncode == 0 and "nearest" in done.stderr, done.stderr
    assert json.loads(done.stdout)["top_k"] == demo[str(depth_pngs[0])]
    # The same through .npy (raw uint16 millimetres).
    np.save(root / "depth.npy", depth16)
    demo_npy, _ = demo_top(demo_python, folder, [root / "depth.npy"])
    assert [v for v in demo_npy.values()] == [demo[str(p)] for p in depth_pngs]

    # Wrong channel count both ways: RGB to the depth model, depth to the RGB model.
    line = one_error_line(run_demo(demo_python, folder, rgb_pngs[0]))
    assert "8-bit RGB" in line and "16-bit" in line
    line = one_error_line(run_demo(demo_python, out / "rgb", depth_pngs[0]))
    assert "16-bit" in line and "RGB" in line


def test_bad_model_folders_and_inputs(demo_python, released, tmp_path):
    root, run, data_dir, out = released
    good = out / "float32" / "rgb"
    sample = root / "rgb_one.npy"
    np.save(sample, np.load(data_dir / "rgb_data_normalized.npy")[0])

    no_card = tmp_path / "no_card"
    shutil.copytree(good, no_card)
    (no_card / "model_card.json").unlink()
    assert "model_card.json is missing" in one_error_line(run_demo(demo_python, no_card, sample))

    broken = tmp_path / "broken"
    shutil.copytree(good, broken)
    (broken / "model_card.json").write_text("{not json")
    assert "not valid JSON" in one_error_line(run_demo(demo_python, broken, sample))

    other = tmp_path / "other_shape"
    shutil.copytree(good, other)
    card = json.loads((other / "model_card.json").read_text())
    card["input"]["shape"] = [1, 16, 16, 3]
    (other / "model_card.json").write_text(json.dumps(card))
    line = one_error_line(run_demo(demo_python, other, sample))
    assert "[1, 12, 12, 3]" in line and "[1, 16, 16, 3]" in line

    # A v1 card (no encoding) and a card whose encoding does not fit its input.
    card = json.loads((good / "model_card.json").read_text())
    old = json.loads(json.dumps(card))
    old["format"] = "discomkd-keras/model-card/v1"
    del old["preprocessing"]["encoding"]
    (other / "model_card.json").write_text(json.dumps(old))
    line = one_error_line(run_demo(demo_python, other, sample))
    assert line.endswith("model_card.json: discomkd-keras/model-card/v1 is an old model card "
                         "without an input encoding; re-export the model with `discomkd-keras "
                         "export` to get a discomkd-keras/model-card/v2 card.")
    card["preprocessing"]["encoding"] = "gray8"
    (other / "model_card.json").write_text(json.dumps(card))
    line = one_error_line(run_demo(demo_python, other, sample))
    assert line.endswith("invalid model card: encoding 'gray8' needs a 1-channel input; the "
                         "input shape is [1, 12, 12, 3].")

    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    assert "unsupported file type '.txt'" in one_error_line(run_demo(demo_python, good, notes))
    assert "no such file" in one_error_line(run_demo(demo_python, good, tmp_path / "gone.npy"))
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((3, 9, 9), np.float32))
    assert "(3, 12, 12)" in one_error_line(run_demo(demo_python, good, wrong))
    # A PNG for a model trained on already-normalised arrays: .npy only.
    png = save_png(tmp_path / "x.png", np.zeros((8, 8, 3), np.uint8))
    assert "accepted: .npy" in one_error_line(run_demo(demo_python, good, png))

    # Good and bad inputs together: the good ones are classified, the exit status is 2.
    done = run_demo(demo_python, good, sample, notes, "--json")
    assert done.returncode == 2 and len(done.stdout.splitlines()) == 1
    assert len(done.stderr.strip().splitlines()) == 1


# --------------------------------------------------------------------------- your files


def test_trained_from_files_classifies_raw_files_of_another_size(demo_python, tmp_path,
                                                                 monkeypatch):
    """A run trained from a modality tree (8-bit RGB PNGs, 16-bit depth PNGs at 20x24,
    resized to 12x12), exported, and classify.py given new files of another size
    (36x30): the demo resizes them as the card's size policy says and predicts what the
    Keras classifier predicts for the same file read by the training reader."""
    from PIL import Image

    monkeypatch.setenv("DISCOMKD_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)

    def rgb(c, shape):
        img = rng.integers(0, 80, shape + (3,), dtype=np.uint8)
        img[..., c] += 150
        return img

    def depth(c, shape):
        d = (rng.integers(400, 900, shape) + 1200 * c).astype(np.uint16)
        d[rng.random(shape) < 0.05] = 0
        return d

    tree = tmp_path / "tree"
    for c, name in enumerate(("near", "mid", "far")):
        for m in ("rgb", "depth"):
            (tree / m / name).mkdir(parents=True)
        for i in range(14):
            Image.fromarray(rgb(c, (20, 24))).save(tree / "rgb" / name / f"{i}.png")
            Image.fromarray(depth(c, (20, 24))).save(tree / "depth" / name / f"{i}.png")
    run = tmp_path / "run"
    config = train(["--data-dir", tree, "--image-size", "12,12", "--run-dir", run, "--epochs", 12,
                    "--encoder", "lenet", "--feature-dim", 16, "--batch-size", 8, "--lr", 1e-2])
    assert config["preprocessing"]["depth"]["resize"]["interpolation"] == "nearest"
    labels = config["class_names"]
    new = tmp_path / "new"
    new.mkdir()
    files = {"rgb": [], "depth": []}
    for c in range(3):
        for i in range(3):
            files["rgb"].append(save_png(new / f"rgb_{c}_{i}.png", rgb(c, (36, 30))))
            files["depth"].append(save_png(new / f"depth_{c}_{i}.png", depth(c, (36, 30))))
    for m in ("rgb", "depth"):
        export_modality(run, m, quantization="float32", out_dir=tmp_path / "export", log=QUIET)
        folder = tmp_path / "export" / m
        card, _ = model_card.read_export(folder)
        assert card["preprocessing"]["resize"]["crop_to_aspect"] is True
        # The training reader: what load_files would have made of these files.
        x = np.stack([Preprocessor(card).load(p)[0][1] for p in files[m]])
        assert x.shape == (9, 12, 12, 3 if m == "rgb" else 1)
        demo, stderr = demo_top(demo_python, folder, files[m])
        assert "resized 30x36 -> 12x12" in stderr
        names = [str(p) for p in files[m]]
        ref = assert_same_as_runner(demo, names, folder, x)
        keras_p = keras_probs(run, m, x)
        assert assert_same_top1(demo, names, keras_p, labels, ref).all()
        truth = np.repeat([labels.index(n) for n in ("near", "mid", "far")], 3)
        assert (keras_p.argmax(1) == truth).mean() >= 2 / 3  # it learned


def test_mobilenet_branches_shared_export_int8_with_no_flag_and_run_on_the_demo(demo_python,
                                                                                  tmp_path):
    """Issue 17's done-when, small: `train --encoder rgb=mobilenetv3small --encoder
    depth=mobilenetv2 --branch shared`, then `export` with no flag writes int8 for both
    modalities (verified against Keras), and the TF-free demo classifies raw files with it."""
    run, out = tmp_path / "run", tmp_path / "export"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DISCOMKD_CACHE", str(tmp_path / "cache"))
        config = train(["--data", "synthetic-rgbd", "--synthetic-size", 32,
                        "--synthetic-per-class", 20, "--run-dir", run, "--epochs", 3,
                        "--encoder", "rgb=mobilenetv3small", "--encoder", "depth=mobilenetv2",
                        "--branch", "shared", "--feature-dim", 16, "--batch-size", 16])
        assert config["branch"] == "shared"
        result = CliRunner().invoke(main, ["export", str(run), "--modality", "all", "--out",
                                           str(out)])
        assert result.exit_code == 0, result.output
        data = load_data(config["data"])
    pre_cfg = data.preprocessing
    for modality in ("rgb", "depth"):
        card, labels = model_card.read_export(out / modality)
        assert card["quantization"] == "int8", card
        assert card["verification"]["agreement"] >= 0.98
        x, _ = data.split(modality, "test")
        raw = np.round(x / np.float32(pre_cfg[modality]["scale"]))
        images = raw.astype(np.uint8) if modality == "rgb" else raw[..., 0].astype(np.uint16)
        files = [save_png(tmp_path / f"{modality}_{i}.png", im) for i, im in enumerate(images[:6])]
        demo, _ = demo_top(demo_python, out / modality, files)
        assert_same_as_runner(demo, [str(p) for p in files], out / modality, x[:6])
