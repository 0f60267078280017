"""Raw inputs (files, camera frames) -> float32 model inputs, as the model card says.

What a model accepts and how a raw sample is read follow from the card's
`preprocessing.encoding` (model_card.ENCODINGS) and the input shape alone; then
`x = raw * scale + offset` (clipped if the card says so), or for audio the shared
log-mel spectrogram standardised by the training split's mean and std.
Needs NumPy, and Pillow for image files; never TensorFlow.
"""

import sys
from pathlib import Path

import numpy as np

try:  # inside the package (discomkd_keras.edge_demo.preprocessing)
    from . import image_ops, spectrogram
except ImportError:  # run as a script: edge_demo/ is on sys.path
    import image_ops
    import spectrogram

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
EIGHT_BIT = ("rgb8", "gray8")
DEPTH = "depth_mm_uint16"
AUDIO = "wav_pcm16"
# Pillow modes converted before 8-bit images are read: alpha dropped, palette expanded.
TO_RGB = ("RGBA", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV")
TO_GRAY = ("LA", "1")
DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I")


class InputError(ValueError):
    """An input that cannot be turned into a model input; the message is one line."""


def _note(message):
    print(f"note: {message}", file=sys.stderr)


class Preprocessor:
    """Turns raw inputs into model inputs for one (validated) model card."""

    def __init__(self, card, warn=None):
        self.pre = card["preprocessing"]
        self.kind = card["kind"]
        self.encoding = self.pre["encoding"]
        self.shape = tuple(card["input"]["shape"][1:])
        self.warn = warn or _note
        # Released-layout images are stored channels first; the model takes HWC.
        self.chw = self.kind == "image" and self.encoding == "float_raw"
        if self.kind == "image":
            self.height, self.width, self.channels = self.shape

    @property
    def takes_pixels(self):
        """True for 8-bit RGB/grayscale models: the ones a camera frame can feed."""
        return self.encoding in EIGHT_BIT

    def suffixes(self):
        if self.encoding == AUDIO:
            return (".wav", ".npy")
        if self.takes_pixels:
            return IMAGE_SUFFIXES + (".npy",)
        if self.encoding == DEPTH:
            return (".png", ".npy")
        return (".npy",)

    def describe(self):
        if self.encoding == AUDIO:
            return f"audio model ({self.pre['spectrogram']['expected_rate']} Hz mono WAV)"
        if self.encoding == DEPTH:
            return "depth model (16-bit PNG in millimetres)"
        if self.takes_pixels:
            what = "RGB" if self.encoding == "rgb8" else "grayscale"
            return f"{what} image model ({self.height}x{self.width})"
        return f"{self.kind} model (already-normalised .npy arrays)"

    # -- files
    def load(self, path):
        """[(name, float32 model input)] of one file (several for a batch .npy)."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in self.suffixes():
            if suffix in (".jpg", ".jpeg") and self.encoding == DEPTH:
                raise InputError(f"{path}: JPEG cannot hold 16-bit depth; this depth model "
                                 "takes 16-bit PNGs in millimetres or .npy arrays.")
            raise InputError(f"{path}: unsupported file type {suffix or '(none)'!r} for this "
                             f"{self.describe()}; accepted: {', '.join(self.suffixes())}.")
        if not path.exists():
            raise InputError(f"{path}: no such file.")
        if not path.is_file():
            raise InputError(f"{path}: not a regular file.")
        if suffix == ".npy":
            return self._from_npy(path)
        if suffix == ".wav":
            return [(str(path), self._from_wav(path))]
        return [(str(path), self._from_image_file(path))]

    def _from_wav(self, path):
        try:
            samples, rate = spectrogram.read_wav(path)
        except (ValueError, OSError) as err:
            raise InputError(str(err).splitlines()[0]) from None
        expected = self.pre["spectrogram"]["expected_rate"]
        if rate != expected:
            raise InputError(f"{path}: sample rate {rate} Hz, but this model expects {expected} Hz "
                             f"audio; resample it first (e.g. sox in.wav -r {expected} out.wav).")
        return self._audio_input(samples, rate, str(path))

    def _audio_input(self, samples, rate, name):
        try:
            spec = spectrogram.log_mel_spectrogram(samples, rate, **self.pre["spectrogram"])
        except TypeError as err:
            raise InputError(f"the card's spectrogram parameters do not fit this spectrogram.py "
                             f"({err}); copy the spectrogram.py of the training version.") from None
        except ValueError as err:
            raise InputError(f"{name}: {err}") from None
        x = (spec - np.float32(self.pre["mean"])) / np.float32(self.pre["std"])
        x = x[..., None].astype(np.float32)
        if x.shape != self.shape:
            raise InputError(f"{name}: the spectrogram has shape {x.shape} but the model takes "
                             f"{self.shape}; card and model disagree.")
        return x

    def _from_image_file(self, path):
        try:
            from PIL import Image, UnidentifiedImageError
        except ImportError:
            raise InputError("Pillow is not installed: pip install -r requirements.txt") from None
        try:
            with Image.open(path) as im:
                im.load()
                if self.takes_pixels and im.mode in TO_RGB:
                    im = im.convert("RGB")
                elif self.takes_pixels and im.mode in TO_GRAY:
                    im = im.convert("L")
                mode = im.mode
                arr = np.array(im)
        except FileNotFoundError:
            raise InputError(f"{path}: no such file.") from None
        except (UnidentifiedImageError, OSError, ValueError) as err:
            raise InputError(f"{path}: not a readable image ({type(err).__name__}: "
                             f"{str(err).splitlines()[0] if str(err) else 'unknown error'}).") from None
        return self.from_pixels(arr, mode, str(path))

    def from_pixels(self, arr, mode, name, crop=True):
        """Decoded pixels (uint8 RGB/L, uint16 depth) -> model input, resizing if needed."""
        what = image_ops.describe_mode(mode)
        if self.encoding == DEPTH:
            if mode not in DEPTH_MODES or arr.ndim != 2:
                raise InputError(f"{name}: {what} image, but this depth model takes a 1-channel "
                                 "16-bit PNG in millimetres (uint16, 0 = missing).")
            if arr.dtype != np.uint16:
                if arr.size and (arr.min() < 0 or arr.max() > 65535):
                    raise InputError(f"{name}: depth values outside 0..65535 mm.")
                arr = arr.astype(np.uint16)
        elif self.takes_pixels:
            rgb = self.encoding == "rgb8"
            if arr.dtype != np.uint8 or mode not in ("L", "RGB"):
                raise InputError(f"{name}: {what} image, but this model takes 8-bit "
                                 f"{'RGB' if rgb else 'grayscale'} images.")
            if rgb and arr.ndim == 2:
                raise InputError(f"{name}: 1-channel {what} image, but this model takes 3-channel "
                                 "8-bit RGB images.")
            if not rgb and arr.ndim == 3:
                self.warn(f"{name}: converted RGB to grayscale (ITU-R 601 luma), as the model "
                          "takes 1-channel images.")
                arr = image_ops.luma(arr)
        else:
            raise InputError(f"{name}: this {self.describe()} takes .npy arrays, not images.")
        raw, note = image_ops.fit(arr, self.height, self.width, nearest=self.encoding == DEPTH,
                                  crop=crop)
        if note:
            self.warn(f"{name}: {note}")
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
        h, w, c = self.shape
        shapes = [(c, h, w)] if self.chw else [(h, w, c)]
        if c == 1:
            shapes.append((h, w))
        return shapes

    def _from_npy(self, path):
        try:
            arr = np.load(path, allow_pickle=False)  # never unpickle: a .npy may come from anywhere
        except ValueError as err:
            if "pickle" in str(err).lower():
                raise InputError(f"{path}: holds Python objects; only plain numeric arrays are "
                                 "read (never unpickled).") from None
            raise InputError(f"{path}: not a readable .npy array ({str(err).splitlines()[0]}).") \
                from None
        except (OSError, EOFError) as err:
            raise InputError(f"{path}: not a readable .npy array ({err}).") from None
        if not isinstance(arr, np.ndarray) or not (np.issubdtype(arr.dtype, np.number)
                                                   or arr.dtype == np.bool_):
            raise InputError(f"{path}: expected a numeric array; got "
                             f"{getattr(arr, 'dtype', type(arr))}.")
        if self.encoding == AUDIO:
            return self._waveforms_from_npy(arr, str(path))

        shapes = self._sample_shapes()
        if arr.shape in shapes:
            rows, names = [arr], [str(path)]
        elif arr.ndim >= 1 and arr.shape[1:] in shapes:
            rows, names = list(arr), [f"{path}[{i}]" for i in range(len(arr))]
        else:
            raise InputError(f"{path}: shape {arr.shape} does not fit this {self.describe()}: "
                             f"expected {' or '.join(str(s) for s in shapes)} (or a batch of them).")
        if self.encoding != "float_raw":
            top = 65535 if self.encoding == DEPTH else 255
            if not np.issubdtype(arr.dtype, np.integer):
                raise InputError(f"{path}: expected raw integer values 0..{top} (encoding "
                                 f"{self.encoding}); got {arr.dtype}.")
            if arr.size and (arr.min() < 0 or arr.max() > top):
                raise InputError(f"{path}: raw values must lie in 0..{top}; found "
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

    def _waveforms_from_npy(self, arr, name):
        rate = self.pre["spectrogram"]["expected_rate"]
        if arr.ndim not in (1, 2):
            raise InputError(f"{name}: expected a mono waveform (T,) or a batch (N, T) at "
                             f"{rate} Hz; got shape {arr.shape}.")
        if arr.dtype == np.int16:
            wave = arr.astype(np.float32) / np.float32(32768.0)
        elif np.issubdtype(arr.dtype, np.floating):
            wave = arr.astype(np.float32)
        else:
            raise InputError(f"{name}: waveform samples must be int16 PCM or float in [-1, 1]; "
                             f"got {arr.dtype}.")
        if arr.ndim == 1:
            return [(name, self._audio_input(wave, rate, name))]
        return [(f"{name}[{i}]", self._audio_input(row, rate, f"{name}[{i}]"))
                for i, row in enumerate(wave)]
