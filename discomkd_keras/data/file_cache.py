"""Decode a modality's files once into an on-disk cache; read them memory-mapped.

Each modality's files become one array of raw samples at the model's size
(uint8 images, uint16 depth in millimetres, the stored type of TIFF bands,
float32 spectrograms and .npy samples) in

    $DISCOMKD_CACHE/files/<modality>-<key>/raw.npy   (default ~/.cache/discomkd-keras)
                                           meta.json  (written last: the entry is complete)

The key hashes the data directory, the file list with each file's size and
modification time, and the decode policy (encoding, size, interpolation,
crop, depth decode, spectrogram): a later run with the same files and policy
reuses the entry; a touched file or another --image-size makes a new one.
Deleting the folder is always safe. Training reads batches from the memory
map (`DecodedInputs`), so its memory does not grow with the number of files.

Decoding calls `edge_demo.preprocessing.Preprocessor.raw_samples`, the
device's own reader, and `DecodedInputs` applies its `scale_raw`: a file
gives the same float input in training as on the device.
"""

import concurrent.futures
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from discomkd_keras.data.multimodal_dataset import DataError
from discomkd_keras.edge_demo.preprocessing import InputError, Preprocessor, scale_raw

# 2: images resized in integer fixed point (edge_demo/image_ops.py), a grey level
# apart from version 1's in places: caches of version 1 are decoded again.
CACHE_VERSION = 2
DEFAULT_CACHE = Path.home() / ".cache" / "discomkd-keras"


def cache_root():
    return Path(os.environ.get("DISCOMKD_CACHE") or DEFAULT_CACHE) / "files"


class DecodedInputs:
    """Float32 model inputs of one modality, read on demand from raw samples.

    Behaves like the (N, ...) float32 array `MultiModalDataset.inputs` holds:
    `len`, `shape`, `dtype`, `ndim`, `x[rows]` (a float32 array) and
    `np.asarray(x)`; `subset(rows)` is a lazy view (what `split()` returns), so
    a split is never materialised whole unless a caller asks for it.
    """

    def __init__(self, raw, pre, rows=None, files=None):
        self.raw = raw  # (N_all, ...) raw samples, usually a read-only memory map
        self.pre = pre  # the modality's preprocessing (scale_raw's recipe)
        self.files = files  # the N_all files' paths relative to the data folder, or None
        self.rows = np.arange(len(raw)) if rows is None else np.asarray(rows, np.int64)
        # The model input's shape, from scale_raw itself, without reading the cache.
        self.sample_shape = scale_raw(np.zeros((1,) + raw.shape[1:], raw.dtype), pre).shape[1:]
        self.dtype = np.dtype(np.float32)

    @property
    def shape(self):
        return (len(self.rows),) + self.sample_shape

    @property
    def ndim(self):
        return len(self.shape)

    def __len__(self):
        return len(self.rows)

    def subset(self, rows):
        return DecodedInputs(self.raw, self.pre, self.rows[rows], self.files)

    def __getitem__(self, index):
        picked = self.rows[index]
        if np.ndim(picked) == 0:
            return scale_raw(read_rows(self.raw, picked.reshape(1)), self.pre)[0]
        # Sorted reads are sequential on disk; the result keeps the requested order.
        order = np.argsort(picked, kind="stable")
        out = np.empty((len(picked),) + self.sample_shape, np.float32)
        out[order] = scale_raw(read_rows(self.raw, picked[order]), self.pre)
        return out

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype)


def read_rows(raw, rows):
    """raw[rows] for sorted int64 `rows` of a .npy memory map, read with pread, one
    read per run of consecutive rows. Reading through the map would do the same from
    the page cache, but every page it touches (whole large folios on some file
    systems: about 1.4 MB per 12 KB row measured here) then counts in this process's
    resident memory until the map closes; read like this, training's memory stays
    bounded however large the data set is. Plain arrays are simply indexed."""
    filename = getattr(raw, "filename", None)
    if filename is None or not isinstance(raw, np.memmap):
        return np.asarray(raw[rows])
    out = np.empty((len(rows),) + raw.shape[1:], raw.dtype)
    if not len(rows):
        return out
    row_bytes = out[:1].nbytes
    flat = out.reshape(len(rows), -1).view(np.uint8).reshape(len(rows), row_bytes)
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    fd = os.open(filename, os.O_RDONLY)
    try:
        for first, stop in zip(np.r_[0, breaks], np.r_[breaks, len(rows)]):
            view = memoryview(flat[first:stop]).cast("B")
            offset = raw.offset + int(rows[first]) * row_bytes
            while len(view):  # pread may return less than asked
                done = os.pread(fd, len(view), offset)
                if not done:
                    raise OSError(f"{filename}: the cache file is shorter than its header says.")
                view[:len(done)] = done
                view, offset = view[len(done):], offset + len(done)
    finally:
        os.close(fd)
    return out


def cache_key(directory, modality, files, policy):
    """A hex key of the data directory, the files (path, size, mtime) and the decode policy."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"version": CACHE_VERSION, "directory": str(Path(directory).resolve()),
                              "modality": modality, "policy": policy}, sort_keys=True).encode())
    for rel in files:
        try:
            stat = (Path(directory) / rel).stat()
        except OSError as err:
            raise DataError(f"{Path(directory) / rel}: cannot read the file ({err.strerror}).") \
                from None
        digest.update(f"\n{rel}\t{stat.st_size}\t{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


def decoded_files(directory, modality, files, card, raw_shape, raw_dtype, skip_bad=False,
                  workers=None):
    """(raw memory map (N, *raw_shape), {index: why} of the files that could not be read).

    card: {"preprocessing", "kind", "input": {"shape"}} for `Preprocessor`
    (scale and offset are not needed to decode). raw_shape, raw_dtype: of one
    raw sample (an integer type: every file must decode to exactly it). A bad
    file raises DataError naming it unless `skip_bad`; nothing is left in the
    cache then.
    """
    directory = Path(directory)
    pre = Preprocessor(card, warn=lambda message: None)  # resizing is the size policy, not news
    policy = {k: v for k, v in card["preprocessing"].items() if k not in ("scale", "offset",
                                                                          "mean", "std", "raw")}
    policy.update(kind=card["kind"], shape=list(card["input"]["shape"][1:]))
    entry = cache_root() / f"{modality}-{cache_key(directory, modality, files, policy)}"
    cached = _read_entry(entry, len(files))
    if cached is not None:
        if cached[1] and not skip_bad:  # decoded before with --skip-bad-files
            raise DataError(f"{next(iter(cached[1].values()))} (--skip-bad-files leaves "
                            "unreadable files out)")
        return cached

    raw_dtype = np.dtype(raw_dtype)
    shutil.rmtree(entry, ignore_errors=True)  # an incomplete or damaged entry: decode anew
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry.parent / f".{entry.name}.{os.getpid()}.tmp"
    tmp.mkdir(exist_ok=True)
    bad = {}
    try:
        raw = np.lib.format.open_memmap(tmp / "raw.npy", mode="w+", dtype=raw_dtype,
                                        shape=(len(files),) + raw_shape)

        def decode(i):
            path = directory / files[i]
            try:
                samples = pre.raw_samples(path)
                if len(samples) != 1:
                    raise InputError(f"{path}: holds {len(samples)} samples; a sample file holds one.")
                sample = samples[0][1]
                if sample.shape != tuple(raw_shape):
                    raise InputError(f"{path}: a sample of shape {sample.shape}, but the "
                                     f"modality's samples have shape {tuple(raw_shape)}.")
                if raw_dtype.kind in "iu" and sample.dtype != raw_dtype:
                    raise InputError(f"{path}: {sample.dtype} samples, but the modality's are "
                                     f"{raw_dtype}.")
                raw[i] = sample
            except (InputError, ValueError, OSError) as err:
                return i, str(err).splitlines()[0] or type(err).__name__
            return i, None

        progress = _Progress(f"decoding {modality}", len(files))
        threads = workers or min(4, (os.cpu_count() or 1) + 1)
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            for i, why in pool.map(decode, range(len(files)), chunksize=64):
                progress.step()
                if why is None:
                    continue
                if not skip_bad:
                    pool.shutdown(cancel_futures=True)
                    raise DataError(f"{why} (--skip-bad-files leaves unreadable files out)")
                bad[i] = why
        if len(bad) == len(files):
            raise DataError(f"{modality}: none of its {len(files)} files could be read; the "
                            f"first: {next(iter(bad.values()))}")
        raw.flush()
        raw = None  # close the map before the entry is renamed into place
        meta = {"version": CACHE_VERSION, "files": len(files), "modality": modality,
                "bad": {str(i): why for i, why in bad.items()}, "policy": policy,
                "seconds": round(progress.seconds, 2)}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        try:
            os.replace(tmp, entry)
        except OSError:  # another run finished the same entry first: use it
            pass
    finally:
        if tmp.exists():
            for part in tmp.iterdir():
                part.unlink()
            tmp.rmdir()
    progress.done(entry)
    return _read_entry(entry, len(files))


def _read_entry(entry, n):
    """(memmap, bad) of a complete cache entry, or None if it is missing or damaged."""
    try:
        meta = json.loads((entry / "meta.json").read_text())
        raw = np.load(entry / "raw.npy", mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    if meta.get("version") != CACHE_VERSION or len(raw) != n:
        return None
    return raw, {int(i): why for i, why in meta.get("bad", {}).items()}


def channel_stats(raw, rows, per_channel, chunk=1024):
    """(mean, std) of raw samples `rows` as float64: scalars, or one per last axis entry."""
    axes = None
    total = total_sq = count = 0
    for start in range(0, len(rows), chunk):
        block = read_rows(raw, np.sort(rows[start:start + chunk])).astype(np.float64)
        if axes is None:
            axes = tuple(range(block.ndim - 1)) if per_channel else None
        total = total + block.sum(axis=axes)
        total_sq = total_sq + np.square(block).sum(axis=axes)
        count += block.size // (block.shape[-1] if per_channel else 1)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - np.square(mean), 0.0))
    return mean, std


class _Progress:
    """files/s on one line of stderr (rewritten on a terminal, every 10% in a log file)."""

    def __init__(self, label, total):
        self.label, self.total, self.count = label, total, 0
        self.start = self.last = time.perf_counter()
        self.tty = sys.stderr.isatty()
        self.next_line = total / 10

    @property
    def seconds(self):
        return time.perf_counter() - self.start

    def _line(self):
        rate = self.count / max(self.seconds, 1e-9)
        return f"  {self.label}: {self.count:,}/{self.total:,} files, {rate:,.0f} files/s"

    def step(self):
        self.count += 1
        now = time.perf_counter()
        if self.tty and now - self.last > 0.2:
            self.last = now
            print(f"\r{self._line()}", end="", file=sys.stderr, flush=True)
        elif not self.tty and self.total >= 5000 and self.next_line <= self.count < self.total:
            self.next_line += self.total / 10
            print(self._line(), file=sys.stderr, flush=True)

    def done(self, where):
        print(f"{chr(13) if self.tty else ''}{self._line()} in {self.seconds:.1f} s -> {where}",
              file=sys.stderr, flush=True)
