"""The paper's single-modality baseline: per modality, one encoder and a linear
head, trained with the task loss alone. Half the deployed size of a DisCoM-KD
branch (which has two encoders and a projection), so a user can weigh the
accuracy DisCoM-KD adds against its device cost. All modalities train in one
run on unpaired batches; their branches share nothing.
"""

import keras

from discomkd_keras.models.branch_classifiers import BranchClassifiers


@keras.saving.register_keras_serializable(package="discomkd_keras")
class SingleEncoderClassifiers(BranchClassifiers):
    """{modality: batch} -> {modality: {"logits": (B, K)}}, one encoder + linear head each
    (`ModalityBranch` of the "single" form).

    Args:
        input_shapes, num_classes, encoders, feature_dim, conventions: as for
            `DisCoMKD` (each encoder maps to D features).

    `classifier(m)` is the deployable network of modality m.
    """

    def __init__(self, input_shapes, num_classes, encoders=None, feature_dim=512,
                 conventions="torch", **kwargs):
        kwargs.setdefault("name", "single_encoder")
        super().__init__(input_shapes, num_classes, encoders=encoders, feature_dim=feature_dim,
                         branch="single", conventions=conventions, **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["branch"]  # always "single"
        return config
