"""recbole_bt's metrics (coverage@K, effective_rank, hit_head/mid/tail@K): hand-computed values, registration
with RecBole's evaluator, collection during evaluation, and end-to-end runs of our models and RecBole's."""
import math

import numpy as np
import pytest
import torch
from recbole.evaluator import Evaluator
from recbole.evaluator.collector import DataStruct
from recbole.evaluator.metrics import ItemCoverage

from conftest import TINY_YAML, tiny_config
from recbole_bt import ConfigError
from recbole_bt.evaluator import (
    Collector,
    bucket_hit_rates,
    coverage,
    effective_rank,
    popularity_buckets,
    results_table,
    training_item_counts,
)
from recbole_bt.evaluator.embedding import sequence_embedding
from recbole_bt.quick_start import build_config, prepare, run_recbole_bt

NEW_METRICS = ["Coverage", "Effective_Rank", "Hit_Head", "Hit_Mid", "Hit_Tail"]

# Three users' top-3 lists over a catalog of N = 5 items (ids 1..5)
TOP3 = np.array([[1, 2, 3], [2, 3, 4], [2, 1, 3]])


def _config(topk, metrics, **extra):
    return {"topk": topk, "metrics": metrics, "metric_decimal_place": 6, **extra}


def test_coverage_by_hand():
    assert coverage(TOP3[:, :1], 5) == 2 / 5  # {1, 2}
    assert coverage(TOP3[:, :2], 5) == 3 / 5  # {1, 2, 3}
    assert coverage(TOP3, 5) == 4 / 5  # {1, 2, 3, 4}: item 5 is never recommended


def test_coverage_metric_and_recboles_item_coverage():
    """RecBole's ItemCoverage counts the same union but over N + 1 ids (its item count includes padding 0)."""
    data = DataStruct()
    data.set("rec.items", torch.tensor(TOP3))
    data.set("data.num_items", 6)  # RecBole's item_num: 5 items + [PAD]
    config = _config([1, 2, 3], ["Coverage", "ItemCoverage"])
    ours = Evaluator(config).evaluate(data)
    assert [ours[f"coverage@{k}"] for k in (1, 2, 3)] == [0.4, 0.6, 0.8]
    recbole = ItemCoverage(config).calculate_metric(data)
    for k in (1, 2, 3):
        assert recbole[f"itemcoverage@{k}"] == pytest.approx(ours[f"coverage@{k}"] * 5 / 6, abs=1e-6)


@pytest.mark.parametrize(
    "matrix, expected",
    [
        (np.diag([3.0, 3.0, 3.0, 3.0]), 4.0),  # equal singular values: rank D
        (np.diag([5.0, 0.0, 0.0, 0.0]), 1.0),  # one non-zero: 1
        (np.diag([1.0, 2.0]), math.exp(-(1 / 3 * math.log(1 / 3) + 2 / 3 * math.log(2 / 3)))),  # p = (1/3, 2/3)
        (np.kron(np.eye(3), np.ones((2, 1))), 3.0),  # 6 users x 3 dims, orthogonal columns of equal norm
        (np.zeros((4, 3)), 0.0),
    ],
)
def test_effective_rank_by_hand(matrix, expected):
    assert effective_rank(matrix) == pytest.approx(expected, rel=1e-12)


def test_centred_effective_rank_by_hand():
    """Rows (1, 0) and (1, 2): uncentred, two directions; centred, the rows are (0, -1) and (0, 1), one."""
    x = np.array([[1.0, 0.0], [1.0, 2.0]])
    s = np.linalg.svd(x, compute_uv=False)
    p = s / s.sum()
    assert effective_rank(x) == pytest.approx(math.exp(-(p * np.log(p)).sum()), rel=1e-12)
    assert effective_rank(x, centred=True) == pytest.approx(1.0, rel=1e-12)
    # an offset shared by every row is a direction of its own, uncentred only
    y = np.random.default_rng(1).normal(size=(40, 3))
    assert effective_rank(y + 10, centred=True) == pytest.approx(effective_rank(y, centred=True), rel=1e-9)
    assert effective_rank(y + 10) < effective_rank(y + 10, centred=True)


def test_effective_rank_ignores_row_order_and_scale():
    x = np.random.default_rng(0).normal(size=(50, 8))
    assert effective_rank(3 * x[::-1]) == pytest.approx(effective_rank(x), rel=1e-9)


# Training interactions per item id (index 0 = padding): 12 in all, so each bucket holds 4
COUNTS = np.array([0, 4, 2, 2, 1, 1, 1, 1, 0])


def test_popularity_buckets_by_hand():
    # laid end to end from the most popular: item 1 takes slots 0-3 (head), items 2, 3 slots 4-7 (mid),
    # items 4-7 slots 8-11 (tail); item 8 was never trained on: tail. Padding: -1.
    assert popularity_buckets(COUNTS).tolist() == [-1, 0, 1, 1, 2, 2, 2, 2, 2]


def test_popularity_bucket_of_a_straddling_item_is_where_it_starts():
    # total 12: item 2 (5 interactions) starts in slot 0 (head); item 1 (4) starts in slot 5 (mid, 5*3//12 = 1);
    # item 3 (3) starts in slot 9 (tail)
    assert popularity_buckets([0, 4, 5, 3]).tolist() == [-1, 1, 0, 2]


def test_bucket_hit_rates_by_hand():
    buckets = popularity_buckets(COUNTS)
    items = np.array([1, 2, 5, 8, 3])  # targets of five evaluated users
    ranks = np.array([0, 3, 20, 1, 7])  # where each target ranked (0 = first)
    assert bucket_hit_rates(ranks, buckets[items], 0, [1, 5]) == {1: 1.0, 5: 1.0}  # item 1
    assert bucket_hit_rates(ranks, buckets[items], 1, [1, 5]) == {1: 0.0, 5: 0.5}  # items 2 (rank 3), 3 (rank 7)
    assert bucket_hit_rates(ranks, buckets[items], 2, [1, 5]) == {1: 0.0, 5: 0.5}  # items 5 (absent), 8 (rank 1)
    assert all(math.isnan(v) for v in bucket_hit_rates(ranks[:1], buckets[items][:1], 2, [1, 5]).values())


class _TrainData:
    """What Collector.data_collect reads of a training dataloader."""

    def __init__(self, counts):
        self.dataset = type("D", (), {"item_counts": counts, "num": lambda self, field: len(counts)})()


def test_collector_ranks_targets_and_metrics_by_bucket(workdir):
    config = build_config("SASRec", "tiny", [TINY_YAML], tiny_config(metrics=["Hit", "Hit_Head", "Hit_Mid", "Hit_Tail"], topk=[1, 2], valid_metric="hit@1"))
    collector = Collector(config)
    collector.data_collect(_TrainData(COUNTS))
    scores = torch.tensor(  # 3 users x 9 item ids
        [
            [0, 9, 8, 7, 0, 0, 0, 0, 0],  # target 1 ranks first
            [0, 9, 1, 8, 0, 0, 0, 0, 0],  # target 2 ranks third: no hit at 1 or 2
            [0, 1, 2, 3, 4, 5, 6, 7, 9],  # target 7 ranks second
        ],
        dtype=torch.float,
    )
    collector.eval_batch_collect(scores, None, torch.arange(3), torch.tensor([1, 2, 7]))
    struct = collector.get_data_struct()
    assert struct.get("rec.positive_rank").tolist() == [0, 2, 1]  # 2 = max(topk): not in the top 2
    result = Evaluator(config).evaluate(struct)
    assert (result["hit_head@1"], result["hit_mid@2"], result["hit_tail@1"], result["hit_tail@2"]) == (1, 0, 0, 1)
    assert result["hit@2"] == pytest.approx(2 / 3, abs=1e-4)
    assert "rec.positive_rank" not in collector.data_struct  # reset for the next evaluation, like RecBole's keys
    assert "data.item_bucket" in collector.data_struct  # kept: computed once per fit


def test_training_counts_include_each_users_first_item(workdir):
    config = build_config("SASRec", "tiny", [TINY_YAML], tiny_config(train_mode="prefix"))
    config_all = build_config("SASRec", "tiny", [TINY_YAML], tiny_config(train_mode="all_positions"))
    from recbole_bt.data import data_preparation
    from recbole_bt.data.loading import create_dataset

    counts = {}
    for name, c in (("prefix", config), ("all_positions", config_all)):
        dataset = create_dataset(c)
        train, _, _ = data_preparation(c, dataset)
        counts[name] = training_item_counts(train.dataset)
        n_users = len(np.unique(train.dataset.inter_feat[c["USER_ID_FIELD"]].numpy()))
    assert counts["prefix"].tolist() == counts["all_positions"].tolist()
    # every user's training history: all interactions but the last two (validation, test targets)
    inter = np.loadtxt(f"{tiny_config()['data_path']}/tiny/tiny.inter", skiprows=1, usecols=0)
    _, per_user = np.unique(inter, return_counts=True)
    assert counts["prefix"].sum() == (per_user - 2).sum() and n_users == len(per_user)


def test_metric_names_are_registered_with_recbole(workdir):
    config = build_config("SASRec", "tiny", [TINY_YAML], tiny_config(metrics=NEW_METRICS, valid_metric="hit_tail@10"))
    assert config["valid_metric_bigger"] is True
    with pytest.raises(ConfigError, match="no metric named 'Coverag'"):
        build_config("SASRec", "tiny", [TINY_YAML], tiny_config(metrics=["Coverag"]))


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"metrics": ["Hit", "Coverage"]}, r"valid_metric 'NDCG@10' is not computed: metrics are \['Hit', 'Coverage'\]"),
        ({"valid_metric": "NDCG@7"}, r"valid_metric 'NDCG@7': the cut-off 7 is not in topk \[1, 5, 10, 20\]"),
    ],
)
def test_valid_metric_that_is_not_computed_is_refused_before_training(workdir, settings, message):
    with pytest.raises(ConfigError, match=message):
        build_config("SASRec", "tiny", [TINY_YAML], tiny_config(**settings))


def _metrics_run(model, **extra):
    metrics = ["Hit", "NDCG", "ItemCoverage"] + NEW_METRICS
    return run_recbole_bt(model, "tiny", [TINY_YAML], tiny_config(metrics=metrics, topk=[1, 10], epochs=1, **extra))


@pytest.mark.parametrize("model", ["SASRec", "BTSRec", "GRU4Rec"])  # ours, and RecBole's with RecBole's trainer
def test_sequential_models_report_every_new_metric(workdir, model):
    result = _metrics_run(model)
    for split in ("best_valid_result", "test_result"):
        values = result[split]
        for key in ("coverage@10", "itemcoverage@10", "effective_rank", "hit_head@10", "hit_mid@1", "hit_tail@10"):
            assert key in values and not math.isnan(values[key])
        assert 1 < values["effective_rank"] <= 8  # hidden_size 8
        assert 0 < values["coverage@1"] <= values["coverage@10"] <= 1


def test_general_model_effective_rank_uses_its_user_embeddings(workdir):
    result = run_recbole_bt(
        "BPR", "tiny", [TINY_YAML],
        tiny_config(metrics=["Recall", "Coverage", "Effective_Rank", "Effective_Rank_Centred", "Hit_Head"], topk=[10], epochs=1, valid_metric="recall@10",
                    embedding_size=8, train_neg_sample_args={"distribution": "uniform", "sample_num": 1}),
    )  # fmt: skip
    assert 1 < result["test_result"]["effective_rank"] <= 8
    assert 1 < result["test_result"]["effective_rank_centred"] <= 8


def test_effective_rank_reuses_the_forward_pass_of_prediction(workdir, monkeypatch):
    config, train, valid, test, trainer = prepare("SASRec", "tiny", [TINY_YAML], tiny_config(metrics=["Hit", "Effective_Rank", "Effective_Rank_Centred"], topk=[10], valid_metric="hit@10"))
    model = trainer.model
    calls = []
    original = type(model).forward
    monkeypatch.setattr(type(model), "forward", lambda self, *a: calls.append(1) or original(self, *a))
    result = trainer.evaluate(test, load_best_model=False)
    assert len(calls) == len(test)  # one encoder pass per batch, as without the metric
    with torch.no_grad():
        embeddings = torch.cat([sequence_embedding(model, batch[0]) for batch in test])
    assert result["effective_rank"] == pytest.approx(effective_rank(embeddings), abs=1e-4)
    assert result["effective_rank_centred"] == pytest.approx(effective_rank(embeddings, centred=True), abs=1e-4)


def test_embeddings_are_collected_only_when_asked(workdir, monkeypatch):
    config, train, valid, test, trainer = prepare("SASRec", "tiny", [TINY_YAML], tiny_config(metrics=["Hit"], topk=[10], valid_metric="hit@10"))
    monkeypatch.setattr(trainer.eval_collector, "embedding_collect", lambda e: pytest.fail("collected"))
    trainer.evaluate(test, load_best_model=False)


def test_model_without_a_flat_embedding_is_a_clear_error(workdir):
    # RecBole's BERT4Rec: forward(item_seq) -> [B L H]
    config, train, valid, test, trainer = prepare(
        "BERT4Rec", "tiny", [TINY_YAML], tiny_config(metrics=["Hit", "Effective_Rank"], topk=[10], valid_metric="hit@10", loss_type="CE")
    )
    with pytest.raises(ConfigError, match=r"effective_rank needs one embedding per user, and BERT4Rec.forward\(item_seq, item_seq_len\) fails.*sequence_embedding"):
        trainer.evaluate(test, load_best_model=False)


def test_forward_that_returns_every_position_is_a_clear_error(workdir, monkeypatch):
    config, train, valid, test, trainer = prepare("SASRec", "tiny", [TINY_YAML], tiny_config(metrics=["Hit", "Effective_Rank", "Effective_Rank_Centred"], topk=[10], valid_metric="hit@10"))
    monkeypatch.setattr(type(trainer.model), "forward", lambda self, seq, length: self.encode(seq, length))  # [B L H]
    monkeypatch.setattr(type(trainer.model), "full_sort_predict", lambda self, inter: torch.zeros(len(inter), self.n_items))
    with pytest.raises(ConfigError, match=r"needs one embedding per user, \[40, dim\], but SASRec.forward\(item_seq, item_seq_len\) returns \(40, 10, 8\)"):
        trainer.evaluate(test, load_best_model=False)


def test_bucket_metrics_before_fit_say_what_is_missing(workdir):
    config, train, valid, test, trainer = prepare("SASRec", "tiny", [TINY_YAML], tiny_config(metrics=["Hit", "Hit_Tail"], topk=[10], valid_metric="hit@10"))
    with pytest.raises(ValueError, match="needs 'data.item_bucket'.*data_collect"):
        trainer.evaluate(test, load_best_model=False)
    trainer.eval_collector.data_collect(train)
    assert "hit_tail@10" in trainer.evaluate(test, load_best_model=False)


def test_results_table():
    table = results_table(
        {"best valid": {"hit@1": 0.025, "hit@10": 0.375, "effective_rank": 6.63381}, "test": {"hit@1": 0.05, "hit@10": 0.35}}
    )
    assert table.splitlines() == [
        "metric          best valid                  test",
        "                    @1     @10   value      @1     @10  value",
        "hit             0.0250  0.3750          0.0500  0.3500",
        "effective_rank                  6.6338                      -",
    ]
