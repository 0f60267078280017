"""The data layout of the authors' released script, read as it is on disk:

    DIR/{MOD}_data_normalized.npy   (N, C, H, W) images, or (N, F) vectors; float
    DIR/labels.npy                  (N,) integer class labels 0..K-1
    DIR/train_idx.npy, valid_idx.npy, test_idx.npy   row indices
    DIR/class_names.txt             optional: K class names, one a line

Rows are aligned across modalities (paired data). Images are stored channels
first and converted to channels last for the model.
"""

from pathlib import Path

import numpy as np

from discomkd_keras.data.multimodal_dataset import DataError, MultiModalDataset, SPLITS, stratified_split

SUFFIX = "_data_normalized.npy"


def _load_npy(path):
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"Missing file: {path}") from None
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise DataError(f"{path} holds Python objects; only plain numeric arrays are read "
                            "(it would need unpickling, which is never done).") from None
        raise DataError(f"{path} is not a readable .npy array: {err}") from None
    except (OSError, EOFError) as err:
        raise DataError(f"{path} is not a readable .npy array: {err}") from None


def released_modalities(directory):
    """Modality names found in `directory`, from the `{MOD}_data_normalized.npy` files."""
    return sorted(p.name[: -len(SUFFIX)] for p in Path(directory).glob(f"*{SUFFIX}"))


def load_released_layout(directory, modalities=None, split_seed=None):
    """Read the released layout into a validated `MultiModalDataset`.

    modalities: which ones to use (default: all found); order sets the modality index.
    split_seed: if the index files are absent, make stratified 70/10/20 splits from it.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"Data directory not found: {directory}")
    found = released_modalities(directory)
    if not found:
        raise DataError(f"No {{MOD}}{SUFFIX} files in {directory}.")
    modalities = list(modalities or found)
    for m in modalities:
        if m not in found:
            raise DataError(f"Unknown modality {m!r}; {directory} has: {', '.join(found)}.")

    labels = _load_npy(directory / "labels.npy")
    if labels.ndim != 1:
        raise DataError(f"labels.npy must be 1-D (N,); got shape {labels.shape}.")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"labels.npy must hold integers; got {labels.dtype} "
                        "(convert with labels.astype(np.int64) if the values are whole numbers).")
    labels = labels.astype(np.int64)

    names_file = directory / "class_names.txt"
    if names_file.exists():
        class_names = [line.strip() for line in names_file.read_text().splitlines() if line.strip()]
    else:
        present = np.unique(labels)
        if len(present) and (present[0] < 0 or present[-1] != len(present) - 1):
            raise DataError(f"labels.npy must use the classes 0..K-1 without gaps; found values "
                            f"{present.tolist()[:20]}. Renumber them, or list K names in class_names.txt.")
        class_names = [str(c) for c in range(len(present))]
    if len(labels) and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise DataError(f"labels.npy values must lie in 0..{len(class_names) - 1}; "
                        f"found {int(labels.min())}..{int(labels.max())}.")

    inputs, kinds = {}, {}
    for m in modalities:
        path = directory / f"{m}{SUFFIX}"
        x = _load_npy(path)
        if x.ndim == 4:
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))  # (N, C, H, W) -> (N, H, W, C)
            kinds[m] = "image"
        elif x.ndim == 2:
            kinds[m] = "vector"
        else:
            raise DataError(f"{path.name}: expected (N, C, H, W) images or (N, F) vectors; "
                            f"got rank {x.ndim}, shape {x.shape}.")
        if not np.issubdtype(x.dtype, np.number):
            raise DataError(f"{path.name}: expected a numeric array; got {x.dtype}.")
        if len(x) != len(labels):
            raise DataError(f"{path.name} has {len(x)} rows but labels.npy has {len(labels)}; "
                            "rows must be aligned across modalities.")
        inputs[m] = x.astype(np.float32, copy=False)

    index_files = {s: directory / f"{s}_idx.npy" for s in SPLITS}
    present = [s for s, p in index_files.items() if p.exists()]
    if len(present) == len(SPLITS):
        splits = {}
        for s, path in index_files.items():
            idx = _load_npy(path)
            if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
                raise DataError(f"{path.name} must be a 1-D integer array; got {idx.dtype} {idx.shape}.")
            splits[s] = idx.astype(np.int64)
    elif split_seed is not None:
        splits = stratified_split(labels, split_seed)
    else:
        missing = [index_files[s].name for s in SPLITS if s not in present]
        raise DataError(f"Missing split files in {directory}: {', '.join(missing)}. "
                        "Provide them, or pass --split-seed to make stratified 70/10/20 splits.")

    preprocessing = {
        m: {"encoding": "float_raw",
            "raw": f"{m}{SUFFIX} row, already normalised by the data's author",
            "layout": "CHW on disk -> HWC model input" if kinds[m] == "image" else "F",
            "scale": 1.0, "offset": 0.0}
        for m in modalities}
    return MultiModalDataset(
        name=directory.name, inputs=inputs,
        labels={m: labels for m in modalities}, splits={m: splits for m in modalities},
        class_names=class_names, kinds=kinds, preprocessing=preprocessing,
    ).validate()
