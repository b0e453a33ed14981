"""Paired significance over test users, for comparing a model with a baseline on the same users.

- `per_user_metrics(ranks, ks)`: each user's NDCG@K and HR@K from the rank of their single test target (full
  ranking, one target per user as in leave-one-out and the global temporal split): HR@K = 1 if rank <= K,
  NDCG@K = 1 / log2(rank + 1) if rank <= K, else 0 (RecBole's definitions for one target).
- `paired_test(a, b, test)`: the two-sided p-value of the paired difference a - b over the same users:
  ``wilcoxon`` (signed-rank, zero differences dropped, scipy's default) or ``ttest`` (paired t-test).
- `holm(p_values)`: Holm's step-down adjustment for several comparisons (family-wise error rate).
- `paired_interval(a, b, level)`: the mean paired difference a - b and its t-interval; `compare_runs` gives it
  for labels against baselines, relative to the baseline's mean (what a claimed +x% must fall inside).
- `per_user_record(per_user, ks)`: a run's per-user values as plain lists (for a result JSON);
  `pooled_pairs(runs, base)`, `compare_runs(per_seed, pairs)`: the tests and intervals of labels against baselines.

Runs over several seeds are pooled: the pairs are (user, seed), each seed's run of the model against the same
seed's run of the baseline.
"""
import math

import numpy as np

TESTS = {"wilcoxon": "Wilcoxon signed-rank", "ttest": "paired t-test"}


def per_user_metrics(ranks, ks=(10,)):
    """{"ndcg@K": [U], "hit@K": [U]} from `ranks` [U], the 1-based rank of each user's target (inf: not ranked)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    out = {}
    for k in ks:
        hit = ranks <= k
        out[f"hit@{k}"] = hit.astype(np.float64)
        out[f"ndcg@{k}"] = np.where(hit, 1.0 / np.log2(np.where(hit, ranks, 1.0) + 1.0), 0.0)
    return out


def per_user_from_topk(topk, ks=(10,)):
    """{"ndcg@K": [U], "hit@K": [U]} from RecBole's `rec.topk` [U, K_max + 1] (hit flags of the top K_max, then
    the number of targets): RecBole's own per-user NDCG and Hit (`metric_info`, before it averages)."""
    from recbole.evaluator.metrics import NDCG, Hit

    topk = np.asarray(topk)
    pos_index, pos_len = topk[:, :-1].astype(bool), topk[:, -1]
    ndcg, hit = NDCG.metric_info(None, pos_index, pos_len), Hit.metric_info(None, pos_index)  # [U K_max]
    out = {}
    for k in ks:
        out[f"hit@{k}"] = hit[:, k - 1].astype(np.float64)
        out[f"ndcg@{k}"] = ndcg[:, k - 1].astype(np.float64)
    return out


def per_user_record(per_user, ks=(10,)):
    """{"user": [U], "ndcg@K": [U], "hit@K": [U]} as lists, from a Collector's `per_user` (``keep_per_user``)."""
    values = per_user_from_topk(per_user["topk"], ks=ks)
    return {"user": per_user["user"].tolist(), **{k: v.round(6).tolist() for k, v in values.items()}}


def pooled_pairs(runs, base):
    """(model values, baseline values) over the (user, seed) pairs both have: `runs` and `base` are
    {seed: {user: value}} (each seed's run of the model, of the baseline)."""
    pairs = [(v, base[seed][u]) for seed, users in runs.items() if seed in base for u, v in users.items() if u in base[seed]]
    return tuple(map(list, zip(*pairs))) if pairs else ([], [])


def compare_runs(per_seed, pairs, test="wilcoxon", level=0.95):
    """({(label, baseline): Holm-adjusted p}, {(label, baseline): (change, low, high)}) for the (label, baseline)
    `pairs` that share test users, where `per_seed` is {label: {seed: {user: value}}}, each pair's values pooled
    once: the paired `test` (Holm over all the pairs tested), and the mean paired difference with its `level`
    t-interval, each as a fraction of the baseline's mean over the same pairs (NaN when that mean is 0; per
    comparison, not adjusted for several)."""
    raw, intervals = {}, {}
    for label, baseline in pairs:
        a, b = pooled_pairs(per_seed.get(label, {}), per_seed.get(baseline, {}))
        if a:
            raw[(label, baseline)] = paired_test(a, b, test)
            scale = float(np.mean(b))
            intervals[(label, baseline)] = tuple(v / scale if scale else math.nan for v in paired_interval(a, b, level))
    return dict(zip(raw, holm(list(raw.values())))), intervals


def paired_interval(a, b, level=0.95):
    """(mean, low, high) of the paired difference a - b [N]: its mean and the `level` t-interval of that mean
    (N - 1 degrees of freedom); a difference that never varies has a zero-width interval."""
    from scipy import stats

    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    mean = float(diff.mean())
    if diff.size < 2 or not np.any(diff != diff[0]):
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + level / 2, diff.size - 1) * diff.std(ddof=1) / math.sqrt(diff.size))
    return mean, mean - half, mean + half


def paired_test(a, b, test="wilcoxon"):
    """Two-sided p-value that the paired values `a` and `b` [N] (the same users) differ; 1.0 when they never do."""
    from scipy import stats

    if test not in TESTS:
        raise NotImplementedError(f"test must be one of {list(TESTS)}, got {test!r}")
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired_test needs two vectors over the same users, got shapes {a.shape} and {b.shape}")
    diff = a - b
    if not np.any(diff != 0):
        return 1.0
    if test == "wilcoxon":
        return float(stats.wilcoxon(a, b, zero_method="wilcox", alternative="two-sided").pvalue)
    if np.all(diff == diff[0]):  # a constant nonzero difference: no variance, certainly different
        return 0.0
    return float(stats.ttest_rel(a, b).pvalue)


def holm(p_values):
    """Holm-adjusted p-values, in the given order: the i-th smallest p times (m - i + 1), kept monotone, at most 1."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for i, index in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


def bracket(interval):
    """' [low%, high%]' of a `compare_runs` interval (fractions), '' without one."""
    if interval is None or any(math.isnan(v) for v in interval):
        return ""
    return f" [{100 * interval[1]:+.1f}%, {100 * interval[2]:+.1f}%]"


def stars(p, alpha=0.05):
    """'*' when the (adjusted) p-value is below `alpha`, else ''; NaN (no test) gives ''."""
    return "*" if p is not None and not math.isnan(p) and p < alpha else ""
