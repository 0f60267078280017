"""The learning rate of a run as a function of the optimizer's step: an optional
linear warm-up, then constant or a cosine decay to zero over the run's epochs.

A Keras `LearningRateSchedule` reads `optimizer.iterations`, which a `.keras`
checkpoint saves with the optimizer, so a resumed run continues the curve at
the exact step it stopped (tests/test_training_options.py).
"""

import math

import keras

from discomkd_keras.choices import SCHEDULES


@keras.saving.register_keras_serializable(package="discomkd_keras")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """lr(step), step = 0, 1, ... the optimizer's update count:

    - warm-up, step < warmup_steps: peak * (step + 1) / warmup_steps (the first
      update already moves, the last warm-up update uses the peak);
    - then `decay` "constant": peak; "cosine": peak * (1 + cos(pi * t)) / 2 with
      t = (step - warmup_steps) / (total_steps - warmup_steps), clipped to [0, 1],
      so the last planned step trains at (almost) zero.
    """

    def __init__(self, peak, total_steps, warmup_steps=0, decay="constant"):
        if decay not in SCHEDULES:
            raise ValueError(f"Unknown schedule {decay!r}; expected one of {SCHEDULES}.")
        self.peak = float(peak)
        self.total_steps = max(1, int(total_steps))
        self.warmup_steps = max(0, int(warmup_steps))
        self.decay = decay

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        lr = keras.ops.full_like(step, self.peak)
        if self.decay == "cosine":
            span = max(1, self.total_steps - self.warmup_steps)
            t = keras.ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
            lr = self.peak * 0.5 * (1.0 + keras.ops.cos(math.pi * t))
        if self.warmup_steps:
            ramp = self.peak * (step + 1.0) / self.warmup_steps
            lr = keras.ops.where(step < self.warmup_steps, ramp, lr)
        return lr

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "decay": self.decay}


def make_learning_rate(config, steps_per_epoch):
    """The run's learning rate for the optimizer: a plain float for a constant rate
    with no warm-up (exactly today's Adam, so seeded runs of the paper's protocol keep
    their numbers), else a WarmupSchedule over the run's epoch ceiling."""
    peak = float(config["learning_rate"])
    decay = config.get("schedule", "constant")
    warmup = int(round(float(config.get("warmup_epochs", 0) or 0) * steps_per_epoch))
    if decay == "constant" and warmup == 0:
        return peak
    return WarmupSchedule(peak, config["epochs"] * steps_per_epoch, warmup, decay)
