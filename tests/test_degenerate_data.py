"""Degenerate data (issue 9): a one-line `DegenerateDataError` from `create_dataset` where RecBole fails deep inside
or silently goes on. Hand-made atomic files in tests/fixtures/ (user_id, item_id, timestamp):

    single/    12 users with one interaction each (5 items): no (history, next item) row; RecBole 1.2.1 fails
               with an IndexError in the all-positions rows, or 'num_samples should be a positive integer' (prefix)
    novalid/   30 users with 3 interactions each (30 items): leave-one-out gives no validation row; RecBole skips
               validation silently (no model selection, no early stopping: 'best valid: None')
    twoitems/  12 users alternating between 2 items: a cut-off topk 20 fails at the first evaluation in torch.topk
               ('selected index k out of range'); topk <= 2 runs
    oneitem/   6 users with 4 interactions of the same item: nothing to rank
"""
import logging
import math

import pytest

from conftest import LEARN, TINY_YAML, tiny_config
from recbole_bt.errors import DegenerateDataError
from recbole_bt.quick_start import build_config, run_recbole_bt
from recbole_bt.data.checks import topk_error
from recbole_bt.data.loading import create_dataset

INTER_ONLY = {"load_col": {"inter": ["user_id", "item_id", "timestamp"]}}


def config_of(dataset, model="SASRec", **overrides):
    return build_config(model, dataset, [TINY_YAML], tiny_config(**INTER_ONLY, **overrides))


def degenerate_message(dataset, model="SASRec", **overrides):
    with pytest.raises(DegenerateDataError) as error:
        create_dataset(config_of(dataset, model, **overrides))
    message = str(error.value)
    assert "\n" not in message and dataset in message
    return message


@pytest.mark.parametrize("train_mode", ["all_positions", "prefix"])
def test_users_with_one_interaction_give_no_training_rows(workdir, train_mode):
    message = degenerate_message("single", train_mode=train_mode, topk=[1, 5], valid_metric="NDCG@5")
    assert message.startswith("no training rows for sequential model SASRec: no user of single has 2 or more")


def test_one_line_error_from_a_whole_run(workdir):
    with pytest.raises(DegenerateDataError, match="^no training rows for sequential model SASRec"):
        run_recbole_bt("SASRec", "single", [TINY_YAML], tiny_config(**INTER_ONLY, topk=[1, 5], valid_metric="NDCG@5"))


def test_general_model_on_single_interactions_has_no_validation_rows(workdir):
    message = degenerate_message("single", "BPR", train_neg_sample_args={"distribution": "uniform", "sample_num": 1})
    assert "the validation set of single is empty: under the split {'RS': [0.8, 0.1, 0.1]}" in message
    assert "from 3 interactions on, and the longest here has 1" in message


def test_empty_validation_set_under_leave_one_out(workdir):
    message = degenerate_message("novalid")
    assert message.startswith("the validation set of novalid is empty: under the split {'LS': 'valid_and_test'}")
    assert "from 4 interactions on, and the longest here has 3" in message
    assert "eval_args split {LS: test_only} or eval_step: 0" in message


def test_empty_validation_set_under_a_ratio_split(workdir):
    split = {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "TO", "mode": "full", "group_by": "user"}
    assert "the validation set of novalid is empty" in degenerate_message("novalid", eval_args=split)


@pytest.mark.parametrize(
    "overrides",
    [{"eval_step": 0}, {"eval_args": {"split": {"LS": "test_only"}, "order": "TO", "mode": "full"}}],
)
def test_no_validation_asked_for_is_no_error(workdir, overrides):
    dataset = create_dataset(config_of("novalid", **overrides))
    assert len(dataset.inter_feat) == 90


def test_two_item_catalog_and_a_larger_cut_off(workdir, caplog):
    config = config_of("twoitems")
    with caplog.at_level(logging.WARNING):
        dataset = create_dataset(config)
    error = topk_error(config, dataset.item_num - 1)
    assert isinstance(error, DegenerateDataError)
    assert str(error) == (
        "the catalog of twoitems has 2 items, fewer than the cut-off topk 20: use topk values <= 2 "
        "(e.g. topk: [1, 2], valid_metric: NDCG@2)"
    )
    assert f"{error}: evaluation will fail" in caplog.text
    assert topk_error(config_of("twoitems", topk=[1, 2], valid_metric="NDCG@2"), 2) is None


def test_two_item_catalog_with_a_larger_cut_off_is_refused_before_training(workdir, monkeypatch):
    from recbole.trainer import Trainer as RecBoleTrainer

    trained = []
    monkeypatch.setattr(RecBoleTrainer, "_train_epoch", lambda *a, **k: trained.append(1) or 0.0)
    with pytest.raises(DegenerateDataError, match="fewer than the cut-off topk 20"):
        run_recbole_bt("SASRec", "twoitems", [TINY_YAML], tiny_config(**INTER_ONLY, epochs=1), saved=False)
    assert trained == []


def test_two_item_catalog_runs_with_cut_offs_that_fit(workdir):
    config = tiny_config(**INTER_ONLY, topk=[1, 2], valid_metric="NDCG@2", **LEARN)
    result = run_recbole_bt("SASRec", "twoitems", [TINY_YAML], config, saved=False)
    assert result["test_result"]["hit@2"] == 1.0  # two items, cut-off 2: every target ranks
    # the histories alternate 1, 2, 1...: untrained, both validation targets rank second (NDCG@2 0.631); trained, one first
    assert result["best_valid_score"] == pytest.approx((1 + 1 / math.log2(3)) / 2, abs=1e-4)


def test_one_item_catalog(workdir):
    message = degenerate_message("oneitem", topk=[1], valid_metric="NDCG@1")
    assert message == "the catalog of oneitem has 1 item(s): a recommender needs at least 2 items to rank"


def test_ordinary_data_passes(workdir):
    dataset = create_dataset(build_config("SASRec", "tiny", [TINY_YAML], tiny_config()))
    assert dataset.item_num == 31
