"""CLUE: pretrain -> fine-tune against no pretraining, the views of the paper's augmentation table, and the
collapse ablation (SPEC section 3).

    # CLUE (dropout views) pretrain -> fine-tune vs CLUEZero (same fine-tuning, random weights) vs SASRec(CE),
    # seeds --seeds; pretraining to the plateau of its loss (the YAML's pretrain_epochs and pretrain_stopping_step;
    # --pretrain-epochs N caps it), fine-tuning at most --epochs epochs (early stopping on valid NDCG@10,
    # --patience): test NDCG@10 / HR@10 / MRR@10 mean +- std
    python benchmarks/clue.py quality --dataset ml-1m --data_path ../shared/datasets

    # the augmentation table: CLUE pretrained with mask / crop / reorder / dropout views, then fine-tuned (one seed)
    python benchmarks/clue.py augment --dataset ml-1m --data_path ../shared/datasets --pretrain-epochs 10 --epochs 20

    # the collapse ablation: pretraining loss and embedding std per epoch with and without stop-gradient and
    # predictor (no fine-tuning); a plot next to RESULTS.md when matplotlib is installed
    python benchmarks/clue.py collapse --dataset ml-1m --data_path ../shared/datasets --pretrain-epochs 20

    # record a finished run's JSON (e.g. one run with --no-record from another checkout) in RESULTS.md
    python benchmarks/clue.py record path/to/clue-quality-ml-1m-STAMP.json

Each run (pretraining and fine-tuning of one model and seed) is one process, `--parallel` at a time, `--threads`
torch threads each. The same command again reuses every finished run and pretraining stage (folders under
--out/clue-runs) and resumes a pretraining in progress after its last epoch; a fine-tuning in progress starts
again. (The converged comparison, seen items masked and resumable to the epoch, with paired tests, is
`benchmarks/baseline.py converge ... --run CLUE:model=CLUE,train_stage=finetune --run CLUEZero:model=CLUEZero`.) `--quick`: the tiny test dataset, seconds, nothing recorded.
"""
import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.btsrec import curve_rows, quality  # noqa: E402
from benchmarks.harness import mean_std  # noqa: E402
from benchmarks.harness import (  # noqa: E402
    HERE, add_common_arguments, data_spec, finished, parse_run, peak_rss_mb, pretrain, record_saved, run_and_save,
    guard_defaults, run_folder, set_threads, subcommand,
)  # fmt: skip

METRICS = {"metrics": ["Hit", "NDCG", "MRR"], "topk": [10], "valid_metric": "NDCG@10"}
QUALITY_RUNS = [("CLUE", {"model": "CLUE"}, True), ("CLUEZero", {"model": "CLUEZero"}, False),
                ("SASRec-CE", {"model": "SASRec", "loss_type": "CE"}, False)]  # fmt: skip
AUGMENT_RUNS = [(name, {"model": "CLUE", "augmentations": [aug]}, True)
                for name, aug in (("mask 0.5", {"mask": 0.5}), ("crop 0.6", {"crop": 0.6}),
                                  ("reorder 0.5", {"reorder": 0.5}), ("dropout", "dropout"))]  # fmt: skip
FOLDER_KEYS = ("dataset", "config_files", "config", "pretrain", "pretrain_epochs", "finetune")  # a job's folder
COLLAPSE_RUNS = [("CLUE", {"model": "CLUE"}, True),
                 ("no stop-gradient", {"model": "CLUE", "stop_gradient": False}, True),
                 ("no predictor", {"model": "CLUE", "predictor": False}, True),
                 ("neither", {"model": "CLUE", "stop_gradient": False, "predictor": False}, True)]  # fmt: skip


# ----------------------------------------------------------------------------------------------- worker
def pipeline(job):
    """Pretrain (when the run asks for it), then fine-tune from the checkpoint (unless `finetune` is False)."""
    out, config = {}, dict(job["config"])
    if job["pretrain"]:
        out["pretrain"] = pretrain(config["model"], job, config)
        if not job["finetune"]:
            return out
        config.update(train_stage="finetune", pre_model_path=out["pretrain"].pop("checkpoint"))
    out.update(quality(dict(job, config=config)))
    return out


def worker(job):
    set_threads(job["threads"])
    if job.get("folder"):
        guard_defaults(job["folder"], job["config"]["model"], job)
    result = finished(job["folder"], lambda: pipeline(job))
    result.update(label=job["label"], config=job.get("config"), peak_rss_mb=round(peak_rss_mb()))
    with open(job["out"], "w") as f:
        json.dump(result, f)


# ----------------------------------------------------------------------------------------------- reports
def _pretrain_cell(runs):
    pre = [r["pretrain"] for r in runs if "pretrain" in r]
    if not pre:
        return "-"
    return (f"{statistics.mean(p['epochs'] for p in pre):.0f} ep, loss {statistics.mean(p['curve'][-1]['loss'] for p in pre):.3f}, "
            f"std {statistics.mean(p['embedding_std'] for p in pre):.3f}")  # fmt: skip


def report_finetuned(results):
    header = ["run", "seeds", "test NDCG@10", "test HR@10", "test MRR@10", "valid NDCG@10", "pretraining (last epoch)",
              "fine-tuning epochs (best)", "wall s per run"]  # fmt: skip
    rows = []
    for label in dict.fromkeys(r["label"] for r in results):
        runs = [r for r in results if r["label"] == label and "failed" not in r]
        if not runs:
            rows.append([label, "failed: " + next(r["failed"] for r in results if r["label"] == label)]
                        + [""] * (len(header) - 2))  # fmt: skip
            continue
        pick = lambda part, key: [r[part][key] for r in runs]  # noqa: E731
        wall = statistics.mean(r["fit_seconds"] + r.get("pretrain", {}).get("seconds", 0) for r in runs)
        rows.append([label, len(runs), mean_std(pick("test", "ndcg@10")), mean_std(pick("test", "hit@10")),
                     mean_std(pick("test", "mrr@10")), mean_std(pick("valid", "ndcg@10")), _pretrain_cell(runs),
                     ", ".join(f"{r['epochs']} ({r['best_epoch']})" for r in runs), f"{wall:.0f}"])  # fmt: skip
    return header, rows + curve_rows(results, len(header))


def report_collapse(results):
    header = ["run", "epochs", "last loss", "last std of h(s)", "last std of z", "loss by epoch",
              "std of z (projector output) by epoch"]  # fmt: skip
    rows = []
    for r in results:
        if "failed" in r:
            rows.append([r["label"], "failed: " + r["failed"]] + [""] * 5)
            continue
        curve = r["pretrain"]["curve"]
        rows.append([r["label"], len(curve), f"{curve[-1]['loss']:.4f}", f"{curve[-1]['embedding_std']:.4f}",
                     f"{curve[-1].get('projection_std', float('nan')):.4f}", " ".join(f"{p['loss']:.3f}" for p in curve),
                     " ".join(f"{p.get('projection_std', float('nan')):.3f}" for p in curve)])  # fmt: skip
    return header, rows


def plot_collapse(results, path):
    """Loss, std of h(s) and std of z against the pretraining epoch, one line per run (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return None
    panels = [("loss", "SimSiam loss (-1: views identical)"), ("projection_std", "std of normalised z (0 = collapse)"),
              ("embedding_std", "std of normalised h(s)")]  # fmt: skip
    fig, axes = plt.subplots(1, len(panels), figsize=(12, 3.4))
    for r in results:
        if "failed" in r:
            continue
        curve = r["pretrain"]["curve"]
        for ax, (key, _) in zip(axes, panels):
            ax.plot([p["epoch"] for p in curve], [p.get(key, float("nan")) for p in curve], marker=".", label=r["label"])
    for ax, (_, title) in zip(axes, panels):
        ax.set(xlabel="pretraining epoch", title=title)
    axes[-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    print(f"plot: {path}")
    return path


def tables(bench, results, plot=None):
    """(header, rows, extra markdown) of a bench's results; the collapse ablation's plot goes to `plot`."""
    if bench == "collapse":
        plot = plot_collapse(results, plot) if plot else None
        extra = f"![collapse ablation]({os.path.relpath(plot, HERE)})" if plot else ""
        return (*report_collapse(results), extra)
    return (*report_finetuned(results), "")


def record(path):
    plot = os.path.join(HERE, os.path.basename(path).replace(".json", ".png"))  # next to RESULTS.md
    return record_saved(path, "clue", lambda bench, results: tables(bench, results, plot))


# ----------------------------------------------------------------------------------------------- main
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", choices=["quality", "augment", "collapse", "record", "_worker"])
    add_common_arguments(parser, dataset="ml-1m")
    parser.add_argument("--seeds", type=int, nargs="+", default=[2020, 2021, 2022])
    parser.add_argument("--pretrain-epochs", type=int, default=None,
                        help="cap on the pretraining epochs (default: the YAML's, to the plateau of the loss)")
    parser.add_argument("--epochs", type=int, default=100, help="fine-tuning: at most this many epochs")
    parser.add_argument("--patience", type=int, default=10, help="fine-tuning: stopping_step on valid NDCG@10")
    args = parser.parse_args()
    status = subcommand(args, worker, record)
    if status is not None:
        return status

    data, base = data_spec(args)
    base.update(METRICS, epochs=args.epochs, stopping_step=args.patience, **parse_run(args.set)[1])
    if args.quick:
        args.pretrain_epochs, args.seeds = 2, args.seeds[:1]
        base.update(epochs=2, hidden_size=8, n_heads=2, inner_size=16)
    runs = {"quality": QUALITY_RUNS, "augment": AUGMENT_RUNS, "collapse": COLLAPSE_RUNS}[args.bench]
    runs = [(label, config, True) for label, config in map(parse_run, args.run)] if args.run else runs
    seeds = args.seeds if args.bench == "quality" else args.seeds[:1]
    jobs, out = [], os.path.join(os.path.abspath(args.out), "quick" if args.quick else "")
    for label, config, pretrains in runs:
        for seed in seeds:
            job = dict(data, label=label, config=dict(base, seed=seed, **config), pretrain=pretrains,
                       pretrain_epochs=args.pretrain_epochs, finetune=args.bench != "collapse")  # fmt: skip
            jobs.append(dict(job, folder=run_folder(out, "clue", label, seed, job, FOLDER_KEYS)))
    return run_and_save(os.path.abspath(__file__), "clue", args, data, jobs, lambda results, plot: tables(args.bench, results, plot))


if __name__ == "__main__":
    sys.exit(main())
