"""The paper's single-modality baseline: per modality, one encoder and a linear
head, trained with the task loss alone. Half the deployed size of a DisCoM-KD
branch (which has two encoders and a projection), so a user can weigh the
accuracy DisCoM-KD adds against its device cost. All modalities train in one
run on unpaired batches; their branches share nothing.
"""

import keras

from discomkd_keras.encoders import Conventions, build_encoder
from discomkd_keras.losses import cross_entropy


@keras.saving.register_keras_serializable(package="discomkd_keras")
class SingleEncoderClassifiers(keras.Model):
    """{modality: batch} -> {modality: {"logits": (B, K)}}, one encoder + linear head each.

    Args:
        input_shapes, num_classes, encoders, feature_dim, conventions: as for
            `DisCoMKD` (each encoder maps to D features).

    `classifier(m)` is the deployable network of modality m.
    """

    def __init__(self, input_shapes, num_classes, encoders=None, feature_dim=512,
                 conventions="torch", **kwargs):
        from discomkd_keras.model import check_model_arguments, set_architecture

        shapes, num_classes, encoders, _ = check_model_arguments(
            input_shapes, num_classes, encoders, feature_dim, conventions=conventions)
        conv = Conventions(conventions)
        inputs, outputs = {}, {}
        for m, shape in shapes.items():
            inputs[m] = keras.Input(shape=shape, name=m)
            features = build_encoder(encoders[m], shape, feature_dim, f"{m}_encoder",
                                     conventions)(inputs[m])
            outputs[m] = {"logits": conv.dense(features, num_classes, f"{m}_classifier")}
        kwargs.setdefault("name", "single_encoder")
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        set_architecture(self, shapes, num_classes, encoders, feature_dim, conventions)
        self.accuracy_trackers = [keras.metrics.SparseCategoricalAccuracy(name=f"{m}_acc")
                                  for m in self.modalities]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        from discomkd_keras.model import _scale_for_replicas

        if y is None:
            raise ValueError("The single-encoder baseline needs labels: y = {modality: labels}.")
        # One mean over every sample of every modality, as DisCoM-KD's L_cl.
        loss = keras.ops.mean(keras.ops.concatenate(
            [cross_entropy(y[m], y_pred[m]["logits"]) for m in self.modalities], axis=0))
        for extra in self.losses:
            loss = loss + keras.ops.cast(keras.ops.sum(extra), "float32")
        return _scale_for_replicas(loss)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        for m, tracker in zip(self.modalities, self.accuracy_trackers):
            tracker.update_state(y[m], y_pred[m]["logits"])
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def classifier(self, modality, probabilities=False):
        """The standalone classifier of one modality (shares this model's weights)."""
        if modality not in self.input_shapes:
            raise ValueError(f"Unknown modality {modality!r}; this model has {self.modalities}.")
        x = keras.Input(shape=self.input_shapes[modality], name=modality)
        out = self.get_layer(f"{modality}_classifier")(self.get_layer(f"{modality}_encoder")(x))
        if probabilities:
            out = keras.layers.Softmax(name="probabilities", dtype="float32")(out)
        return keras.Model(x, out, name=f"{modality}_classifier")

    def get_config(self):
        from discomkd_keras.model import architecture_config
        return architecture_config(self)

    @classmethod
    def from_config(cls, config):
        return cls(**config)
