"""recbole_bt's evaluation: metrics RecBole lacks, registered with RecBole's evaluator.

After `register_metrics()` (run when `recbole_bt` is imported) these names work in any config's `metrics:`
list, for recbole_bt's models and RecBole's alike: `Coverage` (coverage@K), `Effective_Rank`
(effective_rank), `Effective_Rank_Centred` (effective_rank_centred), `Hit_Head`, `Hit_Mid`, `Hit_Tail` (hit_head@K, ...). See `metrics.py` for definitions.
"""
from recbole_bt.evaluator.collector import Collector, training_item_counts
from recbole_bt.evaluator.embedding import sequence_embedding
from recbole_bt.evaluator.metrics import (
    METRICS,
    Coverage,
    EffectiveRank,
    EffectiveRankCentred,
    HitHead,
    HitMid,
    HitTail,
    bucket_hit_rates,
    coverage,
    effective_rank,
    popularity_buckets,
)
from recbole_bt.evaluator.report import results_table


def register_metrics():
    """Add recbole_bt's metrics to RecBole's registry, the tables that `Config` validates metric names with and
    that `Evaluator` and `Collector` read (RecBole builds them once from `recbole.evaluator.metrics`)."""
    from recbole.evaluator import register

    for name, metric in METRICS.items():
        register.metrics_dict[name] = metric
        register.metric_information[name] = metric.metric_need
        register.metric_types[name] = metric.metric_type
        if metric.smaller and name not in register.smaller_metrics:
            register.smaller_metrics.append(name)


__all__ = [
    "Collector",
    "Coverage",
    "EffectiveRank",
    "EffectiveRankCentred",
    "HitHead",
    "HitMid",
    "HitTail",
    "METRICS",
    "bucket_hit_rates",
    "coverage",
    "effective_rank",
    "popularity_buckets",
    "register_metrics",
    "results_table",
    "sequence_embedding",
    "training_item_counts",
]
