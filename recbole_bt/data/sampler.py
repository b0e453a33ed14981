"""The same-target sampler: for each training row, another training row with the same target.

BTSRec's "supervised augmentation" and DuoRec's supervised positive view (SPEC sections 1 and 4): the positive of
a sequence whose next item is t is another training sequence whose next item is also t, drawn uniformly and
redrawn every batch. Rows are grouped by target once per dataset (sort by target, CSR offsets); a draw is then a
few array lookups per row, O(1), with no Python loop. The anchor row itself is never drawn unless its target is
unique, in which case the row is its own partner (the pair then differs only through dropout).
"""
import numpy as np


class SameTargetSampler:
    """Partners with the same target, for the rows of one training dataset.

    Args:
        targets (array-like of int): the target of each training row (row i's target is ``targets[i]``).
    """

    def __init__(self, targets):
        targets = np.asarray(targets, dtype=np.int64)
        if targets.ndim != 1 or (len(targets) and targets.min() < 0):
            raise ValueError("targets must be a 1-D array of non-negative item ids")
        self.targets = targets
        self.order = np.argsort(targets, kind="stable")  # row ids grouped by target
        self.counts = np.bincount(targets, minlength=1)  # rows per target
        self.offsets = np.r_[0, np.cumsum(self.counts)]  # group of target t: order[offsets[t]:offsets[t + 1]]
        self.rank = np.empty(len(targets), dtype=np.int64)  # each row's position inside its group
        self.rank[self.order] = np.arange(len(targets)) - self.offsets[targets[self.order]]

    def __len__(self):
        return len(self.targets)

    @property
    def n_unique_rows(self):
        """Rows whose target no other row has: they are their own partner."""
        return int((self.counts[self.targets] == 1).sum())

    def candidates(self, row):
        """The rows a draw for `row` picks from, uniformly (for tests and inspection)."""
        group = self.order[self.offsets[self.targets[row]]:self.offsets[self.targets[row] + 1]]
        return group[group != row] if len(group) > 1 else group

    def sample(self, index, rng):
        """A partner row for each row in `index` (array of row ids), drawn with `rng` (a numpy Generator)."""
        index = np.asarray(index, dtype=np.int64)
        target = self.targets[index]
        count, rank = self.counts[target], self.rank[index]
        others = np.maximum(count - 1, 1)  # candidates besides the anchor
        pick = np.minimum((rng.random(len(index)) * others).astype(np.int64), others - 1)  # uniform in [0, others)
        pick = pick + (pick >= rank)  # skip the anchor's own slot
        partner = self.order[np.minimum(self.offsets[target] + pick, len(self.order) - 1)]
        return np.where(count > 1, partner, index)
