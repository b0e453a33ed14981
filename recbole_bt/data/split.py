"""The global temporal split (GTS) of BT-SR (Razvorotnev et al. 2025, and its reference code).

Selected with ``eval_args: {split: {GTS: 0.95}, order: TO, mode: full, group_by: user}``:

- t* is the ``GTS`` quantile (``method="nearest"``, so an actual timestamp) of the times of all interactions;
- the test pool is the users with at least one interaction at time >= t*; each pool user's last interaction is
  a test target and its second-to-last a validation target (a pool user with 2 interactions has no validation
  row), each predicted from everything before it, as in RecBole's leave-one-out;
- the training rows are the (prefix, target) rows whose target time is < t*, of the users outside the pool
  (``gts_exclude_test_users: True``, the paper's protocol) or of every user, minus the validation and test rows
  (``gts_exclude_test_users: False``);
- what a test user's rows read (``gts_test_history``): ``full``, everything before the target (RecBole's rows);
  ``post_cut`` (BT-SR's reference code, `data.py`), only the user's interactions at or after t* with items that
  occur in training, and only users with >= 3 of them (`post_cut_keep` drops the rest before the rows are built),
  so a test user is a new user whose first steps the model sees.

RecBole 1.2.1's own ``TS`` split is a different protocol (every user split at the boundary), hence a new name.
The selection works on RecBole's augmented rows, one per target; `SequentialDataset` (dataset.py) applies it.
"""
import numbers

import numpy as np

from recbole_bt.errors import ConfigError

SPLIT_MODE = "GTS"


def check_quantile(quantile):
    """The GTS value, a number in (0, 1), as a float; anything else is a `ConfigError`."""
    if isinstance(quantile, bool) or not isinstance(quantile, numbers.Real) or not 0 < quantile < 1:
        raise ConfigError(
            f"eval_args split {{{SPLIT_MODE}: {quantile!r}}}: the global temporal split takes the quantile of all "
            f"timestamps that starts the test period, a number in (0, 1), e.g. {{{SPLIT_MODE}: 0.95}}"
        )
    return float(quantile)


def is_positions(uid, times):
    """True when, for every user, the sorted times are exactly 0, 1, ..., n - 1 (or 1, ..., n): per-user
    positions, not times."""
    if len(uid) == 0:
        return False
    order = np.lexsort((times, uid))
    uid, times = uid[order], times[order]
    first = np.flatnonzero(np.r_[True, uid[1:] != uid[:-1]])
    rank = np.arange(len(uid)) - np.repeat(first, np.diff(np.r_[first, len(uid)]))
    return bool((times == rank).all() or (times == rank + 1).all())


HISTORIES = ("full", "post_cut")


def t_star_of(all_times, quantile):
    """t*: the `quantile` of all times, an actual timestamp (numpy's 'nearest', as the reference code)."""
    return np.quantile(np.asarray(all_times), quantile, method="nearest")


def post_cut_keep(uid, item, times, t_star, min_interactions=3):
    """The interactions that `gts_test_history: post_cut` keeps, before RecBole builds its rows.

    Every interaction of a user outside the test pool (no interaction at or after t*) is kept; a pool user keeps
    only the interactions at or after t* whose item some user outside the pool has (the training items), and
    only if `min_interactions` remain (validation and test targets, and at least one item of input).

    Args:
        uid, item, times (numpy.ndarray): [M] user, item and time of every interaction, in any order.
        t_star: the start of the test period.

    Returns:
        tuple: (keep [M] bool, stats): stats has `pool_users`, `kept_users`, `dropped_before_t_star`,
        `dropped_cold`, `dropped_short_users` (pool users with fewer than `min_interactions` kept).
    """
    uid, item, times = np.asarray(uid), np.asarray(item), np.asarray(times)
    late = times >= t_star
    pool_users = np.unique(uid[late])
    in_pool = np.isin(uid, pool_users)
    warm = np.isin(item, np.unique(item[~in_pool]))  # items of training (users outside the pool)
    keep = ~in_pool | (late & warm)
    users, counts = np.unique(uid[in_pool & keep], return_counts=True)
    short = users[counts < min_interactions]
    keep &= ~np.isin(uid, short)
    stats = {
        "pool_users": len(pool_users),
        "kept_users": len(users) - len(short),
        "dropped_before_t_star": int((in_pool & ~late).sum()),
        "dropped_cold": int((in_pool & late & ~warm).sum()),
        "dropped_short_users": len(pool_users) - (len(users) - len(short)),
    }
    return keep, stats


def describe_post_cut(stats):
    """The post_cut filter in one line, for the log."""
    return (
        f"gts_test_history post_cut: test users read only their interactions at or after t* with training items "
        f"({stats['dropped_before_t_star']:,} earlier and {stats['dropped_cold']:,} cold-item interactions "
        f"dropped); {stats['kept_users']:,} of {stats['pool_users']:,} test-pool users keep >= 3 and are "
        f"evaluated, {stats['dropped_short_users']:,} are dropped"
    )


def global_temporal_split(uid, target_time, all_times, quantile, exclude_test_users=True):
    """Select the training, validation and test rows of the global temporal split.

    Args:
        uid (numpy.ndarray): [N] user of each (prefix, target) row; each user's rows in time order (the order of
            RecBole's augmented rows), users in any order.
        target_time (numpy.ndarray): [N] time of each row's target.
        all_times (numpy.ndarray): [M] times of all interactions (the first of each user included), for t*.
        quantile (float): the quantile of `all_times` that is t*, in (0, 1).
        exclude_test_users (bool): train only on users outside the test pool (True) or on every user's rows
            before t*, validation and test rows excepted (False).

    Returns:
        tuple: (train_index, valid_index, test_index, stats): ascending row indices, and a dict with `t_star`,
        `n_interactions`, `test_users`, `train_rows`, `valid_rows`, `test_rows`, `train_users`.
    """
    quantile = check_quantile(quantile)
    uid, target_time = np.asarray(uid), np.asarray(target_time)
    t_star = t_star_of(all_times, quantile)

    order = np.argsort(uid, kind="stable")  # keeps each user's rows in time order
    user, time = uid[order], target_time[order]
    new_user = np.ones(len(user), dtype=bool)
    new_user[1:] = user[1:] != user[:-1]
    last = np.ones(len(user), dtype=bool)
    last[:-1] = new_user[1:]
    second_last = np.zeros(len(user), dtype=bool)
    second_last[:-1] = last[1:] & ~new_user[1:]
    # a user's first interaction is never later than its targets: the pool is decided on the targets
    starts = np.flatnonzero(new_user)
    in_pool = np.zeros(len(user), dtype=bool)
    if len(user):
        in_pool = np.repeat(np.maximum.reduceat(time, starts) >= t_star, np.diff(np.r_[starts, len(user)]))
    test, valid = in_pool & last, in_pool & second_last
    train = (time < t_star) & (~in_pool if exclude_test_users else ~(test | valid))

    train_index, valid_index, test_index = (np.sort(order[mask]) for mask in (train, valid, test))
    stats = {
        "t_star": t_star.item(),
        "n_interactions": int(np.size(all_times)),
        "test_users": int(test.sum()),
        "train_rows": len(train_index),
        "valid_rows": len(valid_index),
        "test_rows": len(test_index),
        "train_users": len(np.unique(user[train])),
    }
    return train_index, valid_index, test_index, stats


def check_split(quantile, stats):
    """A split with no test user, no validation row or no training row is a `ConfigError`."""
    where = f"global temporal split ({SPLIT_MODE} {quantile}, t* = {_time(stats['t_star'])})"
    if stats["test_rows"] == 0:
        raise ConfigError(
            f"{where}: no user with 2 or more interactions has one at or after t*, so there is nothing to test; "
            f"lower the quantile"
        )
    if stats["valid_rows"] == 0:
        raise ConfigError(
            f"{where}: every test user has only 2 interactions, so there is nothing to validate on; "
            f"lower the quantile"
        )
    if stats["train_rows"] == 0:
        raise ConfigError(
            f"{where}: no training row has its target before t* outside the validation and test rows; raise the "
            f"quantile, or set gts_exclude_test_users: False to train on the test users' earlier interactions"
        )


def describe(quantile, stats):
    """The split in one line, for the log."""
    return (
        f"global temporal split ({SPLIT_MODE} {quantile}): t* = {_time(stats['t_star'])} ({quantile} quantile of "
        f"{stats['n_interactions']:,} timestamps), {stats['test_users']:,} test users, {stats['train_rows']:,} "
        f"training rows from {stats['train_users']:,} users, {stats['valid_rows']:,} validation rows, "
        f"{stats['test_rows']:,} test rows"
    )


def _time(t):
    return int(t) if float(t).is_integer() else t
