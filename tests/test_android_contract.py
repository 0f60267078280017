"""The Android sample's pure-Kotlin contract (ModelCard.kt, InferenceContract.kt) compiled
and run on the JVM, against the cards of the Python tests and the numbers edge_demo's Python
computes for them. No Android SDK: Debian's kotlinc (1.3) compiles the two files, with
Android's own org.json from Debian's libandroid-json-java; the app's JUnit tests
(app/src/test) run too where Debian's junit4 is installed.

The fixture: cards built by tests/helpers.card_fields (and the bad cards of
tests/test_model_card.py) written by edge_demo/model_card.py into export folders, and what
model_card.py, preprocessing.py, runtime.py and classify.py make of them, in one JSON file
that edge_demo/android/jvm-test/ContractTest.kt reads. Compiled jars are cached under
.pytest_cache, keyed by the sources, the classpath and the compiler's version.
"""

import copy
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from discomkd_keras.edge_demo import classify, model_card, runtime
from discomkd_keras.edge_demo.model_card import ModelCardError
from discomkd_keras.edge_demo.preprocessing import Preprocessor
from helpers import card_fields
from test_model_card import bad_cards

ANDROID = Path(__file__).resolve().parents[1] / "edge_demo" / "android"
PACKAGE = "org/discomkd/edgedemo"
CONTRACT = [ANDROID / "app/src/main/java" / PACKAGE / f for f in ("ModelCard.kt", "InferenceContract.kt")]
JVM_TEST = ANDROID / "jvm-test" / "ContractTest.kt"
UNIT_TESTS = sorted((ANDROID / "app/src/test/java" / PACKAGE).glob("*.kt"))
# Debian's packages (bookworm): kotlin, libandroid-json-java (Android's org.json), junit4.
ORG_JSON = Path("/usr/share/java/com.android.json.jar")
JUNIT = [Path("/usr/share/java/junit4.jar"), Path("/usr/share/java/hamcrest-core.jar")]
MAIN_CLASS = "org.discomkd.edgedemo.ContractTestKt"
# Kotlin 1.3 runs on Debian's default JDK (17 on bookworm) but dies on JDK 25 (it cannot
# parse the version string), so kotlinc gets that JDK where it exists, whatever JAVA_HOME says.
DEFAULT_JDK = Path("/usr/lib/jvm/default-java")


def _run(cmd, timeout, env=None):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                          env=env)


def _compiler_identity(kotlinc, env):
    """What names the compiler: its jar's real path and stat (Debian's names the version),
    else `kotlinc -version` (a second JVM start)."""
    jar = Path(kotlinc).resolve().parents[1] / "lib" / "kotlin-compiler.jar"
    if jar.is_file():
        stat = jar.stat()
        return f"{jar.resolve()} {stat.st_size} {stat.st_mtime_ns}"
    done = _run([kotlinc, "-version"], 120, env)
    return done.stdout + done.stderr


def _kotlinc_env():
    env = dict(os.environ)
    if (DEFAULT_JDK / "bin" / "java").is_file():
        env["JAVA_HOME"] = str(DEFAULT_JDK)
        env.pop("JAVACMD", None)
    return env


@pytest.fixture(scope="module")
def contract_jar(request, tmp_path_factory):
    """The contract, ContractTest.kt and (with junit4) the app's JUnit tests, compiled once
    per source version; (jar, classpath to run it with, whether the JUnit tests are in it)."""
    kotlinc = shutil.which("kotlinc")
    if kotlinc is None:
        pytest.skip("kotlinc is not installed (Debian: apt-get install kotlin); the Android "
                    "contract is compiled and tested on the JVM only where it is")
    if shutil.which("java") is None:
        pytest.skip("no java on PATH (Debian: apt-get install default-jdk-headless)")
    if not ORG_JSON.is_file():
        pytest.skip(f"{ORG_JSON} is missing: ModelCard.kt reads JSON with Android's org.json "
                    "(Debian: apt-get install libandroid-json-java)")
    with_junit = all(p.is_file() for p in JUNIT)
    sources = CONTRACT + [JVM_TEST] + (UNIT_TESTS if with_junit else [])
    classpath = [ORG_JSON] + (JUNIT if with_junit else [])
    env = _kotlinc_env()
    key = hashlib.sha256()
    for path in sources:
        key.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    key.update(f"{classpath}\0{_compiler_identity(kotlinc, env)}".encode())
    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    folder = cache.mkdir("android-contract") if cache else tmp_path_factory.mktemp("android-contract")
    jar = Path(folder) / f"{key.hexdigest()[:16]}.jar"
    if not jar.is_file():
        partial = jar.with_suffix(f".{os.getpid()}.part.jar")
        done = _run([kotlinc, "-nowarn", "-include-runtime", "-d", partial,
                     "-cp", os.pathsep.join(map(str, classpath)), *sources], 600, env)
        if done.returncode != 0:
            partial.unlink(missing_ok=True)
            pytest.fail(f"kotlinc failed:\n{done.stdout}{done.stderr}")
        partial.replace(jar)
    return jar, os.pathsep.join(map(str, [jar] + classpath)), with_junit


# --------------------------------------------------------------------------- the fixture


def _f32(values):
    """float32 values as the doubles they are exactly (JSON round-trips them)."""
    return [float(v) for v in np.asarray(values, np.float32).ravel()]


def _tensor(tensor):
    q = tensor.get("quantization") if tensor["dtype"] != "float32" else None
    return {"shape": tensor["shape"], "dtype": tensor["dtype"],
            "scale": _f32([q["scale"]])[0] if q else None,
            "zero_point": q["zero_point"] if q else None}


def _image_card(encoding, shape, classes=("a", "b", "c"), in_dtype="uint8", out_dtype="float32",
                **pre):
    quant = {"int8": {"scale": 1 / 128, "zero_point": -1}, "uint8": {"scale": 0.5, "zero_point": 3},
             "float32": None}
    out_quant = {"int8": {"scale": 1 / 256, "zero_point": -128}, "float32": None}
    return model_card.build_card(**card_fields(
        class_names=list(classes), preprocessing={"encoding": encoding, **pre},
        input_tensor={"name": "x", "shape": list(shape), "dtype": in_dtype, "quantization": quant[in_dtype]},
        output_tensor={"name": "y", "shape": [1, len(classes)], "dtype": out_dtype,
                       "quantization": out_quant[out_dtype]}))


def _float_card(encoding, kind, shape, **pre):
    """The cards of test_model_card.test_every_encoding_builds: a float32 input."""
    return model_card.build_card(**card_fields(kind=kind, preprocessing={"encoding": encoding, **pre},
                                               input_tensor={"name": "x", "shape": shape,
                                                             "dtype": "float32", "quantization": None}))


def valid_cards():
    """name -> (card, labels.txt text or None for no file)."""
    five = ("c0", "c1", "c2", "c3", "c4")
    return {
        "rgb8": (model_card.build_card(**card_fields()), "a\nb\nc\n"),
        "rgb8-per-channel": (_image_card(
            "rgb8", [1, 6, 5, 3], classes=five, in_dtype="int8", out_dtype="int8",
            scale=[1 / 255, 2 / 255, 0.5], offset=[-0.5, 0.25, 1.0], clip=[-0.25, 0.75],
            resize={"interpolation": "bilinear", "crop_to_aspect": False}),
            "cat\ndog\n  bird \n\nfish\nfrog\n"),
        "rgb8-nearest": (_image_card("rgb8", [1, 4, 6, 3], in_dtype="float32", scale=1 / 127.5,
                                     offset=-1.0, resize={"interpolation": "nearest"}), None),
        "gray8": (_image_card("gray8", [1, 6, 5, 1], scale=[1 / 255], offset=-0.5), "x\r\ny\r\nz\r\n"),
        "gray8-28": (_float_card("gray8", "image", [1, 28, 28, 1]), None),
        "depth": (_float_card("depth_mm_uint16", "image", [1, 16, 16, 1], clip=[0.0, 1.0],
                              scale=1 / 4000, depth_decode={"rotate_right_bits": 3, "mm_per_unit": 0.1}),
                  None),
        "float_raw-image": (_float_card("float_raw", "image", [1, 12, 12, 3]), None),
        "float_raw-vector": (_float_card("float_raw", "vector", [1, 5]), None),
        "wav_pcm16": (_float_card("wav_pcm16", "spectrogram", [1, 40, 61, 1],
                                  spectrogram={"expected_rate": 8000}, mean=-3.5, std=2.0), None),
        "bands_tiff": (_float_card("bands_tiff", "image", [1, 8, 8, 4], scale=[0.1, 0.2, 0.3, 0.4],
                                   offset=[1, 2, 3, 4]), None),
        "array_npy": (_float_card("array_npy", "vector", [1, 5], scale=0.5), None),
    }


def _expected_fields(card, labels):
    pre = card["preprocessing"]
    shape = card["input"]["shape"]
    preprocessor = Preprocessor(card)
    scaled = card["kind"] != "spectrogram"
    return {
        "modality": card["modality"], "kind": card["kind"], "model_file": card["model_file"],
        "labels_file": card["labels_file"], "class_names": card["class_names"],
        "quantization": card.get("quantization"), "input": _tensor(card["input"]),
        "output": _tensor(card["output"]), "encoding": pre["encoding"],
        "scale": _f32(np.broadcast_to(np.asarray(pre.get("scale", 1.0), np.float32), shape[-1:]))
        if scaled else None,
        "offset": _f32(np.broadcast_to(np.asarray(pre.get("offset", 0.0), np.float32), shape[-1:]))
        if scaled else None,
        "clip": _f32(pre["clip"]) if pre.get("clip") is not None else None,
        "interpolation": "nearest" if preprocessor.nearest else "bilinear",
        "crop_to_aspect": preprocessor.crop, "labels": labels,
        "takes_pixels": preprocessor.takes_pixels,
    }


def more_bad_cards():
    """(name, change to a valid card, message after 'invalid model card: ') for the fields
    the Android sample reads beyond test_model_card.bad_cards."""
    def pre(key, value):
        def change(card):
            card["preprocessing"][key] = value
        return change

    return [
        ("scale length", pre("scale", [0.1, 0.2]),
         "preprocessing.scale must be a number or 3 numbers (one per channel); got [0.1, 0.2]."),
        ("scale text", pre("scale", "1/255"), "preprocessing.scale must be a number, not a string."),
        ("offset null", pre("offset", None), "preprocessing.offset must be a number, not null."),
        ("resize", pre("resize", {"interpolation": "cubic"}),
         "preprocessing.resize must be {interpolation: bilinear or nearest, crop_to_aspect: true or "
         "false}; got {'interpolation': 'cubic'}."),
        ("crop", pre("resize", {"crop_to_aspect": "yes"}),
         "preprocessing.resize must be {interpolation: bilinear or nearest, crop_to_aspect: true or "
         "false}; got {'crop_to_aspect': 'yes'}."),
        ("depth_decode on rgb8", pre("depth_decode", {"rotate_right_bits": 3}),
         "preprocessing.depth_decode must be {rotate_right_bits: 0..15, mm_per_unit > 0} on a "
         "depth_mm_uint16 model; got {'rotate_right_bits': 3}."),
        ("clip of three", pre("clip", [0, 1, 2]),
         "preprocessing.clip must be [low, high] with low <= high; got [0, 1, 2]."),
        ("tiny clip", pre("clip", [1e-05, 2.5e-07]),
         "preprocessing.clip must be [low, high] with low <= high; got [1e-05, 2.5e-07]."),
        ("height as text", pre("height", "16"),
         "preprocessing.height = 16 but the input shape is [1, 16, 16, 3]."),
        ("raw", pre("raw", 8), "preprocessing.raw (a description) must be a string."),
        ("dtype", lambda card: card["output"].update(dtype="float64"),
         "output.dtype 'float64' is not one of float32, int8, uint8."),
        ("labels_file", lambda card: card.update(labels_file=None),
         "'labels_file' must be a string, not null."),
        ("class name", lambda card: card.update(class_names=["a", 2, "c"]),
         "class_names must be a non-empty list of strings."),
        ("vector shape", lambda card: card.update(kind="vector"),
         "input.shape must be [1, F] (batch 1) for a vector model; got [1, 16, 16, 3]."),
    ]


def bad_texts():
    """(name, card text, expected message, exact) of every card model_card.py refuses."""
    out = []
    for name, change, message in bad_cards() + more_bad_cards():
        card = copy.deepcopy(model_card.build_card(**card_fields()))
        change(card)
        out.append((name, json.dumps(card)))
    v1 = {"format": "discomkd-keras/model-card/v1", "modality": "rgb", "kind": "image",
          "preprocessing": {"raw": "8-bit RGB image, HxWx3", "scale": 1 / 255},
          "source": {"run_dir": "/home/me/runs/x"}}
    out.append(("v1", json.dumps(v1)))
    good = model_card.build_card(**card_fields())
    out.append(("v3", json.dumps(dict(good, format="discomkd-keras/model-card/v3"))))
    out.append(("no format", json.dumps({k: v for k, v in good.items() if k != "format"})))
    out.append(("list", "[1, 2]"))
    cases = []
    for name, text in out:
        with pytest.raises(ModelCardError) as info:
            model_card.parse_card(text)
        cases.append({"name": name, "text": text, "message": str(info.value), "exact": True})
    # Parsers word their errors differently: the Kotlin message need only start the same.
    for name, text in (("not json", "{not json"), ("extra data", json.dumps(good) + " x"),
                       ("empty", "")):
        with pytest.raises(ModelCardError, match="the model card is not valid JSON"):
            model_card.parse_card(text)
        cases.append({"name": name, "text": text, "exact": False,
                      "message": "model_card.json: the model card is not valid JSON ("})
    return cases


def _images():
    """RGB photos of several sizes: the 7x10 image of test_image_ops_match_the_android_sample,
    and random ones (same size as a model, larger in another aspect ratio, smaller)."""
    y, x = np.mgrid[0:7, 0:10]
    yield np.stack([(x * 37 + y * 11) % 256, (x * 5 + y * 53) % 256, (x * x + 3 * y * y) % 256],
                   -1).astype(np.uint8)
    rng = np.random.default_rng(17)
    for h, w in ((6, 5), (4, 6), (16, 16), (13, 21), (3, 4), (31, 9)):
        yield rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def write_fixture(folder):
    cards, exports = [], {}
    for name, (card, labels_text) in valid_cards().items():
        export = folder / name
        export.mkdir(parents=True)
        (export / model_card.CARD_FILE).write_text(model_card.card_json(card))
        if labels_text is not None:
            (export / card["labels_file"]).write_text(labels_text)
        card, labels = model_card.read_export(export)
        exports[name] = (card, labels)
        cards.append({"name": name, "dir": str(export), "expect": _expected_fields(card, labels)})

    bad_labels = []
    for i, text in enumerate(("cat\ndog\n", "a\nb\nc\nd\n")):
        export = folder / f"bad-labels-{i}"
        export.mkdir()
        (export / model_card.CARD_FILE).write_text(model_card.card_json(exports["rgb8"][0]))
        (export / "labels.txt").write_text(text)
        with pytest.raises(ModelCardError) as info:
            model_card.read_export(export)
        bad_labels.append({"dir": str(export), "message": str(info.value)})

    inputs = []
    for name, (card, _) in exports.items():
        if not Preprocessor(card).takes_pixels:
            continue
        for img in _images():
            notes = []
            pre = Preprocessor(card, warn=notes.append)
            raw = pre.pixels_to_raw(img, "RGB", "photo")
            x = pre.scale(raw)
            fit = [n.split(": ", 1)[1] for n in notes if n.startswith("photo: resized")]
            tensor = card["input"]
            q = None
            if tensor["dtype"] != "float32":
                q = runtime.quantize(x, tensor["quantization"]["scale"],
                                     tensor["quantization"]["zero_point"], np.dtype(tensor["dtype"]))
            inputs.append({"card": name, "height": img.shape[0], "width": img.shape[1],
                           "rgb": img.ravel().tolist(), "raw": raw.ravel().tolist(),
                           "note": fit[0] if fit else None, "x": _f32(x),
                           "q": q.ravel().tolist() if q is not None else None})

    outputs = []
    card, labels = exports["rgb8-per-channel"]  # int8 output, labels.txt unlike the class names
    out_q = card["output"]["quantization"]
    for q, k in (([-28, 100, -28, 127, -128], 3), ([0, 0, 0, 0, 0], 5), ([-128, 5, 127, 5, 127], 4)):
        probs = runtime.dequantize(np.array(q, np.int8), out_q["scale"], out_q["zero_point"])
        outputs.append({"card": "rgb8-per-channel", "q": q, "k": k, "probabilities": _f32(probs),
                        "top_k": classify.top_k(probs, labels, k)})
    card, labels = exports["rgb8"]  # float output
    for p in ([0.25, 0.5, 0.25], [0.0, -0.0, 1.0], [1 / 3, 1 / 3, 1 / 3]):
        probs = np.asarray(p, np.float32)
        outputs.append({"card": "rgb8", "q": None, "k": 3, "probabilities": _f32(probs),
                        "top_k": classify.top_k(probs, labels, 3)})

    fixture = {"cards": cards, "bad_cards": bad_texts(), "bad_labels": bad_labels,
               "inputs": inputs, "outputs": outputs}
    path = folder / "fixture.json"
    path.write_text(json.dumps(fixture))
    return path, fixture


# --------------------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def fixture_file(tmp_path_factory):
    return write_fixture(tmp_path_factory.mktemp("android-cards"))


def test_kotlin_contract_agrees_with_the_python_card_contract(contract_jar, fixture_file):
    jar, classpath, _ = contract_jar
    path, fixture = fixture_file
    assert len(fixture["inputs"]) == 5 * 7 and len(fixture["bad_cards"]) == 39
    done = _run(["java", "-cp", classpath, MAIN_CLASS, path], 300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("ContractTest: ") and " 0 failed" in done.stdout


def test_kotlin_contract_test_fails_on_a_wrong_number(contract_jar, fixture_file, tmp_path):
    """The JVM test is not vacuous: one changed expected value fails it, naming the check."""
    jar, classpath, _ = contract_jar
    fixture = copy.deepcopy(fixture_file[1])
    path = tmp_path / "fixture.json"
    fixture["inputs"][0]["raw"][4] += 1
    fixture["cards"][0]["expect"]["interpolation"] = "nearest"
    path.write_text(json.dumps(fixture))
    done = _run(["java", "-cp", classpath, MAIN_CLASS, path], 300)
    assert done.returncode == 1
    assert "2 failed" in done.stdout
    assert "FAIL input rgb8 10x7 raw: first difference at [4]" in done.stdout
    assert "FAIL rgb8 interpolation: expected <nearest>, got <bilinear>" in done.stdout


def test_app_unit_tests_pass_on_the_jvm(contract_jar):
    """The app's own JUnit tests (app/src/test, what `./gradlew :app:testDebugUnitTest` runs)."""
    jar, classpath, with_junit = contract_jar
    if not with_junit:
        pytest.skip(f"JUnit 4 is not installed ({JUNIT[0]}; Debian: apt-get install junit4)")
    classes = [f"org.discomkd.edgedemo.{p.stem}" for p in UNIT_TESTS]
    done = _run(["java", "-cp", classpath, "org.junit.runner.JUnitCore", *classes], 300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK (" in done.stdout
