"""`row_builder: interactions` (recbole_bt/data/rows.py): rows by hand, the same rows as RecBole's prefix-row path
on ml-100k and ML-1M under every split it builds, and the same metrics on a fixed seed."""
import os

import numpy as np
import pytest
import torch

from conftest import TINY_YAML, tiny_config
from recbole_bt.data import data_preparation
from recbole_bt.data.masking import seen_index
from recbole_bt.data.rows import (
    histories,
    inputs_before,
    row_positions,
    sort_order,
    split_grouped,
    training_histories,
)
from recbole_bt.quick_start import build_config, run_recbole_bt
from recbole_bt.data.loading import create_dataset

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "datasets")

# user 1: items 1..5 at times 10..50; user 2: items 6, 7, 8 at 15, 25, 35; user 3: item 9 at 5 (no row); shuffled
UID = np.array([2, 1, 3, 1, 1, 2, 1, 2, 1])
ITEM = np.array([7, 3, 9, 1, 5, 6, 2, 8, 4])
TIME = np.array([25, 30, 5, 10, 50, 15, 20, 35, 40])


def sorted_table():
    order = sort_order(UID, TIME)
    return UID[order], ITEM[order], TIME[order]


def test_rows_of_the_sorted_table_by_hand():
    uid, flat, time = sorted_table()
    assert flat.tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert histories(uid, 4).tolist() == [0, 0, 5, 8, 9]  # user u's history is flat[start[u]:start[u + 1]]
    position = row_positions(uid)
    assert position.tolist() == [1, 2, 3, 4, 6, 7]  # every interaction but each user's first
    start = histories(uid, 4)[uid[position]]
    inputs, lengths = inputs_before(flat, start, position, max_len=2)
    assert inputs.tolist() == [[1, 0], [1, 2], [2, 3], [3, 4], [6, 0], [6, 7]]  # RecBole's rows at L 2
    assert lengths.tolist() == [1, 2, 2, 2, 1, 2]


def leave_one_out(r):
    """RecBole's leave-one-out of a user's r rows, valid_and_test: (train, valid, test) rows."""
    return (r, 0, 0) if r == 1 else (1, 0, 1) if r == 2 else (r - 2, 1, 1)


def test_split_grouped_by_hand():
    uid, flat, time = sorted_table()
    position = row_positions(uid)
    train, valid, test = split_grouped(uid[position], time[position], leave_one_out)
    # user 1 (4 rows: targets 2, 3, 4, 5): 2 train, 1 valid, 1 test; user 2 (2 rows: 7, 8): 1 train, 1 test
    assert flat[position[train]].tolist() == [2, 3, 7] and flat[position[valid]].tolist() == [4]
    assert flat[position[test]].tolist() == [5, 8]  # users in order of their first row's time (20, 25)


def test_split_grouped_orders_users_by_their_first_row_in_time():
    uid, item = np.array([1, 1, 1, 2, 2, 2]), np.array([1, 2, 3, 4, 5, 6])
    time = np.array([10, 40, 50, 5, 20, 30])  # user 2's first row (target at 20) comes before user 1's (40)
    position = row_positions(uid)
    _, _, test = split_grouped(uid[position], time[position], lambda r: (r - 1, 0, 1))
    assert item[position[test]].tolist() == [6, 3]


def test_training_histories_start_with_the_first_rows_input():
    uid, flat, _ = sorted_table()
    start = histories(uid, 4)
    rows = np.array([1, 2, 3, 4, 6, 7])  # all rows: user 1's history 1..5, user 2's 6..8
    users, offsets, history = training_histories(flat, start[uid[rows]], uid[rows], rows, max_len=2)
    assert users.tolist() == [1, 2] and offsets.tolist() == [0, 5, 8]
    assert history.tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
    # training rows from user 1's third row on: its input (2 items at L 2) then its targets
    users, offsets, history = training_histories(flat, start[[1, 1]], np.array([1, 1]), np.array([3, 4]), 2)
    assert history.tolist() == [2, 3, 4, 5] and offsets.tolist() == [0, 4]


GTS = {"split": {"GTS": 0.9}, "order": "TO", "group_by": "user", "mode": "full"}
SPLITS = {
    "leave-one-out, masked": {"eval_mask_seen": True},
    "leave-one-out valid_only, L 20": {
        "MAX_ITEM_LIST_LENGTH": 20,
        "eval_args": {"split": {"LS": "valid_only"}, "order": "TO", "group_by": "user", "mode": "full"},
    },
    "ratio split, L 20, stride 7": {
        "MAX_ITEM_LIST_LENGTH": 20,
        "train_stride": 7,
        "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "TO", "group_by": "user", "mode": "full"},
    },
    "GTS, all users train": {"gts_exclude_test_users": False, "eval_args": GTS},
    "GTS post_cut, last windows, masked": {
        "eval_mask_seen": True,
        "gts_test_history": "post_cut",
        "train_windows": "last",
        "eval_args": GTS,
    },
}


def both_builders(dataset, overrides):
    loaders = []
    for builder in ("prefix_rows", "interactions"):
        config = build_config(
            "SASRec", dataset, None, dict(train_mode="all_positions", row_builder=builder, **overrides)
        )
        data = create_dataset(config)
        loaders.append(data_preparation(config, data))
        assert data.rows_from_interactions == (builder == "interactions")
    return loaders


def assert_same_rows(prefix_rows, interactions):
    for old, new in zip(prefix_rows, interactions):
        old_rows, new_rows = old.dataset.inter_feat, new.dataset.inter_feat
        # RecBole's rows also carry the other columns as lists (rating_list, ...), which no model here reads
        extra = set(old_rows.columns) - set(new_rows.columns)
        assert set(new_rows.columns) <= set(old_rows.columns) and all(c.endswith("_list") for c in extra)
        assert len(new_rows) == len(old_rows)
        for column in new_rows.columns:
            assert torch.equal(old_rows[column], new_rows[column]), column
    assert np.array_equal(prefix_rows[0].dataset.item_counts, interactions[0].dataset.item_counts)
    for old, new in zip(prefix_rows[1:], interactions[1:]):
        if hasattr(old.dataset, "seen_items"):
            masked = (seen_index(d.dataset, d.dataset.inter_feat) for d in (old, new))
            assert all(torch.equal(a, b) for a, b in zip(*masked))


@pytest.mark.parametrize("split", SPLITS)
def test_the_same_rows_as_recboles_prefix_rows_on_ml_100k(workdir, split):
    assert_same_rows(*both_builders("ml-100k", SPLITS[split]))


@pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED, "ml-1m")), reason="../shared/datasets/ml-1m not here")
def test_the_same_rows_as_recboles_prefix_rows_on_ml_1m(workdir):
    # its first 300 users (RecBole's prefix rows of all 6,040 take a minute); benchmarks/data_scale.py compares all
    subset = {"data_path": SHARED, "val_interval": {"user_id": [str(u) for u in range(1, 301)]}, "eval_mask_seen": True}
    assert_same_rows(*both_builders("ml-1m", dict(subset, MAX_ITEM_LIST_LENGTH=200)))


def test_the_same_metrics_on_a_fixed_seed(workdir):
    results = [
        run_recbole_bt(
            "SASRec", "tiny", [TINY_YAML], tiny_config(train_mode="all_positions", row_builder=builder, epochs=3)
        )
        for builder in ("prefix_rows", "interactions")
    ]
    assert results[0]["best_valid_result"] == results[1]["best_valid_result"]
    assert results[0]["test_result"] == results[1]["test_result"]
    assert results[0]["test_result"]["ndcg@10"] > 0  # the tiny data's model learns something to compare


def test_recboles_atomic_files_read_the_same_with_the_c_parser(workdir):
    """compat's C parser (RecBole asks for pandas' Python one): the same table as RecBole's own reading."""
    from recbole.data.dataset import dataset as recbole_dataset

    config = build_config("SASRec", "ml-100k", None, {"load_col": None})
    data = create_dataset(config)
    path = os.path.join(config["data_path"], "ml-100k.inter")
    fast = data._load_feat(path, "inter")
    patched, recbole_dataset.pd = recbole_dataset.pd, recbole_dataset.pd._pandas
    try:
        slow = data._load_feat(path, "inter")
    finally:
        recbole_dataset.pd = patched
    assert fast.equals(slow) and len(fast) == 100000
    assert list(fast.columns) == ["user_id", "item_id", "rating", "timestamp"]


def test_an_ml_20m_shaped_dataset_takes_the_same_path(workdir):
    """RecBole downloads ML-20M as atomic files (user, item, rating, timestamp): the synthetic ML-20M-like file of
    benchmarks/data_scale.py, at 60 users, goes through the rows from the interaction table like any other."""
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from benchmarks.data_scale import ml20m_like

    ml20m_like(str(workdir), "ml-20m", users=60, items=300, interactions=6000)
    loaders = both_builders("ml-20m", {"data_path": str(workdir), "eval_mask_seen": True})
    assert_same_rows(*loaders)
    assert len(loaders[1][2].dataset) == 60  # every user tested
