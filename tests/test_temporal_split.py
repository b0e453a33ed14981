"""The global temporal split (eval_args split {GTS: q}): by hand on tests/fixtures/tenint, and through RecBole.

tests/fixtures/tenint/tenint.inter, 10 interactions, times T + offset with T = 978300000:

    user 1: item 1 @ 40, item 2 @ 50, item 3 @ 60
    user 2: item 2 @ 10, item 3 @ 30, item 4 @ 70, item 5 @ 90, item 6 @ 100
    user 3: item 1 @ 20, item 4 @ 80

RecBole's (prefix, target) rows, one per interaction but each user's first (user, target @ time):
    (1, 2) @ 50, (1, 3) @ 60, (2, 3) @ 30, (2, 4) @ 70, (2, 5) @ 90, (2, 6) @ 100, (3, 4) @ 80

GTS 0.7: sorted offsets 10 20 30 40 50 60 70 80 90 100; "nearest" index 0.7 * 9 = 6.3 -> 6, so t* = T + 70
(the linear quantile would give T + 73). Test pool: users 2 and 3 (an interaction at >= 70); user 1 ends at 60.
    test:       user 2's last (2, 6), user 3's last (3, 4)      -> 2 test users, 2 rows
    validation: user 2's second-to-last (2, 5); user 3 has only 2 interactions, so no validation row
    training, gts_exclude_test_users True:  user 1's rows (1, 2), (1, 3)                   -> 2 rows, 1 user
    training, gts_exclude_test_users False: also (2, 3) @ 30; not (2, 4) @ 70 (not < t*),
                                            nor the validation and test rows             -> 3 rows, 2 users
In float32, as RecBole holds times, T + 10 ... T + 100 fall on 3 values 64 s apart: the split must compare the
times as loaded, or t* and the pool come out wrong.
"""
import logging

import numpy as np
import pytest
import torch

from conftest import FIXTURES, LEARN, TINY_YAML, assert_learned, tiny_config
from recbole_bt import ConfigError
from recbole_bt.data import data_preparation, global_temporal_split, is_positions, target_list_field
from recbole_bt.quick_start import build_config, run_recbole_bt
from recbole_bt.data.loading import create_dataset

T = 978300000
ROW_UID = np.array([1, 1, 2, 2, 2, 2, 3])
ROW_TIME = T + np.array([50, 60, 30, 70, 90, 100, 80], dtype=np.float64)
ALL_TIMES = T + np.array([40, 50, 60, 10, 30, 70, 90, 100, 20, 80], dtype=np.float64)
EXPECTED = {  # exclude_test_users: (training pairs, training users)
    True: ([(1, 2), (1, 3)], 1),
    False: ([(1, 2), (1, 3), (2, 3)], 2),
}
VALID, TEST = [(2, 5)], [(2, 6), (3, 4)]


def gts(quantile=0.7, order="TO", **overrides):
    return {"eval_args": {"split": {"GTS": quantile}, "order": order, "mode": "full", "group_by": "user"}, **overrides}


def build(dataset="tenint", **overrides):
    config = {"data_path": FIXTURES, "load_col": {"inter": ["user_id", "item_id", "timestamp"]}, "train_mode": "prefix",
              **gts()}  # fmt: skip
    config.update(overrides)
    config = build_config("SASRec", dataset, [TINY_YAML], tiny_config(**config))
    return config, data_preparation(config, create_dataset(config))


def tokens(dataset, field, ids):
    """The file's ids of RecBole's internal ids (0, padding, skipped)."""
    return [int(dataset.id2token(field, i)) for i in ids.tolist() if i]


def pairs(data):
    """The sorted (user, target) pairs of a split, in the file's ids."""
    dataset, feat = data.dataset, data.dataset.inter_feat
    return sorted(zip(tokens(dataset, "user_id", feat["user_id"]), tokens(dataset, "item_id", feat["item_id"])))


@pytest.mark.parametrize("exclude", [True, False])
def test_rows_by_hand(exclude):
    rows = [(1, 2), (1, 3), (2, 3), (2, 4), (2, 5), (2, 6), (3, 4)]
    train, valid, test, stats = global_temporal_split(ROW_UID, ROW_TIME, ALL_TIMES, 0.7, exclude)
    assert [rows[i] for i in train] == EXPECTED[exclude][0]
    assert [rows[i] for i in valid] == VALID and [rows[i] for i in test] == TEST
    assert stats == {
        "t_star": T + 70, "n_interactions": 10, "test_users": 2, "train_rows": len(EXPECTED[exclude][0]),
        "valid_rows": 1, "test_rows": 2, "train_users": EXPECTED[exclude][1],
    }  # fmt: skip
    # users interleaved (each user's rows still in time order): the same rows, at their new indices
    perm = np.array([2, 0, 6, 3, 1, 4, 5])
    shuffled = global_temporal_split(ROW_UID[perm], ROW_TIME[perm], ALL_TIMES, 0.7, exclude)
    for ours, theirs in zip(shuffled[:3], (train, valid, test)):
        assert sorted(perm[ours].tolist()) == theirs.tolist()


def test_positions_detected():
    uid = np.array([3, 1, 1, 3, 1])
    assert is_positions(uid, np.array([1, 2, 0, 0, 1.0]))  # 0..n-1 for every user
    assert is_positions(uid, np.array([2, 3, 1, 1, 2.0]))  # 1..n
    assert not is_positions(uid, np.array([1, 2, 0, 0, 5.0]))
    assert not is_positions(ROW_UID, ROW_TIME)


@pytest.mark.parametrize("exclude", [True, False])
def test_split_through_recbole(workdir, caplog, exclude):
    caplog.set_level(logging.INFO)
    _, (train, valid, test) = build(gts_exclude_test_users=exclude)
    assert pairs(train) == EXPECTED[exclude][0]
    assert pairs(valid) == VALID and pairs(test) == TEST
    # the input of each target is everything before it (user 2: 2 3 4 5 6, user 3: 1 4)
    inputs = [tokens(test.dataset, "item_id", row) for row in test.dataset.inter_feat["item_id_list"]]
    assert sorted(inputs) == [[1], [2, 3, 4, 5]]
    assert tokens(valid.dataset, "item_id", valid.dataset.inter_feat["item_id_list"][0]) == [2, 3, 4]
    stats = train.dataset.split_stats
    assert stats["t_star"] == T + 70 and stats["test_users"] == 2 and stats["exclude_test_users"] is exclude
    n_train, n_users = len(EXPECTED[exclude][0]), EXPECTED[exclude][1]
    line = (
        f"global temporal split (GTS 0.7): t* = {T + 70} (0.7 quantile of 10 timestamps), 2 test users, "
        f"{n_train} training rows from {n_users} users, 1 validation rows, 2 test rows"
    )
    assert [r.getMessage() for r in caplog.records].count(line) == 1


def test_all_positions_on_top_of_gts(workdir):
    config, (train, valid, test) = build(gts_exclude_test_users=False, train_mode="all_positions")
    feat, dataset = train.dataset.inter_feat, train.dataset
    # training histories: user 1: 1 2 3, user 2 (before t*): 2 3 -> one window each
    windows = {
        int(dataset.id2token("user_id", u)): (tokens(dataset, "item_id", x), tokens(dataset, "item_id", y))
        for u, x, y in zip(feat["user_id"].tolist(), feat["item_id_list"], feat[target_list_field(config)])
    }
    assert windows == {1: ([1, 2], [2, 3]), 2: ([2], [3])}
    assert pairs(valid) == VALID and pairs(test) == TEST


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"dataset": "positions", **gts(0.95)}, r"counts each user's interactions .* ml-1m-realtime.*LS: valid_and_test"),
        (gts(0.05), "no training row"),  # t* = T + 10: every user is a test user
        (gts(1), r"a number in \(0, 1\)"),
        (gts(0), r"a number in \(0, 1\)"),
        (gts(-0.5), r"a number in \(0, 1\)"),
        (gts("0.9"), r"a number in \(0, 1\)"),
        (gts(True), r"a number in \(0, 1\)"),
        (gts(None), r"a number in \(0, 1\)"),
        (gts(order="RO"), "order: TO"),
        (gts(gts_exclude_test_users="no"), r"'gts_exclude_test_users' must be one of \[True, False\], got 'no'"),
        (gts(gts_test_history="after"), r"'gts_test_history' must be one of \['full', 'post_cut'\], got 'after'"),
    ],
)
def test_refused(workdir, overrides, message):
    with pytest.raises(ConfigError, match=message):
        build(**overrides)


def test_nothing_to_test_or_validate():
    from recbole_bt.data.split import check_split

    # the last interaction is a lone user's: nobody with a (prefix, target) row reaches t*
    *_, stats = global_temporal_split(ROW_UID, ROW_TIME, np.r_[ALL_TIMES, T + 200], 0.99)
    with pytest.raises(ConfigError, match="nothing to test"):
        check_split(0.99, stats)
    *_, stats = global_temporal_split(ROW_UID[-1:], ROW_TIME[-1:], ALL_TIMES, 0.7)
    with pytest.raises(ConfigError, match="nothing to validate"):
        check_split(0.7, stats)


def test_sasrec_runs_end_to_end(workdir):
    result = run_recbole_bt("SASRec", "tiny", [TINY_YAML], tiny_config(**LEARN, **gts(0.9)))
    assert_learned(result)
    assert torch.isfinite(torch.tensor(result["best_valid_score"]))


def test_gts_for_a_general_model_is_refused(workdir):
    with pytest.raises(ConfigError, match="split GTS .* BPR is not a sequential model"):
        build_config("BPR", "tenint", [TINY_YAML], tiny_config(data_path=FIXTURES, **gts()))


# gts_test_history post_cut (BT-SR's reference code), by hand. Items a..e are 1..5; times T + offset; GTS 0.64:
# sorted offsets 5 10 12 15 20 25 30 35 40 50 60 65 70 75 80, nearest index 0.64 * 14 = 8.96 -> 9: t* = T + 50.
#     user 1: a@10 b@20 c@30 d@40        outside the pool (trains); user 2: a@15 b@25 c@35 (trains)
#     user 3: a@12 b@50 c@60 d@70 e@80   pool: a@12 is before t*, e is cold (no training user has it): b c d kept
#     user 4: b@5 c@65 e@75              pool: b@5 before t*, e cold; only c kept (< 3): the user is dropped
# user 3's rows: validation (input b) -> c, test (input b c) -> d; with `full`: test (a b c d) -> e.
POST_CUT = {1: [(1, 10), (2, 20), (3, 30), (4, 40)], 2: [(1, 15), (2, 25), (3, 35)],
            3: [(1, 12), (2, 50), (3, 60), (4, 70), (5, 80)], 4: [(2, 5), (3, 65), (5, 75)]}  # fmt: skip


def test_post_cut_keep_by_hand():
    from recbole_bt.data.split import post_cut_keep, t_star_of

    uid, item, offset = (np.array(x) for x in zip(*[(u, i, t) for u, rows in POST_CUT.items() for i, t in rows]))
    assert t_star_of(T + offset, 0.64) == T + 50
    keep, stats = post_cut_keep(uid, item, T + offset, T + 50)
    kept = [(int(u), int(i)) for u, i in zip(uid[keep], item[keep])]
    assert kept == [(1, 1), (1, 2), (1, 3), (1, 4), (2, 1), (2, 2), (2, 3), (3, 2), (3, 3), (3, 4)]
    assert stats == {"pool_users": 2, "kept_users": 1, "dropped_before_t_star": 2, "dropped_cold": 2,
                     "dropped_short_users": 1}  # fmt: skip


@pytest.fixture
def post_cut_data(tmp_path):
    folder = tmp_path / "postcut"
    folder.mkdir()
    with open(folder / "postcut.inter", "w") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        f.writelines(f"{u}\t{i}\t{T + t}\n" for u, rows in POST_CUT.items() for i, t in rows)
    return str(tmp_path)


@pytest.mark.parametrize("history", ["post_cut", "full"])
def test_post_cut_through_recbole(workdir, caplog, post_cut_data, history):
    from recbole_bt.data.masking import describe_protocol, seen_index

    caplog.set_level(logging.INFO)
    config, (train, valid, test) = build(
        "postcut", data_path=post_cut_data, eval_mask_seen=True, gts_test_history=history, **gts(0.64)
    )
    feat = test.dataset.inter_feat
    seen = sorted(tokens(test.dataset, "item_id", seen_index(test.dataset, feat)[1]))
    if history == "post_cut":
        assert pairs(test) == [(3, 4)] and pairs(valid) == [(3, 3)]
        assert tokens(test.dataset, "item_id", feat["item_id_list"][0]) == [2, 3] and seen == [2, 3]
        assert tokens(valid.dataset, "item_id", valid.dataset.inter_feat["item_id_list"][0]) == [2]
        line = ("gts_test_history post_cut: test users read only their interactions at or after t* with training "
                "items (2 earlier and 2 cold-item interactions dropped); 1 of 2 test-pool users keep >= 3 and are "
                "evaluated, 1 are dropped")  # fmt: skip
        assert line in [r.getMessage() for r in caplog.records]
        assert "test input after t* only" in describe_protocol(config, short=True)
        assert train.dataset.split_stats["post_cut_kept_users"] == 1
    else:
        assert pairs(test) == [(3, 5), (4, 5)] and pairs(valid) == [(3, 4), (4, 3)]
        assert tokens(test.dataset, "item_id", feat["item_id_list"][0]) == [1, 2, 3, 4] and seen == [1, 2, 2, 3, 3, 4]
        assert "after t*" not in describe_protocol(config)
    assert sorted(set(u for u, _ in pairs(train))) == [1, 2]  # test users never train


def test_post_cut_needs_excluded_test_users(workdir, post_cut_data):
    with pytest.raises(ConfigError, match="post_cut drops the test users' interactions before t.*gts_exclude"):
        build("postcut", data_path=post_cut_data, gts_test_history="post_cut", gts_exclude_test_users=False,
              **gts(0.64))  # fmt: skip
