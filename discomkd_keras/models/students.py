"""Single-modality students distilled from a frozen multi-modal teacher (the
classic paradigm DisCoM-KD's paper argues against; issue 6's baselines).

Each student is exactly the network DisCoM-KD deploys for its modality (a
DisCoM-KD `ModalityBranch`, "separate" or "shared"), so the comparison is like
for like: the students are per-branch classifiers trained with the task loss
L_cl plus a distillation term towards the teacher's logits; their branches
share nothing and there are no DisCoM-KD heads. The teacher
runs inside the training graph, frozen (BatchNorm in inference mode), on the
very batch the students see, augmentation included: every row of a batch
must hold all modalities of one sample (`PairedBatches`).
"""

import keras

from discomkd_keras.models.branch_classifiers import (BranchClassifiers, architecture_config,
                                                      check_architecture)
from discomkd_keras.models.distillation_losses import dkd_loss, kd_loss, mlkd_loss
from discomkd_keras.models.heads import align_seeds_with_discomkd, check_branch_form
from discomkd_keras.schedules import VariableSchedule
from discomkd_keras.models.teacher import MultimodalTeacher

DISTILLATION_METHODS = ("kd", "kd-mix", "dkd", "mlkd")
# (task-loss weight, distillation weight) of each method: KD as Hinton et al. add it to
# the task loss; "kd-mix" is the common 0.5 / 0.5 mixture.
LOSS_MIX = {"kd": (1.0, 1.0), "kd-mix": (0.5, 0.5), "dkd": (1.0, 1.0), "mlkd": (1.0, 1.0)}
DKD_WARMUP_EPOCHS = 20  # DKD's paper: the distillation weight ramps up linearly over 20 epochs
# DisCoMKD arguments that configs of students saved when they were a DisCoMKD with
# its DisCoM-KD terms off still carry; they mean nothing to students.
DISCOMKD_ONLY_KEYS = ("loss_weights", "perp_mode", "grl_lambda", "modality_targets")


def distillation_loss(method, student_logits, teacher_logits, labels):
    """The method's logit-distillation term with the settings of its paper
    (KD: T = 4; DKD: alpha 1, beta 8, T = 4; MLKD: temperatures 2..6, confidence masking)."""
    if method in ("kd", "kd-mix"):
        return kd_loss(student_logits, teacher_logits, temperature=4.0)
    if method == "dkd":
        return dkd_loss(student_logits, teacher_logits, labels, alpha=1.0, beta=8.0, temperature=4.0)
    if method == "mlkd":
        return mlkd_loss(student_logits, teacher_logits)
    raise ValueError(f"Unknown distillation method {method!r}; expected one of {DISTILLATION_METHODS}.")


@keras.saving.register_keras_serializable(package="discomkd_keras")
class DistilledStudents(BranchClassifiers):
    """One student per modality, all trained at once against one frozen teacher.

    Args:
        input_shapes, num_classes, encoders, feature_dim, conventions: the
            students, as for `DisCoMKD`.
        branch: "separate" (default) or "shared": the students' DisCoM-KD branch.
        method: "kd", "dkd" or "mlkd".
        teacher_encoders, teacher_feature_dim, teacher_conventions: the teacher's architecture
            (`MultimodalTeacher`); its weights come from `load_teacher_weights`
            or, for a saved model, from the file.
        distill_weight: L = a * L_cl + distill_weight * b * w * (mean over
            modalities of the distillation term), (a, b) = LOSS_MIX[method] and
            w the warm-up weight in [0, 1] that `DistillWarmup` sets (1 unless
            a schedule runs; DKD's training uses one).

    Inputs: {modality: batch}, rows paired across modalities.
    `classifier(m)` gives the deployable student of modality m.
    """

    LOGGED_TERMS = ("cl", "distill")

    def __init__(self, input_shapes, num_classes, method="kd", encoders=None, feature_dim=512,
                 branch="separate", conventions="torch", teacher_encoders=None,
                 teacher_feature_dim=512, teacher_conventions="torch", distill_weight=1.0,
                 **kwargs):
        if method not in DISTILLATION_METHODS:
            raise ValueError(f"Unknown distillation method {method!r}; "
                             f"expected one of {DISTILLATION_METHODS}.")
        if not float(distill_weight) >= 0.0:
            raise ValueError(f"distill_weight must be >= 0; got {distill_weight!r}.")
        check_branch_form(branch)
        for key in DISCOMKD_ONLY_KEYS:
            kwargs.pop(key, None)
        teacher = MultimodalTeacher(input_shapes, num_classes, encoders=teacher_encoders,
                                    feature_dim=teacher_feature_dim,
                                    conventions=teacher_conventions, name="teacher")
        teacher.trainable = False  # also puts its BatchNorm layers in inference mode
        shapes, num_classes, encoders = check_architecture(input_shapes, num_classes, encoders,
                                                           feature_dim, conventions)
        align_seeds_with_discomkd(num_classes, len(shapes), feature_dim, conventions)
        kwargs.setdefault("name", "students")
        super().__init__(shapes, num_classes, encoders=encoders, feature_dim=feature_dim,
                         branch=branch, conventions=conventions,
                         extra_outputs=lambda inputs: {"teacher": teacher(inputs)}, **kwargs)
        self.teacher = teacher
        self.method = method
        self.distill_weight = float(distill_weight)
        # The warm-up weight: a variable, so a schedule changes it without retracing.
        self.warmup_weight = self.add_weight(name="warmup_weight", shape=(), initializer="ones",
                                             trainable=False, dtype="float32")

    def load_teacher_weights(self, trained_teacher):
        """Copy a trained `MultimodalTeacher`'s weights into the frozen teacher."""
        if trained_teacher.get_config() | {"name": "teacher", "trainable": False} != \
                self.teacher.get_config() | {"trainable": False}:
            raise ValueError("The trained teacher's architecture differs from this model's teacher.")
        self.teacher.set_weights(trained_teacher.get_weights())

    def loss_terms(self, y, y_pred, sample_weight=None):
        terms = super().loss_terms(y, y_pred, sample_weight)
        teacher_logits = keras.ops.stop_gradient(y_pred["teacher"])
        terms["distill"] = sum(
            distillation_loss(self.method, y_pred[m]["logits"], teacher_logits, y[m])
            for m in self.modalities) / len(self.modalities)
        return terms

    def combine_terms(self, terms):
        task_weight, mix_weight = LOSS_MIX[self.method]
        weight = self.distill_weight * mix_weight * keras.ops.cast(self.warmup_weight, "float32")
        return task_weight * terms["cl"] + weight * terms["distill"]

    def get_config(self):
        config = super().get_config()
        config.update({
            "method": self.method,
            "teacher_encoders": architecture_config(self.teacher)["encoders"],
            "teacher_feature_dim": self.teacher.feature_dim,
            "teacher_conventions": self.teacher.conventions,
            "distill_weight": self.distill_weight,
        })
        return config

    @classmethod
    def from_config(cls, config):
        # Files saved before the conventions option were built with Keras' conventions.
        return cls(**{"conventions": "keras", "teacher_conventions": "keras", **config})


class DistillWarmup(VariableSchedule):
    """The students' warm-up weight: linear from 0 to 1 over `warmup_epochs`
    (DKD's schedule, there over 20 of 240 epochs), counted in batches."""

    def __init__(self, warmup_epochs=DKD_WARMUP_EPOCHS, steps_per_epoch=1):
        super().__init__(steps_per_epoch)
        self.warmup_steps = float(warmup_epochs) * self.steps_per_epoch

    def value_at(self, step):
        return min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps > 0 else 1.0

    def variable(self, model):
        return model.warmup_weight
