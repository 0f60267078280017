"""The unimodal twins: every modality's DisCoM-KD branch trained alone, with the
task loss only. The baseline that says what DisCoM-KD's cross-modal terms add:
the same deployed networks, the same batches, none of the shared heads.
"""

import keras

from discomkd_keras.models.branch_classifiers import BranchClassifiers, check_architecture
from discomkd_keras.models.heads import align_seeds_with_discomkd, check_branch_form


@keras.saving.register_keras_serializable(package="discomkd_keras")
class UnimodalClassifiers(BranchClassifiers):
    """{modality: batch} -> {modality: {"z_inv", "z_inf", "z_irr", "logits"}}: one
    DisCoM-KD branch per modality, trained with L_cl alone; the branches share nothing.

    Args:
        input_shapes, num_classes, encoders, feature_dim, conventions: as for
            `DisCoMKD`.
        branch: "separate" (default) or "shared", as for `DisCoMKD`.

    `classifier(m)` is the deployable network of modality m, the same network
    (and parameter count) as DisCoM-KD's of the same branch form.
    """

    def __init__(self, input_shapes, num_classes, encoders=None, feature_dim=512,
                 branch="separate", conventions="torch", **kwargs):
        check_branch_form(branch)
        shapes, num_classes, encoders = check_architecture(input_shapes, num_classes, encoders,
                                                           feature_dim, conventions)
        align_seeds_with_discomkd(num_classes, len(shapes), feature_dim, conventions)
        kwargs.setdefault("name", "unimodal")
        super().__init__(shapes, num_classes, encoders=encoders, feature_dim=feature_dim,
                         branch=branch, conventions=conventions, **kwargs)
