"""Log-mel spectrograms of short mono clips, in NumPy alone.

This module imports nothing but the standard library and NumPy, so the same
file can run on a device (e.g. a Raspberry Pi) to turn a recorded WAV into
exactly the input a trained audio model expects.

Recipe (``log_mel_spectrogram``; every number is a keyword argument whose
default is recorded in ``SPECTROGRAM_PARAMS``):

1. The clip must already be at ``expected_rate`` (8 kHz); another rate is a
   ``ValueError`` (no resampling is done here).
2. Fixed length: the clip is padded with zeros *at the end*, or cropped
   around its *centre*, to ``round(clip_seconds * expected_rate)`` samples
   (8,000 for 1 s at 8 kHz).
3. Framing without centre padding: frames of ``frame_length`` = 256 samples
   (32 ms) every ``hop_length`` = 128 samples, so
   ``n_frames = 1 + (8000 - 256) // 128 = 61``; the last 64 samples of the
   1 s clip fall in no frame.
4. Each frame is multiplied by a *periodic* Hann window
   ``w[n] = 0.5 - 0.5 cos(2 pi n / N)``, n = 0..N-1 (the usual STFT
   choice; ``window="hann_symmetric"`` selects ``np.hanning`` instead).
5. ``np.fft.rfft`` with ``n_fft`` = 256 points (129 bins, 31.25 Hz apart),
   power spectrum ``|X|**power`` with power = 2.
6. Mel filterbank: ``n_mels`` = 40 triangular filters, peak height 1 (no area
   normalisation), centres equally spaced on the HTK mel scale
   ``mel = 2595 log10(1 + f / 700)`` between ``fmin`` = 0 and ``fmax`` =
   ``expected_rate / 2``; each triangle is evaluated at the exact bin
   frequencies ``k * rate / n_fft`` (so no filter is empty).
7. ``log(mel_energy + log_offset)``, natural log, log_offset = 1e-6.

Output: float32 ``(n_mels, n_frames)`` = (40, 61) with the defaults; a batch
``(..., T)`` of equal-length clips gives ``(..., n_mels, n_frames)``.

``read_wav`` reads 8- or 16-bit mono PCM WAV files with the standard-library
``wave`` module and returns float32 samples in [-1, 1] (int16 / 32768,
(uint8 - 128) / 128).
"""

import functools
import wave

import numpy as np

SPECTROGRAM_PARAMS = {
    "expected_rate": 8000,
    "clip_seconds": 1.0,
    "frame_length": 256,
    "hop_length": 128,
    "n_fft": 256,
    "window": "hann_periodic",
    "power": 2.0,
    "n_mels": 40,
    "fmin": 0.0,
    "fmax": 4000.0,
    "mel_scale": "htk",
    "log_offset": 1e-6,
}
"""Defaults of ``log_mel_spectrogram`` (JSON-able, for model cards):
``log_mel_spectrogram(x, rate, **SPECTROGRAM_PARAMS)`` equals the default call."""

WINDOWS = ("hann_periodic", "hann_symmetric")


def read_wav(path):
    """(samples float32 in [-1, 1], sample_rate) of an 8/16-bit mono PCM WAV.

    Raises ValueError naming the file for stereo, other sample widths,
    compressed, truncated or non-WAV files (FileNotFoundError if absent).
    """
    path = str(path)
    try:
        with wave.open(path, "rb") as w:
            channels = w.getnchannels()
            width = w.getsampwidth()
            rate = w.getframerate()
            n = w.getnframes()
            comp = w.getcomptype()
            raw = w.readframes(n)
    except FileNotFoundError:
        raise
    except (wave.Error, EOFError, OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable PCM WAV file ({e}).") from None
    if comp != "NONE":
        raise ValueError(f"{path}: compressed WAV ({comp}) is not supported; need PCM.")
    if channels != 1:
        raise ValueError(f"{path}: expected a mono WAV; got {channels} channels.")
    if width not in (1, 2):
        raise ValueError(f"{path}: expected 8- or 16-bit samples; got {8 * width}-bit.")
    if len(raw) != n * width:
        raise ValueError(
            f"{path}: truncated WAV: header promises {n} samples, "
            f"data holds {len(raw) // width}.")
    if rate <= 0:
        raise ValueError(f"{path}: invalid sample rate {rate}.")
    if width == 2:
        x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / np.float32(32768.0)
    else:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - np.float32(128.0)) / np.float32(128.0)
    return x, rate


def fix_length(samples, length):
    """Pad with zeros at the end, or crop around the centre, to `length` samples (last axis)."""
    samples = np.asarray(samples)
    n = samples.shape[-1]
    if n >= length:
        start = (n - length) // 2
        return samples[..., start:start + length]
    pad = [(0, 0)] * (samples.ndim - 1) + [(0, length - n)]
    return np.pad(samples, pad)


def hz_to_mel(f):
    """HTK mel scale: 2595 log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    """Inverse of ``hz_to_mel``."""
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_band_edges(n_mels=40, fmin=0.0, fmax=4000.0):
    """The n_mels + 2 filter corner frequencies in Hz; filter i spans
    edges[i]..edges[i + 2] with its peak at edges[i + 1]."""
    return mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))


@functools.lru_cache(maxsize=16)
def _filterbank(sample_rate, n_fft, n_mels, fmin, fmax):
    edges = mel_band_edges(n_mels, fmin, fmax)
    freqs = np.arange(n_fft // 2 + 1) * (sample_rate / n_fft)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None, :] - lo) / (mid - lo)
    falling = (hi - freqs[None, :]) / (hi - mid)
    fb = np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)
    fb.setflags(write=False)
    return fb


def mel_filterbank(sample_rate=8000, n_fft=256, n_mels=40, fmin=0.0, fmax=None):
    """float32 (n_mels, n_fft // 2 + 1) triangular HTK-mel filters, peak height 1."""
    fmax = sample_rate / 2 if fmax is None else fmax
    if not 0 <= fmin < fmax <= sample_rate / 2:
        raise ValueError(f"need 0 <= fmin < fmax <= {sample_rate / 2} Hz; got fmin={fmin}, fmax={fmax}.")
    return _filterbank(int(sample_rate), int(n_fft), int(n_mels), float(fmin), float(fmax))


def _window(kind, n):
    if kind == "hann_periodic":
        return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)
    if kind == "hann_symmetric":
        return np.hanning(n).astype(np.float32)
    raise ValueError(f"window must be one of {WINDOWS}; got {kind!r}.")


def num_frames(clip_seconds=1.0, expected_rate=8000, frame_length=256, hop_length=128):
    """Frames per clip: 1 + (clip_samples - frame_length) // hop_length (61 by default)."""
    n = int(round(clip_seconds * expected_rate))
    return 1 + (n - frame_length) // hop_length


def log_mel_spectrogram(samples, sample_rate=8000, *, expected_rate=8000, clip_seconds=1.0,
                        frame_length=256, hop_length=128, n_fft=256, window="hann_periodic",
                        power=2.0, n_mels=40, fmin=0.0, fmax=None, mel_scale="htk",
                        log_offset=1e-6, chunk=512):
    """float32 log-mel spectrogram (n_mels, n_frames) of a mono clip (or (..., n_mels,
    n_frames) of a batch (..., T) of clips sharing one length). See the module docstring.

    `sample_rate` is the rate the samples were recorded at; it must equal
    `expected_rate` (ValueError otherwise). `fmax=None` means expected_rate / 2.
    `chunk` only bounds memory for large batches; it does not change the result.
    """
    if sample_rate != expected_rate:
        raise ValueError(
            f"sample rate {sample_rate} Hz differs from the expected {expected_rate} Hz; "
            f"resample the audio to {expected_rate} Hz first.")
    if mel_scale != "htk":
        raise ValueError(f"only mel_scale='htk' is supported; got {mel_scale!r}.")
    if not (0 < hop_length and 0 < frame_length <= n_fft):
        raise ValueError(
            f"need hop_length > 0 and 0 < frame_length <= n_fft; got hop_length={hop_length}, "
            f"frame_length={frame_length}, n_fft={n_fft}.")
    length = int(round(clip_seconds * expected_rate))
    if length < frame_length:
        raise ValueError(f"clip of {length} samples is shorter than one frame ({frame_length}).")
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 0:
        raise ValueError("samples must have at least one dimension (time last).")
    x = fix_length(x, length)
    fb = mel_filterbank(expected_rate, n_fft, n_mels, fmin, fmax)
    win = _window(window, frame_length)
    lead = x.shape[:-1]
    flat = x.reshape(-1, length)
    out = np.empty((flat.shape[0], n_mels, num_frames(clip_seconds, expected_rate, frame_length,
                                                        hop_length)), dtype=np.float32)
    for s in range(0, flat.shape[0], max(1, int(chunk))):
        # (B, n_frames, frame_length) views without copying, one strided frame every hop.
        frames = np.lib.stride_tricks.sliding_window_view(flat[s:s + chunk], frame_length, axis=-1)
        frames = frames[:, ::hop_length] * win
        spec = np.abs(np.fft.rfft(frames, n=n_fft, axis=-1)) ** power    # (B, F, n_fft//2+1)
        mel = np.einsum("bfk,mk->bmf", spec, fb)                          # (B, n_mels, F)
        out[s:s + chunk] = np.log(mel + log_offset)
    return out.reshape(lead + out.shape[1:])
