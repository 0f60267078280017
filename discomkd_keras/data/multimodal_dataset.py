"""The one interface every data source returns: per-modality arrays, labels,
splits and class names, validated before any training starts."""

import dataclasses

import numpy as np

SPLITS = ("train", "valid", "test")
KINDS = ("image", "spectrogram", "vector")


class DataError(ValueError):
    """Bad input data; the message names the problem (the CLI prints it as is)."""


@dataclasses.dataclass
class MultiModalDataset:
    """Model-ready data of M >= 2 modalities that share one label set.

    Modalities may be unpaired: each has its own samples, labels and splits
    (for paired data, e.g. the released layout, they are the same arrays).

    Attributes:
        name: data-set name, e.g. "synthetic-rgbd".
        inputs: {modality: float32 array (N_m, H, W, C) channels-last, or (N_m, F)}.
        labels: {modality: int64 array (N_m,) of class indices in [0, K)}.
        splits: {modality: {"train" | "valid" | "test": int64 row indices}}.
        class_names: the K class names, in label-index order.
        kinds: {modality: "image" | "spectrogram" | "vector"}; selects
            augmentation (images only) and the default encoder.
        preprocessing: {modality: JSON-able dict} describing exactly how a raw
            sensor sample becomes the model input (the exporter writes it into
            the model card so a device can reproduce it with NumPy alone).
        description: one line saying what was found (file layouts), or "".
        report: JSON-able facts for config.json (files skipped, layout).

    An input may also be a lazy array (file_cache.DecodedInputs: files decoded
    into a memory-mapped cache); `split` then returns a lazy view too.
    """

    name: str
    inputs: dict
    labels: dict
    splits: dict
    class_names: list
    kinds: dict
    preprocessing: dict = dataclasses.field(default_factory=dict)
    description: str = ""
    report: dict = dataclasses.field(default_factory=dict)

    @property
    def modalities(self):
        return list(self.inputs)

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def paired(self):
        """True when row i of every modality is the same sample: equal labels
        and equal splits (what a multi-modal teacher needs)."""
        first = self.modalities[0]
        return all(
            np.array_equal(self.labels[m], self.labels[first])
            and all(np.array_equal(self.splits[m][s], self.splits[first][s]) for s in SPLITS)
            for m in self.modalities[1:])

    def input_shape(self, modality):
        return tuple(self.inputs[modality].shape[1:])

    def split(self, modality, split):
        """(x, y) of one modality's split."""
        idx = self.splits[modality][split]
        x = self.inputs[modality]
        return (x.subset(idx) if hasattr(x, "subset") else x[idx]), self.labels[modality][idx]

    def select(self, modalities):
        """The same data restricted to `modalities` (order kept as given)."""
        unknown = [m for m in modalities if m not in self.inputs]
        if unknown:
            raise DataError(f"Unknown modality {unknown[0]!r}; available: {', '.join(self.inputs)}.")
        if len(modalities) < 2:
            raise DataError(f"Pick at least 2 modalities; got {list(modalities)}.")
        if len(set(modalities)) != len(modalities):
            raise DataError(f"Modalities repeat: {list(modalities)}.")
        pick = lambda d: {m: d[m] for m in modalities}  # noqa: E731
        return dataclasses.replace(
            self, inputs=pick(self.inputs), labels=pick(self.labels),
            splits=pick(self.splits), kinds=pick(self.kinds),
            preprocessing={m: self.preprocessing.get(m, {}) for m in modalities})

    def validate(self):
        """Raise DataError naming the first problem found; return self."""
        k = self.num_classes
        if k < 2:
            raise DataError(f"{self.name}: need at least 2 classes; got {self.class_names}.")
        if len(set(self.class_names)) != k:
            raise DataError(f"{self.name}: class names repeat: {self.class_names}.")
        if set(self.labels) != set(self.inputs) or set(self.splits) != set(self.inputs):
            raise DataError(f"{self.name}: inputs, labels and splits name different modalities.")
        for m, x in self.inputs.items():
            where = f"{self.name}, modality {m!r}"
            if self.kinds.get(m) not in KINDS:
                raise DataError(f"{where}: kind {self.kinds.get(m)!r} is not one of {KINDS}.")
            if x.ndim not in (2, 4):
                raise DataError(
                    f"{where}: expected (N, H, W, C) images or (N, F) vectors; got shape {x.shape}.")
            if not np.issubdtype(x.dtype, np.floating):
                raise DataError(f"{where}: inputs must be floating point; got {x.dtype}.")
            if isinstance(x, np.ndarray) and not np.isfinite(x).all():  # lazy: checked per file
                bad = int(np.count_nonzero(~np.isfinite(x).reshape(len(x), -1).all(axis=1)))
                raise DataError(f"{where}: {bad} sample(s) contain NaN or inf.")
            y = self.labels[m]
            if y.ndim != 1 or len(y) != len(x):
                raise DataError(f"{where}: {len(x)} samples but labels of shape {y.shape}.")
            if not np.issubdtype(y.dtype, np.integer):
                raise DataError(f"{where}: labels must be integers; got {y.dtype}.")
            if len(y) and (y.min() < 0 or y.max() >= k):
                raise DataError(
                    f"{where}: labels must lie in [0, {k - 1}]; found {int(y.min())}..{int(y.max())}.")
            seen = {}
            for s in SPLITS:
                idx = self.splits[m].get(s)
                if idx is None or idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
                    raise DataError(f"{where}: split {s!r} must be a 1-D integer index array.")
                if len(idx) == 0:
                    raise DataError(f"{where}: split {s!r} is empty.")
                if idx.min() < 0 or idx.max() >= len(x):
                    raise DataError(
                        f"{where}: split {s!r} indexes rows {int(idx.min())}..{int(idx.max())}, "
                        f"but there are only {len(x)} samples.")
                if len(np.unique(idx)) != len(idx):
                    raise DataError(f"{where}: split {s!r} repeats row indices.")
                for other, other_idx in seen.items():
                    overlap = np.intersect1d(idx, other_idx)
                    if len(overlap):
                        raise DataError(
                            f"{where}: splits {other!r} and {s!r} overlap "
                            f"({len(overlap)} rows, e.g. row {int(overlap[0])}).")
                seen[s] = idx
            missing = sorted(set(range(k)) - set(np.unique(y[self.splits[m]["train"]]).tolist()))
            if missing:
                names = [self.class_names[c] for c in missing]
                raise DataError(f"{where}: classes {names} have no training sample.")
        return self


def stratified_split(labels, seed, fractions=(0.7, 0.1, 0.2)):
    """{train, valid, test} row indices, stratified by class, reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    parts = {s: [] for s in SPLITS}
    for c in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == c))
        n_train = int(round(fractions[0] * len(rows)))
        n_valid = int(round(fractions[1] * len(rows)))
        parts["train"].append(rows[:n_train])
        parts["valid"].append(rows[n_train:n_train + n_valid])
        parts["test"].append(rows[n_train + n_valid:])
    return {s: np.sort(np.concatenate(p)).astype(np.int64) for s, p in parts.items()}
