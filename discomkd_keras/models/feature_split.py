"""The split of E_spec's features into z_inf and z_irr (docs/method.md, "Architecture")."""

import keras
from keras import layers


@keras.saving.register_keras_serializable(package="discomkd_keras")
class FeatureSplit(layers.Layer):
    """Splits E_spec's D features into (z_inf, z_irr): the first and second half."""

    def call(self, inputs):
        half = inputs.shape[-1] // 2
        return inputs[..., :half], inputs[..., half:]

    def compute_output_shape(self, input_shape):
        half = input_shape[-1] // 2
        shape = tuple(input_shape[:-1]) + (half,)
        return shape, shape
