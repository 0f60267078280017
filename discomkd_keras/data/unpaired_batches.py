"""Training batches: unpaired (one shuffled, augmented stream per modality,
DisCoM-KD's setting) or paired (`PairedBatches`, one stream of multi-modal
rows, for a teacher and its students).

Each step yields x = {modality: batch}, y = {modality: labels}; modality m's
batch holds its own samples. An epoch is one pass over the largest modality's
training set; smaller modalities cycle through fresh permutations. Batches are
always full (steady shapes: no retracing, no 1-sample BatchNorm batches).

NumPy only (the pipeline also feeds the JAX backend, where TensorFlow may be
absent); augmentation is vectorised over the batch.

Augmentation, per modality, is a whole policy or a combination of operations
named by what they do, as a comma-separated string such as "flip,crop,noise"
(applied in `AUGMENT_OPS` order, each sample with its own draws):
  flip      left-right mirror, p 0.5 (never vertical: that would turn
            gravity-aligned scenes upside down);
  rot90     rotation by k * 90 degrees, k uniform in {0, 1, 2, 3} (only
            {0, 2} for non-square images, whose shape must not change);
  crop      random translation: pad each side by an eighth of the size (at
            least 1 pixel) replicating the edge, then cut back a window of the
            original size at a random offset;
  contrast  per channel, scale the deviation from the sample's mean by a
            factor in [0.8, 1.2];
  noise     add Gaussian noise of 0.05 times the sample's own std (scale-free;
            the only op that also applies to vectors (N, F)).
Whole policies: "flip-rotate" (the released script's flips and rotations),
"flip-rotate-each" (this project's first policy) and "none"; their former names
"released" and "independent" are read as these. Flips and rotations are not the
default for own files: digits, text and gravity-aligned scenes change meaning
under them (a 6 becomes a 9); "crop,contrast" is the safe choice there.

Same seed, same batches: a batch is a pure function of (seed, epoch, step),
never of state that Keras' callbacks change. Keras sees one endless stream
(`fit(..., steps_per_epoch=len(batches), shuffle=False)`) whose item i is the
i-th step after the start set by `set_epoch`, running on into later epochs.
Two things made a seeded run depend on timing before: fit's default
`shuffle=True` let Keras permute the steps of each epoch with Python's global
`random`, which checkpoint writes also draw from (Keras gives each
initializer it deserializes a seed from it), and checkpoints are written
when enough seconds have passed; and the epoch switched in `on_epoch_end`,
which Keras calls once more at the start of every fit, while its worker
threads may already be building the next epoch's batches.
"""

import math
import threading

import keras
import numpy as np

from discomkd_keras.choices import (AUGMENT_OPS, AUGMENT_POLICIES, AUGMENTATIONS,
                                    RENAMED_AUGMENTATIONS, VECTOR_OPS)


def _per_sample(mask):
    return mask[:, None, None, None]


def augment_images(x, rng, policy="flip-rotate"):
    """Flips and multiples of 90-degree rotations of a batch (N, H, W, C).

    `flip-rotate` (the default, the paper's released script): with p = 0.5 a
    sample is transformed; the transform is a horizontal flip (p 0.5), then a
    vertical flip (p 0.5), then, with p 0.5, a rotation by an angle drawn
    from {0, 90, 180, 270}. About 42% of samples change.
    `flip-rotate-each` (this project's first policy): a horizontal flip, a
    vertical flip and a 90-degree rotation, each with p = 0.5 on every
    sample; about 88% change.
    Rotations by 90 and 270 degrees are left out for non-square images,
    where they would change the shape.
    """
    policy = RENAMED_AUGMENTATIONS.get(policy, policy)
    n = len(x)
    square = x.shape[1] == x.shape[2]
    if policy == "flip-rotate-each":
        x = np.where(_per_sample(rng.random(n) < 0.5), x[:, :, ::-1], x)
        x = np.where(_per_sample(rng.random(n) < 0.5), x[:, ::-1], x)
        if square:
            x = np.where(_per_sample(rng.random(n) < 0.5), np.rot90(x, axes=(1, 2)), x)
        return x
    if policy != "flip-rotate":
        raise ValueError(f"Unknown augmentation {policy!r}; expected one of "
                         f"{', '.join(AUGMENT_POLICIES[:2])}.")
    transform = rng.random(n) < 0.5
    h_flip = transform & (rng.random(n) < 0.5)
    v_flip = transform & (rng.random(n) < 0.5)
    quarter_turns = np.where(transform & (rng.random(n) < 0.5), rng.integers(0, 4, n), 0)
    if not square:
        quarter_turns = np.where(quarter_turns == 2, 2, 0)
    x = np.where(_per_sample(h_flip), x[:, :, ::-1], x)
    x = np.where(_per_sample(v_flip), x[:, ::-1], x)
    for k in (1, 2, 3) if square else (2,):
        x = np.where(_per_sample(quarter_turns == k), np.rot90(x, k, axes=(1, 2)), x)
    return x


def parse_augment(text, modality=None):
    """The normalised form of a policy string (see the module docstring).

    A whole policy ("flip-rotate", "flip-rotate-each", "none") is returned as is
    (its former name, "released" or "independent", as the new one);
    ops are de-duplicated and put in `AUGMENT_OPS` order: " crop,flip,crop"
    -> "flip,crop". ValueError (one line, naming the bad word and the valid
    ones) for an empty string, an unknown word, or a whole policy combined
    with anything else.
    """
    return _parse_augment(text, where=f" for {modality!r}" if modality else "")


def _parse_augment(text, where=""):
    valid = ", ".join(AUGMENTATIONS)
    if not isinstance(text, str):
        raise ValueError(f"Augmentation{where} must be a string such as 'flip,crop'; "
                         f"got {text!r}; valid words: {valid}.")
    words = [RENAMED_AUGMENTATIONS.get(w.strip(), w.strip()) for w in text.split(",")]
    if words == [""]:
        raise ValueError(f"Empty augmentation{where}; expected 'none' or one or more of "
                         f"{valid} (ops joined by ',').")
    for w in words:
        if w not in AUGMENTATIONS:
            raise ValueError(f"Unknown augmentation {w!r}{where}; expected one of {valid} "
                             "(ops joined by ',').")
    unique = set(words)
    whole = [w for w in AUGMENT_POLICIES if w in unique]
    if whole and len(unique) > 1:
        raise ValueError(f"Augmentation {whole[0]!r}{where} is a whole policy and cannot be "
                         f"combined with {', '.join(sorted(unique - {whole[0]}))}; use it "
                         f"alone, or combine only the ops {', '.join(AUGMENT_OPS)}.")
    if whole:
        return whole[0]
    return ",".join(op for op in AUGMENT_OPS if op in unique)


def _check_fits(policy, ndim):
    """ValueError when `policy` (normalised) cannot apply to batches of `ndim` axes."""
    if ndim == 4 or policy == "none":
        return
    for word in policy.split(","):
        if word not in VECTOR_OPS:
            raise ValueError(f"Augmentation {word!r} needs images (N, H, W, C); got a batch of "
                             f"{ndim} axes. For vectors only {', '.join(VECTOR_OPS)} applies.")


def augment_batch(x, rng, policy):
    """`x` augmented by `policy` (a string `parse_augment` accepts), drawing from `rng`.

    x: images/spectrograms (N, H, W, C) or vectors (N, F) (vectors: "noise"
    only). The result has x's shape and dtype. "flip-rotate" and "flip-rotate-each"
    are `augment_images`, bit for bit.
    """
    policy = parse_augment(policy)
    x = np.asarray(x)
    _check_fits(policy, x.ndim)
    if policy == "none":
        return x
    if policy in AUGMENT_POLICIES:
        return augment_images(x, rng, policy)
    out = x
    for op in policy.split(","):  # already in AUGMENT_OPS order
        out = _OPS[op](out, rng)
    return out.astype(x.dtype, copy=False)


def _flip(x, rng):
    mirrored = rng.random(len(x)) < 0.5
    return np.where(_per_sample(mirrored), x[:, :, ::-1], x)  # axis 2 is the width


def _rot90(x, rng):
    n = len(x)
    if x.shape[1] == x.shape[2]:
        quarter_turns = rng.integers(0, 4, n)
    else:  # 90 and 270 degrees would swap height and width
        quarter_turns = 2 * rng.integers(0, 2, n)
    out = x.copy()
    for k in (1, 2, 3):
        chosen = quarter_turns == k
        if chosen.any():
            out[chosen] = np.rot90(x[chosen], k, axes=(1, 2))
    return out


def _crop(x, rng):
    n, h, w = x.shape[:3]
    pad_h, pad_w = max(1, round(h / 8)), max(1, round(w / 8))
    padded = np.pad(x, ((0, 0), (pad_h, pad_h), (pad_w, pad_w), (0, 0)), mode="edge")
    top = rng.integers(0, 2 * pad_h + 1, n)
    left = rng.integers(0, 2 * pad_w + 1, n)
    rows = top[:, None] + np.arange(h)  # (N, H): each sample's window rows
    cols = left[:, None] + np.arange(w)
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def _working_dtype(x):
    return np.result_type(x.dtype, np.float32)  # float32 stays float32; integers become float


def _contrast(x, rng):
    dtype = _working_dtype(x)
    # Statistics in float64: the channel mean must survive the scaling exactly.
    mean = x.mean(axis=(1, 2), keepdims=True, dtype=np.float64)
    factor = rng.uniform(0.8, 1.2, (len(x), 1, 1, x.shape[3]))
    return _cast_like(mean + factor * (x - mean), x, dtype)


def _noise(x, rng):
    dtype = _working_dtype(x)
    axes = tuple(range(1, x.ndim))
    scale = 0.05 * x.std(axis=axes, keepdims=True, dtype=np.float64)
    noise = rng.standard_normal(x.shape, dtype=np.float32 if dtype == np.float32 else np.float64)
    return _cast_like(x + scale.astype(dtype) * noise, x, dtype)


def _cast_like(values, x, dtype):
    """`values` in x's dtype (integers rounded and kept in range)."""
    if np.issubdtype(x.dtype, np.integer):
        info = np.iinfo(x.dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(x.dtype)
    return values.astype(dtype, copy=False)


_OPS = {"flip": _flip, "rot90": _rot90, "crop": _crop, "contrast": _contrast, "noise": _noise}
assert tuple(_OPS) == AUGMENT_OPS


class UnpairedBatches(keras.utils.PyDataset):
    """Training batches of a `MultiModalDataset` split, one stream per modality.

    augment: {modality: policy}, a policy being "flip-rotate", "flip-rotate-each",
        "none" or ops such as "flip,crop,noise" (see `parse_augment` and
        `augment_batch`); by default images get `flip-rotate` and
        spectrograms/vectors none.
    """

    def __init__(self, data, batch_size=128, split="train", augment=None, seed=0,
                 epoch=0, share=(0, 1), class_weights=None, **kwargs):
        super().__init__(**kwargs)
        self.modalities = data.modalities
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}.")
        self.seed = int(seed)
        # {modality: weight of each class}: batches then carry per-sample weights, the
        # (x, y, sample_weight) Keras passes to compute_loss.
        self.class_weights = ({m: np.asarray(w, np.float32) for m, w in class_weights.items()}
                              if class_weights else None)
        self.x, self.y = {}, {}
        for m in self.modalities:
            self.x[m], self.y[m] = data.split(m, split)
        default = {m: "flip-rotate" if data.kinds[m] == "image" else "none"
                   for m in self.modalities}
        self.augment = {}
        for m, policy in {**default, **(augment or {})}.items():
            self.augment[m] = parse_augment(policy, m)
            if m in self.x:  # fail here, not in a worker thread mid-epoch
                try:
                    _check_fits(self.augment[m], self.x[m].ndim)
                except ValueError as error:
                    raise ValueError(f"{m!r}: {error}") from None
        self.steps = math.ceil(max(len(v) for v in self.y.values()) / self.batch_size)
        self.share = tuple(int(v) for v in share)  # (process, processes): rows of a batch fed here
        if self.batch_size % self.share[1]:
            raise ValueError(f"batch_size {batch_size} must be a multiple of the {self.share[1]} "
                             "processes that share each batch.")
        self._orders, self._orders_lock = {}, threading.Lock()
        self.set_epoch(epoch)

    def set_epoch(self, epoch, step=0):
        """Item 0 becomes step `step` of `epoch` (0-based); item i the i-th step after it."""
        if not 0 <= step < self.steps:
            raise ValueError(f"step must be in [0, {self.steps}); got {step}.")
        self.epoch, self.start = int(epoch), int(epoch) * self.steps + int(step)

    def order(self, epoch):
        """{modality: the training rows of `epoch`, steps x batch_size of them}."""
        with self._orders_lock:  # worker threads share the two most recent epochs' orders
            if epoch not in self._orders:
                self._orders = {e: o for e, o in self._orders.items() if e == epoch - 1}
                self._orders[epoch] = self._lay_out(epoch)
            return self._orders[epoch]

    def _lay_out(self, epoch):
        order, needed = {}, self.steps * self.batch_size
        for i, m in enumerate(self.modalities):
            n = len(self.y[m])
            rng = np.random.default_rng([self.seed, epoch, i])
            repeats = math.ceil(needed / n)
            order[m] = np.concatenate([rng.permutation(n) for _ in range(repeats)])[:needed]
        return order

    def __len__(self):
        """Steps in an epoch."""
        return self.steps

    @property
    def num_batches(self):
        return None  # endless for Keras: fit takes steps_per_epoch=len(self)

    def __getitem__(self, index):
        epoch, step = divmod(self.start + int(index), self.steps)
        return self.batch(epoch, step)

    def batch(self, epoch, step):
        """(x, y) of step `step` of `epoch`: a function of the seed, epoch and step alone."""
        xs, ys = {}, {}
        order = self.order(epoch)
        for i, m in enumerate(self.modalities):
            rows = order[m][step * self.batch_size:(step + 1) * self.batch_size]
            x = self.x[m][rows]
            if self.augment[m] != "none":
                stream = self._augmentation_stream(i)
                x = augment_batch(x, np.random.default_rng([self.seed, epoch, step, stream, 1]),
                                  self.augment[m])
            xs[m], ys[m] = x, self.y[m][rows]
        part, parts = self.share
        if parts > 1:  # this process's rows of the global batch
            n = self.batch_size // parts
            xs = {m: v[part * n:(part + 1) * n] for m, v in xs.items()}
            ys = {m: v[part * n:(part + 1) * n] for m, v in ys.items()}
        xs = {m: np.ascontiguousarray(v) for m, v in xs.items()}
        if self.class_weights is None:
            return xs, ys
        return xs, ys, {m: self.class_weights[m][v] for m, v in ys.items()}

    def _augmentation_stream(self, modality_index):
        return modality_index  # independent flips per modality


def balanced_class_weights(data, split="train"):
    """{modality: weight per class} with Keras' (and scikit-learn's) "balanced" meaning:
    n / (K * n_c) over the modality's `split` labels, so every class carries the same
    total weight; a class absent from the split gets weight 0 (no sample carries it)."""
    out = {}
    for m in data.modalities:
        _, y = data.split(m, split)
        counts = np.bincount(np.asarray(y, np.int64), minlength=data.num_classes)
        present = counts > 0
        weights = np.zeros(data.num_classes, np.float32)
        weights[present] = len(y) / (present.sum() * counts[present])
        out[m] = weights
    return out


class PairedBatches(UnpairedBatches):
    """Training batches whose row r holds every modality of ONE sample (for a
    multi-modal teacher and its students). One sample order for all
    modalities, and one augmentation draw per row, so images of the same
    shape (RGB and depth) are flipped and rotated together."""

    def __init__(self, data, *args, **kwargs):
        if not data.paired:
            raise ValueError(
                f"{data.name}: the modalities are not paired (their labels or splits differ), "
                "and a multi-modal teacher needs every sample in every modality"
                + (" (AV-MNIST: use --pairing paired)." if data.name.startswith("av-mnist") else "."))
        super().__init__(data, *args, **kwargs)

    def _lay_out(self, epoch):
        first = super()._lay_out(epoch)[self.modalities[0]]
        return {m: first for m in self.modalities}

    def _augmentation_stream(self, modality_index):
        return 0  # one draw per row, shared by every modality
