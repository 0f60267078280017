"""Raw inputs (files, camera frames) -> float32 model inputs, as the model card says.

What a model accepts and how a raw sample is read follow from the card's
`preprocessing.encoding` (model_card.ENCODINGS) and the input shape alone. A file
becomes a *raw* sample at the model's size (`Preprocessor.raw_samples`: decoded,
depth decoded to millimetres, resized as `preprocessing.resize` says), then a
model input (`scale_raw`): `x = raw * scale + offset` (scale and offset one number
or one per channel; clipped if the card says so), or for audio the shared log-mel
spectrogram standardised by the training split's mean and std.

Training on files (discomkd_keras/data/file_layouts.py) calls these same two
steps, so a file gives the same float input on the device as in training.
Needs NumPy, Pillow for image files and tifffile for TIFF; never TensorFlow.
"""

import sys
from pathlib import Path

import numpy as np

if __package__:  # inside a package: discomkd_keras.edge_demo, or discomkd_edge when installed
    from . import image_ops, spectrogram
else:  # top-level modules: classify.py run as a script puts edge_demo/ on sys.path
    import image_ops
    import spectrogram

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
EIGHT_BIT = ("rgb8", "gray8")
DEPTH = "depth_mm_uint16"
AUDIO = "wav_pcm16"
BANDS = "bands_tiff"
ARRAY = "array_npy"
TIFF_SUFFIXES = (".tif", ".tiff")
# Pillow modes converted before 8-bit images are read: alpha dropped, palette expanded.
TO_RGB = ("RGBA", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV")
TO_GRAY = ("LA", "1")
DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I")


class InputError(ValueError):
    """An input that cannot be turned into a model input; the message is one line."""


def _note(message):
    print(f"note: {message}", file=sys.stderr)


def scale_raw(raw, pre):
    """Raw sample(s) at the model's size -> float32 model input(s), as the card's
    preprocessing says. Works on one sample or a batch (training applies it to
    batches of the decoded cache, the device to one file: the same arithmetic)."""
    if pre["encoding"] == AUDIO:  # raw: log-mel spectrogram(s) (..., mels, frames)
        x = (raw - np.float32(pre["mean"])) / np.float32(pre["std"])
        return x[..., None].astype(np.float32)
    x = raw.astype(np.float32) * np.asarray(pre.get("scale", 1.0), np.float32) \
        + np.asarray(pre.get("offset", 0.0), np.float32)
    clip = pre.get("clip")
    if clip is not None:
        x = np.clip(x, np.float32(clip[0]), np.float32(clip[1]))
    return x.astype(np.float32)


def decode_depth(values, decode):
    """Stored 16-bit depth values -> uint16 millimetres, as `preprocessing.depth_decode`
    says: first a right rotation by `rotate_right_bits` (SUN RGB-D stores
    (mm << 3) | (mm >> 13): 3), then `mm_per_unit` (e.g. 0.1 for 0.1 mm units),
    rounded half up and clamped to 0..65535. No decode: values are millimetres."""
    v = np.asarray(values).astype(np.uint16)
    bits = int((decode or {}).get("rotate_right_bits", 0)) % 16
    if bits:
        v = np.right_shift(v, np.uint16(bits)) | np.left_shift(v, np.uint16(16 - bits))
    per_unit = float((decode or {}).get("mm_per_unit", 1.0))
    if per_unit != 1.0:
        v = np.clip(np.floor(v * np.float64(per_unit) + 0.5), 0, 65535).astype(np.uint16)
    return v


def read_tiff(path):
    """(H, W, C) array of a (multi-band) TIFF, channels last, in its stored dtype."""
    try:
        import tifffile
    except ImportError:
        raise InputError(f"{path}: reading TIFF needs tifffile (pip install tifffile).") from None
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            arr, axes = series.asarray(), series.axes
    except FileNotFoundError:
        raise InputError(f"{path}: no such file.") from None
    except Exception as err:  # tifffile raises many types for damaged files
        raise InputError(f"{path}: not a readable TIFF ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else 'unknown error'}).") from None
    if arr.ndim == 3 and axes[0] in "CS" and axes[1:] == "YX":  # planar: bands first
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise InputError(f"{path}: expected a 2-D (multi-band) image; got axes {axes!r}, "
                         f"shape {arr.shape}.")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(f"{path}: TIFF samples must be integers or floats; got {arr.dtype}.")
    return arr


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
        # Size policy: cards before it existed mean centre crop, nearest for depth only.
        resize = self.pre.get("resize") or {}
        self.nearest = resize.get("interpolation",
                                  "nearest" if self.encoding == DEPTH else "bilinear") == "nearest"
        self.crop = bool(resize.get("crop_to_aspect", True))

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
        if self.encoding == BANDS:
            return TIFF_SUFFIXES + (".npy",)
        return (".npy",)

    def describe(self):
        if self.encoding == AUDIO:
            return f"audio model ({self.pre['spectrogram']['expected_rate']} Hz mono WAV)"
        if self.encoding == DEPTH:
            return "depth model (16-bit PNG in millimetres)"
        if self.takes_pixels:
            what = "RGB" if self.encoding == "rgb8" else "grayscale"
            return f"{what} image model ({self.height}x{self.width})"
        if self.encoding == BANDS:
            return f"{self.channels}-band image model (TIFF)"
        if self.encoding == ARRAY:
            return f"{self.kind} model (.npy samples of shape {self.shape})"
        return f"{self.kind} model (already-normalised .npy arrays)"

    # -- files
    def load(self, path):
        """[(name, float32 model input)] of one file (several for a batch .npy)."""
        return [(name, self.scale(raw)) for name, raw in self.raw_samples(path)]

    def scale(self, raw):
        return scale_raw(raw, self.pre)

    def raw_samples(self, path):
        """[(name, raw sample at the model's size)] of one file (several for a batch
        .npy): what `scale` turns into model inputs, and what training caches."""
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
        if suffix in TIFF_SUFFIXES:
            return [(str(path), self.pixels_to_raw(read_tiff(path), "TIFF", str(path)))]
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
        """The raw log-mel spectrogram (mels, frames) of a clip (`scale` standardises it)."""
        try:
            spec = spectrogram.log_mel_spectrogram(samples, rate, **self.pre["spectrogram"])
        except TypeError as err:
            raise InputError(f"the card's spectrogram parameters do not fit this spectrogram.py "
                             f"({err}); copy the spectrogram.py of the training version.") from None
        except ValueError as err:
            raise InputError(f"{name}: {err}") from None
        if spec.shape + (1,) != self.shape:
            raise InputError(f"{name}: the spectrogram has shape {spec.shape + (1,)} but the model "
                             f"takes {self.shape}; card and model disagree.")
        return spec

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
        return self.pixels_to_raw(arr, mode, str(path))

    def from_pixels(self, arr, mode, name, crop=None):
        """Decoded pixels (uint8 RGB/L, uint16 depth) -> model input, resizing if needed."""
        return self.scale(self.pixels_to_raw(arr, mode, name, crop))

    def pixels_to_raw(self, arr, mode, name, crop=None):
        """Decoded pixels -> the raw sample at the model's size (H, W, C), in the
        encoding's type: uint8 for 8-bit images, uint16 millimetres for depth, the
        stored type for TIFF bands. `crop` None: the card's size policy."""
        what = image_ops.describe_mode(mode) if mode != "TIFF" else "TIFF"
        if self.encoding == DEPTH:
            if mode not in DEPTH_MODES or arr.ndim != 2:
                raise InputError(f"{name}: {what} image, but this depth model takes a 1-channel "
                                 "16-bit PNG in millimetres (uint16, 0 = missing).")
            if arr.dtype != np.uint16:
                if arr.size and (arr.min() < 0 or arr.max() > 65535):
                    raise InputError(f"{name}: depth values outside 0..65535 mm.")
                arr = arr.astype(np.uint16)
            decode = self.pre.get("depth_decode")
            if decode:
                arr = decode_depth(arr, decode)
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
        elif self.encoding == BANDS:
            if mode != "TIFF":
                raise InputError(f"{name}: {what} image, but this model takes {self.channels}-band "
                                 "TIFF images.")
            if arr.shape[-1] != self.channels:
                raise InputError(f"{name}: {arr.shape[-1]} band(s), but this model takes "
                                 f"{self.channels}.")
            if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
                raise InputError(f"{name}: contains NaN or inf.")
        else:
            raise InputError(f"{name}: this {self.describe()} takes .npy arrays, not images.")
        raw, note = image_ops.fit(arr, self.height, self.width, nearest=self.nearest,
                                  crop=self.crop if crop is None else crop)
        if note:
            self.warn(f"{name}: {note}")
        return raw if raw.ndim == 3 else raw[..., None]

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
        if self.encoding in (ARRAY, BANDS):
            if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
                raise InputError(f"{path}: contains NaN or inf.")
        elif self.encoding != "float_raw":
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
            out.append((row_name, np.ascontiguousarray(row)))
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
