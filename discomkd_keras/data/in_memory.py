"""In-memory data for the Python API: per-modality NumPy arrays (or tf.data
Datasets) with labels, made into a validated `MultiModalDataset`.

A run trained from arrays is an ordinary run directory, but its data cannot be
read back from disk: config.json keeps a fingerprint of the arrays (and their
splits) instead of a path, `load_data` refuses such a spec in one line, and
`check_same_arrays` tells whether arrays passed again are the ones it was
trained on (Run.evaluate / export / resume take them).
"""

import hashlib

import numpy as np

from discomkd_keras.data.multimodal_dataset import (SPLITS, DataError, MultiModalDataset,
                                                    stratified_split)

SOURCE = "arrays"


def _to_numpy(value, where):
    """(x, y) of one modality's samples from (x, y) arrays or a tf.data.Dataset of (x, y)
    elements: per sample (a scalar label) or batched (a vector of labels)."""
    if hasattr(value, "as_numpy_iterator"):  # tf.data.Dataset, read once into memory
        xs, ys = [], []
        for element in value.as_numpy_iterator():
            if not isinstance(element, tuple) or len(element) != 2:
                raise DataError(f"{where}: a tf.data.Dataset of (x, y) elements is expected.")
            x, y = (np.asarray(v) for v in element)
            batched = y.ndim == 1
            xs.append(x if batched else x[None])
            ys.append(y if batched else y[None])
        if not xs:
            raise DataError(f"{where}: the tf.data.Dataset is empty.")
        return np.concatenate(xs), np.concatenate(ys)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise DataError(f"{where}: expected (x, y) arrays, a dict of splits {{'train': (x, y), "
                        "'test': (x, y)[, 'valid': (x, y)]}} or a tf.data.Dataset of (x, y); got "
                        f"{type(value).__name__}.")
    x, y = (np.asarray(v) for v in value)
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{where}: {len(x)} samples but labels of shape {y.shape}.")
    return x, y


def _as_model_input(x, where):
    """float32 (N, H, W, C) or (N, F); (N, H, W) gains a channel axis."""
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise DataError(f"{where}: inputs must be numbers; got {x.dtype}.")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim not in (2, 4):
        raise DataError(f"{where}: expected (N, F) vectors, (N, H, W) or (N, H, W, C) images; got "
                        f"shape {x.shape}.")
    return np.ascontiguousarray(x, dtype=np.float32)


def _splits_of(value, where, seed):
    """(x, y, {split: rows}) of one modality: its own splits, or stratified 70/10/20."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(SPLITS) - {"val"})
        if unknown or "train" not in value or "test" not in value:
            raise DataError(f"{where}: a dict of splits needs 'train' and 'test' (and optionally "
                            f"'valid'); got {sorted(value)}.")
        parts = {("valid" if s == "val" else s): _to_numpy(v, f"{where}, {s}")
                 for s, v in value.items()}
        if "valid" not in parts:  # 1/8 of train, stratified, as for modality trees
            x, y = parts["train"]
            cut = stratified_split(y, seed, (7 / 8, 1 / 8, 0.0))
            parts = {"train": (x[cut["train"]], y[cut["train"]]),
                     "valid": (x[cut["valid"]], y[cut["valid"]]), "test": parts["test"]}
        xs, ys, rows, start = [], [], {}, 0
        for s in SPLITS:
            x, y = parts[s]
            xs.append(x)
            ys.append(y)
            rows[s] = np.arange(start, start + len(y), dtype=np.int64)
            start += len(y)
        return np.concatenate(xs), np.concatenate(ys), rows
    x, y = _to_numpy(value, where)
    return x, y, stratified_split(y, seed)


def fingerprint(x, y, rows):
    """A short hash of a modality's arrays and splits (what a resumed run checks)."""
    digest = hashlib.sha256()
    digest.update(str((x.shape, str(x.dtype))).encode())
    digest.update(np.ascontiguousarray(x).tobytes())
    digest.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())
    for s in SPLITS:
        digest.update(np.ascontiguousarray(rows[s]).tobytes())
    return digest.hexdigest()[:20]


def arrays_dataset(data, class_names=None, split_seed=0, name="arrays"):
    """(MultiModalDataset, spec) from {modality: (x, y) | {split: (x, y)} | tf.data.Dataset}.

    Modalities may have different numbers of samples (unpaired). Labels: integers
    0..K-1 (class_names optional, default "0".."K-1"), or any other values, whose
    sorted union over the modalities becomes the class names. The arrays are the
    model's inputs as given (float32; normalise them yourself).
    """
    if not isinstance(data, dict) or len(data) < 2:
        raise DataError("In-memory data is a dict of at least 2 modalities, {modality: (x, y)}; "
                        f"got {type(data).__name__}"
                        + (f" with {len(data)}" if isinstance(data, dict) else "") + ".")
    raw = {}
    for m, value in data.items():
        where = f"in-memory data, modality {m!r}"
        x, y, rows = _splits_of(value, where, split_seed)
        raw[m] = (_as_model_input(x, where), y, rows)
    labels_all = np.concatenate([y for _, y, _ in raw.values()])
    if np.issubdtype(labels_all.dtype, np.integer) and class_names is None:
        if len(labels_all) and labels_all.min() < 0:
            raise DataError(f"in-memory data: integer labels must be >= 0; found {labels_all.min()}.")
        class_names = [str(c) for c in range(int(labels_all.max()) + 1)]
        to_index = lambda y: y.astype(np.int64)  # noqa: E731
    elif np.issubdtype(labels_all.dtype, np.integer):
        class_names = [str(c) for c in class_names]
        to_index = lambda y: y.astype(np.int64)  # noqa: E731
    else:
        names = sorted({str(v) for v in labels_all.tolist()})
        if class_names is not None:
            missing = sorted(set(names) - {str(c) for c in class_names})
            if missing:
                raise DataError(f"in-memory data: labels {missing} are not in class_names.")
            names = [str(c) for c in class_names]
        class_names = names
        lookup = {c: i for i, c in enumerate(class_names)}
        to_index = lambda y: np.array([lookup[str(v)] for v in y.tolist()], np.int64)  # noqa: E731
    inputs, labels, splits, kinds, pre, prints = {}, {}, {}, {}, {}, {}
    for m, (x, y, rows) in raw.items():
        inputs[m], labels[m], splits[m] = x, to_index(y), rows
        kinds[m] = "image" if x.ndim == 4 else "vector"
        pre[m] = {"encoding": "float_raw", "raw": f"{m}: an in-memory array row, the model "
                  "input as given", "layout": "HWC" if x.ndim == 4 else "F", "scale": 1.0,
                  "offset": 0.0}
        prints[m] = fingerprint(x, labels[m], rows)
    dataset = MultiModalDataset(name=name, inputs=inputs, labels=labels, splits=splits,
                                class_names=list(class_names), kinds=kinds, preprocessing=pre,
                                description="In-memory arrays: " + "; ".join(
                                    f"{m} {x.shape[1:]} {len(x):,} samples"
                                    for m, x in inputs.items())).validate()
    spec = {"source": SOURCE, "name": name, "split_seed": int(split_seed), "fingerprints": prints}
    return dataset, spec


def check_same_arrays(spec, data, class_names=None):
    """The dataset of `data` if it is the data `spec` describes (same arrays, labels and
    splits), else DataError naming the first modality that differs."""
    dataset, again = arrays_dataset(data, class_names, spec.get("split_seed", 0),
                                    spec.get("name", "arrays"))
    wanted = list(spec.get("modalities") or spec["fingerprints"])
    if list(again["fingerprints"]) != list(spec["fingerprints"]):
        raise DataError(f"The run was trained on modalities {list(spec['fingerprints'])}; the "
                        f"data given has {list(again['fingerprints'])}.")
    for m, value in spec["fingerprints"].items():
        if again["fingerprints"][m] != value:
            raise DataError(f"Modality {m!r} differs from the arrays the run was trained on "
                            "(another content, order, labels or split): pass the same data.")
    return dataset.select(wanted) if wanted != dataset.modalities else dataset


def refuse_to_load(spec):
    """What load_data says of an arrays spec: the data lives in the user's memory."""
    raise DataError(f"This run was trained from in-memory arrays ({', '.join(spec['fingerprints'])}),"
                    " which are not on disk: pass the same arrays again from Python, e.g. "
                    "discomkd_keras.Run.open(RUN_DIR).evaluate(data=...), .export(data=...) or "
                    ".resume(data=...).")
