"""The web page's JavaScript contract (edge_demo/web/src/) run under Node against what the
Python side computes, as tests/test_android_contract.py does for the Kotlin one.

The fixture is the Android contract's (cards built by tests/helpers.card_fields and the bad
cards of tests/test_model_card.py, written by edge_demo/model_card.py; photos -> raw sample
-> float input -> quantized input; outputs -> top-k), plus files of every kind the page
reads, with what edge_demo/preprocessing.py makes of them: PNGs of each colour type and
bit depth (16-bit depth included, where a browser's canvas would drop to 8 bits), .npy of
several dtypes, orders and batch shapes, WAV clips, and files it refuses (the messages
must be Python's, the file's path standing for its name). edge_demo/web/test/contract_test.mjs
reads the fixture and compares: float32 values bit for bit, except the log-mel
spectrogram (SPECTROGRAM_TOLERANCE).

Needs Node and `npm ci` in edge_demo/web (for fast-png); skips naming what is missing.
"""

import copy
import json
import shutil
import struct
import subprocess
import wave
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from discomkd_keras.edge_demo import model_card, runtime
from discomkd_keras.edge_demo.preprocessing import InputError, Preprocessor
from helpers import card_fields
from test_android_contract import _expected_fields, write_fixture

WEB = Path(__file__).resolve().parents[1] / "edge_demo" / "web"
RUNNER = WEB / "test" / "contract_test.mjs"
# The log-mel values of the page against spectrogram.py's, in natural-log units: NumPy
# computes the FFT and the mel sums in float32, the page in float64 (both from the same
# float32 frames), so they differ by NumPy's float32 rounding. Measured at most 9.5e-7 on
# the fixture's clips (NumPy 2.4, x86-64); the bound leaves room for another CPU's float32
# FFT without hiding a wrong recipe (a one-bin shift of a filter, or a symmetric window for
# a periodic one, moves values by 1e-2 or more).
SPECTROGRAM_TOLERANCE = 1e-5
SPECTROGRAM = {"expected_rate": 16000, "clip_seconds": 0.5, "frame_length": 400,
               "hop_length": 160, "n_fft": 512, "window": "hann_symmetric", "power": 1.0,
               "n_mels": 32, "fmin": 50.0, "fmax": 7000.0, "log_offset": 1e-5}


def node_or_skip():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (Debian: apt-get install nodejs); the web page's "
                    "contract runs under Node")
    if not (WEB / "node_modules" / "fast-png").is_dir():
        pytest.skip("edge_demo/web/node_modules is missing: run `npm ci` in edge_demo/web")
    return node


# --------------------------------------------------------------------------- files


def png_bytes(width, height, color_type, depth, rows, palette=None, trns=None):
    """A PNG written by hand, for the colour types and bit depths Pillow does not write
    (16-bit colour, 2- and 4-bit gray, 16-bit gray+alpha). rows: the packed bytes of each
    row (big-endian samples)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    body = b"".join(b"\x00" + bytes(r) for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + (chunk(b"PLTE", palette) if palette is not None else b"")
            + (chunk(b"tRNS", trns) if trns is not None else b"")
            + chunk(b"IDAT", zlib.compress(body)) + chunk(b"IEND", b""))


def packed_rows(values, depth):
    """(H, W) samples of 1, 2 or 4 bits -> each row's bytes."""
    rows = []
    for row in values:
        bits = "".join(format(int(v), f"0{depth}b") for v in row)
        bits += "0" * (-len(bits) % 8)
        rows.append(bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8)))
    return rows


def save_image(path, array, mode=None, **options):
    image = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    image.save(path, **options)
    return path


def save_wav(path, samples, rate=8000, width=2, channels=1):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def tone(seconds, rate, freq, rng):
    t = np.arange(int(round(seconds * rate))) / rate
    return 0.4 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(t.size)


def image_files(folder):
    """name -> path of image files of every PNG kind, from one random photo."""
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (11, 19, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (13, 9), dtype=np.uint8)
    files = {
        "rgb.png": save_image(folder / "rgb.png", rgb),
        "rgb-16x16.png": save_image(folder / "rgb-16x16.png",
                                    rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)),
        "rgba.png": save_image(folder / "rgba.png", rng.integers(0, 256, (9, 14, 4), dtype=np.uint8)),
        "gray.png": save_image(folder / "gray.png", gray),
        "gray-alpha.png": save_image(folder / "gray-alpha.png", np.dstack([gray, gray[::-1]]), "LA"),
        "bilevel.png": save_image(folder / "bilevel.png", gray > 128),
        "palette.png": save_image(folder / "palette.png", rgb, "P"),
        "palette-transparent.png": save_image(folder / "palette-transparent.png", rgb, "P",
                                              transparency=3),
    }
    h, w = 7, 10
    for depth in (2, 4):
        values = rng.integers(0, 2 ** depth, (h, w))
        path = folder / f"gray{depth}.png"
        path.write_bytes(png_bytes(w, h, 0, depth, packed_rows(values, depth)))
        files[path.name] = path
    palette = rng.integers(0, 256, 16 * 3, dtype=np.uint8).tobytes()
    path = folder / "palette4.png"
    path.write_bytes(png_bytes(w, h, 3, 4, packed_rows(rng.integers(0, 16, (h, w)), 4), palette=palette))
    files[path.name] = path
    for name, color_type, channels in (("rgb16.png", 2, 3), ("rgba16.png", 6, 4),
                                       ("gray-alpha16.png", 4, 2)):
        values = rng.integers(0, 65536, (h, w, channels)).astype(">u2")
        path = folder / name
        path.write_bytes(png_bytes(w, h, color_type, 16, [r.tobytes() for r in values]))
        files[name] = path
    return files


def depth_files(folder):
    rng = np.random.default_rng(4)
    depth = rng.integers(0, 65536, (16, 16), dtype=np.uint16)
    depth[3:6, 2:9] = 0  # missing depth
    files = {
        "depth.png": save_image(folder / "depth.png", depth),
        "depth-big.png": save_image(folder / "depth-big.png",
                                    rng.integers(0, 65536, (23, 37), dtype=np.uint16)),
        "depth-tall.png": save_image(folder / "depth-tall.png",
                                     rng.integers(0, 5000, (31, 12), dtype=np.uint16)),
        "depth-8bit.png": save_image(folder / "depth-8bit.png", (depth >> 8).astype(np.uint8)),
        "depth-rgb.png": save_image(folder / "depth-rgb.png",
                                    rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)),
        "depth.jpg": folder / "depth.jpg",
    }
    files["depth.jpg"].write_bytes(b"\xff\xd8\xff not read: refused by its suffix")
    return files


def npy_files(folder):
    rng = np.random.default_rng(5)
    out = {}

    def save(name, array, fortran=False):
        path = folder / name
        np.save(path, np.asfortranarray(array) if fortran else array, allow_pickle=True)
        out[name] = path

    save("rgb-u8.npy", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    save("rgb-batch-i64.npy", rng.integers(0, 256, (3, 16, 16, 3)))
    save("rgb-fortran-big-endian.npy", rng.integers(0, 256, (16, 16, 3)).astype(">i2"), fortran=True)
    save("rgb-float.npy", rng.random((16, 16, 3)))
    save("rgb-range.npy", np.full((16, 16, 3), 256, np.int32))
    save("rgb-shape.npy", np.zeros((16, 15, 3), np.uint8))
    save("objects.npy", np.array([{"a": 1}, None], dtype=object))
    save("depth-u16.npy", rng.integers(0, 65536, (16, 16), dtype=np.uint16))
    save("depth-batch.npy", rng.integers(0, 65536, (2, 16, 16, 1), dtype=np.uint16))
    save("depth-negative.npy", np.full((16, 16), -1, np.int16))
    save("chw-f32.npy", rng.standard_normal((3, 12, 12)).astype(np.float32))
    save("chw-batch-f64.npy", rng.standard_normal((4, 3, 12, 12)))
    save("chw-f16.npy", rng.standard_normal((3, 12, 12)).astype(np.float16))
    save("vector-f64.npy", rng.standard_normal(5) * 1e3)
    save("vector-batch-i32.npy", rng.integers(-1000, 1000, (3, 5), dtype=np.int32))
    save("vector-bool.npy", rng.random(5) > 0.5)
    save("vector-inf.npy", np.array([1.0, np.inf, 0, 0, 0]))
    save("vector-u64.npy", rng.integers(0, 2 ** 40, 5).astype(np.uint64))
    save("wave-i16.npy", np.round(tone(0.8, 8000, 440, rng) * 32767).astype(np.int16))
    save("wave-batch-f32.npy",
         np.stack([tone(1.2, 8000, f, rng) for f in (300, 1200)]).astype(np.float32))
    save("wave-i32.npy", np.zeros(8000, np.int32))
    save("wave-3d.npy", np.zeros((1, 2, 8000), np.float32))
    (folder / "truncated.npy").write_bytes(out["rgb-u8.npy"].read_bytes()[:200])
    out["truncated.npy"] = folder / "truncated.npy"
    return out


def wav_files(folder):
    rng = np.random.default_rng(6)
    pcm = lambda x: np.round(np.clip(x, -1, 1) * 32767).astype("<i2")  # noqa: E731
    files = {
        "tone.wav": save_wav(folder / "tone.wav", pcm(tone(1.0, 8000, 440, rng))),
        "short.wav": save_wav(folder / "short.wav", pcm(tone(0.6, 8000, 1900, rng))),
        "long.wav": save_wav(folder / "long.wav", pcm(tone(1.4, 8000, 3100, rng))),
        "noise.wav": save_wav(folder / "noise.wav", pcm(rng.standard_normal(8000) * 0.3)),
        "quiet.wav": save_wav(folder / "quiet.wav", pcm(tone(1.0, 8000, 700, rng) * 1e-3)),
        "eight-bit.wav": save_wav(folder / "eight-bit.wav", width=1, samples=np.round(
            tone(1.0, 8000, 600, rng) * 127 + 128).astype(np.uint8)),
        "stereo.wav": save_wav(folder / "stereo.wav", pcm(tone(1.0, 8000, 440, rng)).repeat(2),
                               channels=2),
        "rate.wav": save_wav(folder / "rate.wav", pcm(tone(1.0, 11025, 440, rng)), rate=11025),
        "wide.wav": save_wav(folder / "wide.wav", np.zeros(8000 * 3, np.uint8), width=3),
        "tone16k.wav": save_wav(folder / "tone16k.wav", pcm(tone(0.7, 16000, 2500, rng)), rate=16000),
    }
    truncated = folder / "truncated.wav"
    truncated.write_bytes(files["tone.wav"].read_bytes()[:5000])
    files["truncated.wav"] = truncated
    not_wav = folder / "not.wav"
    not_wav.write_bytes(b"OggS" + bytes(60))
    files["not.wav"] = not_wav
    return files


# --------------------------------------------------------------------------- cards


def _card(encoding, kind, shape, in_dtype="float32", **pre):
    quant = {"int8": {"scale": 1 / 128, "zero_point": -1}, "uint8": {"scale": 0.5, "zero_point": 3},
             "float32": None}
    return model_card.build_card(**card_fields(
        kind=kind, preprocessing={"encoding": encoding, **pre},
        input_tensor={"name": "x", "shape": shape, "dtype": in_dtype, "quantization": quant[in_dtype]}))


def web_cards():
    """name -> card of the file checks, beyond the Android fixture's cards."""
    return {
        "depth-bilinear": _card("depth_mm_uint16", "image", [1, 9, 7, 1], in_dtype="uint8",
                                scale=1 / 1000,
                                resize={"interpolation": "bilinear", "crop_to_aspect": False}),
        "depth-plain": _card("depth_mm_uint16", "image", [1, 16, 16, 1], scale=1 / 4000, offset=-0.5),
        "gray8-int8": _card("gray8", "image", [1, 6, 5, 1], in_dtype="int8", scale=1 / 255,
                            offset=-0.5, clip=[-0.4, 0.4]),
        "array_npy-image": _card("array_npy", "image", [1, 12, 12, 3], scale=[0.5, 1, 2], offset=1),
        "wav-custom": _card("wav_pcm16", "spectrogram", [1, 32, 48, 1], spectrogram=SPECTROGRAM,
                            mean=-6.0, std=3.0),
        "wav-int8": _card("wav_pcm16", "spectrogram", [1, 40, 61, 1], in_dtype="int8",
                          spectrogram={"expected_rate": 8000}, mean=-3.5, std=2.0),
    }


# card -> the files to feed it (the Android fixture's cards and web_cards()).
FEEDS = {
    "rgb8": ["rgb.png", "rgb-16x16.png", "rgba.png", "gray.png", "gray-alpha.png", "bilevel.png",
             "palette.png", "palette-transparent.png", "palette4.png", "rgb16.png", "rgba16.png",
             "gray-alpha16.png", "depth.png", "rgb-u8.npy", "rgb-batch-i64.npy",
             "rgb-fortran-big-endian.npy", "rgb-float.npy", "rgb-range.npy", "rgb-shape.npy",
             "objects.npy", "truncated.npy", "tone.wav", "corrupt.png", "fake.png"],
    "rgb8-per-channel": ["rgb.png", "rgba.png", "palette4.png"],
    "rgb8-nearest": ["rgb.png", "rgb16.png"],
    "gray8": ["rgb.png", "gray.png", "gray-alpha.png", "bilevel.png", "gray2.png", "gray4.png",
              "palette.png", "rgba16.png", "gray-alpha16.png", "depth.png"],
    "gray8-int8": ["gray.png", "rgb.png", "gray4.png"],
    "gray8-28": ["gray.png", "rgb.png"],
    "depth": ["depth.png", "depth-big.png", "depth-tall.png", "depth-8bit.png", "depth-rgb.png",
              "depth.jpg", "gray-alpha16.png", "palette.png", "depth-u16.npy", "depth-batch.npy",
              "depth-negative.npy", "rgb-float.npy"],
    "depth-bilinear": ["depth.png", "depth-big.png", "depth-tall.png"],
    "depth-plain": ["depth.png", "depth-big.png", "depth-u16.npy"],
    "float_raw-image": ["chw-f32.npy", "chw-batch-f64.npy", "chw-f16.npy", "rgb.png"],
    "float_raw-vector": ["vector-f64.npy", "vector-batch-i32.npy", "vector-bool.npy"],
    "array_npy": ["vector-f64.npy", "vector-batch-i32.npy", "vector-bool.npy", "vector-inf.npy",
                  "vector-u64.npy", "rgb-u8.npy"],
    "array_npy-image": ["rgb-u8.npy", "rgb-batch-i64.npy", "rgb-float.npy"],
    "wav_pcm16": ["tone.wav", "short.wav", "long.wav", "noise.wav", "quiet.wav", "eight-bit.wav",
                  "stereo.wav", "rate.wav", "wide.wav", "truncated.wav", "not.wav", "wave-i16.npy",
                  "wave-batch-f32.npy", "wave-i32.npy", "wave-3d.npy", "rgb.png"],
    "wav-custom": ["tone16k.wav", "tone.wav"],
    "wav-int8": ["tone.wav", "short.wav"],
}
# Files whose refusal the page words in its own way after the same start: a decoder's
# own message about a damaged file.
OWN_WORDS = {"corrupt.png": "not a readable image (", "fake.png": "not a readable image (",
             "truncated.npy": "not a readable .npy array ("}


def expected_file(card, path):
    """What preprocessing.py makes of one file for one card, as the fixture states it."""
    notes = []
    pre = Preprocessor(card, warn=notes.append)
    try:
        samples = pre.raw_samples(path)
    except InputError as err:
        message = str(err)
        own = OWN_WORDS.get(Path(path).name)
        return {"error": f"{path}: {own}" if own else message, "exact": own is None}
    out = []
    for name, raw in samples:
        x = pre.scale(raw)
        tensor = card["input"]
        q = None
        if tensor["dtype"] != "float32":
            quantization = tensor["quantization"]
            q = runtime.quantize(x, quantization["scale"], quantization["zero_point"],
                                 np.dtype(tensor["dtype"])).ravel().tolist()
        if raw.dtype == np.bool_:  # JSON's false/true: the page reads them as 0/1
            raw = raw.astype(np.uint8)
        out.append({"name": name, "shape": list(x.shape), "raw": raw.ravel().tolist(),
                    "x": [float(v) for v in x.ravel()], "q": q})
    return {"error": None, "exact": True, "notes": notes, "samples": out}


@pytest.fixture(scope="module")
def fixture_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("web-cards")
    path, fixture = write_fixture(folder / "android")
    files_dir = folder / "files"
    files_dir.mkdir()
    files = {**image_files(files_dir), **depth_files(files_dir), **npy_files(files_dir),
             **wav_files(files_dir)}
    (files_dir / "corrupt.png").write_bytes(files["rgb.png"].read_bytes()[:60])
    (files_dir / "fake.png").write_bytes(b"GIF89a" + bytes(40))
    files["corrupt.png"], files["fake.png"] = files_dir / "corrupt.png", files_dir / "fake.png"

    cards = {c["name"]: model_card.read_export(c["dir"])[0] for c in fixture["cards"]}
    for name, card in web_cards().items():
        export = folder / "web" / name
        export.mkdir(parents=True)
        (export / model_card.CARD_FILE).write_text(model_card.card_json(card))
        card, labels = model_card.read_export(export)
        cards[name] = card
        fixture["cards"].append({"name": name, "dir": str(export),
                                 "expect": _expected_fields(card, labels)})

    checks = []
    for card_name, names in FEEDS.items():
        for name in names:
            checks.append({"card": card_name, "path": str(files[name]),
                           **expected_file(cards[card_name], files[name])})
    fixture["files"] = checks
    fixture["spectrogram_tolerance"] = SPECTROGRAM_TOLERANCE
    fixture["refusals"] = refusals(folder / "refusals", fixture)
    path.write_text(json.dumps(fixture))
    return path, fixture


def refusals(folder, fixture):
    """Cards the page refuses although they are valid (and two it runs)."""
    out = [{"dir": c["dir"], "message": None} for c in fixture["cards"]
           if c["name"] in ("rgb8", "wav_pcm16")]
    tiff = next(c["dir"] for c in fixture["cards"] if c["name"] == "bands_tiff")
    out.append({"dir": tiff, "message": (
        "model_card.json: this page cannot read the samples of encoding 'bands_tiff' (multi-band "
        "TIFF: a browser has no TIFF decoder); classify them with `discomkd-edge classify` instead.")})
    for name, spec, what in (
            ("hop", {"expected_rate": 8000, "hop": 64}, "unknown parameter hop"),
            ("window", {"expected_rate": 8000, "window": "hamming"}, "window 'hamming'")):
        card = _card("wav_pcm16", "spectrogram", [1, 40, 61, 1], spectrogram=spec, mean=0, std=1)
        export = folder / name
        export.mkdir(parents=True)
        (export / model_card.CARD_FILE).write_text(model_card.card_json(card))
        out.append({"dir": str(export), "message": (
            f"model_card.json: preprocessing.spectrogram has {what}, which this page's log-mel "
            "spectrogram (edge_demo/spectrogram.py's recipe) does not implement; re-export the "
            "model with this version of discomkd-keras.")})
    return out


def run_contract(path):
    return subprocess.run([node_or_skip(), str(RUNNER), str(path)], capture_output=True, text=True,
                          timeout=300, cwd=WEB)


# --------------------------------------------------------------------------- the tests


def test_web_contract_agrees_with_the_python_side(fixture_file):
    path, fixture = fixture_file
    assert len(fixture["files"]) > 90
    assert sum(c["error"] is not None for c in fixture["files"]) > 30  # refusals are compared too
    done = run_contract(path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("WebContract: ") and " 0 failed" in done.stdout
    worst = float(done.stdout.split("largest log-mel difference ")[1].split()[0])
    assert 0 < worst <= SPECTROGRAM_TOLERANCE


def test_web_contract_fails_on_a_wrong_number(fixture_file, tmp_path):
    """The runner is not vacuous: a changed pixel, bit, message and log-mel value each fail it."""
    path, fixture = fixture_file
    fixture = copy.deepcopy(fixture)
    pixel = next(c for c in fixture["files"]
                 if c["path"].endswith("/depth-big.png") and c["card"] == "depth")
    pixel["samples"][0]["raw"][7] += 1
    bit = next(c for c in fixture["files"] if c["path"].endswith("/rgb.png") and c["card"] == "rgb8")
    first = np.float32(bit["samples"][0]["x"][0])
    bit["samples"][0]["x"][0] = float(np.nextafter(first, np.float32(9)))  # one ulp up
    refused = next(c for c in fixture["files"] if c["path"].endswith("/stereo.wav"))
    refused["error"] += "!"
    audio = next(c for c in fixture["files"]
                 if c["path"].endswith("/tone.wav") and c["card"] == "wav_pcm16")
    audio["samples"][0]["raw"][5] += 10 * SPECTROGRAM_TOLERANCE
    wrong = tmp_path / "fixture.json"
    wrong.write_text(json.dumps(fixture))
    done = run_contract(wrong)
    assert done.returncode == 1, done.stdout
    assert "4 failed" in done.stdout, done.stdout
    assert "depth-big.png[0] raw: first difference at [7]" in done.stdout
    assert "rgb8 rgb.png[0] x: first difference at [0]" in done.stdout
    assert "stereo.wav error" in done.stdout
    assert "tone.wav[0] log-mel: difference" in done.stdout


def test_sixteen_bit_depth_survives_where_a_canvas_would_not(fixture_file):
    """The depth PNG's raw sample holds values a browser canvas (8 bits) cannot: the page's
    own PNG decoding is what the contract test checks."""
    _, fixture = fixture_file
    case = next(c for c in fixture["files"]
                if c["card"] == "depth-plain" and c["path"].endswith("/depth.png"))
    raw = np.array(case["samples"][0]["raw"])
    assert raw.max() > 255 and np.any(raw % 256)
