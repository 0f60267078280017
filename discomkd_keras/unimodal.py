"""The unimodal twins: every modality's DisCoM-KD branch trained alone, with the
task loss only. The baseline that says what DisCoM-KD's cross-modal terms add:
the same deployed networks, the same batches, none of the shared heads.
"""

import keras

from discomkd_keras.branch_classifiers import BranchClassifiers, check_architecture
from discomkd_keras.model import check_discomkd_branch, shared_heads


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
        check_discomkd_branch(branch)
        shapes, num_classes, encoders = check_architecture(input_shapes, num_classes, encoders,
                                                           feature_dim, conventions)
        # DisCoM-KD's heads, made and dropped: they draw their seeds before the branches,
        # so the twin of seed s starts from the very branch weights DisCoM-KD's run of
        # seed s starts from, and the paired comparison differs in the loss alone.
        shared_heads(num_classes, len(shapes), feature_dim, 1.0, conventions)
        kwargs.setdefault("name", "unimodal")
        super().__init__(shapes, num_classes, encoders=encoders, feature_dim=feature_dim,
                         branch=branch, conventions=conventions, **kwargs)
