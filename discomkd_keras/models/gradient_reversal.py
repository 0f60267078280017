"""Gradient-reversal layer (Ganin & Lempitsky, 2015) and its lambda schedules.

DisCoM-KD puts it between z_inv and the modality discriminator D_adv: the
discriminator learns to recognise the modality while the gradient that reaches
the invariant encoder is reversed, so the encoder learns to hide the modality.
"""

import math

import keras
from keras import ops

from discomkd_keras.choices import GRL_SCHEDULES
from discomkd_keras.schedules import VariableSchedule


@keras.saving.register_keras_serializable(package="discomkd_keras")
class GradientReversal(keras.layers.Layer):
    """Identity in the forward pass; multiplies the gradient by -lambda.

    `y = sg - lambda * (x - sg)` with `sg = stop_gradient(x)`: the forward
    value is exactly `x` (x - sg is exactly 0) and dy/dx is exactly -lambda.
    The algebraically equal `-lambda * x + stop_gradient((1 + lambda) * x)`
    is NOT exact in float32, which is why this form is used.

    lambda lives in a non-trainable weight, so a callback can change it
    during training without retracing the compiled train step.
    """

    def __init__(self, grl_lambda=1.0, **kwargs):
        super().__init__(**kwargs)
        self.initial_lambda = float(grl_lambda)
        self.grl_lambda = self.add_weight(
            name="grl_lambda",
            shape=(),
            initializer=keras.initializers.Constant(self.initial_lambda),
            trainable=False,
            # Always float32, even under a mixed-precision policy.
            dtype="float32",
        )
        self.built = True

    def call(self, inputs):
        held = ops.stop_gradient(inputs)
        scale = ops.cast(self.grl_lambda, inputs.dtype)
        return held - scale * (inputs - held)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["grl_lambda"] = self.initial_lambda
        return config


def dann_lambda(progress, gamma=10.0):
    """The DANN ramp 2 / (1 + exp(-gamma * p)) - 1, from 0 at p=0 towards 1."""
    progress = min(max(float(progress), 0.0), 1.0)
    return 2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0




class GRLScheduler(VariableSchedule):
    """Sets the model's gradient-reversal lambda before every training batch.

    `constant`: lambda = `max_lambda` throughout (the paper: 1.0).
    `dann`: lambda = max_lambda * dann_lambda(p), p = training progress in
    [0, 1] counted in batches over `epochs` epochs of `steps_per_epoch`.
    """

    def __init__(self, schedule="constant", max_lambda=1.0, epochs=1,
                 steps_per_epoch=1, layer_name="gradient_reversal"):
        super().__init__(steps_per_epoch)
        if schedule not in GRL_SCHEDULES:
            raise ValueError(
                f"Unknown GRL schedule {schedule!r}; expected one of {GRL_SCHEDULES}."
            )
        self.schedule = schedule
        self.max_lambda = float(max_lambda)
        self.total_steps = max(1, int(epochs) * self.steps_per_epoch)
        self.layer_name = layer_name

    def value_at(self, step):
        if self.schedule == "constant":
            return self.max_lambda
        return self.max_lambda * dann_lambda(step / self.total_steps)

    def variable(self, model):
        return model.get_layer(self.layer_name).grl_lambda
