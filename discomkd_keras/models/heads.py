"""DisCoM-KD's heads shared by all modalities (docs/method.md, "Architecture"): the
auxiliary classifier C_aux, the modality discriminators D_inf and D_irr, and the
adversary D_adv behind the gradient-reversal layer."""

from discomkd_keras.choices import DISCOMKD_BRANCH_FORMS
from discomkd_keras.models.encoders import Conventions
from discomkd_keras.models.gradient_reversal import GradientReversal

# The heads a loss term trains: with its weight 0 they get no gradient and are frozen.
HEADS_OF_TERM = {"adv": ("adv_discriminator",), "mod": ("inf_discriminator", "irr_discriminator"),
                 "aux": ("aux_classifier",)}


def check_branch_form(branch):
    """Raise ValueError unless `branch` is a branch form DisCoM-KD's architecture takes."""
    if branch not in DISCOMKD_BRANCH_FORMS:
        raise ValueError(f"Unknown branch form {branch!r}; expected one of "
                         f"{DISCOMKD_BRANCH_FORMS}.")


def shared_heads(num_classes, num_modalities, feature_dim, grl_lambda, conventions):
    """DisCoM-KD's heads shared by all modalities: {name: layer}, in the order they
    are created (before the branches: a seeded model draws its weights in that order)."""
    conv = Conventions(conventions)
    half = feature_dim // 2
    return {
        "aux_classifier": conv.dense_layer(half, num_classes, "aux_classifier"),
        "inf_discriminator": conv.dense_layer(half, num_modalities, "inf_discriminator"),
        "irr_discriminator": conv.dense_layer(half, num_modalities, "irr_discriminator"),
        "gradient_reversal": GradientReversal(grl_lambda, name="gradient_reversal"),
        "adv_discriminator": conv.dense_layer(half, num_modalities, "adv_discriminator"),
    }


def align_seeds_with_discomkd(num_classes, num_modalities, feature_dim, conventions):
    """Make DisCoM-KD's shared heads and drop them. They draw their initial weights
    before the branches do, so a model that calls this before building its branches
    (the unimodal twins, the distilled students) starts seed s from the very branch
    weights DisCoM-KD's run of seed s starts from: a paired comparison then differs in
    the loss alone."""
    shared_heads(num_classes, num_modalities, feature_dim, 1.0, conventions)
