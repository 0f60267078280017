"""The five DisCoM-KD loss terms (docs/method.md, "Losses"), as pure functions of
the model's outputs. Each term is averaged over the samples of all modalities
in the step; each modality's batch carries its own samples and labels.

Modality targets of L_adv and L_mod:
- `labels` (default, the paper): modality `modalities[i]` has the integer
  label i, and the heads are M-way modality classifiers.
- `released` (the authors' released script, for reproducing its numbers):
  the first modality's rows get an all-ones probability vector and every
  other modality's rows all zeros. PyTorch's cross-entropy reads these as
  class probabilities: -sum_c log p_c for the first modality (minimal at a
  uniform prediction) and exactly 0, with no gradient, for the others.
  The zero rows still count in the mean, as they do in the released script.
"""

from keras import ops

from discomkd_keras.choices import LOSS_TERMS, MODALITY_TARGETS, PERP_MODES  # noqa: F401
from discomkd_keras.choices import TASK_LOSS_ONLY  # noqa: F401  (benchmarks import it here)


def cross_entropy(labels, logits):
    """Per-sample sparse categorical cross-entropy from logits, in float32."""
    logits = ops.cast(logits, "float32")
    labels = ops.cast(labels, "int32")
    return ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)


def cosine_similarity(a, b, eps=1e-12):
    """Per-sample cosine along the last axis.

    Normalising each vector by sqrt(max(|v|^2, eps)) keeps the gradient finite
    for an all-zero vector (a dead ReLU feature), where |v| itself is not
    differentiable.
    """
    a = ops.cast(a, "float32")
    b = ops.cast(b, "float32")
    a = a * ops.rsqrt(ops.maximum(ops.sum(a * a, axis=-1, keepdims=True), eps))
    b = b * ops.rsqrt(ops.maximum(ops.sum(b * b, axis=-1, keepdims=True), eps))
    return ops.sum(a * b, axis=-1)


def perpendicularity(a, b, mode="abs"):
    """Per-sample penalty on the cosine of a and b: `cos`, `|cos|` or `cos^2`.

    With ReLU features (>= 0) all three push towards orthogonality and `abs`
    equals `cos`; `abs` and `square` stay correct for signed features.
    """
    cos = cosine_similarity(a, b)
    if mode == "cos":
        return cos
    if mode == "abs":
        return ops.abs(cos)
    if mode == "square":
        return ops.square(cos)
    raise ValueError(f"Unknown perp mode {mode!r}; expected one of {PERP_MODES}.")


def released_target_cross_entropy(logits, first):
    """Per-sample cross-entropy against the released script's modality targets:
    -sum_c log_softmax(logits)_c where `first` (the first modality), else 0."""
    logits = ops.cast(logits, "float32")
    ce = -ops.sum(ops.log_softmax(logits, axis=-1), axis=-1)
    return ce if first else ops.zeros_like(ce)


def modality_cross_entropy(logits, index, targets="labels"):
    """Per-sample L_adv / L_mod cross-entropy of modality number `index`."""
    if targets == "released":
        return released_target_cross_entropy(logits, index == 0)
    if targets != "labels":
        raise ValueError(f"Unknown modality targets {targets!r}; expected one of {MODALITY_TARGETS}.")
    return cross_entropy(ops.full_like(ops.cast(logits[:, 0], "int32"), index), logits)


def class_weighted(per_sample, sample_weight, modality):
    """Per-sample losses times the sample weights of `modality` (Keras' class_weight
    meaning: the mean over the batch stays a plain mean), or unchanged without weights."""
    if sample_weight is None or sample_weight.get(modality) is None:
        return per_sample
    return per_sample * ops.cast(sample_weight[modality], "float32")


def loss_terms(outputs, labels, modalities, perp_mode="abs", modality_targets="labels",
               sample_weight=None):
    """The unweighted terms {cl, adv, mod, aux, perp} as float32 scalars.

    outputs: {modality: {"z_inv", "z_inf", "z_irr", "logits", "aux_inv",
              "aux_inf", "adv", "mod_inf", "mod_irr"}} from `DisCoMKD`.
    labels:  {modality: integer class labels of that modality's batch}.
    modality_targets: `labels` (modality `modalities[i]` is class i) or
        `released` (see the module docstring).
    sample_weight: None or {modality: per-sample weights} (class weights): they scale
        the class-dependent terms L_cl and L_aux; the modality and orthogonality terms
        do not depend on the class and stay unweighted.

    L_mod is one mean over the rows of both modality heads (D_inf and D_irr),
    so per sample it is the average of the two heads' losses, as released.
    """
    per_sample = {term: [] for term in LOSS_TERMS}
    for index, modality in enumerate(modalities):
        out = outputs[modality]
        y = ops.cast(labels[modality], "int32")
        per_sample["cl"].append(class_weighted(cross_entropy(y, out["logits"]), sample_weight,
                                               modality))
        per_sample["adv"].append(modality_cross_entropy(out["adv"], index, modality_targets))
        per_sample["mod"].append(0.5 * (
            modality_cross_entropy(out["mod_inf"], index, modality_targets)
            + modality_cross_entropy(out["mod_irr"], index, modality_targets)))
        per_sample["aux"].append(class_weighted(
            cross_entropy(y, out["aux_inv"]) + cross_entropy(y, out["aux_inf"]), sample_weight,
            modality))
        per_sample["perp"].append(
            perpendicularity(out["z_inf"], out["z_irr"], perp_mode)
            + perpendicularity(out["z_inf"], out["z_inv"], perp_mode)
        )
    # Concatenate before averaging: every sample of every modality counts once,
    # also when the modalities' batches differ in size.
    return {term: ops.mean(ops.concatenate(values, axis=0))
            for term, values in per_sample.items()}


def total_loss(terms, weights):
    """L = sum of weight * term; a zero weight switches a term off (ablation).

    Zero-weight terms are left out of the sum rather than multiplied by 0, so
    no gradient is computed through them: an ablation or a unimodal twin costs
    what it should, and a NaN in a switched-off term cannot leak in as 0 * NaN.
    """
    used = [t for t in LOSS_TERMS if float(weights[t]) != 0.0]
    if not used:
        raise ValueError("Every loss weight is 0: nothing to train.")
    return sum(float(weights[t]) * terms[t] for t in used)
