"""The DisCoM-KD training model for M >= 2 modalities (docs/method.md, "Architecture").

One functional Keras model holds, for every modality m, a `ModalityBranch`
(E_inv[m] and E_spec[m], or one shared backbone, giving z_inv[m], z_inf[m],
z_irr[m] and the task head C[m]) and, shared by all modalities, C_aux, D_inf,
D_irr and D_adv behind a gradient-reversal layer. The loss is computed in
`compute_loss`, the backend-agnostic Keras hook, so `model.fit` trains it on
TensorFlow and on JAX alike.
"""

import keras

from discomkd_keras.models import losses
from discomkd_keras.models.branch_classifiers import BranchClassifiers, check_architecture
from discomkd_keras.models.feature_split import FeatureSplit  # noqa: F401  (its former home)
from discomkd_keras.models.heads import (HEADS_OF_TERM, check_branch_form,  # noqa: F401
                                         shared_heads)
from discomkd_keras.models.losses import LOSS_TERMS, MODALITY_TARGETS, PERP_MODES

OUTPUT_KEYS = ("z_inv", "z_inf", "z_irr", "logits", "aux_inv", "aux_inf",
               "adv", "mod_inf", "mod_irr")


def check_model_arguments(input_shapes, num_classes, encoders=None, feature_dim=512,
                          loss_weights=None, perp_mode="abs", modality_targets="labels",
                          conventions="torch", branch="separate"):
    """Normalise DisCoMKD's arguments: (shapes, num_classes, encoders, loss weights);
    raise ValueError naming any problem."""
    shapes, num_classes, encoders = check_architecture(input_shapes, num_classes, encoders,
                                                       feature_dim, conventions)
    weights = {term: 1.0 for term in LOSS_TERMS}
    for term, value in (loss_weights or {}).items():
        if term not in weights:
            raise ValueError(f"Unknown loss term {term!r}; expected one of {LOSS_TERMS}.")
        if not float(value) >= 0.0:
            raise ValueError(f"Loss weight {term}={value!r} must be a number >= 0.")
        weights[term] = float(value)
    if not any(weights.values()):
        raise ValueError("Every loss weight is 0: nothing to train.")
    if perp_mode not in PERP_MODES:
        raise ValueError(f"Unknown perp mode {perp_mode!r}; expected one of {PERP_MODES}.")
    if modality_targets not in MODALITY_TARGETS:
        raise ValueError(f"Unknown modality targets {modality_targets!r}; "
                         f"expected one of {MODALITY_TARGETS}.")
    check_branch_form(branch)
    return shapes, num_classes, encoders, weights


@keras.saving.register_keras_serializable(package="discomkd_keras")
class DisCoMKD(BranchClassifiers):
    """Multi-branch DisCoM-KD model.

    Args:
        input_shapes: {modality: shape}, in modality-index order: modality i
            has modality label i. Images are (H, W, C) channels-last,
            vectors (F,).
        num_classes: K, shared by all modalities (an int, or a dict of
            per-modality counts that must agree).
        encoders: a family name for all modalities or {modality: family};
            default resnet18 for images, mlp for vectors.
        feature_dim: D, even; z_inv, z_inf and z_irr each have D/2 features.
        loss_weights: {cl, adv, mod, aux, perp} -> weight (default 1 each;
            0 switches a term off).
        perp_mode: `abs` (default), `cos` or `square`: how L_perp penalises
            the cosine.
        grl_lambda: the initial gradient-reversal lambda.
        modality_targets: `labels` (default, the paper: integer modality
            labels, M-way heads) or `released` (the released script's
            all-ones / all-zeros probability targets; see `losses.py`).
        conventions: `torch` (default: the released script's PyTorch
            initialisation, BatchNorm epsilon and padding) or `keras`.
        branch: `separate` (default, the paper: E_inv and E_spec per modality)
            or `shared` (one backbone per modality, z_inv, z_inf and z_irr
            three projections of it; the deployed classifier holds one
            backbone). See `modality_branch`.

    Inputs: {modality: batch}; the batches are independent (unpaired).
    Outputs: {modality: {key: tensor}} with keys `OUTPUT_KEYS`.
    Train with `fit(x={m: x_m}, y={m: y_m})`; `classifier(m)` is the deployable
    network of modality m.
    """

    LOGGED_TERMS = LOSS_TERMS

    def __init__(self, input_shapes, num_classes, encoders=None, feature_dim=512,
                 loss_weights=None, perp_mode="abs", grl_lambda=1.0, modality_targets="labels",
                 conventions="torch", branch="separate", **kwargs):
        shapes, num_classes, encoders, weights = check_model_arguments(
            input_shapes, num_classes, encoders, feature_dim, loss_weights, perp_mode,
            modality_targets, conventions, branch)
        heads = shared_heads(num_classes, len(shapes), feature_dim, grl_lambda, conventions)

        def head_outputs(modality, z):
            return {
                "aux_inv": heads["aux_classifier"](z["z_inv"]),
                "aux_inf": heads["aux_classifier"](z["z_inf"]),
                "adv": heads["adv_discriminator"](heads["gradient_reversal"](z["z_inv"])),
                "mod_inf": heads["inf_discriminator"](z["z_inf"]),
                "mod_irr": heads["irr_discriminator"](z["z_irr"]),
            }

        kwargs.setdefault("name", "discomkd")
        super().__init__(shapes, num_classes, encoders=encoders, feature_dim=feature_dim,
                         branch=branch, conventions=conventions, head_outputs=head_outputs,
                         z_irr_in_loss=bool(weights["mod"] or weights["perp"]), **kwargs)
        # A head whose only loss term is switched off gets no gradient: freeze
        # it, so the optimizer neither warns about it nor keeps state for it.
        for term, names in HEADS_OF_TERM.items():
            if weights[term] == 0.0:
                for name in names:
                    heads[name].trainable = False

        self.loss_weights = weights
        self.perp_mode = perp_mode
        self.modality_targets = modality_targets
        self.initial_grl_lambda = float(grl_lambda)

    def loss_terms(self, y, y_pred, sample_weight=None):
        return losses.loss_terms(y_pred, y, self.modalities, self.perp_mode,
                                 self.modality_targets, sample_weight)

    def combine_terms(self, terms):
        return losses.total_loss(terms, self.loss_weights)

    def get_config(self):
        return dict(super().get_config(), loss_weights=dict(self.loss_weights),
                    perp_mode=self.perp_mode, grl_lambda=self.initial_grl_lambda,
                    modality_targets=self.modality_targets)
