"""`discomkd-edge`, the device demo as a command (edge_demo/console.py, installed
from edge_demo/pyproject.toml as the `discomkd_edge` package), and the exit
statuses it shares with `python edge_demo/classify.py`: 0 done; 2 bad input, each
problem one "Error: ..." line on stderr; 1 a bug, with its traceback and a request
to report it.

Most tests call the entry functions in-process (`console.main`, `classify.main`,
imported as `discomkd_keras.edge_demo`) on one tiny exported model; one builds a
fresh virtual environment with `pip install ./edge_demo` alone (no TensorFlow) and
runs the installed `discomkd-edge` there.
"""

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import discomkd_keras
from discomkd_keras.edge_demo import classify, console, model_card, runtime
from helpers import train_run
from test_edge_demo import OFFLINE_SIGNS, assert_same_top1, clean_env, keras_probs, save_png

ROOT = Path(__file__).resolve().parents[1]
EDGE = ROOT / "edge_demo"
needs_export = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                  reason="TFLite conversion needs the TensorFlow backend")


def one_error_line(err):
    """The single stderr line of a user's mistake: "Error: ...", no traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    return lines[0]


def usage_error(err):
    """argparse's answer to bad arguments: the usage, then one "Error: ..." line."""
    lines = err.strip().splitlines()
    assert lines[0].startswith("usage: ") and lines[-1].startswith("Error: "), err
    assert "Traceback" not in err
    return lines[-1]


# The two entry points: `discomkd-edge classify ...` and `python classify.py ...`.
ENTRIES = {"discomkd-edge": lambda args: console.main(["classify", *map(str, args)]),
           "classify.py": lambda args: classify.main([*map(str, args)])}


# --------------------------------------------------------------------------- a tiny model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny released-layout run (rgb: float (3, 12, 12) images), its rgb classifier
    exported as float32, the test split as one .npy batch; and the same model behind
    an 8-bit RGB card (`rgb8/`), so that PNG files and camera frames can feed it."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("TFLite conversion needs the TensorFlow backend")
    from discomkd_keras.data import load_data
    from discomkd_keras.export import export_modality

    root = tmp_path_factory.mktemp("edge-console")
    run = train_run(root, "--epochs", 3, "--encoder", "rgb=lenet", "--feature-dim", 8,
                    "--batch-size", 32, "--lr", 3e-3, n_per_class=15)
    out = root / "export"
    export_modality(run, "rgb", quantization="float32", out_dir=out, log=lambda *_: None)
    folder = out / "rgb"
    config = json.loads((run / "config.json").read_text())
    x, _ = load_data(config["data"]).split("rgb", "test")  # HWC, as the classifier takes it
    raw = np.load(root / "data" / "rgb_data_normalized.npy")[np.load(root / "data" / "test_idx.npy")]
    batch = root / "rgb_test.npy"
    np.save(batch, raw)  # CHW as stored: what a device would be given

    rgb8 = root / "rgb8"
    shutil.copytree(folder, rgb8)
    card = json.loads((rgb8 / "model_card.json").read_text())
    card["preprocessing"].update(encoding="rgb8", scale=1 / 255, offset=0.0)
    (rgb8 / "model_card.json").write_text(json.dumps(card))
    picture = save_png(root / "picture.png", (np.arange(12 * 12 * 3) % 256)
                       .astype(np.uint8).reshape(12, 12, 3))
    return dict(root=root, run=run, folder=folder, batch=batch, x=x, labels=config["class_names"],
                rgb8=rgb8, picture=picture)


# --------------------------------------------------------------------------- no model needed


def test_version_help_and_usage_errors(capsys):
    assert console.main(["--version"]) == 0
    assert capsys.readouterr().out == f"discomkd-edge {discomkd_keras.__version__}\n"
    assert classify.__version__ == discomkd_keras.__version__
    assert classify.main(["--version"]) == 0
    assert capsys.readouterr().out == f"classify.py {discomkd_keras.__version__}\n"
    for argv in (["-h"], ["--help"]):
        assert console.main(argv) == 0
        out = capsys.readouterr().out
        assert "classify" in out and "camera" in out and "Exit status" in out
    assert console.main(["classify", "-h"]) == 0
    out = capsys.readouterr().out
    assert "--top-k" in out and "--threads" in out and "--benchmark" in out and "--json" in out
    assert console.main(["camera", "-h"]) == 0
    assert "--camera-index" in capsys.readouterr().out

    for argv, says in ([[], "required: COMMAND"],
                       [["frobnicate"], "invalid choice: 'frobnicate'"],
                       [["classify", "m"], "give at least one INPUT file (or --benchmark N)"],
                       [["classify", "m", "x.npy", "--top-k", "0"], "--top-k must be >= 1"],
                       [["classify", "m", "x.npy", "--threads", "0"], "--threads must be >= 1"],
                       [["classify", "m", "x.npy", "--top-k", "two"], "invalid int value"],
                       [["camera", "m", "x.png"], "unrecognized arguments: x.png"],
                       [["camera", "m", "--benchmark", "5"], "unrecognized arguments"]):
        assert console.main(argv) == 2, argv
        assert says in usage_error(capsys.readouterr().err), argv
    err = (console.main(["classify", "m", "--top-k", "0", "x.npy"]), capsys.readouterr().err)[1]
    assert err.startswith("usage: discomkd-edge classify")  # the subcommand's own usage
    for argv, says in ([[], "required: MODEL_DIR"],
                       [["m"], "(or --camera, or --benchmark N)"],
                       [["m", "x.png", "--camera"], "the camera mode takes no INPUT files"]):
        assert classify.main(argv) == 2, argv
        assert says in usage_error(capsys.readouterr().err), argv


@pytest.mark.parametrize("entry", ENTRIES)
def test_a_missing_model_folder_is_one_error_line(entry, tmp_path, capsys):
    assert ENTRIES[entry]([tmp_path / "nope", tmp_path / "x.npy"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line == (f"Error: model folder {tmp_path / 'nope'} does not exist (expected an export "
                    "folder with <modality>.tflite, labels.txt and model_card.json).")
    assert console.main(["camera", str(tmp_path / "nope")]) == 2
    assert "does not exist" in one_error_line(capsys.readouterr().err)
    (tmp_path / "empty").mkdir()
    assert ENTRIES[entry]([tmp_path / "empty", tmp_path / "x.npy"]) == 2
    assert "model_card.json is missing" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("entry", ENTRIES)
def test_a_bug_is_a_traceback_a_request_and_exit_1(entry, tmp_path, monkeypatch, capsys):
    def broken(folder):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(model_card, "read_export", broken)
    assert ENTRIES[entry]([tmp_path, tmp_path / "x.npy"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "RuntimeError: injected failure" in err
    assert not [line for line in err.splitlines() if line.startswith("Error: ")]
    version = "discomkd-edge --version" if entry == "discomkd-edge" else "python classify.py --version"
    assert err.strip().splitlines()[-1] == classify.REPORT_BUG.format(version=version)
    assert "please report it" in err.strip().splitlines()[-1]
    # The camera mode too.
    assert console.main(["camera", str(tmp_path)]) == 1
    assert "RuntimeError: injected failure" in capsys.readouterr().err


def test_ctrl_c_outside_the_camera_loop_is_130(tmp_path, monkeypatch, capsys):
    def interrupted(folder):
        raise KeyboardInterrupt

    monkeypatch.setattr(model_card, "read_export", interrupted)
    assert console.main(["classify", str(tmp_path), "x.npy"]) == 130
    assert capsys.readouterr().err.strip() == "Interrupted."


def test_package_metadata_agrees_with_requirements_txt():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    meta = tomllib.loads((EDGE / "pyproject.toml").read_text())
    requirements = [line.split("#")[0].strip()
                    for line in (EDGE / "requirements.txt").read_text().splitlines()]
    assert sorted(meta["project"]["dependencies"]) == sorted(r for r in requirements if r)
    assert meta["project"]["name"] == "discomkd-edge"
    assert meta["project"]["scripts"] == {"discomkd-edge": "discomkd_edge.console:main"}
    setuptools = meta["tool"]["setuptools"]
    assert setuptools["packages"] == ["discomkd_edge"]
    assert setuptools["package-dir"] == {"discomkd_edge": "."}
    assert setuptools["dynamic"]["version"] == {"attr": "discomkd_edge.classify.__version__"}
    # None of the device files may import TensorFlow, Keras or the training package.
    for path in EDGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in ("tensorflow", "keras", "discomkd_keras"), \
                    (path.name, name)


def test_the_scripts_run_from_the_folder_with_the_same_statuses(tmp_path):
    """`python edge_demo/classify.py`, `python edge_demo/console.py` and
    `python edge_demo` (its __main__.py): siblings imported as top-level modules."""
    for script in (["classify.py"], ["console.py", "classify"], ["", "classify"]):
        command = [sys.executable, str(EDGE / script[0]), *script[1:], str(tmp_path / "nope"),
                   str(tmp_path / "x.png")]
        done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120,
                              env=dict(clean_env(), TF_CPP_MIN_LOG_LEVEL="3"))
        assert done.returncode == 2, (script, done.stderr)
        assert "does not exist" in one_error_line(done.stderr), script
        assert done.stdout == ""


# --------------------------------------------------------------------------- a real model


@needs_export
@pytest.mark.parametrize("entry", ENTRIES)
def test_classify_matches_keras_in_process(entry, exported, capsys):
    e = exported
    assert ENTRIES[entry]([e["folder"], e["batch"], "--json", "--top-k", 2]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    rows = [json.loads(line) for line in captured.out.splitlines()]
    names = [f"{e['batch']}[{i}]" for i in range(len(e["x"]))]
    demo = {row["file"]: row["top_k"] for row in rows}
    ref = runtime.Classifier(e["folder"] / "rgb.tflite").predict(e["x"])
    clear = assert_same_top1(demo, names, keras_probs(e["run"], "rgb", e["x"]), e["labels"], ref)
    assert clear.all()  # float32: every sample
    # Text output and the benchmark.
    assert ENTRIES[entry]([e["folder"], e["batch"], "--top-k", 1, "--benchmark", 5,
                           "--threads", 1]) == 0
    out = capsys.readouterr().out
    assert "(inference" in out and "median" in out and "1 thread" in out


@needs_export
@pytest.mark.parametrize("entry", ENTRIES)
def test_missing_corrupt_and_foreign_inputs_exit_2(entry, exported, tmp_path, capsys):
    e = exported
    run = ENTRIES[entry]
    assert run([e["rgb8"], tmp_path / "missing.png"]) == 2
    assert one_error_line(capsys.readouterr().err) == f"Error: {tmp_path / 'missing.png'}: no such file."
    assert run([e["folder"], tmp_path / "missing.npy"]) == 2
    assert "no such file" in one_error_line(capsys.readouterr().err)

    corrupt_png = tmp_path / "corrupt.png"
    corrupt_png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    assert run([e["rgb8"], corrupt_png]) == 2
    assert "not a readable image" in one_error_line(capsys.readouterr().err)
    corrupt_npy = tmp_path / "corrupt.npy"
    corrupt_npy.write_bytes(b"\x93NUMPY garbage")
    assert run([e["folder"], corrupt_npy]) == 2
    assert "not a readable .npy array" in one_error_line(capsys.readouterr().err)
    # A file of another encoding: a PNG for a model of already-normalised arrays, a
    # 16-bit PNG for an 8-bit RGB model.
    assert run([e["folder"], e["picture"]]) == 2
    assert "accepted: .npy" in one_error_line(capsys.readouterr().err)
    deep = save_png(tmp_path / "deep.png", np.full((12, 12), 1000, np.uint16))
    assert run([e["rgb8"], deep]) == 2
    assert "8-bit RGB" in one_error_line(capsys.readouterr().err)

    # Good and bad together: the good one is classified, one line for the bad one, exit 2.
    assert run([e["rgb8"], e["picture"], tmp_path / "missing.png", "--json"]) == 2
    captured = capsys.readouterr()
    assert [json.loads(line)["file"] for line in captured.out.splitlines()] == [str(e["picture"])]
    assert "no such file" in one_error_line(captured.err)


@needs_export
@pytest.mark.parametrize("entry", ENTRIES)
def test_unusable_model_folders_exit_2(entry, exported, tmp_path, capsys):
    e = exported
    broken = tmp_path / "broken"
    shutil.copytree(e["folder"], broken)
    (broken / "model_card.json").write_text("{not json")
    assert ENTRIES[entry]([broken, e["batch"]]) == 2
    assert "not valid JSON" in one_error_line(capsys.readouterr().err)

    garbage = tmp_path / "garbage"
    shutil.copytree(e["folder"], garbage)
    (garbage / "rgb.tflite").write_bytes(b"this is not a flatbuffer" * 8)
    assert ENTRIES[entry]([garbage, e["batch"]]) == 2
    assert "not a loadable TFLite model" in one_error_line(capsys.readouterr().err)

    # A card this demo cannot honour: an encoding that does not fit the input.
    unfit = tmp_path / "unfit"
    shutil.copytree(e["folder"], unfit)
    card = json.loads((unfit / "model_card.json").read_text())
    card["preprocessing"]["encoding"] = "gray8"
    (unfit / "model_card.json").write_text(json.dumps(card))
    assert ENTRIES[entry]([unfit, e["batch"]]) == 2
    assert "needs a 1-channel input" in one_error_line(capsys.readouterr().err)


@needs_export
def test_a_bug_while_classifying_is_exit_1(exported, monkeypatch, capsys):
    def broken(self, x):
        raise RuntimeError("injected inference failure")

    monkeypatch.setattr(runtime.Classifier, "timed", broken)
    assert console.main(["classify", str(exported["folder"]), str(exported["batch"])]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: injected inference failure" in err
    assert err.strip().splitlines()[-1].startswith("This is a bug in the device demo")


@needs_export
def test_the_camera_subcommand(exported, monkeypatch, capsys):
    e = exported
    frame = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(e["picture"]))

    class FakeCapture:
        reads = 0

        def __init__(self, index):
            assert index == 1

        def isOpened(self):
            return True

        def read(self):
            FakeCapture.reads += 1
            if FakeCapture.reads > 1:
                raise KeyboardInterrupt  # Ctrl-C: the way to end the loop
            return True, frame[..., ::-1].copy()  # OpenCV frames are BGR

        def release(self):
            pass

    fake_cv2 = type(sys)("cv2")
    fake_cv2.VideoCapture = FakeCapture
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import picamera2 -> ImportError
    monkeypatch.setitem(sys.modules, "cv2", fake_cv2)
    assert console.main(["camera", str(e["rgb8"]), "--camera-index", "1", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["file"] for r in rows] == ["camera:0"]
    assert console.main(["classify", str(e["rgb8"]), str(e["picture"]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["top_k"] == rows[0]["top_k"]

    monkeypatch.setitem(sys.modules, "cv2", None)  # no camera library at all
    assert console.main(["camera", str(e["rgb8"])]) == 2
    assert "neither is installed" in one_error_line(capsys.readouterr().err)
    assert classify.main([str(e["rgb8"]), "--camera"]) == 2
    assert "neither is installed" in one_error_line(capsys.readouterr().err)
    assert console.main(["camera", str(e["folder"])]) == 2  # not an 8-bit image model
    assert "8-bit image models only" in one_error_line(capsys.readouterr().err)


# --------------------------------------------------------------------------- installed alone


@needs_export
def test_pip_install_edge_demo_gives_discomkd_edge_without_tensorflow(exported, tmp_path,
                                                                      capsys):
    """`pip install ./edge_demo` in a fresh venv (from a copy of the folder, so that the
    build leaves nothing in the repository): no TensorFlow, and `discomkd-edge classify`
    predicts what the Keras classifier and the in-process command predict."""
    e = exported
    source = tmp_path / "edge_demo"
    shutil.copytree(EDGE, source, ignore=shutil.ignore_patterns(
        "android", "__pycache__", "build", "*.egg-info", ".pytest_cache"))
    venv = tmp_path / "venv"
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True,
                          text=True, env=clean_env(), cwd=tmp_path, timeout=300)
    if made.returncode != 0:
        pytest.skip(f"python -m venv cannot build a virtual environment here: "
                    f"{(made.stdout + made.stderr).strip()[-300:]}")
    python, command = venv / "bin" / "python", venv / "bin" / "discomkd-edge"
    pip = subprocess.run([str(python), "-m", "pip", "install", "-q", str(source)],
                         capture_output=True, text=True, env=clean_env(), cwd=tmp_path,
                         timeout=900)
    if pip.returncode != 0:
        output = pip.stdout + pip.stderr
        if any(sign in output for sign in OFFLINE_SIGNS):
            pytest.skip("pip cannot reach the package index to install ./edge_demo: "
                        + output.strip().splitlines()[-1])
        pytest.fail(f"pip install ./edge_demo failed:\n{output}")

    def device(*args, **kw):
        return subprocess.run([str(a) for a in args], capture_output=True, text=True,
                              env=clean_env(), cwd=tmp_path, timeout=300, **kw)

    for module in ("tensorflow", "keras", "discomkd_keras"):
        probe = device(python, "-c", f"import {module}")
        assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr, module
    listed = device(python, "-c", "import os, discomkd_edge; "
                    "print(sorted(os.listdir(os.path.dirname(discomkd_edge.__file__))))")
    assert listed.returncode == 0, listed.stderr
    installed = eval(listed.stdout)  # noqa: S307 (a list of names we printed)
    assert "console.py" in installed and "classify.py" in installed
    assert not {"android", "pyproject.toml", "requirements.txt", "arm64_check.sh"} & set(installed)
    version = device(command, "--version")
    assert version.returncode == 0 and version.stdout == f"discomkd-edge {classify.__version__}\n"

    done = device(command, "classify", e["folder"], e["batch"], "--json", "--top-k", 2)
    assert done.returncode == 0, done.stderr
    demo = {row["file"]: row["top_k"] for row in map(json.loads, done.stdout.splitlines())}
    names = [f"{e['batch']}[{i}]" for i in range(len(e["x"]))]
    ref = runtime.Classifier(e["folder"] / "rgb.tflite").predict(e["x"])
    clear = assert_same_top1(demo, names, keras_probs(e["run"], "rgb", e["x"]), e["labels"], ref)
    assert clear.all()
    # The same as the command run in this (training) environment.
    assert console.main(["classify", str(e["folder"]), str(e["batch"]), "--json", "--top-k", "2"]) == 0
    here = {row["file"]: row["top_k"] for row in map(json.loads, capsys.readouterr().out.splitlines())}
    assert [[t["index"] for t in demo[n]] for n in names] == [[t["index"] for t in here[n]] for n in names]
    for n in names:
        for a, b in zip(demo[n], here[n]):
            assert a["probability"] == pytest.approx(b["probability"], abs=1e-5)
    # A PNG through the 8-bit card, and `python -m discomkd_edge`.
    png = device(python, "-m", "discomkd_edge", "classify", e["rgb8"], e["picture"], "--json")
    assert png.returncode == 0, png.stderr
    assert console.main(["classify", str(e["rgb8"]), str(e["picture"]), "--json"]) == 0
    assert [t["index"] for t in json.loads(png.stdout)["top_k"]] == \
        [t["index"] for t in json.loads(capsys.readouterr().out)["top_k"]]

    missing = device(command, "classify", e["rgb8"], tmp_path / "missing.png")
    assert missing.returncode == 2 and missing.stdout == ""
    assert one_error_line(missing.stderr) == f"Error: {tmp_path / 'missing.png'}: no such file."
    nothing = device(command, "classify", tmp_path / "nope", tmp_path / "missing.png")
    assert nothing.returncode == 2 and "does not exist" in one_error_line(nothing.stderr)
