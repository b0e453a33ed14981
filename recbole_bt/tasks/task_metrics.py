"""Metrics of the downstream user tasks, as plain functions of numpy arrays (hand-checked in tests/test_tasks.py).

Attributes: `accuracy` and `macro_f1` (the mean F1 over the classes that occur in the truth or the predictions,
as scikit-learn's default). Next item: `ndcg_at_k` and `hit_at_k` of one target per user in full-ranking scores,
RecBole's convention (rank = 1 + the number of items scored strictly higher; NDCG = 1 / log2(rank + 1)).
"""
import numpy as np


def accuracy(y_true, y_pred):
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def macro_f1(y_true, y_pred):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    scores = []
    for c in np.union1d(y_true, y_pred):
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def target_ranks(scores, targets):
    """1-based rank of each row's target among its scores [U N]; a non-finite score is an error, never a rank."""
    scores, targets = np.asarray(scores), np.asarray(targets)
    target_scores = scores[np.arange(len(targets)), targets]
    if not np.all(np.isfinite(target_scores)):
        raise ValueError("non-finite score for a next-item target: the model's user representation has NaN or inf")
    return 1 + np.sum(scores > target_scores[:, None], axis=1)


def hit_at_k(ranks, k):
    return float(np.mean(np.asarray(ranks) <= k))


def ndcg_at_k(ranks, k):
    ranks = np.asarray(ranks, dtype=np.float64)
    return float(np.mean(np.where(ranks <= k, 1 / np.log2(ranks + 1), 0.0)))
