"""Classification metrics in NumPy: accuracy, weighted F1 (the paper's model
selection criterion), macro F1 (every class present counts the same, so a badly
served rare class shows), per-class scores and the confusion matrix."""

import numpy as np


def confusion_matrix(y_true, y_pred, num_classes):
    """counts[i, j] = samples of true class i predicted as class j."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return counts


def accuracy(y_true, y_pred):
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def weighted_f1(y_true, y_pred, num_classes):
    """Per-class F1 averaged with weights = class support (scikit-learn's
    `average="weighted"`); a class never predicted nor present scores 0."""
    counts = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(counts).astype(float)
    support = counts.sum(axis=1)
    predicted = counts.sum(axis=0)
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float((f1 * support).sum() / max(support.sum(), 1))


def per_class_scores(y_true, y_pred, num_classes):
    """Per-class precision, recall, F1 and support (true samples), each a NumPy array of
    length `num_classes`, index = class. A zero division gives 0 (scikit-learn's
    `zero_division=0`): precision of a class never predicted, recall of a class with no
    true sample, F1 where precision + recall is 0."""
    counts = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(counts).astype(float)
    support = counts.sum(axis=1)
    predicted = counts.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = support + predicted  # 2 tp / (support + predicted) = 2 P R / (P + R)
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def macro_f1(y_true, y_pred, num_classes):
    """Unweighted mean of the per-class F1 over the classes present in y_true
    (scikit-learn's `f1_score(average="macro", labels=<classes in y_true>)`): a class
    absent from y_true is not counted, even where it is predicted (those predictions
    still lower the recall of the samples' true classes); a class's F1 is 0 where its
    precision + recall is 0. 0.0 for an empty y_true."""
    scores = per_class_scores(y_true, y_pred, num_classes)
    present = scores["support"] > 0
    return float(scores["f1"][present].mean()) if present.any() else 0.0
