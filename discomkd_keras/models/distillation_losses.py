"""Logit-distillation losses of the teacher + student baselines (issue 6), as
pure functions of batches of logits, in keras.ops.

- KD   (Hinton et al., 2015): T^2 * KL(p_t^T || p_s^T).
- DKD  (Zhao et al., CVPR 2022): KD split into target-class (TCKD) and
       non-target-class (NCKD) parts, weighted alpha * TCKD + beta * NCKD.
- MLKD (Jin et al., CVPR 2023): multi-level logit distillation. Prediction
       augmentation: every term is summed over the temperatures 2..6.
       Levels: instance (KD), batch (B x B prediction similarity) and class
       (K x K class correlation). Confidence masking: the instance and batch
       terms count only the samples whose teacher confidence (top-1
       probability at T = 1) is at most the batch median, the class term only
       the classes whose summed teacher probability is at most the median
       over classes, which is the direction the authors' released code takes.
       (Their second, strongly augmented input view is not reproduced: it is
       input augmentation, outside the loss.)
All return a scalar averaged over the batch, in float32.
"""

from keras import ops

MLKD_TEMPERATURES = (2.0, 3.0, 4.0, 5.0, 6.0)


def _f32(x):
    return ops.cast(x, "float32")


def _kl_rows(p_teacher, log_p_student, eps=1e-12):
    """Per-sample KL(p_teacher || p_student) from teacher probabilities and student log-probs."""
    return ops.sum(p_teacher * (ops.log(ops.maximum(p_teacher, eps)) - log_p_student), axis=-1)


def kd_loss(student_logits, teacher_logits, temperature=4.0):
    t = float(temperature)
    p_t = ops.softmax(_f32(teacher_logits) / t, axis=-1)
    log_p_s = ops.log_softmax(_f32(student_logits) / t, axis=-1)
    return ops.mean(_kl_rows(p_t, log_p_s)) * t * t


def dkd_loss(student_logits, teacher_logits, labels, alpha=1.0, beta=8.0, temperature=4.0):
    t = float(temperature)
    s, te = _f32(student_logits), _f32(teacher_logits)
    gt = ops.one_hot(ops.cast(labels, "int32"), ops.shape(s)[-1], dtype="float32")
    p_s, p_t = ops.softmax(s / t, axis=-1), ops.softmax(te / t, axis=-1)
    # Target-class KD: the binary distribution (p_gt, 1 - p_gt).
    b_s = ops.stack([ops.sum(p_s * gt, -1), ops.sum(p_s * (1 - gt), -1)], axis=-1)
    b_t = ops.stack([ops.sum(p_t * gt, -1), ops.sum(p_t * (1 - gt), -1)], axis=-1)
    tckd = _kl_rows(b_t, ops.log(ops.maximum(b_s, 1e-12)))
    # Non-target-class KD: the distribution over the other classes, target masked out.
    mask = 1000.0 * gt
    p_t_nt = ops.softmax(te / t - mask, axis=-1)
    log_p_s_nt = ops.log_softmax(s / t - mask, axis=-1)
    nckd = _kl_rows(p_t_nt, log_p_s_nt)
    return ops.mean(alpha * tckd + beta * nckd) * t * t


def _at_most_median(values):
    """1.0 where a value is at most the median of `values` (1-D), else 0.0."""
    return ops.cast(values <= ops.median(values), "float32")


def mlkd_loss(student_logits, teacher_logits, temperatures=MLKD_TEMPERATURES, masking=True):
    s, te = _f32(student_logits), _f32(teacher_logits)
    batch = ops.cast(ops.shape(s)[0], "float32")
    classes = ops.cast(ops.shape(s)[-1], "float32")
    confident = ops.softmax(te, axis=-1)
    if masking:
        rows = _at_most_median(ops.max(confident, axis=-1))               # (B,)
        cols = _at_most_median(ops.sum(confident, axis=0))                # (K,)
    else:
        rows, cols = ops.ones_like(confident[:, 0]), ops.ones_like(confident[0])
    pair_rows, pair_cols = rows[:, None] * rows[None, :], cols[:, None] * cols[None, :]
    total = 0.0
    for t in temperatures:
        t = float(t)
        p_s, p_t = ops.softmax(s / t, axis=-1), ops.softmax(te / t, axis=-1)
        kl = _kl_rows(p_t, ops.log_softmax(s / t, axis=-1))
        instance = ops.sum(rows * kl) / ops.maximum(ops.sum(rows), 1.0) * t * t
        batch_gap = p_t @ ops.transpose(p_t) - p_s @ ops.transpose(p_s)
        class_gap = ops.transpose(p_t) @ p_t - ops.transpose(p_s) @ p_s
        batch_level = ops.sum(pair_rows * ops.square(batch_gap)) / batch
        class_level = ops.sum(pair_cols * ops.square(class_gap)) / classes
        total = total + instance + batch_level + class_level
    return total
