"""The v2 model card (edge_demo/model_card.py): build, write, read, and refuse bad cards
with one clear line. No TensorFlow: the device imports the same module."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from discomkd_keras.edge_demo import model_card
from discomkd_keras.edge_demo.model_card import ModelCardError
from helpers import card_fields as fields

EDGE = Path(__file__).resolve().parents[1] / "edge_demo"


def write_export(folder, card, labels=("a", "b", "c")):
    folder.mkdir(parents=True, exist_ok=True)
    text = card if isinstance(card, str) else json.dumps(card)
    (folder / "model_card.json").write_text(text)
    (folder / "labels.txt").write_text("\n".join(labels) + "\n")
    return folder


def test_round_trip_through_write_and_read(tmp_path):
    card = model_card.build_card(**fields())
    assert card["format"] == "discomkd-keras/model-card/v2"
    assert card["preprocessing"]["encoding"] == "rgb8" and card["labels_file"] == "labels.txt"
    folder = tmp_path / "rgb"
    folder.mkdir()
    (folder / "model_card.json").write_text(model_card.card_json(card))
    (folder / "labels.txt").write_text("a\nb\nc\n")
    read, labels = model_card.read_export(folder)
    assert read == card and labels == ["a", "b", "c"]
    # Without labels.txt the card's class names stand in.
    (folder / "labels.txt").unlink()
    assert model_card.read_export(folder)[1] == ["a", "b", "c"]


@pytest.mark.parametrize("encoding, kind, shape, extra", [
    ("gray8", "image", [1, 28, 28, 1], {}),
    ("depth_mm_uint16", "image", [1, 16, 16, 1], {"clip": [0.0, 1.0]}),
    ("float_raw", "image", [1, 12, 12, 3], {}),
    ("float_raw", "vector", [1, 5], {}),
    ("wav_pcm16", "spectrogram", [1, 40, 61, 1],
     {"spectrogram": {"expected_rate": 8000}, "mean": -3.5, "std": 2.0}),
])
def test_every_encoding_builds(encoding, kind, shape, extra):
    pre = {"encoding": encoding, **extra}
    card = model_card.build_card(**fields(kind=kind, preprocessing=pre, input_tensor={
        "name": "x", "shape": shape, "dtype": "float32", "quantization": None}))
    assert card["preprocessing"]["encoding"] == encoding


def bad_cards():
    """(name, change to a valid card, the exact message after 'invalid model card: ')."""
    def set_path(path, value):
        def change(card):
            *parents, last = path.split(".")
            node = card
            for key in parents:
                node = node[key]
            if value is KeyError:
                del node[last]
            else:
                node[last] = value
        return change

    return [
        ("missing key", set_path("model_file", KeyError), "no 'model_file' entry."),
        ("missing encoding", set_path("preprocessing.encoding", KeyError),
         "no 'preprocessing.encoding' entry."),
        ("missing sha", set_path("source.checkpoint_sha256", KeyError),
         "no 'source.checkpoint_sha256' entry."),
        ("wrong type", set_path("class_names", "abc"), "'class_names' must be a list, not a string."),
        ("bool epoch", set_path("source.epoch", True),
         "'source.epoch' must be an integer, not true or false."),
        ("unknown encoding", set_path("preprocessing.encoding", "jpeg"),
         "preprocessing.encoding 'jpeg' is not one of rgb8, gray8, depth_mm_uint16, wav_pcm16, "
         "float_raw, bands_tiff, array_npy."),
        ("encoding vs channels", set_path("preprocessing.encoding", "gray8"),
         "encoding 'gray8' needs a 1-channel input; the input shape is [1, 16, 16, 3]."),
        ("encoding vs kind", set_path("preprocessing.encoding", "wav_pcm16"),
         "encoding 'wav_pcm16' is for spectrogram models, not an image model."),
        ("batch 2", set_path("input.shape", [2, 16, 16, 3]),
         "input.shape must be [1, H, W, C] (batch 1) for an image model; got [2, 16, 16, 3]."),
        ("zero dim", set_path("input.shape", [1, 0, 16, 3]),
         "input.shape must be a list of positive integers; got [1, 0, 16, 3]."),
        ("height", set_path("preprocessing.height", 28),
         "preprocessing.height = 28 but the input shape is [1, 16, 16, 3]."),
        ("output", set_path("output.shape", [1, 4]),
         "output.shape must be [1, 3] (batch 1, one probability per class name); got [1, 4]."),
        ("quantization", set_path("input.quantization", None),
         "input.quantization must be {scale > 0, zero_point} for a uint8 tensor."),
        ("clip", set_path("preprocessing.clip", [1.0, 0.0]),
         "preprocessing.clip must be [low, high] with low <= high; got [1.0, 0.0]."),
        ("kind", set_path("kind", "video"), "kind 'video' is not one of image, spectrogram, vector."),
        ("path in model_file", set_path("model_file", "/home/me/rgb.tflite"),
         "model_file '/home/me/rgb.tflite' must be a file name in the export folder."),
        ("path in run", set_path("source.run", "/home/me/runs/x"),
         "source.run must be the run directory's name, not a path."),
        ("sha", set_path("source.checkpoint_sha256", "abc"),
         "source.checkpoint_sha256 must be 64 lowercase hex digits."),
    ]


@pytest.mark.parametrize("name, change, message", bad_cards(), ids=[c[0] for c in bad_cards()])
def test_bad_card_is_refused_with_one_line(tmp_path, name, change, message):
    card = copy.deepcopy(model_card.build_card(**fields()))
    change(card)
    folder = write_export(tmp_path / "m", card)
    with pytest.raises(ModelCardError) as info:
        model_card.read_export(folder)
    assert str(info.value) == f"{folder / 'model_card.json'}: invalid model card: {message}"
    assert "\n" not in str(info.value)
    with pytest.raises(ModelCardError, match="^model card: invalid model card: "):
        model_card.card_json(card)  # the writer refuses it too


def test_bad_json_and_missing_files(tmp_path):
    folder = write_export(tmp_path / "m", "{not json")
    with pytest.raises(ModelCardError) as info:
        model_card.read_export(folder)
    assert str(info.value) == (f"{folder / 'model_card.json'}: the model card is not valid JSON "
                               "(Expecting property name enclosed in double quotes at line 1).")
    folder = write_export(tmp_path / "list", "[1, 2]")
    with pytest.raises(ModelCardError, match="invalid model card: expected a JSON object, not a list"):
        model_card.read_export(folder)
    with pytest.raises(ModelCardError, match="does not exist"):
        model_card.read_export(tmp_path / "gone")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelCardError, match=r"model_card.json is missing: the model folder must"):
        model_card.read_export(tmp_path / "empty")
    card = model_card.build_card(**fields())
    folder = write_export(tmp_path / "labels", card, labels=("a", "b"))
    with pytest.raises(ModelCardError) as info:
        model_card.read_export(folder)
    assert str(info.value) == (f"{folder / 'labels.txt'} has 2 labels but the card's output has 3 "
                               "classes; the folder mixes files of different exports.")


def test_v1_and_unknown_formats_are_refused_clearly(tmp_path):
    v1 = {"format": "discomkd-keras/model-card/v1", "modality": "rgb", "kind": "image",
          "preprocessing": {"raw": "8-bit RGB image, HxWx3", "scale": 1 / 255},
          "source": {"run_dir": "/home/me/runs/x"}}
    folder = write_export(tmp_path / "v1", v1)
    with pytest.raises(ModelCardError) as info:
        model_card.read_export(folder)
    assert str(info.value) == (
        f"{folder / 'model_card.json'}: discomkd-keras/model-card/v1 is an old model card without "
        "an input encoding; re-export the model with `discomkd-keras export` to get a "
        "discomkd-keras/model-card/v2 card.")
    for fmt, what in (("discomkd-keras/model-card/v3", "unknown format 'discomkd-keras/model-card/v3'"),
                      (None, "no 'format' entry")):
        card = dict(model_card.build_card(**fields()), format=fmt)
        if fmt is None:
            del card["format"]
        with pytest.raises(ModelCardError) as info:
            model_card.validate_card(card)
        assert str(info.value) == (f"model_card.json: {what}; this reader understands "
                                   "discomkd-keras/model-card/v2 cards (re-export the model with "
                                   "`discomkd-keras export`).")


def test_device_modules_import_without_tensorflow():
    """Run as on a device (edge_demo/ on sys.path, no package): the modules load, and
    none of them pulls in TensorFlow, Keras or discomkd_keras even where they exist."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "import classify, model_card, runtime, preprocessing, image_ops, camera; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'tensorflow', 'keras', 'discomkd_keras', 'ai_edge_litert', 'PIL'}))")
    done = subprocess.run([sys.executable, "-c", code, str(EDGE)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"  # LiteRT and Pillow load only when used
