"""Users' histories rebuilt from RecBole's augmented (prefix, target) rows: for all-positions windows (dataset.py),
training item counts (evaluator) and the seen-item mask (masking.py)."""
import numpy as np


def user_histories(uid, target, item_list, item_length):
    """Rebuild each user's training history from RecBole's prefix rows (sorted by user, then time).

    Returns (users [U], offsets [U + 1], flat [T]): user u's history is flat[offsets[u]:offsets[u + 1]], i.e. the
    items of its first prefix row followed by the target of every row.
    """
    return history_positions(uid, target, item_list, item_length)[:3]


def history_positions(uid, target, item_list, item_length):
    """`user_histories`, plus position [N]: where each row's target sits in `flat` (rows in their given order),
    so that flat[offsets[u]:position[i]] is everything row i's user did before that target."""
    order = np.argsort(uid, kind="stable")
    uid, target, item_list, item_length = uid[order], target[order], item_list[order], item_length[order]
    first = np.flatnonzero(np.r_[True, uid[1:] != uid[:-1]])  # first row of each user
    users = uid[first]
    n_prefix = item_length[first]  # items before the first target (1 for RecBole's rows)
    n_rows = np.diff(np.r_[first, len(uid)])
    lengths = n_prefix + n_rows
    offsets = np.r_[0, np.cumsum(lengths)]
    flat = np.empty(offsets[-1], dtype=target.dtype)
    # prefix items of the first row, then each row's target
    prefix_pos = offsets[:-1, None] + np.arange(item_list.shape[1])[None, :]
    prefix_mask = np.arange(item_list.shape[1])[None, :] < n_prefix[:, None]
    flat[prefix_pos[prefix_mask]] = item_list[first][prefix_mask]
    user_of_row = np.repeat(np.arange(len(users)), n_rows)
    rank_in_user = np.arange(len(uid)) - np.repeat(first, n_rows)
    sorted_position = offsets[user_of_row] + n_prefix[user_of_row] + rank_in_user
    flat[sorted_position] = target
    position = np.empty(len(uid), dtype=np.int64)
    position[order] = sorted_position
    return users, offsets, flat, position
