"""benchmarks/data_scale.py: the ML-20M-like generator writes the shape it promises, and RecBole reads it."""
import os
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT

sys.path.insert(0, ROOT)
from benchmarks import data_scale  # noqa: E402

HEADER = ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]


def read_inter(folder, name):
    return pd.read_csv(os.path.join(folder, name, f"{name}.inter"), sep="\t")


def test_ml20m_like_writes_the_asked_shape(tmp_path):
    # 50 users x 100 interactions on average over 200 items: each user 20..200 distinct items
    stats = data_scale.ml20m_like(tmp_path, "small", users=50, items=200, interactions=5_000)
    table = read_inter(tmp_path, "small")
    assert list(table.columns) == HEADER
    user, item, rating, time = (table[c].to_numpy() for c in HEADER)
    assert len(table) == 5_000
    assert sorted(set(user)) == list(range(1, 51)) and sorted(set(item)) == list(range(1, 201))
    lengths = np.bincount(user)[1:]
    assert lengths.min() >= 20 and lengths.max() <= 200 and lengths.sum() == 5_000
    assert not table.duplicated(["user_id:token", "item_id:token"]).any()  # no user repeats an item
    assert set(rating) <= {0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0}
    same_user = user[1:] == user[:-1]  # rows are grouped by user
    assert (np.diff(time)[same_user] > 0).all()  # strictly increasing within each user
    assert np.count_nonzero(~same_user) == 49
    assert data_scale.FIRST_TIME <= time.min() and time.max() <= data_scale.LAST_TIME

    counts = np.bincount(item)[1:]
    assert stats["users"] == 50 and stats["items"] == 200 and stats["interactions"] == 5_000
    assert stats["user_length"] == {"min": lengths.min(), "median": np.median(lengths), "mean": 100.0,
                                    "max": lengths.max()}  # fmt: skip
    assert stats["top_item_interactions"] == counts.max() and stats["items_under_10"] == (counts < 10).sum()
    assert stats["repeats_share"] == 0.0


def test_scale_multiplies_users_items_and_interactions(tmp_path):
    stats = data_scale.ml20m_like(tmp_path, "scaled", users=1_000, items=2_000, interactions=60_000, scale=0.1)
    table = read_inter(tmp_path, "scaled")
    assert (stats["users"], stats["items"], stats["interactions"]) == (100, 200, 6_000)
    assert (table["user_id:token"].nunique(), table["item_id:token"].nunique(), len(table)) == (100, 200, 6_000)


def test_a_catalog_too_small_for_the_users_is_refused(tmp_path):
    # ML-20M x 0.001: 138 users, 27 items, 20,000 interactions; 138 users x 27 distinct items hold 3,726 at most
    with pytest.raises(ValueError, match="138 users cannot hold 20,000 interactions"):
        data_scale.ml20m_like(tmp_path, "tiny", scale=0.001)
    assert not os.path.exists(tmp_path / "tiny")


def test_user_lengths_are_long_tailed_and_sum_exactly():
    lengths = data_scale.user_lengths(np.random.default_rng(0), 10_000, 1_444_000, max_length=9_254)
    assert lengths.sum() == 1_444_000 and lengths.min() == 20 and lengths.max() <= 9_254
    assert 55 <= np.median(lengths) <= 80 < 144.4 == lengths.mean()  # ML-20M: median 68, mean 144.4


def test_distinct_items_of_a_user_holding_the_whole_catalog_are_a_permutation():
    rng = np.random.default_rng(0)
    items = data_scale.distinct_items(rng, np.array([5, 5, 3]), np.array([100.0, 10, 1, 1, 1]))
    assert sorted(items[:5]) == sorted(items[5:10]) == [0, 1, 2, 3, 4]
    assert len(set(items[10:])) == 3


def test_fill_missing_takes_slots_of_an_item_with_more_than_enough():
    items = np.array([0, 0, 0, 1, 1, 0])  # items 2 and 3 missing; only item 0 has more than 2 slots
    data_scale.fill_missing(np.random.default_rng(0), items, 4)
    assert np.bincount(items, minlength=4).tolist() == [2, 2, 1, 1]
    assert items[3:5].tolist() == [1, 1]


def test_recbole_reads_the_file(tmp_path, workdir):
    from recbole_bt.quick_start import build_config
    from recbole_bt.data.loading import create_dataset

    data_scale.ml20m_like(tmp_path, "readable", users=30, items=100, interactions=1_500)
    config = build_config("SASRec", "readable", config_dict={"data_path": str(tmp_path), "use_gpu": False,
                                                             "load_col": {"inter": data_scale.COLUMNS}})  # fmt: skip
    dataset = create_dataset(config)
    assert (dataset.inter_num, dataset.user_num - 1, dataset.item_num - 1) == (1_500, 30, 100)  # 0: padding
    assert data_scale.inter_columns(os.path.join(tmp_path, "readable", "readable.inter")) == data_scale.COLUMNS


def test_failed_and_crashed_runs_are_rows_of_the_table():
    data = {"interactions": 1_000}
    failed = {"label": "before", "config": dict(data_scale.BASE_CONFIG, row_builder="prefix_rows"), "data": data,
              "prepare_seconds": 3.0, "peak_rss_prepare_mb": 900, "peak_rss_mb": 900, "cap_mb": 1024,
              "outcome": "prepare failed: MemoryError: "}  # fmt: skip
    crashed = {"label": "after", "failed": "exit -9, see run1.log"}
    _, rows, extra = data_scale.tables([failed, crashed])
    assert rows[0] == ["before", "prefix_rows", 3.0, 900, "-", "-", "-", "-", "-", 900, "prepare failed: MemoryError: ", "-"]
    assert rows[1][0] == "after" and rows[1][-2:] == ["killed: exit -9, see run1.log", "-"]
    assert "1,000 interactions" in extra and "capped at 1 GiB" in extra
