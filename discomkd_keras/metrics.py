"""Classification metrics in NumPy: accuracy, weighted F1 (the paper's model
selection criterion) and the confusion matrix."""

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
