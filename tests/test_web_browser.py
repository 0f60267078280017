"""The web page (edge_demo/web) in a real browser: `discomkd-edge serve`'s server on
127.0.0.1 serves the page and exports made here; headless Chromium (Debian's chromium,
driven by puppeteer-core from edge_demo/web/package.json) opens each export, is given files
through the page's file pickers, and what the page shows must be what classify.py prints
for the same files: the same top-1, probabilities within PROBABILITY_TOLERANCE, the same
refusals. Float32 and int8 models (float I/O, uint8 I/O through LiteRT.js's Tensor API,
int8 I/O through its Wasm bindings), an 8-bit RGB and a 16-bit depth model; the fake
camera; both WebAssembly builds (single-threaded by default, threaded with ?threads=N).

A tiny run on the built-in synthetic RGB-D data (16x16 images, two epochs: the point is
the plumbing, not accuracy). Skips, naming the missing piece, without node, chromium or
`npm ci` in edge_demo/web.
"""

import json
import shutil
import subprocess
import threading
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from discomkd_keras.cli import main
from discomkd_keras.data import load_data
from discomkd_keras.edge_demo import classify, model_card, serve
from discomkd_keras.export import export_modality
from helpers import card_fields

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="TFLite conversion needs the TensorFlow backend")

WEB = Path(__file__).resolve().parents[1] / "edge_demo" / "web"
DRIVER = WEB / "test" / "browser_test.mjs"
QUIET = lambda *_: None  # noqa: E731
# The page's probabilities against classify.py's, per class. The inputs are the same bit
# for bit (tests/test_web_contract.py); LiteRT.js runs XNNPACK's WebAssembly kernels,
# ai-edge-litert its x86 ones. Measured: identical (difference 0.0) for every file and
# model here, float32 ones included; the bound allows a few float32 ulps of a softmax
# output, should another CPU's relaxed-SIMD kernels fuse or reorder float32 sums.
PROBABILITY_TOLERANCE = 1e-6


def chromium_or_skip():
    """(node, chromium) or a skip naming what is missing."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (Debian: apt-get install nodejs); the browser test "
                    "drives Chromium with puppeteer-core under Node")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    for package in ("puppeteer-core", "@litertjs/core", "fast-png"):
        if not (WEB / "node_modules" / package).is_dir():
            pytest.skip(f"edge_demo/web/node_modules/{package} is missing: run `npm ci` in "
                        "edge_demo/web")
    return node, chromium


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """root/exports/<name>/ (served), the input files, and the expected rows."""
    chromium_or_skip()  # before any training
    root = tmp_path_factory.mktemp("web")
    run = root / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DISCOMKD_CACHE", str(root / "cache"))
        result = CliRunner().invoke(main, [
            "train", "--data", "synthetic-rgbd", "--synthetic-size", "16", "--synthetic-per-class",
            "6", "--run-dir", str(run), "--epochs", "2", "--encoder", "lenet", "--feature-dim", "8",
            "--batch-size", "32", "--quiet"])
        assert result.exit_code == 0, result.output
        data = load_data(json.loads((run / "config.json").read_text())["data"])
    served = root / "exports"
    served.mkdir()
    int8 = dict(quantization="int8", representative_size=40, threshold=0.0)
    for name, modality, options in (
            ("rgb-float32", "rgb", dict(quantization="float32")),
            ("rgb-int8", "rgb", int8),
            ("rgb-uint8-io", "rgb", dict(int8, io_type="uint8")),
            ("depth-float32", "depth", dict(quantization="float32")),
            ("depth-int8-io", "depth", dict(int8, io_type="int8"))):
        export_modality(run, modality, out_dir=root / "tmp" / name, data=data, log=QUIET, **options)
        (root / "tmp" / name / modality).rename(served / name)
    bad = served / "bad-format"
    bad.mkdir()
    card = model_card.build_card(**card_fields())
    (bad / model_card.CARD_FILE).write_text(
        json.dumps(dict(card, format="discomkd-keras/model-card/v3")))
    tiff = served / "bands-tiff"
    tiff.mkdir()
    tiff_card = model_card.build_card(**card_fields(
        preprocessing={"encoding": "bands_tiff", "scale": 0.5},
        input_tensor={"name": "x", "shape": [1, 16, 16, 4], "dtype": "float32", "quantization": None}))
    (tiff / model_card.CARD_FILE).write_text(model_card.card_json(tiff_card))

    files = root / "files"
    files.mkdir()
    scale = data.preprocessing
    xr, _ = data.split("rgb", "test")
    xd, _ = data.split("depth", "test")
    rgb8 = np.round(xr[:4] / np.float32(scale["rgb"]["scale"])).astype(np.uint8)
    depth16 = np.round(xd[:4, ..., 0] / np.float32(scale["depth"]["scale"])).astype(np.uint16)
    rgb = [save(files / f"rgb_{i}.png", im) for i, im in enumerate(rgb8)]
    # Larger images, resized by the page as by classify.py: bilinear (RGB), nearest (depth).
    rgb.append(save(files / "rgb_big.png", np.kron(rgb8[0], np.ones((3, 2, 1), np.uint8))))
    Image.fromarray(rgb8[1]).resize((40, 40)).save(files / "rgb_photo.jpg", quality=92)
    rgb.append(files / "rgb_photo.jpg")
    np.save(files / "rgb_batch.npy", rgb8[:3])
    rgb.append(files / "rgb_batch.npy")
    depth = [save(files / f"depth_{i}.png", im) for i, im in enumerate(depth16)]
    depth.append(save(files / "depth_big.png", np.kron(depth16[2], np.ones((2, 3), np.uint16))))
    np.save(files / "depth_batch.npy", depth16[:2])
    depth.append(files / "depth_batch.npy")
    rgb_refused = [depth[0], save(files / "gray.png", rgb8[0, ..., 0])]
    depth_refused = [rgb[0], files / "rgb_photo.jpg"]
    return served, {"rgb": rgb, "depth": depth}, {"rgb": rgb_refused, "depth": depth_refused}


def save(path, array):
    Image.fromarray(array).save(path)
    return path


def classify_py(folder, paths, capsys):
    """{file name: (top_k, None) or (None, error)} of classify.py --json on the files (all
    classes, one thread), with the file's name where classify.py names its path."""
    capsys.readouterr()
    status = classify.main([str(folder), *map(str, paths), "--json", "--top-k", "99", "--threads", "1"])
    out, err = capsys.readouterr()
    assert status in (0, 2), err
    folder_prefix = f"{Path(paths[0]).parent}/"  # the inputs share one folder
    rows = {}
    for line in out.splitlines():
        row = json.loads(line)
        rows[row["file"].replace(folder_prefix, "", 1)] = (row["top_k"], None)
    for line in err.splitlines():
        if line.startswith("Error: "):
            message = line[len("Error: "):].replace(folder_prefix, "", 1)
            rows[message.split(": ", 1)[0]] = (None, message)
    return rows


@pytest.fixture(scope="module")
def page_results(exports, tmp_path_factory):
    """What the page showed for every job, from one Chromium run."""
    node, chromium = chromium_or_skip()
    served, inputs, refused = exports
    server, _ = serve.make_server(served, port=0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    work = tmp_path_factory.mktemp("browser")
    jobs = []
    threads = {"rgb-int8": 2, "depth-int8-io": 1}  # ?threads=N: the threaded build
    for name in ("rgb-float32", "rgb-int8", "rgb-uint8-io", "depth-float32", "depth-int8-io"):
        kind = name.split("-")[0]
        jobs.append({"id": name, "export": f"/export/{name}/", "top": 99,
                     "files": [str(p) for p in inputs[kind] + refused[kind]],
                     "camera": name == "rgb-int8", "benchmark": 10 if name == "rgb-int8" else 0,
                     "threads": threads.get(name)})
    folder = served / "depth-int8-io"
    jobs.append({"id": "picked", "export": None, "top": 99,
                 "files": [str(p) for p in inputs["depth"][:2]],
                 "pick": [str(p) for p in sorted(folder.iterdir())]})
    jobs += [{"id": "bad-format", "export": "/export/bad-format/"},
             {"id": "bands-tiff", "export": "/export/bands-tiff/"},
             {"id": "missing", "export": "/export/nothing-here/"}]
    spec = work / "jobs.json"
    spec.write_text(json.dumps({"chromium": chromium, "jobs": jobs,
                                "base": f"http://127.0.0.1:{server.server_address[1]}"}))
    try:
        done = subprocess.run([node, str(DRIVER), str(spec), str(work / "out.json")], cwd=WEB,
                              capture_output=True, text=True, timeout=300)
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stdout + done.stderr + (work / "out.json").read_text()
    results = json.loads((work / "out.json").read_text())
    return {job["id"]: job for job in results["jobs"]}, served, inputs, refused


def assert_same_as_classify_py(job, expected):
    assert not job["consoleErrors"], job["consoleErrors"]
    assert job["modelError"] is None
    shown = {r["name"]: r for r in job["results"]}
    assert set(shown) == set(expected), (sorted(shown), sorted(expected))
    for name, (top, error) in expected.items():
        page = shown[name]
        if error is not None:
            assert page["error"] == error, name
            continue
        assert page["error"] is None, page["error"]
        assert page["top"][0]["index"] == top[0]["index"], name  # the same top-1
        assert len(page["top"]) == len(top)
        page_probs = {t["index"]: t["probability"] for t in page["top"]}
        for t in top:
            assert abs(page_probs[t["index"]] - t["probability"]) <= PROBABILITY_TOLERANCE, (name, t)
        assert page["ms"] > 0


@pytest.mark.parametrize("name", ["rgb-float32", "rgb-int8", "rgb-uint8-io", "depth-float32",
                                  "depth-int8-io"])
def test_the_page_classifies_as_classify_py(page_results, name, capsys):
    jobs, served, inputs, refused = page_results
    kind = name.split("-")[0]
    expected = classify_py(served / name, inputs[kind] + refused[kind], capsys)
    assert sum(error is not None for _, error in expected.values()) == 2
    assert_same_as_classify_py(jobs[name], expected)
    assert jobs[name]["modality"] == kind
    card, _ = model_card.read_export(served / name)
    assert card["input"]["dtype"] == {"uint8-io": "uint8", "int8-io": "int8"}.get(
        name.split("-", 1)[1], "float32")


def test_builds_threads_camera_and_benchmark(page_results):
    jobs, *_ = page_results
    threaded, one, single = (jobs[name]["runtime"]
                             for name in ("rgb-int8", "depth-int8-io", "depth-float32"))
    assert threaded["isolated"] is True  # the server's COOP/COEP headers
    assert threaded["threadedBuild"] is True and threaded["threads"] == 2  # ?threads=2
    assert one["threadedBuild"] is True and one["threads"] == 1  # ?threads=1
    assert single["threadedBuild"] is False and single["threads"] == 1  # the default
    camera = jobs["rgb-int8"]["camera"]
    assert jobs["rgb-int8"]["cameraError"] is None
    assert camera["name"].startswith("camera:") and len(camera["top"]) == 6 and camera["ms"] > 0
    bench = jobs["rgb-int8"]["benchmark"]
    assert bench["runs"] == 10 and 0 < bench["min_ms"] <= bench["median_ms"] <= bench["p90_ms"]


def test_the_file_picker_opens_an_export(page_results, capsys):
    jobs, served, inputs, _ = page_results
    expected = classify_py(served / "depth-int8-io", inputs["depth"][:2], capsys)
    assert_same_as_classify_py(jobs["picked"], expected)


def test_cards_the_page_cannot_honour_are_refused_in_one_sentence(page_results):
    jobs, served, *_ = page_results
    with pytest.raises(model_card.ModelCardError) as python:
        model_card.read_export(served / "bad-format")
    where = str(served / "bad-format" / model_card.CARD_FILE)
    assert jobs["bad-format"]["modelError"] == str(python.value).replace(
        where, "/export/bad-format/model_card.json")
    assert jobs["bands-tiff"]["modelError"] == (
        "model_card.json: this page cannot read the samples of encoding 'bands_tiff' (multi-band "
        "TIFF: a browser has no TIFF decoder); classify them with `discomkd-edge classify` instead.")
    assert jobs["missing"]["modelError"].startswith("/export/nothing-here/model_card.json is missing")
    for job in ("bad-format", "bands-tiff", "missing"):
        message = jobs[job]["modelError"]
        assert "\n" not in message and message.endswith(".")
