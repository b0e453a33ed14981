"""Data a run cannot use, refused in one line (`DegenerateDataError`, `ConfigError`) before RecBole fails deep inside
or silently misuses it: no training rows, a catalog of fewer than 2 items, an empty validation or test set under
RecBole's LS or RS split, no TIME_FIELD for a sequential model, a ranking cut-off beyond the catalog (`topk_error`).
"""
from logging import getLogger

from recbole_bt.data.rows import part_sizes
from recbole_bt.errors import ConfigError, DegenerateDataError

_PART_NAMES = ("training", "validation", "test")


def check_dataset_contents(config, dataset):
    """Raise `DegenerateDataError` for data that RecBole would fail on deep inside (an IndexError while building
    the training rows) or silently misuse (no validation, hence no model selection): no training rows, a catalog
    of fewer than 2 items, an empty validation or test set under RecBole's LS or RS split. A catalog smaller than
    the largest ``topk`` is logged as a warning (building the data is fine; `topk_error` is for evaluation).
    Returns the dataset."""
    _check_rows(config, dataset)
    n_items = dataset.item_num - 1  # id 0 is padding
    if n_items < 2:
        raise DegenerateDataError(
            f"the catalog of {config['dataset']} has {n_items} item(s): a recommender needs at least 2 items to rank"
        )
    error = topk_error(config, n_items)
    if error is not None:
        getLogger().warning(f"{error}: evaluation will fail")
    _check_split(config, dataset)
    return dataset


def topk_error(config, n_items):
    """A `DegenerateDataError` if a ranking evaluation of `config` cuts at more than the `n_items` items of the
    catalog (torch.topk would fail with 'selected index k out of range'), else None."""
    from recbole.utils import EvaluatorType

    topk = config["topk"] if isinstance(config["topk"], list) else [config["topk"]]
    if config["eval_type"] != EvaluatorType.RANKING or not topk or max(topk) <= n_items:
        return None
    return DegenerateDataError(
        f"the catalog of {config['dataset']} has {n_items} items, fewer than the cut-off topk {max(topk)}: use "
        f"topk values <= {n_items} (e.g. topk: [1, {n_items}], valid_metric: NDCG@{n_items})"
    )


def _rows_per_user(config, dataset):
    """Rows that each user's history gives the split: its interactions, one fewer for a sequential model
    ((prefix, target) pairs, which RecBole's `build` makes). Returns (rows of each user [U], 1 or 0 fewer)."""
    import numpy as np
    from recbole.utils import ModelType

    counts = np.bincount(np.asarray(dataset.inter_feat[dataset.uid_field]).astype(np.int64))
    offset = 1 if config["MODEL_TYPE"] == ModelType.SEQUENTIAL else 0
    return counts[counts > 0] - offset, offset


def _check_rows(config, dataset):
    rows, offset = _rows_per_user(config, dataset)
    if rows.sum() > 0:
        return
    if offset:
        raise DegenerateDataError(
            f"no training rows for sequential model {config['model']}: no user of {config['dataset']} has 2 or more "
            f"interactions (after filtering), and a (history, next item) row needs 2; leave-one-out validation and "
            f"test need 4 per user"
        )
    raise DegenerateDataError(f"no interactions left in {config['dataset']} after filtering: nothing to train on")


def _part_sizes(config, dataset):
    """(split, group_by, wanted, sizes) of `rows.part_sizes` for the config's split; None for a split it cannot
    tell, and for benchmark files."""
    eval_args = config["eval_args"] or {}
    split, group_by = eval_args.get("split"), str(eval_args.get("group_by")).lower()
    known = None if config["benchmark_filename"] else part_sizes(dataset, split, group_by)
    return None if known is None else (split, group_by, *known)


def _check_split(config, dataset):
    """An empty validation or test set: RecBole would skip validation silently (the last epoch is tested, no early
    stopping) or fail when it reports the test result."""
    import numpy as np

    known = _part_sizes(config, dataset)
    if known is None:
        return
    split, group_by, wanted, sizes = known
    rows, offset = _rows_per_user(config, dataset)
    rows = rows[rows > 0]
    groups = [int(rows.sum())] if group_by == "none" else rows
    lengths, counts = np.unique(groups, return_counts=True)
    totals = sum(np.array(sizes(int(r))) * c for r, c in zip(lengths, counts))
    for part in (0, 1, 2):
        if not wanted[part] or totals[part] > 0 or (part == 1 and not config["eval_step"]):
            continue
        raise DegenerateDataError(_empty_part_message(config, split, group_by, part, sizes, int(lengths.max()), offset))


def _empty_part_message(config, split, group_by, part, sizes, longest, offset):
    name = _PART_NAMES[part]
    without = ", or eval_args split {LS: test_only} or eval_step: 0 to train without validation" if part == 1 else ""
    if group_by == "none":
        return f"the {name} set of {config['dataset']} is empty: the split {split} of all {longest} rows gives none"
    needed = next((r + offset for r in range(1, 1001) if sizes(r)[part] > 0), "more")
    return (
        f"the {name} set of {config['dataset']} is empty: under the split {split} a user history gives a {name} row "
        f"from {needed} interactions on, and the longest here has {longest + offset}; use longer histories{without}"
    )


def check_time_field(config, dataset):
    """Sequential datasets sort each user's history by TIME_FIELD; without it RecBole fails deep in `build`."""
    from recbole.utils import ModelType

    if config["MODEL_TYPE"] == ModelType.SEQUENTIAL and dataset.time_field not in dataset.field2type:
        loaded = list(dataset.inter_feat.columns)
        raise ConfigError(
            f"sequential model {config['model']} orders each user's history by TIME_FIELD "
            f"'{dataset.time_field}', which is not among the loaded columns {loaded} of {config['dataset']}.inter: "
            f"add it to load_col, e.g. load_col: {{inter: [user_id, item_id, {dataset.time_field}]}}"
        )
    return dataset
