"""Training batches: unpaired (one shuffled, augmented stream per modality,
DisCoM-KD's setting) or paired (`PairedBatches`, one stream of multi-modal
rows, for a teacher and its students).

Each step yields x = {modality: batch}, y = {modality: labels}; modality m's
batch holds its own samples. An epoch is one pass over the largest modality's
training set; smaller modalities cycle through fresh permutations. Batches are
always full (steady shapes: no retracing, no 1-sample BatchNorm batches).

NumPy only (the pipeline also feeds the JAX backend, where TensorFlow may be
absent); augmentation is vectorised over the batch.

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

AUGMENTATIONS = ("released", "independent", "none")


def _per_sample(mask):
    return mask[:, None, None, None]


def augment_images(x, rng, policy="released"):
    """Flips and multiples of 90-degree rotations of a batch (N, H, W, C).

    `released` (the default, the paper's released script): with p = 0.5 a
    sample is transformed; the transform is a horizontal flip (p 0.5), then a
    vertical flip (p 0.5), then, with p 0.5, a rotation by an angle drawn
    from {0, 90, 180, 270}. About 42% of samples change.
    `independent` (this project's first policy): a horizontal flip, a
    vertical flip and a 90-degree rotation, each with p = 0.5 on every
    sample; about 88% change.
    Rotations by 90 and 270 degrees are left out for non-square images,
    where they would change the shape.
    """
    n = len(x)
    square = x.shape[1] == x.shape[2]
    if policy == "independent":
        x = np.where(_per_sample(rng.random(n) < 0.5), x[:, :, ::-1], x)
        x = np.where(_per_sample(rng.random(n) < 0.5), x[:, ::-1], x)
        if square:
            x = np.where(_per_sample(rng.random(n) < 0.5), np.rot90(x, axes=(1, 2)), x)
        return x
    if policy != "released":
        raise ValueError(f"Unknown augmentation {policy!r}; expected one of {AUGMENTATIONS}.")
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


class UnpairedBatches(keras.utils.PyDataset):
    """Training batches of a `MultiModalDataset` split, one stream per modality.

    augment: {modality: "released" | "independent" | "none"} (see
        `augment_images`); by default images get `released` and
        spectrograms/vectors none.
    """

    def __init__(self, data, batch_size=128, split="train", augment=None, seed=0,
                 epoch=0, share=(0, 1), **kwargs):
        super().__init__(**kwargs)
        self.modalities = data.modalities
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}.")
        self.seed = int(seed)
        self.x, self.y = {}, {}
        for m in self.modalities:
            self.x[m], self.y[m] = data.split(m, split)
        default = {m: "released" if data.kinds[m] == "image" else "none" for m in self.modalities}
        self.augment = {**default, **(augment or {})}
        for m, a in self.augment.items():
            if a not in AUGMENTATIONS:
                raise ValueError(f"Unknown augmentation {a!r} for {m!r}; expected {AUGMENTATIONS}.")
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
                x = augment_images(x, np.random.default_rng([self.seed, epoch, step, stream, 1]),
                                   self.augment[m])
            xs[m], ys[m] = x, self.y[m][rows]
        part, parts = self.share
        if parts > 1:  # this process's rows of the global batch
            n = self.batch_size // parts
            xs = {m: v[part * n:(part + 1) * n] for m, v in xs.items()}
            ys = {m: v[part * n:(part + 1) * n] for m, v in ys.items()}
        return {m: np.ascontiguousarray(v) for m, v in xs.items()}, ys

    def _augmentation_stream(self, modality_index):
        return modality_index  # independent flips per modality


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
