#!/usr/bin/env python3
"""Classify files or camera frames with an exported DisCoM-KD model, on a
Raspberry Pi or any computer, with nothing but LiteRT, NumPy and Pillow.

    python classify.py MODEL_DIR INPUT [INPUT ...] [--top-k 3] [--threads N] [--json]
    python classify.py MODEL_DIR INPUT --benchmark 200
    python classify.py MODEL_DIR --camera

MODEL_DIR is one export folder, as `discomkd-keras export` writes it:
<modality>.tflite, labels.txt and model_card.json. The card's `preprocessing`
dict is the contract between training and this script: every input is turned
into the model input exactly as the training data was (see README.md).

This file never imports TensorFlow, Keras or the discomkd_keras package; the
log-mel spectrogram comes from the sibling spectrogram.py, the very module
training uses.
"""

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

try:  # inside the package (discomkd_keras.edge_demo.classify)
    from . import spectrogram
except ImportError:  # run as a script: edge_demo/ is on sys.path
    import spectrogram

CARD_FILE = "model_card.json"
CARD_FORMAT_PREFIX = "discomkd-keras/model-card/"
KINDS = ("image", "spectrogram", "vector")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
PROG = "classify.py"


class DemoError(Exception):
    """A problem with the model folder or an input; the message is one line."""


# --------------------------------------------------------------------------- model card


def _card_error(folder, what):
    return DemoError(f"{folder / CARD_FILE}: invalid model card: {what}.")


def load_card(model_dir):
    """(card dict, labels list) of an export folder, validated; DemoError says what is wrong."""
    folder = Path(model_dir)
    if not folder.is_dir():
        raise DemoError(f"model folder {folder} does not exist (expected an export folder with "
                        f"<modality>.tflite, labels.txt and {CARD_FILE}).")
    path = folder / CARD_FILE
    if not path.is_file():
        raise DemoError(f"{path} is missing: MODEL_DIR must be a folder written by "
                        "`discomkd-keras export` (<modality>.tflite, labels.txt, model_card.json).")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise DemoError(f"{path}: cannot read the model card ({err}).") from None
    except json.JSONDecodeError as err:
        raise DemoError(f"{path}: the model card is not valid JSON ({err.msg} at line {err.lineno}).") \
            from None
    if not isinstance(card, dict):
        raise _card_error(folder, "expected a JSON object")
    fmt = card.get("format")
    if not isinstance(fmt, str) or not fmt.startswith(CARD_FORMAT_PREFIX):
        raise _card_error(folder, f"format {fmt!r} is not a {CARD_FORMAT_PREFIX}* card")
    for key in ("kind", "model_file", "input", "output", "preprocessing"):
        if key not in card:
            raise _card_error(folder, f"no {key!r} entry")
    if card["kind"] not in KINDS:
        raise _card_error(folder, f"kind {card['kind']!r} is not one of {', '.join(KINDS)}")
    if not isinstance(card["preprocessing"], dict):
        raise _card_error(folder, "'preprocessing' must be an object")
    shape = card["input"].get("shape") if isinstance(card["input"], dict) else None
    if not (isinstance(shape, list) and all(isinstance(d, int) and d > 0 for d in shape)):
        raise _card_error(folder, f"input.shape must be a list of positive integers; got {shape!r}")
    want_rank = 2 if card["kind"] == "vector" else 4
    if len(shape) != want_rank or shape[0] != 1:
        raise _card_error(folder, f"a {card['kind']} model needs a batch-1 input of rank "
                          f"{want_rank}; the card says {shape}")
    pre = card["preprocessing"]
    try:
        if card["kind"] == "spectrogram":
            if not isinstance(pre.get("spectrogram"), dict):
                raise _card_error(folder, "preprocessing.spectrogram is missing")
            float(pre["mean"])
            if not float(pre["std"]) > 0:
                raise _card_error(folder, "preprocessing.std must be > 0")
        else:
            float(pre.get("scale", 1.0))
            float(pre.get("offset", 0.0))
            if pre.get("clip") is not None and len(pre["clip"]) != 2:
                raise _card_error(folder, "preprocessing.clip must be [low, high]")
    except (KeyError, TypeError, ValueError) as err:
        raise _card_error(folder, f"bad preprocessing entry ({type(err).__name__}: {err})") from None
    if card["kind"] == "image":
        for key, dim in (("height", shape[1]), ("width", shape[2])):
            if key in pre and pre[key] != dim:
                raise _card_error(folder, f"preprocessing.{key} = {pre[key]} but the input shape "
                                  f"is {shape}")

    labels_path = folder / card.get("labels_file", "labels.txt")
    if labels_path.is_file():
        labels = [line.strip() for line in labels_path.read_text(encoding="utf-8").splitlines()
                  if line.strip()]
    elif isinstance(card.get("class_names"), list):
        labels = [str(c) for c in card["class_names"]]
    else:
        raise DemoError(f"{labels_path} is missing and the card lists no class_names.")
    return card, labels


# --------------------------------------------------------------------------- interpreter


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter
    except ImportError:
        pass
    try:  # the older runtime package, still found on some devices
        from tflite_runtime.interpreter import Interpreter
        return Interpreter
    except ImportError:
        raise DemoError("the LiteRT runtime is not installed: pip install -r requirements.txt "
                        "(ai-edge-litert has wheels for 64-bit Linux/macOS, Python 3.11-3.13).") \
            from None


@contextlib.contextmanager
def _quiet_native_stderr():
    """Hide the runtime's own start-up lines ("INFO: Created TensorFlow Lite XNNPACK
    delegate ...") so that stderr carries only this script's notes and errors."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None
    if fd is None:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    try:
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def quantize(x, scale, zero_point, dtype):
    """float -> int8/uint8 with the tensor's scale and zero point (round half to even, clamped)."""
    info = np.iinfo(dtype)
    return np.clip(np.round(x / np.float32(scale)) + zero_point, info.min, info.max).astype(dtype)


def dequantize(q, scale, zero_point):
    return (q.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


class Model:
    """The .tflite model of an export folder: one float sample in, probabilities out."""

    def __init__(self, model_dir, card, labels, threads):
        path = Path(model_dir) / card["model_file"]
        if not path.is_file():
            raise DemoError(f"{path} is missing (named by the card's model_file).")
        interpreter_class = _interpreter_class()
        try:
            with _quiet_native_stderr():
                self.interpreter = interpreter_class(model_path=str(path), num_threads=threads)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise DemoError(f"{path}: not a loadable TFLite model ({first}).") from None
        self.threads = threads
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        actual = [int(d) for d in self.input["shape"]]
        if actual != list(card["input"]["shape"]):
            raise DemoError(f"{path}: the model's input shape {actual} does not match the card's "
                            f"{card['input']['shape']}; the folder mixes files of different exports.")
        k = int(self.output["shape"][-1])
        if k != len(labels):
            raise DemoError(f"{path}: the model has {k} outputs but there are {len(labels)} labels; "
                            "the folder mixes files of different exports.")
        self.input_shape = tuple(actual[1:])

    def __call__(self, x):
        """(probabilities float32 (K,), milliseconds spent in the interpreter)."""
        x = np.asarray(x, np.float32)[None]
        started = time.perf_counter()
        dtype = self.input["dtype"]
        if dtype != np.float32:
            scale, zero_point = self.input["quantization"]
            x = quantize(x, scale, zero_point, dtype)
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self.output["index"])[0]
        if self.output["dtype"] != np.float32:
            scale, zero_point = self.output["quantization"]
            y = dequantize(y, scale, zero_point)
        return np.asarray(y, np.float32), 1000.0 * (time.perf_counter() - started)


# --------------------------------------------------------------------------- preprocessing


def luma(rgb):
    """uint8 (H, W, 3) -> uint8 (H, W): ITU-R 601 luma in integer arithmetic, the same as
    Pillow's convert("L") and the Android sample: (19595 R + 38470 G + 7471 B + 32768) >> 16."""
    rgb = rgb.astype(np.uint32)
    return ((19595 * rgb[..., 0] + 38470 * rgb[..., 1] + 7471 * rgb[..., 2] + 32768) >> 16) \
        .astype(np.uint8)


def centre_crop_box(height, width, out_h, out_w):
    """(top, left, h, w): the largest centred window with the aspect ratio out_w/out_h."""
    if height * out_w > width * out_h:  # too tall
        h = max(1, int(round(width * out_h / out_w)))
        return (height - h) // 2, 0, h, width
    w = max(1, int(round(height * out_w / out_h)))
    return 0, (width - w) // 2, height, w


def _bilinear_weights(n_in, n_out):
    """(n_out, n_in) rows of a triangle filter: half-pixel centres, widened by the scale
    factor when shrinking (antialiasing, as Pillow's BILINEAR), rows summing to 1."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) * scale
    pixels = np.arange(n_in) + 0.5
    w = np.maximum(0.0, 1.0 - np.abs(pixels[None, :] - centres[:, None]) / support)
    return w / w.sum(axis=1, keepdims=True)


def _filter_axis0(img, weights):
    """weights (n_out, n_in) applied along axis 0, one output row at a time over the
    band of input rows it touches (a camera frame is never converted whole to float)."""
    out = np.empty((len(weights),) + img.shape[1:], np.float64)
    for o, w in enumerate(weights):
        nonzero = np.flatnonzero(w)
        lo, hi = nonzero[0], nonzero[-1] + 1
        out[o] = np.tensordot(w[lo:hi], img[lo:hi].astype(np.float64), axes=1)
    return out


def resize_bilinear(img, out_h, out_w):
    """uint8 (H, W, C) -> uint8 (out_h, out_w, C): separable triangle filter, rows
    first, then columns; rounded half up and clamped to 0..255."""
    rows = _filter_axis0(img, _bilinear_weights(img.shape[0], out_h))          # (out_h, W, C)
    both = _filter_axis0(rows.transpose(1, 0, 2), _bilinear_weights(img.shape[1], out_w))
    return np.clip(np.floor(both.transpose(1, 0, 2) + 0.5), 0, 255).astype(np.uint8)


def resize_nearest(img, out_h, out_w):
    """Nearest neighbour (source pixel floor((i + 0.5) * in / out)): no new values, so
    missing depth (0) never blends into valid depth."""
    rows = np.minimum(((np.arange(out_h) + 0.5) * img.shape[0] / out_h).astype(np.int64),
                      img.shape[0] - 1)
    cols = np.minimum(((np.arange(out_w) + 0.5) * img.shape[1] / out_w).astype(np.int64),
                      img.shape[1] - 1)
    return img[rows][:, cols]


def _describe_mode(mode):
    return {"L": "8-bit grayscale", "LA": "8-bit grayscale+alpha", "1": "1-bit",
            "P": "palette (8-bit colour)", "RGB": "8-bit RGB", "RGBA": "8-bit RGBA",
            "CMYK": "CMYK", "YCbCr": "YCbCr", "I;16": "16-bit grayscale",
            "I;16B": "16-bit grayscale", "I;16L": "16-bit grayscale",
            "I": "32-bit integer", "F": "32-bit float"}.get(mode, f"{mode}-mode")


class Preprocessor:
    """Raw inputs (files, camera frames) -> float32 model inputs, as the card says."""

    def __init__(self, card, input_shape, warn=None):
        self.card = card
        self.kind = card["kind"]
        self.pre = card["preprocessing"]
        self.shape = tuple(input_shape)
        self.warn = warn or (lambda message: print(f"{PROG}: note: {message}", file=sys.stderr))
        raw = str(self.pre.get("raw", "")).lower()
        self.pixels = None  # "8bit", "depth16" or None (already-normalised arrays, .npy only)
        if self.kind == "image":
            self.height, self.width, self.channels = self.shape
            if ("millimet" in raw or "uint16" in raw) and self.channels == 1:
                self.pixels = "depth16"
            elif ("8-bit" in raw or "uint8" in raw) and self.channels in (1, 3):
                self.pixels = "8bit"
        layout = str(self.pre.get("layout", "")).upper()
        self.chw = layout.startswith("CHW")

    # -- what this model accepts
    def suffixes(self):
        if self.kind == "spectrogram":
            return (".wav", ".npy")
        if self.pixels == "8bit":
            return IMAGE_SUFFIXES + (".npy",)
        if self.pixels == "depth16":
            return (".png", ".npy")
        return (".npy",)

    def describe(self):
        if self.kind == "spectrogram":
            rate = self.pre["spectrogram"].get("expected_rate")
            return f"audio model ({rate} Hz mono WAV)"
        if self.pixels == "depth16":
            return "depth model (16-bit PNG in millimetres)"
        if self.pixels == "8bit":
            what = "RGB" if self.channels == 3 else "grayscale"
            return f"{what} image model ({self.height}x{self.width})"
        return f"{self.kind} model (already-normalised .npy arrays)"

    # -- files
    def load(self, path):
        """[(name, float32 model input)] of one file (several for a batch .npy)."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in self.suffixes():
            if suffix == ".jpg" or suffix == ".jpeg":
                if self.pixels == "depth16":
                    raise DemoError(f"{path}: JPEG cannot hold 16-bit depth; this depth model "
                                    "takes 16-bit PNGs in millimetres or .npy arrays.")
            raise DemoError(f"{path}: unsupported file type {suffix or '(none)'!r} for this "
                            f"{self.describe()}; accepted: {', '.join(self.suffixes())}.")
        if not path.exists():
            raise DemoError(f"{path}: no such file.")
        if not path.is_file():
            raise DemoError(f"{path}: not a regular file.")
        if suffix == ".npy":
            return self._from_npy(path)
        if suffix == ".wav":
            return [(str(path), self._from_wav(path))]
        return [(str(path), self._from_image_file(path))]

    def _from_wav(self, path):
        try:
            samples, rate = spectrogram.read_wav(path)
        except (ValueError, OSError) as err:
            raise DemoError(str(err).splitlines()[0]) from None
        expected = int(self.pre["spectrogram"].get("expected_rate", 0))
        if rate != expected:
            raise DemoError(f"{path}: sample rate {rate} Hz, but this model expects {expected} Hz "
                            f"audio; resample it first (e.g. sox in.wav -r {expected} out.wav).")
        return self._audio_input(samples, rate, str(path))

    def _audio_input(self, samples, rate, name):
        try:
            spec = spectrogram.log_mel_spectrogram(samples, rate, **self.pre["spectrogram"])
        except TypeError as err:
            raise DemoError(f"the card's spectrogram parameters do not fit this spectrogram.py "
                            f"({err}); copy the spectrogram.py of the training version.") from None
        except ValueError as err:
            raise DemoError(f"{name}: {err}") from None
        x = (spec - np.float32(self.pre["mean"])) / np.float32(self.pre["std"])
        x = x[..., None].astype(np.float32)
        if x.shape != self.shape:
            raise DemoError(f"{name}: the spectrogram has shape {x.shape} but the model takes "
                            f"{self.shape}; card and model disagree.")
        return x

    def _from_image_file(self, path):
        try:
            from PIL import Image, UnidentifiedImageError
        except ImportError:
            raise DemoError("Pillow is not installed: pip install -r requirements.txt") from None
        try:
            with Image.open(path) as im:
                im.load()
                if self.pixels == "8bit" and im.mode in ("RGBA", "P", "PA", "CMYK", "YCbCr",
                                                         "LAB", "HSV"):
                    im = im.convert("RGB")  # alpha dropped, palette expanded
                elif self.pixels == "8bit" and im.mode in ("LA", "1"):
                    im = im.convert("L")
                mode = im.mode
                arr = np.array(im)
        except FileNotFoundError:
            raise DemoError(f"{path}: no such file.") from None
        except (UnidentifiedImageError, OSError, ValueError) as err:
            raise DemoError(f"{path}: not a readable image ({type(err).__name__}: "
                            f"{str(err).splitlines()[0] if str(err) else 'unknown error'}).") from None
        return self.from_pixels(arr, mode, str(path))

    def from_pixels(self, arr, mode, name, crop=True):
        """Decoded pixels (uint8 RGB/L, uint16 depth) -> model input, resizing if needed."""
        what = _describe_mode(mode)
        if self.pixels == "depth16":
            if mode not in ("I;16", "I;16B", "I;16L", "I") or arr.ndim != 2:
                raise DemoError(f"{name}: {what} image, but this depth model takes a 1-channel "
                                "16-bit PNG in millimetres (uint16, 0 = missing).")
            if arr.dtype != np.uint16:
                if arr.size and (arr.min() < 0 or arr.max() > 65535):
                    raise DemoError(f"{name}: depth values outside 0..65535 mm.")
                arr = arr.astype(np.uint16)
            raw = arr
        elif self.pixels == "8bit":
            if arr.dtype != np.uint8 or mode not in ("L", "RGB"):
                raise DemoError(f"{name}: {what} image, but this model takes 8-bit "
                                f"{'RGB' if self.channels == 3 else 'grayscale'} images.")
            if self.channels == 3 and arr.ndim == 2:
                raise DemoError(f"{name}: 1-channel {what} image, but this model takes 3-channel "
                                "8-bit RGB images.")
            if self.channels == 1 and arr.ndim == 3:
                self.warn(f"{name}: converted RGB to grayscale (ITU-R 601 luma), as the model "
                          "takes 1-channel images.")
                arr = luma(arr)
            raw = arr
        else:
            raise DemoError(f"{name}: this {self.describe()} takes .npy arrays, not images.")

        h, w = raw.shape[:2]
        if (h, w) != (self.height, self.width):
            top, left, ch, cw = centre_crop_box(h, w, self.height, self.width) if crop \
                else (0, 0, h, w)
            how = "nearest neighbour" if self.pixels == "depth16" else "bilinear"
            cropped = (ch, cw) != (h, w)
            raw = raw[top:top + ch, left:left + cw]
            if self.pixels == "depth16":
                raw = resize_nearest(raw, self.height, self.width)
            else:
                squeeze = raw.ndim == 2
                raw = resize_bilinear(raw[..., None] if squeeze else raw, self.height, self.width)
                raw = raw[..., 0] if squeeze else raw
            self.warn(f"{name}: resized {w}x{h} -> {self.width}x{self.height} ({how}"
                      + (f", centre-cropped to {cw}x{ch} first to keep the aspect ratio" if cropped
                         else "") + ").")
        return self._scale(raw if raw.ndim == 3 else raw[..., None])

    def _scale(self, raw):
        """raw (any numeric) -> float32 raw * scale + offset, clipped if the card says so."""
        x = raw.astype(np.float32) * np.float32(self.pre.get("scale", 1.0)) \
            + np.float32(self.pre.get("offset", 0.0))
        clip = self.pre.get("clip")
        if clip is not None:
            x = np.clip(x, np.float32(clip[0]), np.float32(clip[1]))
        return x.astype(np.float32)

    # -- .npy
    def _sample_shapes(self):
        """The raw shapes one .npy sample may have (a leading batch axis adds rows)."""
        if self.kind == "vector":
            return [self.shape]
        if self.kind == "spectrogram":
            return None  # any 1-D waveform
        h, w, c = self.shape
        shapes = [(c, h, w)] if self.chw else [(h, w, c)]
        if c == 1:
            shapes.append((h, w))
        return shapes

    def _from_npy(self, path):
        try:
            arr = np.load(path, allow_pickle=False)
        except ValueError as err:
            if "allow_pickle" in str(err) or "pickle" in str(err).lower():
                raise DemoError(f"{path}: holds Python objects; only plain numeric arrays are "
                                "read (never unpickled).") from None
            raise DemoError(f"{path}: not a readable .npy array ({str(err).splitlines()[0]}).") \
                from None
        except (OSError, EOFError) as err:
            raise DemoError(f"{path}: not a readable .npy array ({err}).") from None
        if not isinstance(arr, np.ndarray) or not (np.issubdtype(arr.dtype, np.number)
                                                   or arr.dtype == np.bool_):
            raise DemoError(f"{path}: expected a numeric array; got {getattr(arr, 'dtype', type(arr))}.")
        name = str(path)

        if self.kind == "spectrogram":
            if arr.ndim not in (1, 2):
                raise DemoError(f"{path}: expected a mono waveform (T,) or a batch (N, T) at "
                                f"{self.pre['spectrogram'].get('expected_rate')} Hz; got shape "
                                f"{arr.shape}.")
            if arr.dtype == np.int16:
                wave = arr.astype(np.float32) / np.float32(32768.0)
            elif np.issubdtype(arr.dtype, np.floating):
                wave = arr.astype(np.float32)
            else:
                raise DemoError(f"{path}: waveform samples must be int16 PCM or float in [-1, 1]; "
                                f"got {arr.dtype}.")
            rate = int(self.pre["spectrogram"].get("expected_rate"))
            if arr.ndim == 1:
                return [(name, self._audio_input(wave, rate, name))]
            return [(f"{name}[{i}]", self._audio_input(row, rate, f"{name}[{i}]"))
                    for i, row in enumerate(wave)]

        shapes = self._sample_shapes()
        if arr.shape in shapes:
            rows, names = [arr], [name]
        elif arr.ndim >= 1 and arr.shape[1:] in shapes:
            rows, names = list(arr), [f"{name}[{i}]" for i in range(len(arr))]
        else:
            raise DemoError(f"{path}: shape {arr.shape} does not fit this {self.describe()}: "
                            f"expected {' or '.join(str(s) for s in shapes)} (or a batch of them).")
        if self.pixels is not None:
            top = 255 if self.pixels == "8bit" else 65535
            kind = "8-bit (uint8)" if self.pixels == "8bit" else "uint16 millimetre"
            if not np.issubdtype(arr.dtype, np.integer):
                raise DemoError(f"{path}: expected raw {kind} values as the card describes "
                                f"({self.pre.get('raw')}); got {arr.dtype}.")
            if arr.size and (arr.min() < 0 or arr.max() > top):
                raise DemoError(f"{path}: raw values must lie in 0..{top}; found "
                                f"{arr.min()}..{arr.max()}.")
        out = []
        for row, row_name in zip(rows, names):
            if self.kind == "image":
                if row.ndim == 2:
                    row = row[None] if self.chw else row[..., None]
                if self.chw:
                    row = row.transpose(1, 2, 0)
            out.append((row_name, self._scale(np.ascontiguousarray(row))))
        return out


# --------------------------------------------------------------------------- camera


def camera_frames(index=0):
    """RGB uint8 frames (H, W, 3) from picamera2 (Raspberry Pi camera) or OpenCV."""
    try:
        from picamera2 import Picamera2
    except ImportError:
        Picamera2 = None
    if Picamera2 is not None:
        camera = Picamera2()
        # libcamera's "RGB888" is stored B, G, R in memory; reversed below.
        camera.configure(camera.create_preview_configuration(
            main={"format": "RGB888", "size": (640, 480)}))
        camera.start()
        try:
            while True:
                yield np.ascontiguousarray(camera.capture_array()[..., :3][..., ::-1])
        finally:
            camera.stop()
    try:
        import cv2
    except ImportError:
        raise DemoError("--camera needs picamera2 (Raspberry Pi OS: sudo apt install "
                        "python3-picamera2, and make the venv with --system-site-packages) or "
                        "OpenCV (pip install opencv-python-headless); neither is installed.") \
            from None
    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        raise DemoError(f"OpenCV cannot open camera {index}.")
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                raise DemoError(f"camera {index} stopped delivering frames.")
            yield np.ascontiguousarray(frame[..., ::-1])  # BGR -> RGB
    finally:
        capture.release()


# --------------------------------------------------------------------------- output


def top_k(probs, labels, k):
    order = np.argsort(-probs, kind="stable")[:k]
    return [{"label": labels[i], "index": int(i), "probability": float(probs[i])} for i in order]


def report(name, probs, ms, labels, args):
    best = top_k(probs, labels, args.top_k)
    if args.json:
        print(json.dumps({"file": name, "top_k": best, "inference_ms": round(ms, 4)}), flush=True)
        return
    print(f"{name}  (inference {ms:.2f} ms)")
    width = max(len(b["label"]) for b in best)
    for rank, b in enumerate(best, 1):
        print(f"  {rank}. {b['label']:<{width}}  {100 * b['probability']:6.2f}%  "
              f"(class {b['index']})")
    sys.stdout.flush()


def benchmark(model, x, runs, args):
    warmup = min(10, max(1, runs // 10))
    for _ in range(warmup):
        model(x)
    times = np.array([model(x)[1] for _ in range(runs)])
    result = {"runs": int(runs), "warmup": warmup, "threads": model.threads,
              "median_ms": round(float(np.median(times)), 4),
              "p90_ms": round(float(np.percentile(times, 90)), 4),
              "mean_ms": round(float(times.mean()), 4), "min_ms": round(float(times.min()), 4)}
    if args.json:
        print(json.dumps({"benchmark": result}), flush=True)
    else:
        print(f"benchmark: {runs} invocations after {warmup} warm-up, {model.threads} "
              f"thread{'s' if model.threads != 1 else ''}: median {result['median_ms']:.3f} ms, "
              f"p90 {result['p90_ms']:.3f} ms (min {result['min_ms']:.3f} ms)", flush=True)


# --------------------------------------------------------------------------- main


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Classify images, WAV clips or .npy samples (or live camera frames) with a "
                    "model exported by `discomkd-keras export`, using LiteRT. Inputs are "
                    "preprocessed exactly as the training data, following the model card.",
        epilog="Input formats: .png/.jpg/.jpeg for 8-bit image models (RGB or grayscale; "
               "resized bilinearly if the size differs); 16-bit .png in millimetres for depth "
               "models (resized by nearest neighbour); .wav (mono PCM at the model's rate) for "
               "audio models; .npy with the raw sample (or a batch of them) as the card's "
               "preprocessing.raw describes, for every model. Exit status: 0 if every input "
               "was classified, 1 on an error (one line on stderr), 2 on bad arguments.")
    parser.add_argument("model_dir", metavar="MODEL_DIR",
                        help="export folder: <modality>.tflite, labels.txt, model_card.json")
    parser.add_argument("inputs", metavar="INPUT", nargs="*",
                        help="files to classify (.png/.jpg/.jpeg, .wav, .npy; see below)")
    parser.add_argument("--top-k", type=int, default=3, metavar="K",
                        help="how many classes to show per input (default 3)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="interpreter threads (default: all CPU cores, at most 4)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per input: file, top_k [{label, index, "
                             "probability}], inference_ms")
    parser.add_argument("--benchmark", type=int, default=0, metavar="N",
                        help="after classifying, time N invocations on the first input (a zero "
                             "input if there is none) after a warm-up; print median and p90")
    parser.add_argument("--camera", action="store_true",
                        help="classify live camera frames (picamera2 or OpenCV) until Ctrl-C; "
                             "8-bit image models only")
    parser.add_argument("--camera-index", type=int, default=0, metavar="I",
                        help="OpenCV camera index for --camera (default 0)")
    args = parser.parse_args(argv)
    if not args.inputs and not args.camera and not args.benchmark:
        parser.error("give at least one INPUT file (or --camera, or --benchmark N)")
    if args.camera and args.inputs:
        parser.error("--camera takes no INPUT files")
    if args.top_k < 1:
        parser.error("--top-k must be >= 1")
    if args.benchmark < 0:
        parser.error("--benchmark must be >= 0")
    if args.threads is None:
        args.threads = max(1, min(4, os.cpu_count() or 1))
    elif args.threads < 1:
        parser.error("--threads must be >= 1")
    return args


def error(message):
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)


def main(argv=None):
    args = parse_args(argv)
    try:
        card, labels = load_card(args.model_dir)
        model = Model(args.model_dir, card, labels, args.threads)
        pre = Preprocessor(card, model.input_shape)
    except DemoError as err:
        error(err)
        return 1
    args.top_k = min(args.top_k, len(labels))

    if args.camera:
        return run_camera(model, pre, labels, args)

    failed, first = 0, None
    for path in args.inputs:
        try:
            samples = pre.load(path)
        except DemoError as err:
            error(err)
            failed += 1
            continue
        for name, x in samples:
            probs, ms = model(x)
            report(name, probs, ms, labels, args)
            if first is None:
                first = x
    if args.benchmark:
        if first is None:
            if args.inputs:
                error("nothing to benchmark: no input could be read.")
                return 1
            first = np.zeros(model.input_shape, np.float32)
            print(f"{PROG}: note: no INPUT given; benchmarking on an all-zero input.",
                  file=sys.stderr)
        benchmark(model, first, args.benchmark, args)
    return 1 if failed else 0


def run_camera(model, pre, labels, args):
    if pre.pixels != "8bit":
        error(f"--camera works with 8-bit image models; this is a {pre.describe()}.")
        return 1
    told = set()

    def warn_once(message):  # the same note for every frame: say it once
        general = message.split(": ", 1)[-1]
        if general not in told:
            told.add(general)
            print(f"{PROG}: note: camera frames: {general}", file=sys.stderr)

    pre.warn = warn_once
    try:
        for i, frame in enumerate(camera_frames(args.camera_index)):
            x = pre.from_pixels(frame, "RGB", f"frame {i}")
            probs, ms = model(x)
            report(f"camera:{i}", probs, ms, labels, args)
    except DemoError as err:
        error(err)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
