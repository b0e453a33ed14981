"""The evaluation's own questions: what recbole_bt's metrics cost, and the BT-SR temporal protocol on real data.

    # seconds of one full-ranking evaluation of the test users with RecBole's metrics (Hit, NDCG, MRR) and with
    # recbole_bt's added (Coverage, Effective_Rank, Hit_Head/Mid/Tail), the two interleaved in one process
    python benchmarks/evaluation.py cost --dataset ml-1m --data_path ../shared/datasets

    # record a finished run's JSON (e.g. one run with --no-record from another checkout) in RESULTS.md
    python benchmarks/evaluation.py record path/to/evaluation-cost-ml-1m-STAMP.json

    # the BT-SR global temporal split (eval_args split GTS 0.95) of a dataset with real timestamps: its
    # statistics with and without the test-pool users in training, and one SASRec run with every metric
    python benchmarks/evaluation.py protocol --dataset ml-1m-realtime --data_path ../shared/datasets --epochs 20
    python benchmarks/evaluation.py protocol --dataset ml-100k --epochs 50

Each run happens in its own process (`--threads` torch threads). `--quick`: the tiny test dataset, seconds,
nothing recorded.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import (  # noqa: E402
    add_common_arguments, data_spec, markdown_table, parse_run, peak_rss_mb, record_saved, run_and_save, set_threads, subcommand,
)  # fmt: skip

BASE_METRICS = ["Hit", "NDCG", "MRR"]
NEW_METRICS = ["Coverage", "Effective_Rank", "Hit_Head", "Hit_Mid", "Hit_Tail"]
TOPK = [1, 5, 10, 20]
GTS = {"split": {"GTS": 0.95}, "order": "TO", "mode": "full", "group_by": "user"}


# ----------------------------------------------------------------------------------------------- cost
def cost(job):
    """Median seconds of `trainer.evaluate(test)` with the base metrics and with the new ones added, the two
    trainers sharing one model and one dataset and taking turns."""
    from recbole_bt.data import data_preparation
    from recbole_bt.quick_start import build_config, build_model
    from recbole_bt.data.loading import create_dataset
    from recbole_bt.registry import get_trainer

    configs = {
        name: build_config(job["config"]["model"], job["dataset"], job.get("config_files"),
                           dict(job["config"], metrics=metrics, topk=TOPK))
        for name, metrics in (("base", BASE_METRICS), ("with new metrics", BASE_METRICS + NEW_METRICS))
    }  # fmt: skip
    config = configs["base"]
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    model = build_model(config, train_data._dataset)
    trainers = {name: get_trainer(c["MODEL_TYPE"], c["model"])(c, model) for name, c in configs.items()}
    start = time.perf_counter()
    for trainer in trainers.values():
        trainer.eval_collector.data_collect(train_data)  # once per fit(): popularity buckets
    collect_seconds = time.perf_counter() - start
    seconds, results = {name: [] for name in trainers}, {}
    for _ in range(job["repeats"]):
        for name, trainer in trainers.items():
            start = time.perf_counter()
            results[name] = trainer.evaluate(test_data, load_best_model=False)
            seconds[name].append(time.perf_counter() - start)
    median = {name: statistics.median(s) for name, s in seconds.items()}
    return {"users": len(test_data.dataset), "items": dataset.item_num - 1, "seconds": seconds, "median": median,
            "ratio": median["with new metrics"] / median["base"], "data_collect_seconds": collect_seconds,
            "result": dict(results["with new metrics"])}  # fmt: skip


def cost_rows(results):
    header = ["run", "test users", "items", "eval s (base metrics)", "eval s (+ new metrics)", "ratio",
              "bucket setup s (once per fit)"]  # fmt: skip
    rows = []
    for r in results:
        if "failed" in r:
            rows.append([r["label"], "failed: " + r["failed"]] + [""] * 5)
            continue
        m = r["median"]
        rows.append([r["label"], f"{r['users']:,}", f"{r['items']:,}", f"{m['base']:.3f}",
                     f"{m['with new metrics']:.3f}", f"**{r['ratio']:.2f}x**", f"{r['data_collect_seconds']:.3f}"])  # fmt: skip
    return header, rows


# ----------------------------------------------------------------------------------------------- protocol
def split_statistics(job, exclude):
    from recbole_bt.data import data_preparation
    from recbole_bt.quick_start import build_config
    from recbole_bt.data.loading import create_dataset

    config = build_config(job["config"]["model"], job["dataset"], job.get("config_files"),
                          dict(job["config"], gts_exclude_test_users=exclude))  # fmt: skip
    dataset = create_dataset(config)
    train_data, _, _ = data_preparation(config, dataset)
    return dict(dataset.split_stats, exclude_test_users=exclude)


def protocol(job):
    """The split's statistics both ways, then one run (fit with early stopping, test at the best epoch)."""
    from recbole_bt.quick_start import prepare

    stats = [split_statistics(job, exclude) for exclude in (True, False)]
    start = time.perf_counter()
    config, train_data, valid_data, test_data, trainer = prepare(job["config"]["model"], job["dataset"],
                                                                 job.get("config_files"), job["config"])  # fmt: skip
    epochs = []
    _, best_valid = trainer.fit(train_data, valid_data, saved=True, show_progress=False,
                                callback_fn=lambda epoch_idx, score: epochs.append(epoch_idx + 1))  # fmt: skip
    test = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    return {"split": stats, "valid": dict(best_valid), "test": dict(test), "epochs": len(epochs),
            "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip


def protocol_rows(results):
    header = ["run", "training on", "t*", "timestamps", "test users", "training rows", "training users", "valid rows",
              "test rows"]  # fmt: skip
    rows, metric_rows = [], []
    for r in results:
        if "failed" in r:
            rows.append([r["label"], "failed: " + r["failed"]] + [""] * 7)
            continue
        for s in r["split"]:
            rows.append([r["label"], "without the test pool" if s["exclude_test_users"] else "all (before t*)",
                         f"{s['t_star']:.0f}", f"{s['n_interactions']:,}", f"{s['test_users']:,}",
                         f"{s['train_rows']:,}", f"{s['train_users']:,}", f"{s['valid_rows']:,}",
                         f"{s['test_rows']:,}"])  # fmt: skip
    metric_header = ["run", "split", "metric", *(f"@{k}" for k in TOPK), "value"]
    for r in results:
        if "failed" in r:
            continue
        for split in ("valid", "test"):
            names = dict.fromkeys(key.partition("@")[0] for key in r[split])
            for name in names:
                values = [r[split].get(f"{name}@{k}") for k in TOPK] + [r[split].get(name)]
                metric_rows.append([r["label"], f"{split} (best of {r['epochs']} epochs)" if split == "valid" else split,
                                    name, *("" if v is None else f"{v:.4f}" for v in values)])  # fmt: skip
    return header, rows, metric_header, metric_rows


# ----------------------------------------------------------------------------------------------- main
def tables(bench, results):
    """(header, rows, extra markdown) of a bench's results."""
    if bench == "cost":
        return (*cost_rows(results), "")
    header, rows, metric_header, metric_rows = protocol_rows(results)
    return header, rows, markdown_table(metric_header, metric_rows)


def record(path):
    return record_saved(path, "evaluation", tables)


def worker(job):
    set_threads(job["threads"])
    result = {"cost": cost, "protocol": protocol}[job["bench"]](job)
    result.update(label=job["label"], config=job.get("config"), peak_rss_mb=round(peak_rss_mb()))
    with open(job["out"], "w") as f:
        json.dump(result, f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", choices=["cost", "protocol", "record", "_worker"])
    add_common_arguments(parser, dataset="ml-1m")
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--epochs", type=int, default=20, help="protocol: at most this many epochs")
    parser.add_argument("--patience", type=int, default=10, help="protocol: stopping_step on valid NDCG@10")
    parser.add_argument("--repeats", type=int, default=5, help="cost: evaluations timed per metric set")
    args = parser.parse_args()
    status = subcommand(args, worker, record)
    if status is not None:
        return status

    data, base = data_spec(args)
    base.update(seed=args.seed, **parse_run(args.set)[1])
    if args.quick:
        args.repeats, args.epochs = 2, 2
    runs = [parse_run(text) for text in args.run or ["SASRec:model=SASRec"]]
    if args.bench == "cost":
        jobs = [dict(data, bench="cost", label=label, config=dict(base, **config), repeats=args.repeats)
                for label, config in runs]  # fmt: skip
    else:
        metrics = {"metrics": BASE_METRICS + NEW_METRICS, "topk": TOPK, "valid_metric": "NDCG@10"}
        jobs = [dict(data, bench="protocol", label=label,
                     config=dict(base, eval_args=GTS, epochs=args.epochs, stopping_step=args.patience, **metrics,
                                 **config))
                for label, config in runs]  # fmt: skip
    return run_and_save(os.path.abspath(__file__), "evaluation", args, data, jobs,
                        lambda results, plot: tables(args.bench, results), parallel=1)

if __name__ == "__main__":
    sys.exit(main())
