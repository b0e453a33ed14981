"""train_mode: all_positions windows (hand-checked), their equivalence with prefix rows, and the losses."""
import numpy as np
import pytest
import torch
from recbole.data import data_preparation

from conftest import LEARN, TINY_YAML, UNTRAINED_NDCG10, assert_learned, tiny_config
from recbole_bt import ConfigError
from recbole_bt.data.dataset import target_list_field, user_histories, windows
from recbole_bt.model import SASRec
from recbole_bt.quick_start import build_config, run_recbole_bt
from recbole_bt.data.loading import create_dataset

# RecBole's prefix rows for user 7 with history 1..7 (MAX_ITEM_LIST_LENGTH 3) and user 9 with history 10, 11
UID = np.array([7, 7, 7, 7, 7, 7, 9])
TARGET = np.array([2, 3, 4, 5, 6, 7, 11])
ITEM_LIST = np.array([[1, 0, 0], [1, 2, 0], [1, 2, 3], [2, 3, 4], [3, 4, 5], [4, 5, 6], [10, 0, 0]])
LENGTH = np.array([1, 2, 3, 3, 3, 3, 1])


def test_user_histories_from_prefix_rows():
    order = [6, 0, 1, 2, 3, 4, 5]  # users in any order; each user's rows in time order, as RecBole keeps them
    users, offsets, flat = user_histories(UID[order], TARGET[order], ITEM_LIST[order], LENGTH[order])
    assert users.tolist() == [7, 9] and offsets.tolist() == [0, 7, 9]
    assert flat.tolist() == [1, 2, 3, 4, 5, 6, 7, 10, 11]


@pytest.mark.parametrize(
    "stride, expected",  # rows: user index, inputs, targets (0: no loss), length
    [
        (3, [[0, 4, 5, 6, 5, 6, 7, 3], [0, 1, 2, 3, 2, 3, 4, 3], [1, 10, 0, 0, 11, 0, 0, 1]]),
        (2, [[0, 4, 5, 6, 0, 6, 7, 3], [0, 2, 3, 4, 0, 4, 5, 3], [0, 1, 2, 0, 2, 3, 0, 2], [1, 10, 0, 0, 11, 0, 0, 1]]),
        (1, [[0, 4, 5, 6, 0, 0, 7, 3], [0, 3, 4, 5, 0, 0, 6, 3], [0, 2, 3, 4, 0, 0, 5, 3], [0, 1, 2, 3, 0, 0, 4, 3],
             [0, 1, 2, 0, 0, 3, 0, 2], [0, 1, 0, 0, 2, 0, 0, 1], [1, 10, 0, 0, 11, 0, 0, 1]]),
    ],
)
def test_windows_by_hand(stride, expected):
    _, offsets, flat = user_histories(UID, TARGET, ITEM_LIST, LENGTH)
    user_index, inputs, targets, lengths = windows(offsets, flat, max_len=3, stride=stride)
    assert np.c_[user_index, inputs, targets, lengths].tolist() == expected


@pytest.mark.parametrize("max_len, stride", [(5, 5), (5, 2), (5, 1), (8, 3)])
def test_every_target_trained_once_with_its_context(max_len, stride):
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 30, size=20)
    offsets = np.r_[0, np.cumsum(lengths)]
    flat = rng.integers(1, 50, size=offsets[-1])
    user_index, inputs, targets, window_len = windows(offsets, flat, max_len, stride)
    seen = []
    for u, x, y, n in zip(user_index, inputs, targets, window_len):
        history = flat[offsets[u]:offsets[u + 1]].tolist()
        for p in np.flatnonzero(y):
            # position p of this window predicts y[p] from the items x[:p + 1], which end the history before it
            end = next(i for i in range(len(history) - 1, 0, -1) if history[i - p - 1:i] == x[:p + 1].tolist()
                       and history[i] == y[p])  # fmt: skip
            seen.append((u, end))
            assert p + 1 >= min(end, max_len - stride + 1)  # at least L - stride items of context (or all there are)
        assert y[n - 1] > 0 and (x[n:] == 0).all() and (y[n:] == 0).all()
    expected = [(u, i) for u in range(len(lengths)) for i in range(1, lengths[u])]
    assert sorted(seen) == expected  # every target once


def build_data(train_mode, **overrides):
    config = build_config("SASRec", "tiny", [TINY_YAML], tiny_config(train_mode=train_mode, **overrides))
    return config, data_preparation(config, create_dataset(config))


def test_all_positions_rows_hold_the_same_targets_and_leave_evaluation_alone(workdir):
    _, (prefix_train, prefix_valid, prefix_test) = build_data("prefix")
    config, (train, valid, test) = build_data("all_positions")
    rows, prefix_rows = train.dataset.inter_feat, prefix_train.dataset.inter_feat
    targets = rows[target_list_field(config)]
    assert int((targets > 0).sum()) == len(prefix_rows)  # each prefix row's target once
    assert sorted(targets[targets > 0].tolist()) == sorted(prefix_rows["item_id"].tolist())
    last = targets[torch.arange(len(rows)), rows["item_length"] - 1]
    assert torch.equal(last, rows["item_id"])  # item_id = the row's last target, as in a prefix row
    for ours, theirs in ((valid, prefix_valid), (test, prefix_test)):
        for field in ("user_id", "item_id", "item_id_list", "item_length"):
            assert torch.equal(ours.dataset.inter_feat[field], theirs.dataset.inter_feat[field])


def test_train_windows_last_keeps_each_users_most_recent_window(workdir):
    """`train_windows: last` (SASRec+ and BT-SR's reference rows): one row per user, the window that ends with
    the user's last training target, i.e. the first of that user's windows under `all`."""
    _, (every, _, _) = build_data("all_positions", MAX_ITEM_LIST_LENGTH=4)
    config, (last, _, _) = build_data("all_positions", MAX_ITEM_LIST_LENGTH=4, train_windows="last")
    rows, all_rows = last.dataset.inter_feat, every.dataset.inter_feat
    users = all_rows["user_id"].numpy()
    first = np.r_[True, users[1:] != users[:-1]]
    assert len(np.unique(users)) == len(rows) < len(all_rows)  # several windows per user under `all`
    for field in ("user_id", "item_id_list", "item_length", target_list_field(config)):
        assert torch.equal(rows[field], all_rows[field][torch.from_numpy(first)])


def test_every_position_equals_its_prefix_row(workdir):
    """With dropout off, the all-positions output at position j is the prefix model's output for the prefix
    ending there: causal attention, same positions. So the two modes optimise the same predictions."""
    config, (train, _, _) = build_data("all_positions", MAX_ITEM_LIST_LENGTH=50)
    model = SASRec(config, train.dataset).eval()
    rows = train.dataset.inter_feat[:4]
    with torch.no_grad():
        every = model.encode(rows["item_id_list"], rows["item_length"])  # [B L H]
        for b in range(4):
            for j in range(int(rows["item_length"][b])):
                prefix = rows["item_id_list"][b : b + 1].clone()
                prefix[0, j + 1 :] = 0
                last = model.forward(prefix, torch.tensor([j + 1]))
                torch.testing.assert_close(every[b, j], last[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("loss_type", ["CE", "BCE", "BPR", "SCE"])
@pytest.mark.parametrize("train_mode", ["prefix", "all_positions"])
def test_losses_train_in_both_modes(workdir, loss_type, train_mode):
    config = tiny_config(train_mode=train_mode, loss_type=loss_type, bucket_size_y=8, **LEARN)
    result = run_recbole_bt("SASRec", "tiny", [TINY_YAML], config)
    assert_learned(result)


def test_untrained_floor(workdir):
    """What `assert_learned` compares with: the SASRec family untrained (learning_rate 0) at seed 2020."""
    result = run_recbole_bt("SASRec", "tiny", [TINY_YAML], tiny_config(epochs=1, learning_rate=0.0))
    assert result["test_result"]["ndcg@10"] == pytest.approx(UNTRAINED_NDCG10, abs=5e-4)


def test_bce_loss_by_hand(workdir):
    config, (train, _, _) = build_data("prefix", loss_type="BCE", train_neg_sample_num=2)
    model = SASRec(config, train.dataset)
    hidden, targets = torch.randn(3, 8), torch.tensor([1, 2, 3])
    torch.manual_seed(0)
    loss = model.prediction_loss(hidden, targets)
    torch.manual_seed(0)
    negatives = torch.randint(1, model.n_items, (3, 2))
    emb = model.item_embedding.weight
    pos, neg = (hidden * emb[targets]).sum(-1), (hidden[:, None] * emb[negatives]).sum(-1)
    expected = -torch.log(torch.sigmoid(pos)).mean() - torch.log(1 - torch.sigmoid(neg)).sum(-1).mean()
    torch.testing.assert_close(loss, expected)


@pytest.mark.parametrize(
    "model, overrides, message",
    [
        ("SASRec", {"train_mode": "windows"}, r"'train_mode' must be one of \['prefix', 'all_positions'\], got 'windows'"),
        ("GRU4Rec", {"train_mode": "all_positions"}, "GRU4Rec trains on RecBole's prefix rows"),
        ("SASRec", {"train_mode": "all_positions", "train_stride": 0}, "'train_stride' must be an integer in"),
        ("SASRec", {"train_mode": "all_positions", "train_stride": 11}, r"\[1, MAX_ITEM_LIST_LENGTH=10\]"),
        ("SASRec", {"loss_type": "MSE"}, r"'loss_type' must be one of \['CE', 'BCE', 'BPR', 'SCE'\]"),
        ("SASRec", {"loss_type": "SCE", "bucket_size_y": 64}, "larger than the catalog"),
    ],
)
def test_bad_train_settings(workdir, model, overrides, message):
    with pytest.raises((ConfigError, ValueError), match=message):
        run_recbole_bt(model, "tiny", [TINY_YAML], tiny_config(**overrides))
