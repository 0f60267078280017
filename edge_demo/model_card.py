"""The model card: the contract between the exporter, the Pi demo and the Android sample.

Every export folder holds `<modality>.tflite`, `labels.txt` and `model_card.json`.
This module defines the card (format FORMAT), builds and validates it, and reads
an export folder back. It imports the standard library only, so it runs on a
device next to classify.py; the exporter imports the same file (installed as
`discomkd_keras.edge_demo.model_card`), so writer and readers share one schema.

A card names its raw input by `preprocessing.encoding` (ENCODINGS); readers go by
that field alone. `preprocessing.raw` is an optional description for people and
is never parsed. The card holds no path of the training machine: `source` names
the run directory by its name and the exported checkpoint by its sha256.
"""

import json
import re
from pathlib import Path

FORMAT = "discomkd-keras/model-card/v2"
OLD_FORMATS = ("discomkd-keras/model-card/v1",)
CARD_FILE = "model_card.json"
LABELS_FILE = "labels.txt"
KINDS = ("image", "spectrogram", "vector")
TENSOR_DTYPES = ("float32", "int8", "uint8")

# encoding -> (kinds it can feed, channels of the model input or None for any, what the raw
# sample is). The device reads files, converts and scales them by this field alone.
ENCODINGS = {
    "rgb8": (("image",), 3, "8-bit RGB image, uint8 (H, W, 3)"),
    "gray8": (("image",), 1, "8-bit grayscale image, uint8 (H, W)"),
    "depth_mm_uint16": (("image",), 1, "depth in millimetres, uint16 (H, W), 0 = missing"),
    "wav_pcm16": (("spectrogram",), 1, "mono 16-bit PCM WAV at spectrogram.expected_rate"),
    "float_raw": (("image", "vector"), None,
                  "already-normalised floats as stored: (C, H, W) images, (F,) vectors"),
    "bands_tiff": (("image",), None, "multi-band TIFF, (H, W, C) or planar (C, H, W) samples"),
    "array_npy": (("image", "vector"), None,
                  "one sample as a .npy array: (H, W, C) or (H, W) images, (F,) vectors"),
}
INTERPOLATIONS = ("bilinear", "nearest")

_SHA256 = re.compile(r"[0-9a-f]{64}")
_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", int: "an integer",
               float: "a number", bool: "true or false", type(None): "null"}

# (key, type, required) of the card's top level and of `source`.
_TOP = (("modality", str, True), ("kind", str, True), ("model_file", str, True),
        ("labels_file", str, True), ("class_names", list, True), ("input", dict, True),
        ("output", dict, True), ("preprocessing", dict, True), ("source", dict, True),
        ("quantization", str, False), ("weight_scales", str, False),
        ("file_size_bytes", int, False), ("parameters", int, False), ("ops", list, False),
        ("representative_samples", int, False), ("verification", dict, False))
_SOURCE = (("run", str, True), ("checkpoint_sha256", str, True), ("epoch", int, True),
           ("valid_weighted_f1", float, False), ("dataset", str, False),
           ("encoder", str, False), ("versions", dict, False))


class ModelCardError(ValueError):
    """A card or export folder that cannot be used; the message is one line naming why."""


def build_card(*, modality, kind, model_file, class_names, input_tensor, output_tensor,
               preprocessing, source, quantization, weight_scales=None, file_size_bytes=None,
               parameters=None, ops=(), representative_samples=0, verification=None,
               labels_file=LABELS_FILE):
    """A v2 card from its fields, validated (ModelCardError otherwise).

    input_tensor / output_tensor: {name, shape, layout, dtype, quantization} of the
    TFLite tensors (quantization {scale, zero_point} or None for float32)."""
    card = {"format": FORMAT, "modality": modality, "kind": kind, "model_file": model_file,
            "labels_file": labels_file, "class_names": list(class_names),
            "quantization": quantization, "weight_scales": weight_scales,
            "input": dict(input_tensor), "output": dict(output_tensor),
            "preprocessing": dict(preprocessing), "source": dict(source),
            "file_size_bytes": file_size_bytes, "parameters": parameters, "ops": list(ops),
            "representative_samples": representative_samples, "verification": verification}
    return validate_card(card, where="model card")


def card_json(card):
    """The card's file text, after validating it: nothing invalid is ever written."""
    return json.dumps(validate_card(card, where="model card"), indent=2) + "\n"


def parse_card(text, where=CARD_FILE):
    """The validated card of a model_card.json text."""
    try:
        card = json.loads(text)
    except json.JSONDecodeError as err:
        raise ModelCardError(f"{where}: the model card is not valid JSON ({err.msg} at line "
                             f"{err.lineno}).") from None
    return validate_card(card, where)


def read_export(folder):
    """(card, labels) of an export folder; ModelCardError says what is wrong with it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelCardError(f"model folder {folder} does not exist (expected an export folder "
                             f"with <modality>.tflite, {LABELS_FILE} and {CARD_FILE}).")
    path = folder / CARD_FILE
    if not path.is_file():
        raise ModelCardError(f"{path} is missing: the model folder must be one written by "
                             f"`discomkd-keras export` (<modality>.tflite, {LABELS_FILE}, {CARD_FILE}).")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ModelCardError(f"{path}: cannot read the model card ({err}).") from None
    card = parse_card(text, str(path))
    labels_path = folder / card["labels_file"]
    if labels_path.is_file():
        labels = [line.strip() for line in labels_path.read_text(encoding="utf-8").splitlines()
                  if line.strip()]
    else:  # the card carries the same names
        labels = list(card["class_names"])
    classes = card["output"]["shape"][-1]
    if len(labels) != classes:
        raise ModelCardError(f"{labels_path} has {len(labels)} labels but the card's output has "
                             f"{classes} classes; the folder mixes files of different exports.")
    return card, labels


# --------------------------------------------------------------------------- validation


def validate_card(card, where=CARD_FILE):
    """`card` itself if it is a valid v2 card; else ModelCardError naming the first problem."""

    def bad(what):
        return ModelCardError(f"{where}: invalid model card: {what}.")

    if not isinstance(card, dict):
        raise bad(f"expected a JSON object, not {_type_name(card)}")
    fmt = card.get("format")
    if fmt in OLD_FORMATS:
        raise ModelCardError(f"{where}: {fmt} is an old model card without an input encoding; "
                             f"re-export the model with `discomkd-keras export` to get a {FORMAT} card.")
    if fmt != FORMAT:
        what = "no 'format' entry" if fmt is None else f"unknown format {fmt!r}"
        raise ModelCardError(f"{where}: {what}; this reader understands {FORMAT} cards "
                             "(re-export the model with `discomkd-keras export`).")
    _check_fields(card, _TOP, "", bad)
    _check_fields(card["source"], _SOURCE, "source.", bad)
    if not card["source"]["run"] or Path(card["source"]["run"]).name != card["source"]["run"]:
        raise bad("source.run must be the run directory's name, not a path")
    if not _SHA256.fullmatch(card["source"]["checkpoint_sha256"]):
        raise bad("source.checkpoint_sha256 must be 64 lowercase hex digits")
    kind = card["kind"]
    if kind not in KINDS:
        raise bad(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    if Path(card["model_file"]).name != card["model_file"] or not card["model_file"]:
        raise bad(f"model_file {card['model_file']!r} must be a file name in the export folder")
    if not card["class_names"] or not all(isinstance(c, str) for c in card["class_names"]):
        raise bad("class_names must be a non-empty list of strings")

    shape = _check_tensor(card["input"], "input", bad)
    rank = 2 if kind == "vector" else 4
    if len(shape) != rank or shape[0] != 1:
        layout = "[1, F]" if rank == 2 else "[1, H, W, C]"
        raise bad(f"input.shape must be {layout} (batch 1) for {_a(kind)} model; got {shape}")
    out_shape = _check_tensor(card["output"], "output", bad)
    if out_shape != [1, len(card["class_names"])]:
        raise bad(f"output.shape must be [1, {len(card['class_names'])}] (batch 1, one "
                  f"probability per class name); got {out_shape}")
    _check_preprocessing(card["preprocessing"], kind, shape, bad)
    return card


def _a(word):
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _type_name(value):
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _is(value, kind):
    """isinstance for JSON values: a bool is no number, an int is a number."""
    if isinstance(value, bool):
        return kind is bool
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)


def _check_fields(mapping, fields, prefix, bad):
    for key, kind, required in fields:
        value = mapping.get(key)
        if value is None and not required:  # optional: absent or null
            continue
        if key not in mapping:
            raise bad(f"no '{prefix}{key}' entry")
        if not _is(value, kind):
            raise bad(f"'{prefix}{key}' must be {_JSON_TYPES[kind]}, not {_type_name(value)}")


def _check_tensor(tensor, name, bad):
    """The tensor's shape, after checking shape, dtype and quantization."""
    shape = tensor.get("shape")
    if not (isinstance(shape, list) and shape
            and all(_is(d, int) and d > 0 for d in shape)):
        raise bad(f"{name}.shape must be a list of positive integers; got {shape!r}")
    dtype = tensor.get("dtype")
    if dtype not in TENSOR_DTYPES:
        raise bad(f"{name}.dtype {dtype!r} is not one of {', '.join(TENSOR_DTYPES)}")
    q = tensor.get("quantization")
    if dtype != "float32" and not (isinstance(q, dict) and _is(q.get("scale"), float)
                                   and q["scale"] > 0 and _is(q.get("zero_point"), int)):
        raise bad(f"{name}.quantization must be {{scale > 0, zero_point}} for a {dtype} tensor")
    return shape


def _check_preprocessing(pre, kind, shape, bad):
    encoding = pre.get("encoding")
    if encoding is None:
        raise bad("no 'preprocessing.encoding' entry")
    if encoding not in ENCODINGS:
        raise bad(f"preprocessing.encoding {encoding!r} is not one of {', '.join(ENCODINGS)}")
    kinds, channels, _ = ENCODINGS[encoding]
    if kind not in kinds:
        raise bad(f"encoding {encoding!r} is for {' or '.join(kinds)} models, not {_a(kind)} model")
    if channels is not None and kind == "image" and shape[3] != channels:
        raise bad(f"encoding {encoding!r} needs a {channels}-channel input; the input shape is {shape}")
    if "raw" in pre and not isinstance(pre["raw"], str):
        raise bad("preprocessing.raw (a description) must be a string")
    if kind == "spectrogram":
        spec = pre.get("spectrogram")
        if not (isinstance(spec, dict) and _is(spec.get("expected_rate"), int)
                and spec["expected_rate"] > 0):
            raise bad("preprocessing.spectrogram must be an object with expected_rate > 0")
        if not (_is(pre.get("mean"), float) and _is(pre.get("std"), float) and pre["std"] > 0):
            raise bad("preprocessing.mean and preprocessing.std (> 0) must be numbers")
        return
    for key in ("scale", "offset"):  # one number, or one per channel (per feature)
        value = pre.get(key)
        if isinstance(value, list):
            if len(value) != shape[-1] or not all(_is(v, float) for v in value):
                raise bad(f"preprocessing.{key} must be a number or {shape[-1]} numbers (one per "
                          f"channel); got {value!r}")
        elif key in pre and not _is(value, float):
            raise bad(f"preprocessing.{key} must be a number, not {_type_name(value)}")
    resize = pre.get("resize")
    if resize is not None and not (
            isinstance(resize, dict) and resize.get("interpolation", "bilinear") in INTERPOLATIONS
            and _is(resize.get("crop_to_aspect", True), bool)):
        raise bad(f"preprocessing.resize must be {{interpolation: {' or '.join(INTERPOLATIONS)}, "
                  f"crop_to_aspect: true or false}}; got {resize!r}")
    decode = pre.get("depth_decode")
    if decode is not None and not (
            encoding == "depth_mm_uint16" and isinstance(decode, dict)
            and _is(decode.get("rotate_right_bits", 0), int)
            and 0 <= decode.get("rotate_right_bits", 0) < 16
            and _is(decode.get("mm_per_unit", 1.0), float) and decode.get("mm_per_unit", 1.0) > 0):
        raise bad("preprocessing.depth_decode must be {rotate_right_bits: 0..15, mm_per_unit > 0} "
                  f"on a depth_mm_uint16 model; got {decode!r}")
    clip = pre.get("clip")
    if clip is not None and not (isinstance(clip, list) and len(clip) == 2
                                 and all(_is(c, float) for c in clip) and clip[0] <= clip[1]):
        raise bad(f"preprocessing.clip must be [low, high] with low <= high; got {clip!r}")
    if kind == "image":
        for key, dim in (("height", shape[1]), ("width", shape[2])):
            if key in pre and pre[key] != dim:
                raise bad(f"preprocessing.{key} = {pre[key]} but the input shape is {shape}")
