"""Training data kept as files (README, "Your data"): modality trees and manifests.

    DIR/<modality>/<class>/<file>                       modality trees: unpaired, each
    DIR/<modality>/{train,valid,test}/<class>/<file>    modality its own samples
    DIR/manifest.csv                                    paired rows: split, label and one
                                                        path column per modality (relative
                                                        to DIR; empty: missing there)
    DIR/class_names.txt                                 optional: the classes, one a line

Files: PNG / JPEG (8-bit RGB or grey; 16-bit PNG = depth in millimetres, kept at
full precision), TIFF (multi-band, needs tifffile), WAV (PCM mono -> the log-mel
spectrogram the device computes) and .npy (one sample of any shape). An image
modality's encoding (16-bit depth, 8-bit grey or RGB) is that of most of its files,
read from each file's header; files of another encoding are refused by name (left
out with --skip-bad-files); --depth-unit MOD=... marks and decodes depth.
Every file is decoded once by the device's own reader into the on-disk cache of
file_cache.py; normalisation statistics come from the training split only.
"""

import csv
import os
from pathlib import Path

import numpy as np

from discomkd_keras.data.file_cache import DecodedInputs, cache_root, channel_stats, decoded_files
from discomkd_keras.data.multimodal_dataset import (SPLITS, DataError, MultiModalDataset,
                                                    stratified_split)
from discomkd_keras.edge_demo import preprocessing as device
from discomkd_keras.edge_demo.spectrogram import SPECTROGRAM_PARAMS, read_wav

MANIFEST = "manifest.csv"
CLASS_NAMES = "class_names.txt"
SPLIT_WORDS = {"train": "train", "valid": "valid", "val": "valid", "validation": "valid",
               "test": "test"}
# suffix -> reader family; a modality's files must all be of one family.
FAMILIES = {".png": "image", ".jpg": "image", ".jpeg": "image", ".tif": "tiff", ".tiff": "tiff",
            ".wav": "wav", ".npy": "npy"}
# --depth-unit names; a number means millimetres per stored unit.
DEPTH_UNITS = {"mm": {}, "sunrgbd": {"rotate_right_bits": 3}}
FAMILY_WORDS = {"image": "image", "tiff": "TIFF", "wav": "WAV", "npy": ".npy"}
ENCODING_WORDS = {"rgb8": "8-bit RGB", "gray8": "8-bit grey", device.DEPTH: "16-bit depth (mm)",
                  device.BANDS: "bands", device.AUDIO: "log-mel", device.ARRAY: "array"}
# An image file's encoding, from its header: (files of it, in words; one file of it, in words).
IMAGE_ENCODINGS = {device.DEPTH: ("16-bit depth PNGs", "16-bit"),
                   "gray8": ("8-bit grey images", "8-bit grey"),
                   "rgb8": ("8-bit RGB images", "8-bit RGB")}
# The encodings each encoding's reader takes (a grey model converts RGB files to luma).
IMAGE_READS = {device.DEPTH: {device.DEPTH}, "gray8": {"gray8", "rgb8"}, "rgb8": {"rgb8"}}


def file_layout(directory):
    """"released", "manifest" or "trees": the layout `directory` holds."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"Data directory not found: {directory}")
    if any(directory.glob("*_data_normalized.npy")):
        return "released"
    return "manifest" if (directory / MANIFEST).is_file() else "trees"


def depth_decode(unit):
    """The card's depth_decode of a --depth-unit value: mm, sunrgbd or mm per unit."""
    if unit in DEPTH_UNITS:
        return dict(DEPTH_UNITS[unit])
    try:
        per_unit = float(unit)
    except (TypeError, ValueError):
        raise DataError(f"--depth-unit {unit!r}: expected mm, sunrgbd or millimetres per stored "
                        "unit (e.g. 0.1)") from None
    if not per_unit > 0:
        raise DataError(f"--depth-unit must be > 0 millimetres per unit; got {unit!r}.")
    return {"mm_per_unit": per_unit}


def load_files(directory, modalities=None, split_seed=None, image_size=None, crop_to_aspect=True,
               depth_units=None, clip_seconds=1.0, skip_bad_files=False):
    """A validated `MultiModalDataset` of a modality-tree or manifest folder.

    image_size: {modality or "*": [H, W]} (default: each modality's first file).
    crop_to_aspect: centre-crop to the target aspect ratio before resizing.
    depth_units: {modality: "mm" | "sunrgbd" | millimetres per unit}: depth
        files and how their values become millimetres.
    clip_seconds: WAV clips are padded / cropped to this length.
    skip_bad_files: leave unreadable files out (counted in `report`) instead of failing.
    split_seed: stratified 70/10/20 splits where the data names none (default 0).
    """
    directory = Path(directory)
    layout = file_layout(directory)
    if layout == "released":
        raise DataError(f"{directory} holds the released layout (*_data_normalized.npy); "
                        "read it with --data released.")
    image_size, depth_units = dict(image_size or {}), dict(depth_units or {})
    seed = 0 if split_seed is None else int(split_seed)
    if layout == "manifest":
        listing, class_names, how = _scan_manifest(directory, modalities, seed)
    else:
        listing, class_names, how = _scan_trees(directory, modalities, seed)
    for m in list(depth_units) + [k for k in image_size if k != "*"]:
        if m not in listing:
            raise DataError(f"Unknown modality {m!r} in --depth-unit / --image-size; the data has: "
                            f"{', '.join(listing)}.")

    inputs, labels, splits, kinds, preprocessing, described, report = {}, {}, {}, {}, {}, [], {}
    for m, (files, y, split) in listing.items():
        size = image_size.get(m, image_size.get("*"))
        card, raw_shape, raw_dtype, family = _probe(directory, m, files, split, size,
                                                    crop_to_aspect, depth_units.get(m),
                                                    clip_seconds, skip_bad_files)
        raw, bad = decoded_files(directory, m, files, card, raw_shape, raw_dtype, skip_bad_files)
        if bad:
            drop = np.array(sorted(bad), np.int64)
            split = {s: np.setdiff1d(idx, drop) for s, idx in split.items()}
            report[m] = {"skipped_files": len(bad),
                         "examples": [bad[i] for i in sorted(bad)[:5]]}
        pre = _normalised(card["preprocessing"], raw, split["train"], card["kind"], m)
        inputs[m], labels[m], splits[m] = DecodedInputs(raw, pre, files=files), y, split
        kinds[m], preprocessing[m] = card["kind"], pre
        shape = "x".join(str(d) for d in card["input"]["shape"][1:])
        described.append(f"{m} {len(files):,} {FAMILY_WORDS[family]} files "
                         f"({ENCODING_WORDS[pre['encoding']]}, {shape})")
    data = MultiModalDataset(
        name=directory.resolve().name, inputs=inputs, labels=labels, splits=splits,
        class_names=class_names, kinds=kinds, preprocessing=preprocessing,
        description=(f"Found {'a manifest' if layout == 'manifest' else 'modality trees'} in "
                     f"{directory}: {'; '.join(described)}; {len(class_names)} classes; {how}; "
                     f"cache {cache_root()}"),
        report={"layout": layout, "skipped_files": {m: r["skipped_files"] for m, r in report.items()},
                "skipped_examples": {m: r["examples"] for m, r in report.items()}})
    return data.validate()


# --- listing the files -----------------------------------------------------------------
def _class_list(directory, found, where):
    """The class names: class_names.txt when present (every label must be in it), else the
    sorted names found."""
    path = directory / CLASS_NAMES
    if not path.is_file():
        return sorted(found)
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    unknown = sorted(set(found) - set(names))
    if unknown:
        raise DataError(f"{where}: label(s) {unknown} are not in the class list {path} "
                        f"({len(names)} classes: {', '.join(names[:10])}"
                        f"{', ...' if len(names) > 10 else ''}).")
    return names


def _visible(path):
    return sorted(p for p in path.iterdir() if not p.name.startswith("."))


def _class_files(class_dir, directory):
    """Sample files under one class folder (recursively, sorted), and the count of others."""
    files, ignored = [], 0
    for root, dirs, names in os.walk(class_dir, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            if Path(name).suffix.lower() in FAMILIES:
                files.append(str((Path(root) / name).relative_to(directory)))
            else:
                ignored += 1
    return files, ignored


def _scan_trees(directory, wanted, seed):
    """({modality: (files, labels, splits)}, class names, how the splits were made)."""
    folders = [p for p in _visible(directory) if p.is_dir()]
    if len(folders) < 2:
        raise DataError(f"{directory}: expected modality trees DIR/<modality>/<class>/<file> with "
                        f"at least 2 modality folders (found {len(folders)}), a {MANIFEST}, or "
                        "the released layout (README, 'Your data').")
    names = [p.name for p in folders]
    for m in wanted or []:
        if m not in names:
            raise DataError(f"Unknown modality {m!r}; {directory} has: {', '.join(names)}.")
    entries, classes, official = {}, {}, {}
    for folder in folders:
        m = folder.name
        if wanted and m not in wanted:
            continue
        subdirs = [p for p in _visible(folder) if p.is_dir()]
        sub_names = {p.name for p in subdirs}
        official[m] = bool(sub_names) and sub_names <= set(SPLITS) and {"train", "test"} <= sub_names
        roots = [(folder / s, s) for s in SPLITS if s in sub_names] if official[m] \
            else [(folder, None)]
        rows, ignored = [], 0
        classes[m] = set()
        for root, split in roots:
            for class_dir in (p for p in _visible(root) if p.is_dir()):
                files, skipped = _class_files(class_dir, directory)
                ignored += skipped
                if not files:
                    raise DataError(f"{class_dir}: the class folder holds no sample files "
                                    f"({', '.join(sorted(FAMILIES))}); an empty class cannot be "
                                    "learned. Remove it or add samples.")
                classes[m].add(class_dir.name)
                rows += [(f, class_dir.name, split) for f in files]
        if not rows:
            raise DataError(f"{folder}: no class folders with sample files "
                            "(expected <modality>/<class>/<file>).")
        entries[m] = rows
    _same_classes(classes, directory)
    class_names = _class_list(directory, set().union(*classes.values()), directory)
    index = {c: i for i, c in enumerate(class_names)}
    listing, hows = {}, set()
    for m in wanted or entries:  # the order asked for sets the modality index
        rows = entries[m]
        files = [r[0] for r in rows]
        y = np.array([index[r[1]] for r in rows], np.int64)
        if official[m]:
            where = np.array([r[2] for r in rows])
            split = {s: np.flatnonzero(where == s).astype(np.int64) for s in SPLITS}
            if not len(split["valid"]):  # carve validation rows out of train, stratified
                part = stratified_split(y[split["train"]], seed, (0.875, 0.125, 0.0))
                split["valid"] = np.sort(split["train"][part["valid"]])
                split["train"] = np.sort(split["train"][part["train"]])
                hows.add(f"{m}: train/test folders, validation 1/8 of train (seed {seed})")
            else:
                hows.add(f"{m}: train/valid/test folders")
        else:
            split = stratified_split(y, seed)
            hows.add(f"{m}: stratified 70/10/20 (--split-seed {seed})")
        listing[m] = (files, y, split)
    return listing, class_names, "splits " + ", ".join(sorted(hows))


def _same_classes(classes, directory):
    union = set().union(*classes.values())
    if any(c != union for c in classes.values()):
        lacks = "; ".join(f"{m} lacks {sorted(union - c)}" for m, c in classes.items() if c != union)
        raise DataError(f"{directory}: the modalities' class folders differ ({lacks}); every "
                        "modality needs the same classes.")


def _scan_manifest(directory, wanted, seed):
    path = directory / MANIFEST
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            columns = [c.strip() for c in next(reader, None) or []]
            # (line of the file, header = line 1; the row's cells); blank lines are skipped
            raw_rows = [(reader.line_num, [c.strip() for c in cells]) for cells in reader if cells]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path}: not a readable CSV file ({err}).") from None
    if "label" not in columns:
        raise DataError(f"{path}: no 'label' column; expected split,label,<modality>,... "
                        f"(found {', '.join(columns) or 'no header'}).")
    found = [c for c in columns if c not in ("split", "label")]
    modalities = list(wanted or found)
    for m in modalities:
        if m not in found:
            raise DataError(f"Unknown modality {m!r}; {path} has the columns: {', '.join(found)}.")
    if len(modalities) < 2:
        raise DataError(f"{path}: expected at least 2 modality columns besides split and label; "
                        f"found {found}.")
    if not raw_rows:
        raise DataError(f"{path} has a header but no rows.")
    rows, lines = [], []
    for n, cells in raw_rows:
        # A row may leave out empty modality cells at its end (that row feeds only the
        # others); any other count of cells would shift the columns.
        if len(cells) > len(columns) or (len(cells) < len(columns) and any(
                c in ("split", "label") for c in columns[len(cells):])):
            short = ("; only empty modality cells at the end of a row may be left out"
                     if len(cells) < len(columns) else "")
            raise DataError(f"{path}, line {n}: {len(cells)} cell{'s' if len(cells) != 1 else ''}"
                            f", but the header names {len(columns)} columns "
                            f"({', '.join(columns)}){short}.")
        rows.append(dict(zip(columns, cells + [""] * (len(columns) - len(cells)))))
        lines.append(n)
    top = directory.resolve()
    for n, row in zip(lines, rows):
        if not row.get("label"):
            raise DataError(f"{path}, line {n}: empty label.")
        if "split" in columns and row.get("split", "").lower() not in SPLIT_WORDS:
            raise DataError(f"{path}, line {n}: split {row.get('split')!r} is not one of train, "
                            "valid, test.")
        if not any(row.get(m) for m in modalities):
            raise DataError(f"{path}, line {n}: no file in any of {', '.join(modalities)}.")
        for m in modalities:
            cell = row.get(m)
            if not cell:
                continue
            normal = os.path.normpath(cell)
            if Path(cell).is_absolute() or normal == ".." or normal.startswith(".." + os.sep):
                raise DataError(f"{path}, line {n}: {m} path {cell!r} leaves {directory}; paths "
                                "are relative to the manifest's folder.")
            if not (top / normal).is_file():
                raise DataError(f"{path}, line {n}: {m} file {cell!r} does not exist in {directory}.")
            if Path(cell).suffix.lower() not in FAMILIES:
                raise DataError(f"{path}, line {n}: {m} file {cell!r} has an unsupported type "
                                f"(accepted: {', '.join(sorted(FAMILIES))}).")
    class_names = _class_list(directory, {r["label"] for r in rows}, path)
    index = {c: i for i, c in enumerate(class_names)}
    y_all = np.array([index[r["label"]] for r in rows], np.int64)
    if "split" in columns:
        where = np.array([SPLIT_WORDS[r["split"].lower()] for r in rows])
        split_all = {s: np.flatnonzero(where == s) for s in SPLITS}
        how = "splits from the manifest's split column"
    else:
        split_all = stratified_split(y_all, seed)
        how = f"splits stratified 70/10/20 (--split-seed {seed})"
    listing = {}
    for m in modalities:
        present = np.flatnonzero([bool(r.get(m)) for r in rows])
        position = np.full(len(rows), -1, np.int64)
        position[present] = np.arange(len(present))
        split = {s: position[np.intersect1d(idx, present)].astype(np.int64)
                 for s, idx in split_all.items()}
        listing[m] = ([os.path.normpath(rows[i][m]) for i in present], y_all[present], split)
    return listing, class_names, how


# --- probing and normalising a modality -----------------------------------------------
def _probe(directory, m, files, split, size, crop, depth_unit, clip_seconds, skip_bad):
    """(card for the reader, raw sample shape, raw dtype, family) from the modality's
    first readable training file (of an image modality: of its majority encoding)."""
    families = {FAMILIES[Path(f).suffix.lower()] for f in files}
    if len(families) > 1:
        examples = {FAMILIES[Path(f).suffix.lower()]: f for f in files}
        raise DataError(f"{m}: files of different kinds in one modality "
                        f"({', '.join(f'{k}: {v}' for k, v in sorted(examples.items()))}); a "
                        "modality holds one kind of file.")
    family = families.pop()
    if depth_unit is not None and family != "image":
        raise DataError(f"--depth-unit {m}=...: {m} holds {FAMILY_WORDS[family]} files, not PNGs.")
    if size is not None and family in ("wav", "npy"):
        raise DataError(f"--image-size {m}=...: {m} holds {FAMILY_WORDS[family]} files, which are "
                        "not resized.")
    order = list(split["train"]) + [i for s in ("valid", "test") for i in split[s]]
    if family == "image" and depth_unit is None:  # --depth-unit: depth whatever the header
        groups = _image_encodings(directory, files, skip_bad)
        if groups:
            majority = set(groups[_majority_encoding(m, files, groups, skip_bad)])
            order = [i for i in order if i in majority]
    last_error = None
    for i in order:
        try:
            return _probe_file(directory / files[i], family, size, crop, depth_unit,
                               clip_seconds) + (family,)
        except device.InputError as err:
            if not skip_bad:
                raise DataError(f"{err} (--skip-bad-files leaves unreadable files out)") from None
            last_error = err
    raise DataError(f"{m}: none of its {len(files)} files could be read; e.g. {last_error}")


def _image_header(path):
    """(Pillow mode, (width, height)) of an image file, from its header (no pixels)."""
    try:
        from PIL import Image, UnidentifiedImageError
        with Image.open(path) as im:
            return im.mode, im.size
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise device.InputError(f"{path}: not a readable image ({type(err).__name__}: "
                                f"{str(err).splitlines()[0] if str(err) else 'unknown'}).") from None


def _image_encoding(mode):
    """The encoding a file of this Pillow mode gives a modality (as `_probe_file` decides)."""
    if mode in device.DEPTH_MODES:
        return device.DEPTH
    return "gray8" if mode in ("L", "LA", "1") else "rgb8"


def _image_encodings(directory, files, skip_bad):
    """{encoding: [file indices]} of an image modality's readable files, each from its
    header; an unreadable file is refused (or, with `skip_bad`, left to the decoder,
    which leaves it out and counts it)."""
    groups = {}
    for i, f in enumerate(files):
        try:
            mode, _ = _image_header(directory / f)
        except device.InputError as err:
            if not skip_bad:
                raise DataError(f"{err} (--skip-bad-files leaves unreadable files out)") from None
            continue
        groups.setdefault(_image_encoding(mode), []).append(i)
    return groups


def _some_files(files, indices):
    """Up to 5 of the files, then "and N more"."""
    names = ", ".join(files[i] for i in indices[:5])
    return names + (f" and {len(indices) - 5} more" if len(indices) > 5 else "")


def _majority_encoding(m, files, groups, skip_bad):
    """The encoding of most of an image modality's files. Files its reader cannot take
    are refused by name unless `skip_bad` (the decoder then leaves them out, counted); a
    tie is refused."""
    ranked = sorted(groups, key=lambda e: -len(groups[e]))
    top = len(groups[ranked[0]])
    tied = [e for e in ranked if len(groups[e]) == top]
    if len(tied) > 1:
        parts = [f"{top} files are {IMAGE_ENCODINGS[tied[0]][0]} "
                 f"({_some_files(files, groups[tied[0]])})"]
        parts += [f"{top} are {IMAGE_ENCODINGS[e][1]} ({_some_files(files, groups[e])})"
                  for e in tied[1:]]
        raise DataError(f"{m}: {' and '.join(parts)}, so no majority decides the modality's "
                        "encoding; remove or convert one group.")
    major = ranked[0]
    odd = {e: groups[e] for e in ranked if e not in IMAGE_READS[major]}
    if odd and not skip_bad:
        # 8 bits cannot hold depth: any 8-bit file among depth PNGs is simply 8-bit
        word = {e: "8-bit" if major == device.DEPTH else IMAGE_ENCODINGS[e][1] for e in odd}
        counts = {}
        for e, indices in odd.items():
            counts[word[e]] = counts.get(word[e], 0) + len(indices)
        said = " and ".join(f"{n} {'is' if n == 1 else 'are'} {w}" for w, n in counts.items())
        indices = sorted(i for group in odd.values() for i in group)
        them = "it" if len(indices) == 1 else "them"
        raise DataError(f"{m}: {top} files are {IMAGE_ENCODINGS[major][0]} but {said}: "
                        f"{_some_files(files, indices)}; remove or convert {them}, or pass "
                        f"--skip-bad-files to leave {them} out.")
    return major


def _probe_file(path, family, size, crop, depth_unit, clip_seconds):
    """(card, raw shape, raw dtype) of a modality whose first file is `path`."""
    if family == "wav":
        try:
            _, rate = read_wav(path)
        except (ValueError, OSError) as err:
            raise device.InputError(str(err).splitlines()[0]) from None
        params = dict(SPECTROGRAM_PARAMS, expected_rate=int(rate), fmax=rate / 2,
                      clip_seconds=float(clip_seconds))
        pre = {"encoding": device.AUDIO, "raw": f"mono 16-bit PCM WAV at {rate} Hz",
               "spectrogram": params, "layout": "HWC (mels, frames, 1)"}
        frames = 1 + (int(round(clip_seconds * rate)) - params["frame_length"]) \
            // params["hop_length"]
        if frames < 1:
            raise DataError(f"--clip-seconds {clip_seconds}: shorter than one spectrogram frame.")
        shape = (params["n_mels"], frames)
        return _card(pre, "spectrogram", shape + (1,)), shape, np.float32
    if family == "npy":
        try:
            arr = np.load(path, allow_pickle=False, mmap_mode="r")
        except (ValueError, OSError, EOFError) as err:
            raise device.InputError(f"{path}: not a readable .npy array "
                                    f"({str(err).splitlines()[0]}).") from None
        if arr.ndim not in (1, 2, 3) or not np.issubdtype(arr.dtype, np.number):
            raise device.InputError(f"{path}: expected one numeric sample of shape (F,), (H, W) "
                                    f"or (H, W, C); got {arr.dtype} {arr.shape}.")
        shape = arr.shape + (1,) if arr.ndim == 2 else arr.shape
        kind = "vector" if arr.ndim == 1 else "image"
        pre = {"encoding": device.ARRAY, "raw": f"one .npy sample {tuple(arr.shape)}",
               "layout": "F" if kind == "vector" else "HWC"}
        return _card(pre, kind, shape), shape, np.float32
    if family == "tiff":
        arr = device.read_tiff(path)
        h, w = size or arr.shape[:2]
        dtype = arr.dtype if arr.dtype in (np.uint8, np.uint16, np.int8, np.int16) else np.float32
        pre = {"encoding": device.BANDS, "raw": f"{arr.shape[-1]}-band TIFF ({arr.dtype})",
               "layout": "HWC", "height": int(h), "width": int(w),
               "resize": {"interpolation": "bilinear", "crop_to_aspect": bool(crop)}}
        shape = (int(h), int(w), int(arr.shape[-1]))
        return _card(pre, "image", shape), shape, dtype
    mode, (w0, h0) = _image_header(path)
    h, w = size or (h0, w0)
    resize = {"interpolation": "bilinear", "crop_to_aspect": bool(crop)}
    if depth_unit is not None or mode in device.DEPTH_MODES:
        pre = {"encoding": device.DEPTH, "raw": "16-bit PNG, depth in millimetres (0 = missing)",
               "resize": dict(resize, interpolation="nearest")}
        decode = depth_decode(depth_unit or "mm")
        if decode:
            pre["depth_decode"] = decode
        channels, dtype = 1, np.uint16
    elif _image_encoding(mode) == "gray8":
        pre, channels, dtype = {"encoding": "gray8", "raw": "8-bit grayscale image",
                                "resize": resize}, 1, np.uint8
    else:
        pre, channels, dtype = {"encoding": "rgb8", "raw": "8-bit RGB image",
                                "resize": resize}, 3, np.uint8
    pre.update(layout="HWC", height=int(h), width=int(w))
    shape = (int(h), int(w), channels)
    return _card(pre, "image", shape), shape, dtype


def _card(pre, kind, shape):
    return {"preprocessing": pre, "kind": kind, "input": {"shape": [1] + [int(d) for d in shape]}}


def _normalised(pre, raw, train_rows, kind, modality):
    """The preprocessing with its normalisation, from the training rows only:
    standardised to mean 0 and std 1 (one statistic per channel for TIFF bands and
    .npy samples, one for the others; audio as the device standardises spectrograms)."""
    pre = dict(pre)
    per_channel = pre["encoding"] in (device.BANDS, device.ARRAY)
    mean, std = channel_stats(raw, np.asarray(train_rows), per_channel)
    if pre["encoding"] == device.AUDIO:
        if not float(std) > 0:
            raise DataError(f"{modality}: the training spectrograms are constant; check the clips.")
        pre.update(mean=float(mean), std=float(std))
        return pre
    std = np.where(np.asarray(std) > 0, std, 1.0)  # a constant channel stays constant
    scale, offset = 1.0 / std, -np.asarray(mean) / std
    pre.update(scale=scale.tolist() if per_channel else float(scale),
               offset=offset.tolist() if per_channel else float(offset))
    return pre
