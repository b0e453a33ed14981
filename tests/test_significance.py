"""Paired tests over users and Holm's correction, by hand and against scipy on a 4-user, 2-model example."""
import math

import pytest
from scipy import stats

from recbole_bt.evaluator.significance import (
    bracket, compare_runs, holm, paired_interval, paired_test, per_user_metrics, stars)

# 4 users, test-target ranks under a model and a baseline
MODEL_RANKS = [1, 3, 12, 2]
BASE_RANKS = [2, 9, 40, 2]


def test_per_user_metrics_by_hand():
    m = per_user_metrics(MODEL_RANKS, ks=(10,))
    assert m["hit@10"].tolist() == [1, 1, 0, 1]
    assert m["ndcg@10"] == pytest.approx([1.0, 1 / math.log2(4), 0.0, 1 / math.log2(3)])
    assert per_user_metrics([math.inf], ks=(1,))["ndcg@1"].tolist() == [0.0]


def test_paired_tests_match_scipy():
    a = per_user_metrics(MODEL_RANKS)["ndcg@10"]
    b = per_user_metrics(BASE_RANKS)["ndcg@10"]
    # differences: 1 - 1/log2(3), 1/2 - 1/log2(10), 0, 0: Wilcoxon drops the zero pairs
    assert paired_test(a, b, "wilcoxon") == pytest.approx(stats.wilcoxon(a[:2], b[:2]).pvalue)
    assert paired_test(a, b, "ttest") == pytest.approx(stats.ttest_rel(a, b).pvalue)
    d = a - b
    t = d.mean() / (d.std(ddof=1) / math.sqrt(4))  # the paired t statistic by hand, 3 degrees of freedom
    assert paired_test(a, b, "ttest") == pytest.approx(2 * stats.t.sf(abs(t), 3))
    assert paired_test(a, a, "wilcoxon") == 1.0 and paired_test(a, a, "ttest") == 1.0
    with pytest.raises(NotImplementedError, match="test must be one of"):
        paired_test(a, b, "sign")


def test_paired_interval_by_hand_and_against_scipy():
    """Differences 0.3, 0.5, 0, 0.2: mean 0.25, sample std sqrt(0.13 / 3), 3 degrees of freedom, t(0.975) 3.1824."""
    a, b = [0.5, 1.0, 0.0, 0.3], [0.2, 0.5, 0.0, 0.1]
    mean, low, high = paired_interval(a, b)
    half = 3.182446 * math.sqrt(0.13 / 3) / 2
    assert (mean, low, high) == pytest.approx((0.25, 0.25 - half, 0.25 + half), abs=1e-6)
    assert (low, high) == pytest.approx(stats.t.interval(0.95, 3, loc=0.25, scale=stats.sem([0.3, 0.5, 0, 0.2])))
    assert paired_interval(a, a) == (0.0, 0.0, 0.0) and paired_interval([1.0, 2.0], [0.0, 1.0]) == (1.0, 1.0, 1.0)
    # relative to the baseline's mean over the pooled (user, seed) pairs: b's mean is 0.2
    per_seed = {"A": {1: dict(zip("wxyz", a))}, "B": {1: dict(zip("wxyz", b))}}
    change, low_r, high_r = compare_runs(per_seed, [("A", "B")])[1][("A", "B")]
    assert (change, low_r, high_r) == pytest.approx((1.25, low / 0.2, high / 0.2))
    assert bracket((change, low_r, high_r)) == f" [{100 * low / 0.2:+.1f}%, {100 * high / 0.2:+.1f}%]"
    assert compare_runs(per_seed, [("A", "C")]) == ({}, {}) and bracket(None) == ""


def test_holm_by_hand():
    # sorted 0.01, 0.02, 0.04 -> x3, x2, x1 = 0.03, 0.04, 0.04 (kept monotone); back in the given order
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.3, 0.5]) == pytest.approx([0.6, 0.6])  # 0.6, then max(0.6, 0.5)
    assert holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])  # capped at 1
    # 0.01 x 3 = 0.03 stays significant; 0.03 x 2 = 0.06 and 0.04 x 1 -> 0.06 (monotone) do not
    assert holm([0.01, 0.03, 0.04]) == pytest.approx([0.03, 0.06, 0.06])
    assert [stars(p) for p in holm([0.01, 0.03, 0.04])] == ["*", "", ""] and stars(float("nan")) == ""


def test_per_user_from_recbole_topk_matches_recbole_and_the_ranks(workdir):
    """A trained-for-one-epoch SASRec on tiny: the mean of the per-user values is RecBole's metric, and each
    user's value is the one its target's rank gives."""
    from conftest import TINY_YAML, tiny_config

    from recbole_bt.evaluator.significance import per_user_from_topk
    from recbole_bt.quick_start import prepare

    config, train, _, test, trainer = prepare("SASRec", "tiny", [TINY_YAML], tiny_config(
        metrics=["Hit", "NDCG"], topk=[1, 5, 10], valid_metric="ndcg@10", epochs=1))  # fmt: skip
    trainer.fit(train, saved=False, show_progress=False)
    trainer.eval_collector.keep_per_user = True
    result = trainer.evaluate(test, load_best_model=False)
    per_user = trainer.eval_collector.per_user
    assert len(per_user["user"]) == len(test.dataset.inter_feat) == len(set(per_user["user"].tolist()))
    values = per_user_from_topk(per_user["topk"], ks=(1, 5, 10))
    for k in (1, 5, 10):
        assert values[f"ndcg@{k}"].mean() == pytest.approx(result[f"ndcg@{k}"], abs=1e-4)
        assert values[f"hit@{k}"].mean() == pytest.approx(result[f"hit@{k}"], abs=1e-4)
    hits = per_user["topk"][:, :-1].numpy()
    ranks = [1 + row.argmax() if row.any() else math.inf for row in hits]
    assert values["ndcg@10"] == pytest.approx(per_user_metrics(ranks)["ndcg@10"])
    assert values["ndcg@10"].max() > 0  # some user hit: the comparison is not vacuous
