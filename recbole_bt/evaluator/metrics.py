"""The metrics BT-SR reports beyond accuracy, as RecBole metric classes (SPEC section 5).

- `Coverage` -> `coverage@K`: distinct items in all evaluated users' top-K lists / number of items.
- `EffectiveRank` -> `effective_rank`: exp of the entropy of the normalised singular values of the evaluated
  users' sequence embeddings [n_users, D] (Roy & Vetterli 2007; BT-SR Eq. 9).
- `EffectiveRankCentred` -> `effective_rank_centred`: the same of the embeddings minus their mean (the singular
  values of PCA, as BT-SR's reference code computes it); a shared offset counts as one direction in the first.
- `HitHead`, `HitMid`, `HitTail` -> `hit_head@K`, `hit_mid@K`, `hit_tail@K`: hit rate over the evaluated
  (user, target) pairs whose target lies in that popularity bucket (three buckets of equal total training
  interactions, `popularity_buckets`).

Each metric is a plain function plus a thin class; `recbole_bt.evaluator.register_metrics` makes the classes
usable by name in RecBole's `metrics:` list. The data they need that RecBole does not collect
(`rec.positive_rank`, `rec.positive_item`, `data.item_bucket`, `model.sequence_embedding`) is collected by
`recbole_bt.evaluator.Collector`, which recbole_bt's trainers use for every model.
"""
import numpy as np
import torch
from recbole.evaluator.base_metric import AbstractMetric
from recbole.evaluator.metrics import ItemCoverage
from recbole.utils import EvaluatorType

BUCKETS = ("head", "mid", "tail")


def coverage(item_matrix, n_items):
    """|union of the rows of `item_matrix` [U, K]| / `n_items`, not counting the padding id 0."""
    recommended = np.unique(item_matrix)
    return int((recommended > 0).sum()) / n_items


def effective_rank(embeddings, centred=False):
    """exp(-sum_i p_i log p_i) with p_i = s_i / sum_j s_j, s the singular values of `embeddings` [U, D]
    (`centred`: of `embeddings` minus their mean row).

    D for D equal non-zero singular values, 1 for a rank-1 matrix, 0 for the zero matrix."""
    x = torch.as_tensor(embeddings, dtype=torch.float64)
    s = torch.linalg.svdvals(x - x.mean(0, keepdim=True) if centred else x)
    if s.sum() <= 0:
        return 0.0
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def popularity_buckets(counts, n_buckets=len(BUCKETS)):
    """Bucket of every item id (0 = most popular) from its training interaction count `counts` [n_items].

    Items are laid end to end from the most popular (ties: lower id first), each taking as many slots as it
    has training interactions; an item belongs to the bucket (of `n_buckets` equal shares of all training
    interactions) in which its first slot falls. Items never seen in training fall in the last bucket.
    The padding id 0 gets bucket -1."""
    counts = np.asarray(counts, dtype=np.int64).copy()
    counts[0] = 0
    order = np.argsort(-counts, kind="stable")
    before = np.cumsum(counts[order]) - counts[order]  # interactions of the more popular items
    total = max(int(counts.sum()), 1)
    buckets = np.empty_like(counts)
    buckets[order] = np.minimum(n_buckets * before // total, n_buckets - 1)
    buckets[0] = -1
    return buckets


def bucket_hit_rates(positive_rank, positive_bucket, bucket, topk):
    """{K: hit rate@K} over the (user, target) pairs whose target is in `bucket` (NaN when there is none).

    `positive_rank` [P]: position of each target in its user's ranking (0 = first; >= max(topk) if absent)."""
    in_bucket = positive_bucket == bucket
    if not in_bucket.any():
        return {k: float("nan") for k in topk}
    ranks = positive_rank[in_bucket]
    return {k: float((ranks < k).mean()) for k in topk}


def _get(dataobject, key, metric):
    if key not in dataobject:
        raise ValueError(
            f"metric '{metric}' needs '{key}', which only recbole_bt's evaluation collects: evaluate with a "
            f"trainer from recbole_bt.get_trainer (run_recbole_bt does), and call fit() (or "
            f"trainer.eval_collector.data_collect(train_data)) before evaluate()"
        )
    return dataobject.get(key)


class Coverage(ItemCoverage):
    r"""Coverage@K: the share of the catalog that appears in at least one evaluated user's top-K list.

    .. math:: \mathrm{Coverage@K} = \frac{|\bigcup_{u} \hat{R}_K(u)|}{N}

    RecBole's ItemCoverage computes the same union but divides by N + 1 (its item count includes the padding
    id 0); this one divides by the N real items, as BT-SR does.
    """

    def calculate_metric(self, dataobject):
        item_matrix, num_items = self.used_info(dataobject)
        return {
            f"coverage@{k}": round(coverage(item_matrix[:, :k], int(num_items) - 1), self.decimal_place)
            for k in self.topk
        }


class EffectiveRank(AbstractMetric):
    """Effective rank of the evaluated users' sequence embeddings (needs `model.sequence_embedding`)."""

    metric_type = EvaluatorType.RANKING
    metric_need = ["model.sequence_embedding"]

    def calculate_metric(self, dataobject):
        embeddings = _get(dataobject, "model.sequence_embedding", "effective_rank")
        return {"effective_rank": round(effective_rank(embeddings), self.decimal_place)}


class EffectiveRankCentred(AbstractMetric):
    """Effective rank of the evaluated users' sequence embeddings, centred (BT-SR's reference code)."""

    metric_type = EvaluatorType.RANKING
    metric_need = ["model.sequence_embedding"]

    def calculate_metric(self, dataobject):
        embeddings = _get(dataobject, "model.sequence_embedding", "effective_rank_centred")
        return {"effective_rank_centred": round(effective_rank(embeddings, centred=True), self.decimal_place)}


class _BucketHit(AbstractMetric):
    """Hit rate@K over the evaluated (user, target) pairs whose target is in one popularity bucket."""

    metric_type = EvaluatorType.RANKING
    metric_need = ["rec.positive_rank", "data.item_bucket"]
    bucket = None

    def __init__(self, config):
        super().__init__(config)
        self.topk = config["topk"]
        self.name = f"hit_{BUCKETS[self.bucket]}"

    def calculate_metric(self, dataobject):
        rank = _get(dataobject, "rec.positive_rank", self.name).numpy()
        item = _get(dataobject, "rec.positive_item", self.name).numpy()
        item_bucket = _get(dataobject, "data.item_bucket", self.name).numpy()
        rates = bucket_hit_rates(rank, item_bucket[item], self.bucket, self.topk)
        return {f"{self.name}@{k}": round(rate, self.decimal_place) for k, rate in rates.items()}


class HitHead(_BucketHit):
    """hit_head@K: hit rate of the users whose target is among the most popular items (first third)."""

    bucket = 0


class HitMid(_BucketHit):
    """hit_mid@K: hit rate of the users whose target is in the middle popularity bucket."""

    bucket = 1


class HitTail(_BucketHit):
    """hit_tail@K: hit rate of the users whose target is in the long tail (last third, and unseen items)."""

    bucket = 2


# name in `metrics:` (case-insensitive, as RecBole's) -> class
METRICS = {
    "coverage": Coverage,
    "effective_rank": EffectiveRank,
    "effective_rank_centred": EffectiveRankCentred,
    "hit_head": HitHead,
    "hit_mid": HitMid,
    "hit_tail": HitTail,
}
