"""Sequential rows built from the interaction table (`row_builder: interactions`), never O(interactions x L).

RecBole 1.2.1's `SequentialDataset.data_augmentation` materialises one prefix row per interaction: an
[interactions, MAX_ITEM_LIST_LENGTH] tensor per list field (item, time, rating, ...), filled by a Python loop, and
the split then selects among them (32 GB of item ids alone for MovieLens-20M at L 200). In
`train_mode: all_positions` nothing needs those rows: the training windows are cut from each user's history, and
only the validation and test rows of the evaluated users need an [L] input. So:

- one sort of the interactions by (user, time), as RecBole's augmentation sorts: user u's history is
  flat[start[u]:start[u] + n[u]]. RecBole's rows (one per interaction but each user's first) become a position
  each, `row_position` [R]: row r's target is flat[row_position[r]], its input the up to L items before it;
- the split selects rows on those O(interactions) vectors with RecBole's own arithmetic (`part_sizes`, for
  leave-one-out and ratio splits grouped by user) or the global temporal split (split.py);
- the training rows of a user become its training history (`training_histories`: the input of its first training
  row, then every training target: what `histories.user_histories` rebuilds from prefix rows), cut into windows;
  `inputs_before` builds [rows, L] inputs for the validation and test rows only.

The same rows, in the same order, as RecBole's path (tests/test_rows.py compares them on ml-100k and ML-1M).
Memory: O(interactions) for the table and the vectors, O(windows x L) and O(evaluated rows x L) for the rows.
"""
import numpy as np


def sort_order(uid, time):
    """The permutation that sorts the interactions by user, then time, stably (RecBole's augmentation order)."""
    return np.lexsort((time, uid))


def histories(uid_sorted, n_uid):
    """Where each user's history starts in the sorted table: start [n_uid + 1] (start[u + 1] - start[u] = n[u])."""
    return np.r_[0, np.cumsum(np.bincount(uid_sorted, minlength=n_uid))]


def row_positions(uid_sorted):
    """RecBole's (prefix, target) rows of the sorted table: the position of each row's target, every
    interaction but each user's first, in (user, time) order. Returns row_position [R]."""
    later = np.r_[False, uid_sorted[1:] == uid_sorted[:-1]]
    return np.flatnonzero(later)


def inputs_before(flat, user_start, position, max_len):
    """The input of rows whose targets sit at `position` [R] of `flat`: the up to `max_len` items before each,
    within its user (`user_start` [R]), left-aligned and zero-padded as RecBole's rows.

    Returns (inputs [R L], lengths [R])."""
    begin = np.maximum(user_start, position - max_len)
    lengths = position - begin
    pos = np.arange(max_len)[None, :]
    valid = pos < lengths[:, None]
    inputs = np.where(valid, flat[np.where(valid, begin[:, None] + pos, 0)], 0)
    return inputs, lengths


def training_histories(flat, user_start, row_user, position, max_len):
    """Each user's training history from its training rows (`row_user`, `position` [T], each user's rows
    contiguous and in time order): the input of its first row (up to `max_len` items), then every row's target,
    as `histories.user_histories` rebuilds it from prefix rows.

    Returns (users [U], offsets [U + 1], history [H]): user users[k]'s history is history[offsets[k]:offsets[k + 1]].
    """
    first = np.flatnonzero(np.r_[True, row_user[1:] != row_user[:-1]]) if len(row_user) else np.zeros(0, np.int64)
    users = row_user[first]
    n_rows = np.diff(np.r_[first, len(row_user)])
    first_position = position[first]
    n_prefix = np.minimum(first_position - user_start[first], max_len)
    offsets = np.r_[0, np.cumsum(n_prefix + n_rows)]
    index = np.empty(offsets[-1], dtype=np.int64)
    # the first row's input ...
    owner = np.repeat(np.arange(len(users)), n_prefix)
    k = np.arange(len(owner)) - np.repeat(np.cumsum(n_prefix) - n_prefix, n_prefix)
    index[offsets[:-1][owner] + k] = (first_position - n_prefix)[owner] + k
    # ... then each row's target
    owner = np.repeat(np.arange(len(users)), n_rows)
    rank = np.arange(len(owner)) - np.repeat(first, n_rows)
    index[offsets[:-1][owner] + n_prefix[owner] + rank] = position
    return users, offsets, flat[index]


def part_sizes(dataset, split, group_by):
    """RecBole's split of one group of rows, as a function: (wanted, sizes) where `sizes(r)` gives the (train,
    valid, test) rows that RecBole makes of a group of r rows (its own arithmetic: `_split_index_by_leave_one_out`,
    `_calcu_split_ids`) and `wanted` the parts the split asks for; None for a split this cannot tell (GTS, several
    modes, an ungrouped leave-one-out)."""
    if not isinstance(split, dict) or len(split) != 1 or group_by not in ("user", "none"):
        return None
    ((mode, args),) = split.items()
    if mode == "LS" and group_by == "user" and args in ("valid_and_test", "valid_only", "test_only"):
        wanted = (True, args != "test_only", args != "valid_only")
        slots = [0] + [i for i in (1, 2) if wanted[i]]

        def sizes(r):
            parts = dataset._split_index_by_leave_one_out([range(r)], leave_one_num=len(slots) - 1)
            return _placed([len(p) for p in parts], slots)

    elif mode == "RS" and isinstance(args, list) and len(args) == 3 and sum(args) > 0:
        ratios = [r / sum(args) for r in args]
        wanted = tuple(r > 0 for r in ratios)

        def sizes(r):
            bounds = [0, *dataset._calcu_split_ids(tot=r, ratios=ratios), r]
            return _placed([b - a for a, b in zip(bounds, bounds[1:])], (0, 1, 2))

    else:
        return None
    return wanted, sizes


def _placed(lengths, slots):
    sizes = [0, 0, 0]
    for slot, length in zip(slots, lengths):
        sizes[slot] = length
    return sizes


def split_grouped(row_user, row_time, sizes):
    """The rows of each part of a split grouped by user, in the order RecBole's `build` gives them.

    RecBole sorts the rows by target time (stably), groups them by user in order of first appearance and cuts each
    group with `sizes` (from `part_sizes`); a part's rows are its groups one after the other.

    Args:
        row_user, row_time (numpy.ndarray): [R] user and target time of each row, in (user, time) order.
        sizes (callable): r -> (train, valid, test) rows of a group of r rows.

    Returns:
        list: [train, valid, test] row indices (into the R rows).
    """
    first_row = np.flatnonzero(np.r_[True, row_user[1:] != row_user[:-1]])  # rows are grouped by user, in time order
    counts = np.diff(np.r_[first_row, len(row_user)])
    group = np.repeat(np.arange(len(first_row)), counts)
    group_by_time = group[np.argsort(row_time, kind="stable")]
    first_seen = np.sort(np.unique(group_by_time, return_index=True)[1])
    appearance = np.empty(len(first_row), dtype=np.int64)  # each group's rank in order of first appearance by time
    appearance[group_by_time[first_seen]] = np.arange(len(first_row))
    # each group's rows cut by RecBole's arithmetic, computed once per group size
    lengths, inverse = np.unique(counts, return_inverse=True)
    cut = np.array([sizes(int(r)) for r in lengths], dtype=np.int64).reshape(-1, 3)[inverse]  # [U 3]
    rank = np.arange(len(row_user)) - np.repeat(first_row, counts)
    bounds = np.cumsum(cut, axis=1)[group]  # [R 3]
    part = (rank[:, None] >= bounds).sum(axis=1)  # 0 train, 1 valid, 2 test
    parts = []
    for p in range(3):
        rows = np.flatnonzero(part == p)
        parts.append(rows[np.lexsort((rank[rows], appearance[group[rows]]))])
    return parts

