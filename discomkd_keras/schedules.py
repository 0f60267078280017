"""Per-batch schedules of a model's non-trainable scalar variables (the GRL's
lambda, DKD's distillation warm-up): a value set between steps, without
retracing the compiled train step, on TensorFlow and on JAX."""

import keras


class VariableSchedule(keras.callbacks.Callback):
    """Sets `variable(model)` to `value_at(step)` before every training batch;
    step counts batches from the start of training (resumed runs included)."""

    def __init__(self, steps_per_epoch=1):
        super().__init__()
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self._epoch = 0
        self._current = None
        self.step_offset = 0  # batches of the first epoch taken before a resumed interruption

    def value_at(self, step):
        raise NotImplementedError

    def variable(self, model):
        raise NotImplementedError

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        value = float(self.value_at(self._epoch * self.steps_per_epoch + self.step_offset + batch))
        if value == self._current:
            return
        # On jax the train loop carries variables as state; write that state
        # back to the variables first so the new value is picked up (and
        # nothing else is lost) at the next step.
        if hasattr(self.model, "jax_state_sync"):
            self.model.jax_state_sync()
        self.variable(self.model).assign(value)
        self._current = value
