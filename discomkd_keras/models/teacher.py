"""The multi-modal teacher of the classic teacher + student baselines (issue 6).

One encoder per modality, the D-dimensional embeddings summed, one linear
head: the teacher DisCoM-KD's paper compares against. It needs paired data
(every row holds all modalities of one sample) and cannot be deployed on a
single-modality device; its only use is to be distilled into students
(`students.DistilledStudents`).
"""

import keras
from keras import layers

from discomkd_keras.models.branch_classifiers import (architecture_config, check_architecture,
                                                      replica_loss, set_architecture)
from discomkd_keras.models.encoders import Conventions, build_encoder
from discomkd_keras.models.losses import cross_entropy


@keras.saving.register_keras_serializable(package="discomkd_keras")
class MultimodalTeacher(keras.Model):
    """{modality: batch} of PAIRED rows -> class logits.

    Args:
        input_shapes: {modality: shape}, as for `DisCoMKD`.
        num_classes: K.
        encoders: a family name for all modalities or {modality: family}
            (default resnet18 for images, mlp for vectors).
        feature_dim: D of every encoder's embedding.
        conventions: "torch" (default) or "keras", as for `DisCoMKD`.

    Train with `fit(x={m: x_m}, y={m: labels})`; the labels of a paired row
    are the same in every modality, so the first modality's are used.
    """

    def __init__(self, input_shapes, num_classes, encoders=None, feature_dim=512,
                 conventions="torch", **kwargs):
        shapes, num_classes, encoders = check_architecture(input_shapes, num_classes, encoders,
                                                           feature_dim, conventions)
        inputs = {m: keras.Input(shape=shapes[m], name=m) for m in shapes}
        embeddings = [build_encoder(encoders[m], shapes[m], feature_dim, f"{m}_teacher_encoder",
                                    conventions)(x)
                      for m, x in inputs.items()]
        joint = layers.Add(name="teacher_sum")(embeddings)
        logits = Conventions(conventions).dense(joint, num_classes, "teacher_classifier")
        kwargs.setdefault("name", "teacher")
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        set_architecture(self, shapes, num_classes, encoders, feature_dim, conventions)
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="teacher_acc")

    def _labels(self, y):
        return y[self.modalities[0]] if isinstance(y, dict) else y

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y is None:
            raise ValueError("The teacher needs labels: y = {modality: class labels}.")
        per_sample = cross_entropy(self._labels(y), y_pred)
        if isinstance(sample_weight, dict):  # class weights: paired rows, one label per row
            per_sample = per_sample * keras.ops.cast(sample_weight[self.modalities[0]], "float32")
        return replica_loss(self, keras.ops.mean(per_sample))

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        self.accuracy_tracker.update_state(self._labels(y), y_pred)
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def get_config(self):
        return architecture_config(self)

    @classmethod
    def from_config(cls, config):
        return cls(**{"conventions": "keras", **config})  # older files: Keras' conventions
