"""`eval_mask_seen`: full ranking without the user's already-seen items, checked by hand and against the raw files."""
import logging
import math

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import FIXTURES, TINY_YAML, tiny_config
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.utils import InputType
from torch import nn

from recbole_bt import ConfigError, register_model
from recbole_bt.data.masking import SEEN_FIELD, describe_protocol, seen_index, seen_positions
from recbole_bt.quick_start import prepare, run_recbole_bt
from recbole_bt.registry import unregister_model

# u1: a b c d e, u2: c a f b, u3: b f e d (one interaction per time step, per user in this order)
HISTORIES = {"u1": "abcde", "u2": "cafb", "u3": "bfed"}
SCORE = {"a": 6.0, "b": 5.0, "c": 4.0, "d": 3.0, "e": 2.0, "f": 1.0}  # the same ranking for everyone: a b c d e f


class FixedScoreRec(SequentialRecommender):
    """Scores every item by SCORE, whatever the sequence: the metrics follow from the masking alone."""

    input_type = InputType.POINTWISE

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        tokens = dataset.field2id_token[dataset.iid_field]
        self.register_buffer("scores", torch.tensor([SCORE.get(t, -1.0) for t in tokens]))
        self.unused = nn.Parameter(torch.zeros(1))

    def calculate_loss(self, interaction):
        return self.unused.sum()

    def predict(self, interaction):
        return self.scores[interaction[self.ITEM_ID]]  # [B]

    def full_sort_predict(self, interaction):
        return self.scores.expand(len(interaction), -1).clone()  # [B N]


@pytest.fixture
def hand_dataset(tmp_path):
    folder = tmp_path / "data" / "seen"
    folder.mkdir(parents=True)
    rows = [(u, item, t) for u, items in HISTORIES.items() for t, item in enumerate(items)]
    with open(folder / "seen.inter", "w") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        f.writelines(f"{u}\t{i}\t{t}\n" for u, i, t in rows)
    register_model(FixedScoreRec)
    yield str(tmp_path / "data")
    unregister_model("FixedScoreRec")


def evaluate(data_path, mask, **overrides):
    config = {"data_path": data_path, "eval_mask_seen": mask, "MAX_ITEM_LIST_LENGTH": 2, "metrics": ["Hit", "NDCG"],
              "topk": [1, 3, 5], "valid_metric": "NDCG@5", "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
              "show_progress": False, **overrides}  # fmt: skip
    config, _, valid_data, test_data, trainer = prepare("FixedScoreRec", "seen", None, config)
    return (trainer.evaluate(data, load_best_model=False) for data in (valid_data, test_data))


def ndcg(rank):
    return 1 / math.log2(rank + 1)


def test_masked_and_unmasked_metrics_by_hand(workdir, hand_dataset):
    """Test targets e, b, d. Unmasked (a b c d e f for all): ranks 5, 2, 4. Masked, with the whole history
    before the target removed, including what MAX_ITEM_LIST_LENGTH = 2 cuts from the input: u1 (a b c d seen)
    ranks e 1st, u2 (c a f) ranks b 1st, u3 (b f e) ranks d 3rd."""
    valid, test = evaluate(hand_dataset, mask=False)
    assert test["hit@1"] == 0 and test["hit@3"] == pytest.approx(1 / 3, abs=1e-4) and test["hit@5"] == 1
    assert test["ndcg@5"] == pytest.approx((ndcg(5) + ndcg(2) + ndcg(4)) / 3, abs=1e-4)
    valid, test = evaluate(hand_dataset, mask=True)
    assert test["hit@1"] == pytest.approx(2 / 3, abs=1e-4) and test["hit@3"] == 1
    assert test["ndcg@5"] == pytest.approx((1 + 1 + ndcg(3)) / 3, abs=1e-4)
    # validation targets d, f, e with a b c / c a / b f seen: ranks 1 (d e f), 4 (b d e f), 4 (a c d e)
    assert valid["hit@1"] == pytest.approx(1 / 3, abs=1e-4) and valid["hit@3"] == pytest.approx(1 / 3, abs=1e-4)
    assert valid["ndcg@5"] == pytest.approx((1 + ndcg(4) + ndcg(4)) / 3, abs=1e-4)


def test_seen_positions_by_hand():
    """Rows of users 2 and 1 (interleaved), L = 2: user 1 = 10 11 12 13, user 2 = 20 21 22."""
    uid = np.array([2, 1, 1, 2, 1])
    target = np.array([21, 11, 12, 22, 13])
    item_list = np.array([[20, 0], [10, 0], [10, 11], [20, 21], [11, 12]])
    length = np.array([1, 1, 2, 2, 2])
    start, flat, end = seen_positions(uid, target, item_list, length)
    assert flat.tolist() == [10, 11, 12, 13, 20, 21, 22] and start[1:3].tolist() == [0, 4]
    seen = [flat[start[u] : e].tolist() for u, e in zip(uid, end)]
    assert seen == [[20], [10], [10, 11], [20, 21], [10, 11, 12]]  # the last row: beyond its 2-item input


@pytest.mark.parametrize("split", [{"LS": "valid_and_test"}, {"GTS": 0.8}])
def test_mask_is_every_earlier_interaction_of_the_raw_file(workdir, split):
    """On tests/fixtures/tiny (MAX_ITEM_LIST_LENGTH 10, histories up to 15, repeated items): each evaluated row
    masks exactly the items its user interacted with before the target, read from the .inter file, in both splits
    (a validation target is its user's second-to-last interaction, a test target the last)."""
    config, _, valid_data, test_data, _ = prepare("SASRec", "tiny", [TINY_YAML], tiny_config(
        eval_mask_seen=True, eval_args={"split": split, "order": "TO", "mode": "full", "group_by": "user"}))  # fmt: skip
    raw = pd.read_csv(f"{FIXTURES}/tiny/tiny.inter", sep="\t")
    raw.columns = [c.split(":")[0] for c in raw.columns]
    dataset = test_data._dataset
    uid_tokens, iid_tokens = dataset.field2id_token["user_id"], dataset.field2id_token["item_id"]
    checked = 0
    for back, data in ((2, valid_data), (1, test_data)):
        for interaction, (rows, items), _, positive_i in data:
            for r in range(len(interaction)):
                user = raw[raw.user_id.astype(str) == uid_tokens[interaction["user_id"][r]]]
                user = user.sort_values("timestamp", kind="stable").item_id.astype(str)
                assert user.iloc[-back] == iid_tokens[positive_i[r]]
                expected = sorted(set(user.iloc[: len(user) - back]))
                assert sorted(set(iid_tokens[items[rows == r]].tolist())) == expected
                checked += 1
    assert checked == len(valid_data._dataset) + len(test_data._dataset) > 0
    long = (test_data._dataset.inter_feat[SEEN_FIELD] - dataset.seen_start[test_data._dataset.inter_feat["user_id"]])
    assert long.max() > config["MAX_ITEM_LIST_LENGTH"]  # the mask reaches beyond the model's input


def test_seen_index_batches_rows():
    class Data:
        uid_field = "user_id"
        seen_start = torch.tensor([0, 0, 3, 5])
        seen_items = torch.tensor([4, 5, 6, 7, 8])

    rows, items = seen_index(Data, {"user_id": torch.tensor([2, 1]), SEEN_FIELD: torch.tensor([4, 2])})
    assert rows.tolist() == [0, 1, 1] and items.tolist() == [7, 4, 5]


def test_protocol_is_named_in_logs_and_results(workdir, caplog):
    caplog.set_level(logging.INFO)
    result = run_recbole_bt("SASRec", "tiny", [TINY_YAML], tiny_config(eval_mask_seen=True, epochs=1))
    assert result["protocol"] == (
        "leave-one-out (last item test, second-to-last validation), full ranking of the catalog, "
        "seen items masked (eval_mask_seen)"
    )
    text = caplog.text
    assert "valid result (leave-one-out, full ranking, seen items masked)" in text
    assert "protocol: leave-one-out" in text and "seen items masked" in text.split("results")[-1]
    config = {"eval_args": {"split": {"GTS": 0.95}, "mode": "full"}, "eval_mask_seen": False}
    assert describe_protocol(config, short=True) == "GTS 0.95, full ranking, seen items not masked"


@pytest.mark.parametrize("value", [1, "yes", None])
def test_bad_values_are_one_line(workdir, value):
    with pytest.raises(ConfigError, match=r"'eval_mask_seen' must be one of \[True, False\]"):
        run_recbole_bt("SASRec", "tiny", [TINY_YAML], tiny_config(eval_mask_seen=value))


def test_sampled_evaluation_refuses_masking(workdir):
    overrides = dict(eval_mask_seen=True, eval_args={"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "uni10"})
    with pytest.raises(ConfigError, match="eval_mask_seen masks seen items in the full ranking"):
        run_recbole_bt("SASRec", "tiny", [TINY_YAML], tiny_config(**overrides))


def test_epochs_run_and_best_epoch_are_reported(workdir, hand_dataset, caplog):
    """FixedScoreRec scores the same every epoch: RecBole counts a tie as an improvement, so the best is the last."""
    caplog.set_level(logging.INFO)
    config = {"data_path": hand_dataset, "eval_mask_seen": True, "MAX_ITEM_LIST_LENGTH": 2, "epochs": 3,
              "topk": [1, 3, 5], "valid_metric": "NDCG@5", "load_col": {"inter": ["user_id", "item_id", "timestamp"]}, "show_progress": False}  # fmt: skip
    result = run_recbole_bt("FixedScoreRec", "seen", None, config)
    assert (result["epochs_run"], result["best_epoch"]) == (3, 3)
    assert "epochs: 3 run, the best validation after epoch 3 (RecBole's epoch 2)" in caplog.text


def test_reloaded_checkpoint_evaluates_with_its_protocol(workdir):
    """load_data_and_model rebuilds the masked loaders from the checkpoint's config: the same masked test result."""
    import glob

    from recbole_bt.data.masking import SeenMaskFullSortEvalDataLoader
    from recbole_bt.quick_start import load_data_and_model
    from recbole_bt.registry import get_trainer

    result = run_recbole_bt("SASRec", "tiny", [TINY_YAML], tiny_config(eval_mask_seen=True, epochs=1))
    [path] = glob.glob("saved/*.pth")
    config, model, _, _, _, test_data = load_data_and_model(path)
    assert isinstance(test_data, SeenMaskFullSortEvalDataLoader)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    assert dict(trainer.evaluate(test_data, load_best_model=False)) == dict(result["test_result"])
