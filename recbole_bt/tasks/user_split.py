"""Which users train, select and test a downstream user task, and which training users keep their label.

`split_users`: train / valid / test users, stratified by class (each class cut in the same proportions) when
labels are given, seeded. `labelled_subset`: a fraction ``label_ratio`` of the training users keeps its label,
stratified the same way (at least one user of every class that has training users; none at ratio 0), seeded; the
subsets of one seed are nested (the users of ratio 0.01 are among those of 0.1), so a curve over ratios adds labels
and changes nothing else. Both draw from ``numpy.random.default_rng(seed)`` only: the same seed gives the same users
for every compared model.
"""
import numpy as np

from recbole_bt.errors import ConfigError


def check_ratios(split):
    """`user_split`: three fractions > 0 (train, valid, test) summing to 1, else a ConfigError naming the key."""
    if (not isinstance(split, (list, tuple)) or len(split) != 3
            or not all(isinstance(r, (int, float)) and not isinstance(r, bool) and r > 0 for r in split)
            or abs(sum(split) - 1) > 1e-6):  # fmt: skip
        raise ConfigError(f"'user_split' must be three fractions > 0 (train, valid, test) summing to 1, got {split!r}")


def check_label_ratio(ratio):
    """A fraction in [0, 1]; 0 is no labelled user (the head as it starts: next_item's zero-shot score)."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1:
        raise ConfigError(f"each of 'label_ratios' must be a fraction in [0, 1] (0: no labelled user), got {ratio!r}")


def _groups(n, labels):
    """Index arrays of the users of each class (one group of all users when labels is None)."""
    if labels is None:
        return [np.arange(n)]
    labels = np.asarray(labels)
    return [np.flatnonzero(labels == c) for c in np.unique(labels)]


def split_users(n, ratios, seed, labels=None):
    """Split users 0..n-1 into (train, valid, test) index arrays by `ratios`, within each class of `labels`.

    Each class is shuffled and cut at round(cumulative ratio * class size), so every class is split in the same
    proportions (up to one user); the result is sorted.
    """
    check_ratios(ratios)
    rng = np.random.default_rng(seed)
    parts = ([], [], [])
    for group in _groups(n, labels):
        group = rng.permutation(group)
        cuts = np.rint(np.cumsum(ratios)[:2] * len(group)).astype(int)
        for part, chunk in zip(parts, np.split(group, cuts)):
            part.append(chunk)
    return tuple(np.sort(np.concatenate(part)).astype(np.int64) for part in parts)


def labelled_subset(train, ratio, seed, labels=None):
    """The training users (a subset of `train`) that keep their label: max(1, round(ratio * size)) of each class
    (of all of `train` when labels is None), drawn by one seeded permutation per class, so nested across ratios."""
    check_label_ratio(ratio)
    train = np.asarray(train)
    if ratio == 0:
        return train[:0]
    rng = np.random.default_rng([seed, 1])  # a stream of its own: independent of split_users' draws
    chosen = []
    for group in _groups(len(train), None if labels is None else np.asarray(labels)[train]):
        if len(group):
            order = rng.permutation(group)
            chosen.append(order[: max(1, int(round(ratio * len(group))))])
    return np.sort(train[np.concatenate(chosen)])
