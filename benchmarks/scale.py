"""Scale: BTSRec trained end to end on a synthetic catalog of a million items, SCE vs CE, under a memory cap.

CE is run twice: with its logits materialised (`fused_ce: False`, RecBole's way) and chunked (the default
`fused_ce`, `recbole_bt.loss.linear_cross_entropy`), whose memory is O(chunk x N), not O(P x N).

    # BTSRec (package defaults: all_positions, batch 64, hidden 64) with SCE and with CE, each in its own process
    # whose address space is capped at --cap-gib GiB: peak RSS, ms per training step, and whether it could train
    python benchmarks/scale.py train --items 1000000 --users 40000 --length 50 --steps 30

    # record a finished run's JSON (e.g. one run with --no-record) in RESULTS.md
    python benchmarks/scale.py record path/to/scale-train-synthetic-1000000-STAMP.json

The dataset is generated in a temporary folder (removed afterwards) as RecBole atomic files: --users users with
--length interactions each, leave-one-out (the last two are validation and test), so each user gives one training
window of --length - 3 targets. Every item id 1..--items occurs (a random permutation of the catalog fills random
slots among the users' first --length - 3 items), so RecBole's item count is --items; every other slot, and each
user's last three items (its window's last target, the validation and the test item), is drawn from a Zipf(--zipf)
popularity over the catalog, so that most windows have a same-target partner (the share is reported).

Each run is one process (CPU: `use_gpu: False`, so that the cap bounds all the memory the run uses):
`recbole_bt.quick_start.prepare` (config, dataset, windows, model, Adam), then --steps training steps (a batch of
the training dataloader with its same-target partners, the loss, backward, Adam), the first one a warm-up that the
median ms / step leaves out. No evaluation: full ranking over the catalog is a cost of its own (it needs
eval_batch_size x items scores), measured by benchmarks/evaluation.py. The process sets RLIMIT_AS (its address
space, an upper bound of its resident set) to --cap-gib GiB before importing torch, so a run that needs more fails
its allocation with a RuntimeError, which is recorded as the run's outcome (not a crash of the benchmark). Peak RSS
is the process's VmHWM: during prepare, and during the steps (reset through /proc/self/clear_refs in between).
`--quick` uses a tiny catalog and also caps the steps at --quick-headroom-mb of address space beyond what prepare
left, which CE's materialised logits exceed and SCE's buckets and chunked CE do not: the failure row is
exercised in seconds.
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.btsrec import MEMORY_ENV, _rss_kb  # noqa: E402
from benchmarks.harness import (  # noqa: E402
    add_common_arguments, parse_run, record_saved, run_and_save, set_threads, subcommand,
)  # fmt: skip

# CE's logits: `fused_ce: False` materialises [P N] logits; the default (chunked linear cross-entropy) never does
DEFAULT_RUNS = ["BTSRec-SCE:model=BTSRec,loss_type=SCE", "BTSRec-CE:model=BTSRec,loss_type=CE,fused_ce=false",
                "BTSRec-CE-chunked:model=BTSRec,loss_type=CE"]
QUICK = {"items": 20000, "users": 500, "length": 50, "steps": 2}


# ----------------------------------------------------------------------------------------------- data
def synthetic_dataset(folder, name, n_items, n_users, length, zipf, seed):
    """Write `folder/name/name.inter` (see the module doc); returns its statistics."""
    import numpy as np
    import pandas as pd

    inner = length - 3  # slots that are neither a window's last target nor a validation or test item
    if n_users * inner < n_items:
        raise SystemExit(f"--users {n_users} x (--length {length} - 3) slots cannot hold all {n_items} items")
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1) ** zipf
    by_rank = rng.permutation(n_items) + 1  # item id of each popularity rank
    items = by_rank[rng.choice(n_items, size=(n_users, length), p=popularity / popularity.sum())]
    rows, cols = np.divmod(rng.choice(n_users * inner, size=n_items, replace=False), inner)
    items[rows, cols] = np.arange(1, n_items + 1)  # every id occurs
    os.makedirs(os.path.join(folder, name))
    pd.DataFrame({
        "user_id:token": np.repeat(np.arange(1, n_users + 1), length),
        "item_id:token": items.reshape(-1),
        "timestamp:float": np.tile(np.arange(length), n_users),
    }).to_csv(os.path.join(folder, name, f"{name}.inter"), sep="\t", index=False)  # fmt: skip
    targets, last = items[:, 1 : inner + 1], items[:, inner]  # training targets; each window's last one
    return {"items": n_items, "users": n_users, "interactions": n_users * length, "zipf": zipf,
            "targets_recurring": round(float((np.bincount(targets.ravel())[targets] > 1).mean()), 3),
            "windows_with_partner": round(float((np.bincount(last)[last] > 1).mean()), 3)}  # fmt: skip


def data_config(folder):
    """RecBole keys of the synthetic atomic files: leave-one-out split in time order, CPU."""
    return {"data_path": folder, "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
            "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
            "use_gpu": False, "show_progress": False}  # fmt: skip


# ----------------------------------------------------------------------------------------------- worker
def cap_address_space(mb):
    resource.setrlimit(resource.RLIMIT_AS, (int(mb * 2**20),) * 2)


def train_steps(model, optimizer, train_data, steps, device):
    """`steps` training steps; (seconds of each completed step, losses, the error that stopped them or None)."""
    seconds, losses, batches = [], [], iter(train_data)
    model.train()
    try:
        for _ in range(steps):
            start = time.perf_counter()
            batch = next(batches, None)
            if batch is None:  # a small dataset: the next epoch
                batches = iter(train_data)
                batch = next(batches)
            optimizer.zero_grad()
            loss = model.calculate_loss(batch.to(device))
            loss.backward()
            optimizer.step()
            seconds.append(time.perf_counter() - start)
            losses.append(round(loss.item(), 4))
    except (RuntimeError, MemoryError) as e:  # the cap: an allocation the process may not make
        return seconds, losses, f"{type(e).__name__}: {str(e).strip().splitlines()[0]}"
    return seconds, losses, None


def scale_run(job):
    from recbole_bt.quick_start import prepare

    start = time.perf_counter()
    config, train_data, _, _, trainer = prepare(job["config"]["model"], job["dataset"], job["config_files"],
                                                job["config"])  # fmt: skip
    windows = train_data._dataset
    result = {"prepare_seconds": round(time.perf_counter() - start, 1), "catalog_items": windows.item_num - 1,
              "windows": len(windows), "peak_rss_prepare_mb": round(_rss_kb("VmHWM") / 1024),
              "address_space_after_prepare_mb": round(_rss_kb("VmSize") / 1024)}  # fmt: skip
    if job.get("step_headroom_mb"):
        cap_address_space(_rss_kb("VmSize") / 1024 + job["step_headroom_mb"])
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM: the steps' own peak
    seconds, losses, error = train_steps(trainer.model, trainer.optimizer, train_data, job["steps"], config["device"])
    result.update(steps=len(seconds), steps_asked=job["steps"], finished=error is None, error=error, losses=losses,
                  step_seconds=[round(s, 3) for s in seconds],
                  peak_rss_steps_mb=round(_rss_kb("VmHWM") / 1024))  # fmt: skip
    result["peak_rss_mb"] = max(result["peak_rss_prepare_mb"], result["peak_rss_steps_mb"])
    return result


def worker(job):
    cap_address_space(job["cap_mb"])  # before torch: everything the run maps counts
    set_threads(job["threads"])
    result = scale_run(job)
    result.update(label=job["label"], config=job["config"], cap_mb=job["cap_mb"], synthetic=job["synthetic"])
    with open(job["out"], "w") as f:
        json.dump(result, f)


# ----------------------------------------------------------------------------------------------- report
def step_ms(run):
    timed = run["step_seconds"][1:] or run["step_seconds"]  # the first step is a warm-up
    return f"{statistics.median(timed) * 1000:.0f}" if timed else "-"


def tables(results):
    header = ["run", "loss", "catalog items", "training windows", "steps done / asked", "ms / step (median)",
              "peak RSS MB (process)", "peak RSS MB: prepare / steps", "outcome"]  # fmt: skip
    rows = []
    for r in results:
        if "failed" in r:
            rows.append([r["label"], "", "", "", "", "", "", "", "crashed: " + r["failed"]])
            continue
        outcome = "trained" if r["finished"] else f"out of memory under the cap: {r['error']}"
        rows.append([r["label"], r["config"]["loss_type"], f"{r['catalog_items']:,}", f"{r['windows']:,}",
                     f"{r['steps']} / {r['steps_asked']}", step_ms(r), r["peak_rss_mb"],
                     f"{r['peak_rss_prepare_mb']} / {r['peak_rss_steps_mb']}", outcome])  # fmt: skip
    ok = [r for r in results if "failed" not in r]
    if not ok:
        return header, rows, ""
    data, cap = ok[0]["synthetic"], ok[0]["cap_mb"] / 1024
    extra = (f"Synthetic catalog: {data['items']:,} items, {data['users']:,} users x "
             f"{data['interactions'] // data['users']} interactions (Zipf {data['zipf']}, every id present); "
             f"{data['targets_recurring']:.0%} of the training targets recur, {data['windows_with_partner']:.0%} of "
             f"the training windows have a same-target partner. Each run: one "
             f"process, address space capped at {cap:g} GiB (RLIMIT_AS), CPU, training steps only (no evaluation); "
             f"ms / step is the median without the first (warm-up) step.")  # fmt: skip
    return header, rows, extra


def record(path):
    return record_saved(path, "scale", lambda bench, results: tables(results))


# ----------------------------------------------------------------------------------------------- main
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", choices=["train", "record", "_worker"])
    add_common_arguments(parser, dataset="synthetic")
    parser.add_argument("--items", type=int, default=1_000_000, help="catalog size")
    parser.add_argument("--users", type=int, default=40_000)
    parser.add_argument("--length", type=int, default=50, help="interactions per user")
    parser.add_argument("--zipf", type=float, default=1.0, help="exponent of the item popularity")
    parser.add_argument("--steps", type=int, default=30, help="training steps per run (the first is a warm-up)")
    parser.add_argument("--cap-gib", type=float, default=8.0, help="address-space cap of each run, GiB")
    parser.add_argument("--quick-headroom-mb", type=float, default=400, help="--quick: address space the steps may add")
    parser.add_argument("--seed", type=int, default=2020)
    args = parser.parse_args()
    status = subcommand(args, worker, record)
    if status is not None:
        return status

    if args.quick:
        vars(args).update(QUICK)
    args.parallel = args.parallel or (2 if args.quick else 1)  # full size: one capped run at a time
    name = "tiny" if args.quick else f"{args.dataset}-{args.items}"
    folder = tempfile.mkdtemp(prefix="recbole-bt-scale-")
    try:
        stats = synthetic_dataset(folder, name, args.items, args.users, args.length, args.zipf, args.seed)
        base = dict(data_config(folder), **parse_run(args.set)[1])
        if args.quick:
            base.setdefault("bucket_size_y", 16)  # fewer SCE bucket pairs: a faster step
        config_files = [os.path.abspath(f) for f in args.config_files or []] or None
        jobs = [dict(label=label, dataset=name, config_files=config_files, config=dict(base, seed=args.seed, **config),
                     steps=args.steps, cap_mb=args.cap_gib * 1024, synthetic=stats, env=MEMORY_ENV,
                     step_headroom_mb=args.quick_headroom_mb if args.quick else None)
                for label, config in map(parse_run, args.run or DEFAULT_RUNS)]  # fmt: skip
        return run_and_save(os.path.abspath(__file__), "scale", args, {"dataset": name}, jobs,
                            lambda results, plot: tables(results))  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
