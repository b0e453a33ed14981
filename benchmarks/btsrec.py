"""BTSRec vs SASRec: quality over seeds, and the cost of a training step (time and peak memory, as ratios).

    # SASRec(CE) vs BTSRec(CE) vs BTSRec(SCE), leave-one-out full ranking, 3 seeds each, early stopping on
    # valid NDCG@10 (patience --patience) or at most --epochs epochs: NDCG@10 / HR@10 / coverage@10 mean +- std
    python benchmarks/btsrec.py quality --dataset ml-1m --data_path ../shared/datasets --epochs 300 --patience 10

    # seconds and peak memory of one training step, side by side: BTSRec/SASRec and SCE/CE on the dataset's
    # batches (--compare A,B ...), SCE/CE on a synthetic catalog of --synthetic-items items
    python benchmarks/btsrec.py step --dataset ml-1m --data_path ../shared/datasets --synthetic-items 1000000

    # BTSRec's same-target pairs under a protocol, measured from its training data (nothing is trained): rows that
    # are their own partner, the partner pool per row, the BT batch against the embedding size D
    python benchmarks/btsrec.py partners --dataset ml-1m-realtime --data_path ../shared/datasets \
        --config_files protocol/bt-sr-temporal.yaml

    # record a finished run's JSON (e.g. one run with --no-record from another checkout) in RESULTS.md
    python benchmarks/btsrec.py record path/to/btsrec-quality-ml-1m-STAMP.json

Runs are `LABEL:key=value,...` (default: the three models above), each seed in its own process, `--parallel`
at a time, `--threads` torch threads each. `--quick` runs seconds-long versions on the tiny test dataset.
Time and memory are measured in separate processes. Time: the median of --repeats steps, the compared runs
interleaved. Peak memory on CPU: the growth of the resident set during one step (Linux VmHWM, reset through
/proc/self/clear_refs just before it), in a process whose allocator returns every block above 64 KiB to the
system when freed (MALLOC_MMAP_THRESHOLD_), so that the resident set follows the live tensors; on a GPU it is
torch.cuda.max_memory_allocated.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import (  # noqa: E402
    add_common_arguments, data_spec, mean_std, parse_run, peak_rss_mb, record_saved, run_and_save, runs_by_label,
    set_threads, subcommand,
)  # fmt: skip

DEFAULT_RUNS = ["SASRec-CE:model=SASRec,loss_type=CE", "BTSRec-CE:model=BTSRec,loss_type=CE",
                "BTSRec-SCE:model=BTSRec,loss_type=SCE"]  # fmt: skip
STEP_RUNS = {f"{model}-{loss}": {"model": model, "loss_type": loss} for model in ("SASRec", "BTSRec")
             for loss in ("CE", "BCE", "SCE")}  # fmt: skip
METRICS = {"metrics": ["Hit", "NDCG", "ItemCoverage"], "topk": [10], "valid_metric": "NDCG@10"}


# ----------------------------------------------------------------------------------------------- quality
def quality(job):
    from recbole_bt.quick_start import prepare

    start = time.perf_counter()
    config, train_data, valid_data, test_data, trainer = prepare(job["config"]["model"], job["dataset"],
                                                                 job.get("config_files"), job["config"])  # fmt: skip
    setup = time.perf_counter() - start
    curve = []

    def record_point(epoch_idx, valid_score):  # fit's callback, after each validation
        curve.append({"epoch": len(curve) + 1, "train_seconds": round(trainer.train_seconds, 1),
                      "valid_ndcg@10": trainer.last_valid_result["ndcg@10"]})  # fmt: skip
        print(json.dumps(curve[-1]), flush=True)

    start = time.perf_counter()
    best_score, best_valid = trainer.fit(train_data, valid_data, saved=True, show_progress=False, callback_fn=record_point)
    fit_seconds = time.perf_counter() - start
    test = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    return {"valid": dict(best_valid), "test": dict(test), "epochs": len(curve), "best_epoch": trainer.best_epoch,
            "fit_seconds": round(fit_seconds, 1), "train_seconds": round(trainer.train_seconds, 1),
            "setup_seconds": round(setup, 1), "curve": curve}  # fmt: skip


def report_quality(results):
    header = ["run", "seeds", "test NDCG@10", "test HR@10", "test coverage@10", "valid NDCG@10", "epochs run (best)",
              "train s / epoch", "wall s per run (fit)"]  # fmt: skip
    rows = []
    for label, runs in runs_by_label(results):
        if not runs:
            rows.append([label, "failed"] + [""] * (len(header) - 2))
            continue
        pick = lambda part, key: [r[part][key] for r in runs]  # noqa: E731
        rows.append([label, len(runs), mean_std(pick("test", "ndcg@10")), mean_std(pick("test", "hit@10")),
                     mean_std(pick("test", "itemcoverage@10")), mean_std(pick("valid", "ndcg@10")),
                     ", ".join(f"{r['epochs']} ({r['best_epoch']})" for r in runs),
                     f"{statistics.mean(r['train_seconds'] / r['epochs'] for r in runs):.0f}",
                     f"{statistics.mean(r['fit_seconds'] for r in runs):.0f}"])  # fmt: skip
    return header, rows + curve_rows(results, len(header))


def curve_rows(results, width):
    """Learning curves under the table: mean valid NDCG@10 over the seeds after each epoch (first 20)."""
    rows = []
    for label in dict.fromkeys(r["label"] for r in results):
        curves = [r["curve"] for r in results if r["label"] == label and "failed" not in r]
        epochs = min((len(c) for c in curves), default=0)
        means = [statistics.mean(c[e]["valid_ndcg@10"] for c in curves) for e in range(min(epochs, 20))]
        rows.append([f"{label}: valid NDCG@10 by epoch", "", " ".join(f"{m:.4f}" for m in means)] + [""] * (width - 3))
    return rows


# ----------------------------------------------------------------------------------------------- step cost
def _rss_kb(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def measure_peak(fn, device):
    """(result of fn(), peak memory in MB that fn() added on top of what was allocated before it)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        out = fn()
        torch.cuda.synchronize()
        return out, (torch.cuda.max_memory_allocated() - before) / 2**20
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM (peak RSS) to the current RSS
    before = _rss_kb("VmRSS")
    out = fn()
    return out, max(_rss_kb("VmHWM") - before, 0) / 1024


MEMORY_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0", "MALLOC_TOP_PAD_": "0"}


def side_by_side(steps, repeats, device, measure):
    """steps: {name: zero-arg training step}. measure 'time': interleaved steps, the median of `repeats` each;
    'memory': the peak memory of one step each (after a warm-up step)."""
    import torch

    for fn in steps.values():  # warm-up: allocator, lazy init, optimizer state
        fn()
    if measure == "memory":
        return {name: {"peak_mb": measure_peak(fn, device)[1]} for name, fn in steps.items()}
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, fn in steps.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - t)
    return {name: {"seconds": statistics.median(times[name])} for name in steps}


def model_steps(job):
    """One training step (loss, backward, Adam) of each model on the same fixed batches of the dataset."""
    import torch

    from recbole_bt.quick_start import prepare

    steps, batches = {}, None
    for label, overrides in job["models"]:
        config, train_data, _, _, trainer = prepare(overrides["model"], job["dataset"], job.get("config_files"),
                                                    dict(job["config"], **overrides))  # fmt: skip
        if batches is None:
            batches = [batch.to(config["device"]) for _, batch in zip(range(job["batches"]), train_data)]
        model, optimizer = trainer.model, trainer.optimizer
        model.train()

        def step(model=model, optimizer=optimizer, state={"i": 0}):
            batch = batches[state["i"] % len(batches)]
            state["i"] += 1
            optimizer.zero_grad()
            loss = model.calculate_loss(batch)
            loss.backward()
            optimizer.step()
            return loss

        steps[label] = step
    return side_by_side(steps, job["repeats"], torch.device(config["device"]), job["measure"])


def synthetic_steps(job):
    """CE vs SCE forward + backward on a synthetic catalog: P hidden states against an [N D] item table."""
    import torch
    import torch.nn.functional as F

    from recbole_bt.loss import scalable_cross_entropy

    torch.manual_seed(0)
    n_items, dim, positions = job["synthetic_items"], job["dim"], job["positions"]
    item_emb = torch.nn.Parameter(torch.randn(n_items, dim) * 0.02)
    hidden = torch.nn.Parameter(torch.randn(positions, dim))
    targets = torch.randint(1, n_items, (positions,))

    def ce():
        item_emb.grad = hidden.grad = None
        F.cross_entropy(hidden @ item_emb.T, targets).backward()

    def sce():
        item_emb.grad = hidden.grad = None
        scalable_cross_entropy(hidden, targets, item_emb, bucket_size_y=job["bucket_size_y"]).backward()

    return side_by_side({"CE": ce, "SCE": sce}, job["repeats"], torch.device("cpu"), job["measure"])


def step(job):
    return {"models": model_steps(job)} if job["kind"] == "models" else {"synthetic": synthetic_steps(job)}


# ----------------------------------------------------------------------------------------------- partners
def partners(job):
    """The same-target pairs BTSRec's Barlow Twins term sees under `job`'s data and config (no training)."""
    import numpy as np

    from recbole_bt.data.masking import describe_protocol
    from recbole_bt.quick_start import prepare

    config, train_data, *_ = prepare("BTSRec", job["dataset"], job.get("config_files"), job["config"])
    sampler = train_data.same_target
    pool = sampler.counts[sampler.targets] - 1  # other rows with the row's target
    batch, rows = config["train_batch_size"], len(sampler)
    return {"protocol": describe_protocol(config), "train_mode": config["train_mode"], "rows": rows,
            "distinct_targets": int((sampler.counts > 0).sum()), "own_partner_rows": sampler.n_unique_rows,
            "own_partner_share": sampler.n_unique_rows / rows, "pool_median": float(np.median(pool)),
            "pool_mean": float(pool.mean()), "batch": batch, "hidden_size": config["hidden_size"],
            "batches_per_epoch": -(-rows // batch), "last_batch_rows": rows - (rows - 1) // batch * batch}  # fmt: skip


def partner_rows(results):
    header = ["run", "protocol", "training rows", "distinct targets", "rows that are their own partner",
              "other rows with the same target: median (mean)", "BT batch / D", "batches per epoch (last one's rows)"]  # fmt: skip
    rows = [[r["label"], "failed: " + r["failed"]] + [""] * 6 if "failed" in r else
            [r["label"], r["protocol"], r["rows"], r["distinct_targets"],
             f"{r['own_partner_rows']} ({100 * r['own_partner_share']:.1f}%)", f"{r['pool_median']:.0f} ({r['pool_mean']:.1f})",
             f"{r['batch']} / {r['hidden_size']}", f"{r['batches_per_epoch']} ({r['last_batch_rows']})"]
            for r in results]  # fmt: skip
    return header, rows


# ----------------------------------------------------------------------------------------------- main
def worker(job):
    set_threads(job["threads"])
    result = {"quality": quality, "step": step, "partners": partners}[job["bench"]](job)
    result.update(label=job["label"], config=job.get("config"), peak_rss_mb=round(peak_rss_mb()))
    with open(job["out"], "w") as f:
        json.dump(result, f)


def step_costs(results):
    """{comparison: {run: {"seconds": s, "peak_mb": mb}}}, the time and memory processes merged."""
    merged = {}
    for r in results:
        if "failed" in r:
            merged.setdefault(r["label"], {})["failed"] = r["failed"]
            continue
        for name, cost in (r.get("models") or r["synthetic"]).items():
            merged.setdefault(r["label"], {}).setdefault(name, {}).update(cost)
    return merged


def step_rows(results):
    header = ["comparison", "run", "ms / step (median)", "time ratio", "peak MB in step", "memory ratio"]
    rows = []
    for label, costs in step_costs(results).items():
        if "failed" in costs:
            rows.append([label, "failed: " + costs["failed"], "", "", "", ""])
            continue
        base = next(iter(costs.values()))
        for name, c in costs.items():
            rows.append([label, name, f"{c['seconds'] * 1000:.1f}", f"{c['seconds'] / base['seconds']:.2f}",
                         f"{c['peak_mb']:.0f}", f"{c['peak_mb'] / base['peak_mb']:.2f}" if base["peak_mb"] > 0 else "n/a"])  # fmt: skip
    return header, rows


def tables(bench, results):
    return (*{"quality": report_quality, "step": step_rows, "partners": partner_rows}[bench](results), "")


def record(path):
    """Copy a saved result JSON into benchmarks/results and append its section to RESULTS.md."""
    return record_saved(path, "btsrec", tables)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", choices=["quality", "step", "partners", "record", "_worker"])
    add_common_arguments(parser, dataset="ml-1m")
    parser.add_argument("--seeds", type=int, nargs="+", default=[2020, 2021, 2022])
    parser.add_argument("--epochs", type=int, default=300, help="quality: at most this many epochs")
    parser.add_argument("--patience", type=int, default=10, help="quality: stopping_step on valid NDCG@10")
    parser.add_argument("--batches", type=int, default=8, help="step: distinct batches cycled through")
    parser.add_argument("--repeats", type=int, default=20, help="step: timed steps per run")
    parser.add_argument("--compare", nargs="+", default=["SASRec-CE,BTSRec-CE", "SASRec-CE,SASRec-SCE"],
                        help="step: pairs A,B of runs (MODEL-LOSS, or a --run label) measured side by side")
    parser.add_argument("--synthetic-items", type=int, default=1_000_000, help="step: 0 = no synthetic catalog")
    parser.add_argument("--positions", type=int, default=512, help="step: hidden states per synthetic batch")
    args = parser.parse_args()
    status = subcommand(args, worker, record)
    if status is not None:
        return status

    data, base = data_spec(args)
    base.update(METRICS, epochs=args.epochs, stopping_step=args.patience, **parse_run(args.set)[1])
    if args.quick:
        base.update(epochs=2, bucket_size_y=16)
        args.seeds, args.synthetic_items, args.positions, args.repeats, args.batches = args.seeds[:1], 5000, 64, 3, 2
    runs = [parse_run(text) for text in args.run or DEFAULT_RUNS]
    if args.bench == "quality":
        jobs = [dict(data, bench="quality", label=label, config=dict(base, seed=seed, **config))
                for label, config in runs for seed in args.seeds]  # fmt: skip
    elif args.bench == "partners":
        runs = [parse_run(text) for text in args.run or ["defaults:"]]
        jobs = [dict(data, bench="partners", label=label, config=dict(base, seed=args.seeds[0], **config))
                for label, config in runs]  # fmt: skip
    else:
        step_runs = dict(STEP_RUNS, **dict(runs)) if args.run else dict(STEP_RUNS)
        jobs = [dict(data, bench="step", kind="models", label=f"{a} vs {b}", config=base, batches=args.batches,
                     repeats=args.repeats, models=[(a, step_runs[a]), (b, step_runs[b])])
                for a, b in (pair.split(",") for pair in args.compare)]  # fmt: skip
        if args.synthetic_items:
            jobs.append(dict(bench="step", kind="synthetic", label=f"synthetic {args.synthetic_items} items, "
                             f"{args.positions} hidden states", synthetic_items=args.synthetic_items, dim=64,
                             positions=args.positions, bucket_size_y=256 if not args.quick else 16,
                             repeats=args.repeats))  # fmt: skip
        jobs = [dict(job, measure=measure, env=MEMORY_ENV if measure == "memory" else {})
                for job in jobs for measure in ("time", "memory")]  # fmt: skip
    parallel = len(jobs) if args.bench == "quality" or args.quick else 1  # step costs: one at a time (timed)
    return run_and_save(os.path.abspath(__file__), "btsrec", args, data, jobs,
                        lambda results, plot: tables(args.bench, results), parallel=parallel)

if __name__ == "__main__":
    sys.exit(main())
