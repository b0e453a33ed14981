"""Data scale: a MovieLens-20M-sized dataset through prepare, training steps and a full-ranking evaluation (issue 21).

    # write the synthetic ML-20M-like dataset into <--out>/data/ml-20m-like-1x-seed2020/ and print its statistics
    # (an existing one of the same --scale and --seed is reused)
    python benchmarks/data_scale.py generate --scale 1.0

    # each run in its own process: prepare (config, dataset, dataloaders, model), --steps training steps, one
    # full-ranking evaluation of the validation users; the seconds and peak RSS of each phase
    python benchmarks/data_scale.py measure --dataset ml-1m --data_path ../shared/datasets --steps 20
    python benchmarks/data_scale.py measure --dataset ml-20m-like --scale 1.0 --steps 20

    # record a finished run's JSON (e.g. one run with --no-record) in RESULTS.md
    python benchmarks/data_scale.py record path/to/data_scale-measure-ml-1m-STAMP.json

The synthetic data (`ml20m_like`) follows MovieLens-20M's published statistics: 138,493 users, 26,744 items,
20,000,263 interactions (--scale multiplies the three), every user with at least 20 interactions. User lengths are
20 + a lognormal (sigma 1.38) scaled so that the total is exact (ML-20M: median 68, mean 144.4), capped at ML-20M's
longest history (9,254) and at the catalog. Each user picks that many distinct items by weighted sampling without
replacement (successive draws, a repeat drawn again) from a Zipf-Mandelbrot popularity over the catalog, weight
(rank / items + 0.008) ** -2.5, calibrated at full size to ML-20M's most popular item (67,310 interactions) and
median item (18): about 9,000 items get fewer than 10 interactions (a power-law tail has fewer items under 5 than
ML-20M, whose 5-core keeps 18,345 items, and a larger Gini, 0.94 vs 0.90). An item that no user drew takes one
slot of an item drawn by more users, so every id 1..items occurs; no user repeats an item. A smaller scale keeps
the mean length (144) over a smaller catalog, so it is denser and its tail shorter. Ratings follow ML-20M's
histogram over 0.5..5.0; timestamps are unix seconds within ML-20M's span (1995-01-09 to 2015-03-31), strictly
increasing within each user: each user starts at a uniform time and rates over a lognormal span (median a day),
the items drawn first (mostly the popular ones) first. A user cannot have more distinct items than the catalog
holds, so a scale whose users cannot hold their share of the interactions (below about 0.006) is refused.
<out>/data/<name>/stats.json holds the statistics of what was written and the generator's parameters; `generate`
and `measure` reuse a dataset whose scale, seed and parameters match.

Each run is one process (CPU, `use_gpu: False`, address space capped at --cap-gib GiB before torch is imported):
`recbole_bt.quick_start.prepare` (config, dataset, training rows, dataloaders, model), then --steps training
steps (`benchmarks.scale.train_steps`: a batch of the training dataloader, the loss, backward, Adam), then
`trainer.evaluate` of the validation dataloader (full ranking, seen items masked). Peak RSS is the process's
VmHWM, reset through /proc/self/clear_refs before each phase, in a process whose allocator returns freed blocks
above 64 KiB to the system, so each phase's peak is its own; the process peak is the largest. ms / step and
targets / s leave out the first (warm-up) step; a target is a nonzero entry of the batch's `target_item_id_list`
(all-positions rows), or a row. A phase that fails (MemoryError, an allocation torch cannot make under the cap, a
one-line recbole_bt error) ends the run with its outcome; a killed process is recorded as crashed. `--quick`:
the tiny test dataset, 2 steps, nothing recorded.
"""
import argparse
import datetime
import json
import os
import statistics
import sys
import time

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.btsrec import MEMORY_ENV, _rss_kb  # noqa: E402
from benchmarks.harness import (  # noqa: E402
    add_common_arguments, data_spec, parse_run, record_saved, run_and_save, set_threads, subcommand,
)  # fmt: skip
from benchmarks.scale import cap_address_space, train_steps  # noqa: E402

DEFAULT_RUNS = ["before:row_builder=prefix_rows", "after:row_builder=interactions"]
BASE_CONFIG = {
    "model": "SASRec", "train_mode": "all_positions", "MAX_ITEM_LIST_LENGTH": 200, "n_heads": 1,
    "train_batch_size": 128, "eval_batch_size": 256, "use_gpu": False, "show_progress": False,
    "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
    "eval_mask_seen": True,
}  # fmt: skip
COLUMNS = ["user_id", "item_id", "rating", "timestamp"]  # loaded where the .inter file has them (ml-1m: no rating)
SYNTHETIC = "ml-20m-like"

# ----------------------------------------------------------------------------------------------- data
ML20M = {"users": 138_493, "items": 26_744, "interactions": 20_000_263}
MIN_LENGTH, MAX_LENGTH, LENGTH_SIGMA = 20, 9_254, 1.38
POPULARITY_OFFSET, POPULARITY_EXPONENT = 0.008, 2.5
RATINGS = {0.5: 239_125, 1.0: 680_732, 1.5: 279_252, 2.0: 1_430_997, 2.5: 883_398, 3.0: 4_291_193,
           3.5: 2_200_156, 4.0: 5_561_926, 4.5: 1_534_824, 5.0: 2_898_660}  # ML-20M's ratings per value; fmt: skip
FIRST_TIME, LAST_TIME = 789_652_004, 1_427_784_002  # ML-20M's first and last timestamp
SPAN_MEDIAN, SPAN_SIGMA = 86_400.0, 3.0  # a user's span of activity, seconds: lognormal
GENERATOR = {"min_length": MIN_LENGTH, "max_length": MAX_LENGTH, "length_sigma": LENGTH_SIGMA,
             "popularity_offset": POPULARITY_OFFSET, "popularity_exponent": POPULARITY_EXPONENT,
             "span_median_s": SPAN_MEDIAN, "span_sigma": SPAN_SIGMA}  # fmt: skip


def user_lengths(rng, users, interactions, max_length):
    """Interactions per user: MIN_LENGTH + a * lognormal(0, LENGTH_SIGMA), rounded and clipped at max_length, with
    the smallest `a` (bisection) whose total reaches `interactions`; the excess (under one per user) is taken from
    random users, so the total is exact."""
    x = rng.lognormal(0.0, LENGTH_SIGMA, users)

    def lengths(a):
        return np.clip(np.rint(MIN_LENGTH + a * x), MIN_LENGTH, max_length).astype(np.int64)

    low, high = 0.0, 1.0
    while lengths(high).sum() < interactions:
        high *= 2
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if lengths(middle).sum() < interactions else (low, middle)
    result = lengths(high)  # total >= interactions, by less than one interaction per user
    extra = int(result.sum() - interactions)
    result[rng.choice(np.flatnonzero(result > MIN_LENGTH), extra, replace=False)] -= 1
    return result


def distinct_items(rng, lengths, weights, factors=(1.5, 3, 6)):
    """Each user's `lengths[u]` distinct items (0-based ranks), drawn one after another with probability
    proportional to `weights`, a repeat drawn again (weighted sampling without replacement), in draw order, flat.

    Each round draws `factor` x length + 8 items with replacement for every user still to do and keeps each one's
    first distinct draws; users whose draws hold too few distinct items go to the next round, and those left after
    the last one get the same law exactly, from exponential keys over the whole catalog (Efraimidis-Spirakis)."""
    n_items = len(weights)
    cdf = np.cumsum(weights / weights.sum())
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    items = np.empty(offsets[-1], dtype=np.int64)
    todo = np.arange(len(lengths))
    for factor in factors:
        need = lengths[todo]
        draws = np.ceil(need * factor).astype(np.int64) + 8
        user = np.repeat(np.arange(len(todo)), draws)  # index into todo
        drawn = np.minimum(np.searchsorted(cdf, rng.random(draws.sum()), side="right"), n_items - 1)
        key = user * n_items + drawn
        order = np.argsort(key, kind="stable")
        first = np.ones(len(key), dtype=bool)  # the first draw of its (user, item)
        first[order[1:]] = key[order[1:]] != key[order[:-1]]
        del key, order
        starts = np.cumsum(draws) - draws
        rank = np.cumsum(first) - 1  # of a first draw among its user's first draws
        rank -= np.repeat(rank[starts], draws)
        done = np.add.reduceat(first, starts) >= need
        keep = first & done[user] & (rank < need[user])
        items[offsets[todo][user[keep]] + rank[keep]] = drawn[keep]
        todo = todo[~done]
        if not len(todo):
            return items
    rows_per_chunk = max(1, 2**24 // n_items)
    for chunk in np.array_split(todo, -(-len(todo) // rows_per_chunk)):
        order = np.argsort(rng.exponential(size=(len(chunk), n_items)) / weights, axis=1)
        taken = np.arange(n_items) < lengths[chunk][:, None]
        items[(offsets[chunk][:, None] + np.arange(n_items))[taken]] = order[taken]
    return items


def fill_missing(rng, items, n_items):
    """Give every item that no user drew one slot of an item drawn more often than there are missing items (so that
    item keeps at least one); nobody holds a missing item, so no user repeats one."""
    counts = np.bincount(items, minlength=n_items)
    missing = np.flatnonzero(counts == 0)
    if len(missing):
        slots = rng.choice(np.flatnonzero(counts[items] > len(missing)), len(missing), replace=False)
        items[slots] = missing


def user_times(rng, lengths):
    """Unix seconds of every interaction, flat by user: a start uniform in ML-20M's span, then sorted uniform
    offsets over the user's lognormal span of activity, plus the position (strictly increasing)."""
    users, total = len(lengths), int(lengths.sum())
    span = np.clip(rng.lognormal(np.log(SPAN_MEDIAN), SPAN_SIGMA, users), lengths, (LAST_TIME - FIRST_TIME) / 2)
    start = FIRST_TIME + rng.random(users) * (LAST_TIME - FIRST_TIME - span - lengths)
    user = np.repeat(np.arange(users), lengths)
    offset = np.sort(user + rng.random(total)) - user  # sorted within each user: user + [0, 1) keeps users apart
    position = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return (start[user] + offset * span[user]).astype(np.int64) + position


def ml20m_like(folder, name, users=ML20M["users"], items=ML20M["items"], interactions=ML20M["interactions"],
               seed=2020, scale=1.0):  # fmt: skip
    """Write `folder/name/name.inter` (RecBole atomic file: user_id, item_id, rating, timestamp), shaped like
    MovieLens-20M (see the module doc), with `scale` x `users`, `items` and `interactions`. Returns the statistics
    of what was written."""
    users, items, interactions = (round(n * scale) for n in (users, items, interactions))
    max_length = min(MAX_LENGTH, items)
    if not MIN_LENGTH * users <= interactions <= max_length * users or interactions < items:
        raise ValueError(
            f"{users:,} users cannot hold {interactions:,} interactions with {MIN_LENGTH} to {max_length:,} distinct "
            f"items each (and every one of {items:,} items at least once)"
        )
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    lengths = user_lengths(rng, users, interactions, max_length)
    weights = (np.arange(1, items + 1) / items + POPULARITY_OFFSET) ** -POPULARITY_EXPONENT
    ranks = distinct_items(rng, lengths, weights)
    fill_missing(rng, ranks, items)
    item_ids = (rng.permutation(items) + 1)[ranks]  # popularity ranks -> ids in random order
    del ranks
    ratings = rng.choice(list(RATINGS), interactions, p=np.array(list(RATINGS.values())) / sum(RATINGS.values()))
    times = user_times(rng, lengths)
    user_ids = np.repeat(np.arange(1, users + 1, dtype=np.int64), lengths)
    generate_seconds = time.perf_counter() - start

    start = time.perf_counter()
    path = os.path.join(folder, name, f"{name}.inter")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    table = pd.DataFrame({"user_id:token": user_ids, "item_id:token": item_ids, "rating:float": ratings,
                          "timestamp:float": times})  # fmt: skip
    table.to_csv(path, sep="\t", index=False, chunksize=1_000_000)
    write_seconds = time.perf_counter() - start

    counts = np.bincount(item_ids, minlength=items + 1)[1:]
    distinct = len(np.unique(user_ids * (items + 1) + item_ids))
    return {"users": users, "items": int((counts > 0).sum()), "interactions": len(table), "seed": seed, "scale": scale,
            "user_length": {"min": int(lengths.min()), "median": float(np.median(lengths)),
                            "mean": round(float(lengths.mean()), 1), "max": int(lengths.max())},
            "top_item_interactions": int(counts.max()), "median_item_interactions": float(np.median(counts)),
            "items_under_5": int((counts < 5).sum()), "items_under_10": int((counts < 10).sum()),
            "repeats_share": (interactions - distinct) / interactions,
            "first_time": utc(times.min()), "last_time": utc(times.max()),
            "generate_seconds": round(generate_seconds, 1), "write_seconds": round(write_seconds, 1),
            "file_mb": round(os.path.getsize(path) / 2**20), "generator": GENERATOR}  # fmt: skip


def utc(seconds):
    return datetime.datetime.fromtimestamp(int(seconds), datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def synthetic_dataset(folder, scale, seed):
    """(name, statistics) of the ML-20M-like dataset of `scale` and `seed` in `folder`: generated, unless a complete
    one of the same generator parameters is there (its stats.json is written last)."""
    name = f"{SYNTHETIC}-{scale:g}x-seed{seed}"
    stats_path = os.path.join(folder, name, "stats.json")
    if os.path.exists(stats_path):
        with open(stats_path) as f:
            stats = json.load(f)
        if stats.get("generator") == GENERATOR:
            return name, stats
        os.remove(stats_path)  # stale: until the new file is complete, there is none
    stats = ml20m_like(folder, name, seed=seed, scale=scale)
    with open(stats_path, "w") as f:
        json.dump(stats, f, indent=1)
    return name, stats


def inter_file(data_path, dataset):
    return os.path.join(data_path, dataset, f"{dataset}.inter")


def inter_columns(path):
    """The fields of COLUMNS in the header of the atomic file `path` (all of COLUMNS if it is not on disk)."""
    if not os.path.exists(path):
        return COLUMNS
    with open(path) as f:
        fields = {column.split(":")[0] for column in f.readline().rstrip("\n").split("\t")}
    return [c for c in COLUMNS if c in fields]


# ----------------------------------------------------------------------------------------------- worker
class CountingLoader:
    """Iterates the training dataloader, recording the training targets of each batch it hands out."""

    def __init__(self, loader, target_field):
        self.loader, self.target_field, self.targets = loader, target_field, []

    def __iter__(self):
        for batch in self.loader:
            field = self.target_field
            self.targets.append(int((batch[field] > 0).sum()) if field in batch else len(batch))
            yield batch


def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := the current RSS


def timed_phase(result, name, fn):
    """Run fn() as phase `name`, its seconds and peak RSS into `result`; (its value, None) or (None, the error)."""
    from recbole_bt.errors import RecBoleBTError

    reset_peak()
    start = time.perf_counter()
    value, error = None, None
    try:
        value = fn()
    except (RecBoleBTError, MemoryError, RuntimeError) as e:  # the cap, the machine, or a one-line refusal
        error = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"
    result[f"{name}_seconds"] = round(time.perf_counter() - start, 2)
    result[f"peak_rss_{name}_mb"] = round(_rss_kb("VmHWM") / 1024)
    return value, error


def measure_run(job):
    from recbole_bt.data import target_list_field
    from recbole_bt.quick_start import prepare

    result = {}
    prepared, error = timed_phase(result, "prepare", lambda: prepare(job["config"]["model"], job["dataset"],
                                                                     job["config_files"], job["config"]))  # fmt: skip
    if error:
        return dict(result, outcome=f"prepare failed: {error}")
    config, train_data, valid_data, _, trainer = prepared
    dataset = valid_data._dataset
    field, rows = target_list_field(config), train_data._dataset.inter_feat
    result.update(users=dataset.user_num - 1, items=dataset.item_num - 1, training_rows=len(rows),
                  training_targets=int((rows[field] > 0).sum()) if field in rows else len(rows),
                  batches_per_epoch=len(train_data), eval_rows=len(dataset))  # fmt: skip
    steps = job["steps"] or len(train_data)  # 0: one whole epoch

    loader = CountingLoader(train_data, target_list_field(config))
    reset_peak()
    seconds, losses, error = train_steps(trainer.model, trainer.optimizer, loader, steps, config["device"])
    result.update(steps=len(seconds), steps_asked=steps, step_seconds=[round(s, 3) for s in seconds],
                  step_targets=loader.targets[: len(seconds)], losses=losses,
                  peak_rss_steps_mb=round(_rss_kb("VmHWM") / 1024))  # fmt: skip
    if error:
        return dict(result, outcome=f"failed at step {len(seconds) + 1}: {error}")

    if not job["evaluate"]:
        return dict(result, outcome="ok")
    evaluated, error = timed_phase(result, "eval", lambda: trainer.evaluate(valid_data, load_best_model=False,
                                                                            show_progress=False))  # fmt: skip
    if error:
        return dict(result, outcome=f"evaluation failed: {error}")
    return dict(result, valid=dict(evaluated), outcome="ok")


def worker(job):
    if job["cap_mb"]:
        cap_address_space(job["cap_mb"])  # before torch: everything the run maps counts
    set_threads(job["threads"])
    result = measure_run(job)
    peaks = [result[key] for key in ("peak_rss_prepare_mb", "peak_rss_steps_mb", "peak_rss_eval_mb") if key in result]
    result.update(peak_rss_mb=max(peaks), label=job["label"], config=job["config"], data=job["data"],
                  cap_mb=job["cap_mb"])  # fmt: skip
    with open(job["out"], "w") as f:
        json.dump(result, f)


# ----------------------------------------------------------------------------------------------- report
def step_rates(run):
    """(ms / step median, targets / s), both without the first (warm-up) step; '-' when there is none."""
    seconds, targets = run.get("step_seconds", [])[1:], run.get("step_targets", [])[1:]
    if not seconds:
        return "-", "-"
    return f"{statistics.median(seconds) * 1000:.0f}", f"{sum(targets) / sum(seconds):,.0f}"


def epoch_seconds(run):
    """An epoch's seconds at the measured rate: the training targets over targets / s (without the warm-up)."""
    seconds, targets = run.get("step_seconds", [])[1:], run.get("step_targets", [])[1:]
    if not seconds or "training_targets" not in run:
        return "-"
    return f"{run['training_targets'] / (sum(targets) / sum(seconds)):,.0f}"


def same_as(run, first):
    """'identical' when `run` trained with the same step losses and validated with the same metrics as `first`;
    '-' unless the two runs differ in `row_builder` only."""
    others = ({k: v for k, v in r["config"].items() if k != "row_builder"} for r in (run, first or run))
    if first is None or run.get("outcome") != "ok" or run is first or next(others) != next(others):
        return "-"
    same = run["losses"] == first["losses"] and run.get("valid") == first.get("valid")
    return "identical" if same else "different"


def tables(results):
    header = ["run", "row_builder", "prepare s", "prepare peak RSS MB", "ms / step", "targets / s",
              "epoch s (targets / rate)", "eval s",
              "eval peak RSS MB", "process peak RSS MB", "outcome",
              "losses and metrics as the first run (row_builder apart)"]  # fmt: skip
    rows, counts = [], []
    first = next((r for r in results if r.get("outcome") == "ok"), None)
    for r in results:
        if "failed" in r:
            how = "killed" if r["failed"].startswith("exit -") else "crashed"  # a signal, or a traceback in the log
            rows.append([r["label"]] + [""] * (len(header) - 3) + [f"{how}: {r['failed']}", "-"])
            continue
        ms, rate = step_rates(r)
        builder = "prefix_rows (train_mode prefix)" if r["config"].get("train_mode") == "prefix" else (
            r["config"].get("row_builder", "interactions"))  # fmt: skip
        rows.append([r["label"], builder, r["prepare_seconds"], r["peak_rss_prepare_mb"],
                     ms, rate, epoch_seconds(r), r.get("eval_seconds", "-"), r.get("peak_rss_eval_mb", "-"),
                     r["peak_rss_mb"],
                     r["outcome"], same_as(r, first)])  # fmt: skip
        if "training_rows" in r:
            counts.append(f"{r['label']}: {r['training_rows']:,} training rows, {r['eval_rows']:,} validation rows")
    ok = [r for r in results if "failed" not in r]
    if not ok:
        return header, rows, ""
    data, cap = ok[0]["data"], ok[0].get("cap_mb")
    users = next((f"{r['users']:,} users, {r['items']:,} items" for r in ok if "users" in r), "")
    synthetic = data.get("synthetic")
    source = (f"synthetic ML-20M-like (benchmarks/data_scale.py, scale {synthetic['scale']:g}, user lengths median "
              f"{synthetic['user_length']['median']:g} / mean {synthetic['user_length']['mean']} / max "
              f"{synthetic['user_length']['max']:,}, top item {synthetic['top_item_interactions']:,}), "
              if synthetic else "")  # fmt: skip
    described = [f"{source}{data['interactions']:,} interactions" if data.get("interactions") else source.rstrip(", ")]
    described += [users] if users else []
    described = ", ".join(part for part in described if part) + (f"; {'; '.join(counts)}" if counts else "")
    config = ok[0]["config"]
    extra = (f"Data: {described}. Each run: one process, CPU, "
             f"{f'address space capped at {cap / 1024:g} GiB, ' if cap else ''}{config['model']} "
             f"{config['train_mode']}, MAX_ITEM_LIST_LENGTH {config['MAX_ITEM_LIST_LENGTH']}, batch "
             f"{config['train_batch_size']}, eval batch {config['eval_batch_size']}; prepare = config, dataset, rows, "
             f"dataloaders, model; eval = one full-ranking evaluation of the validation users, seen items masked; "
             f"ms / step (median) and targets / s leave out the warm-up step; peak RSS per phase (VmHWM reset "
             f"between phases).")  # fmt: skip
    return header, rows, extra


def record(path):
    return record_saved(path, "data_scale", lambda bench, results: tables(results))


# ----------------------------------------------------------------------------------------------- main
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", choices=["generate", "measure", "record", "_worker"])
    add_common_arguments(parser, dataset=SYNTHETIC)
    parser.add_argument("--scale", type=float, default=1.0, help=f"{SYNTHETIC}: x ML-20M's users, items, interactions")
    parser.add_argument("--steps", type=int, default=20,
                        help="training steps per run (the first is a warm-up); 0: one whole epoch")
    parser.add_argument("--no-eval", action="store_true", help="skip the full-ranking evaluation")
    parser.add_argument("--cap-gib", type=float, default=24.0, help="address-space cap of each run, GiB (0: none)")
    parser.add_argument("--seed", type=int, default=2020)
    args = parser.parse_args()
    status = subcommand(args, worker, record)
    if status is not None:
        return status

    data_folder = os.path.join(os.path.abspath(args.out), "data")
    if args.bench == "generate":
        name, stats = synthetic_dataset(data_folder, args.scale, args.seed)
        print(f"{os.path.join(data_folder, name)}\n{json.dumps(stats, indent=1)}")
        return 0

    data, base = data_spec(args)
    info = {}
    if args.dataset == SYNTHETIC and not args.quick:
        data["dataset"], info["synthetic"] = synthetic_dataset(data_folder, args.scale, args.seed)
        base["data_path"] = data_folder
    path = inter_file(base.get("data_path", ""), data["dataset"])
    if "synthetic" in info:
        info["interactions"] = info["synthetic"]["interactions"]
    elif os.path.exists(path):
        from recbole_bt.data.memory import count_lines  # here, not at the top: a worker imports torch under its cap

        info["interactions"] = count_lines(path)
    base = dict(BASE_CONFIG, **base, load_col={"inter": inter_columns(path)}, seed=args.seed)
    base.update(parse_run(args.set)[1])
    steps = 2 if args.quick else args.steps
    jobs = [dict(label=label, dataset=data["dataset"], config_files=data["config_files"], config=dict(base, **config),
                 steps=steps, evaluate=not args.no_eval, cap_mb=args.cap_gib * 1024, data=info, env=MEMORY_ENV)
            for label, config in map(parse_run, args.run or DEFAULT_RUNS)]  # fmt: skip
    args.parallel = args.parallel or 1  # one run at a time: each one's memory is its own
    return run_and_save(os.path.abspath(__file__), "data_scale", args, data, jobs,
                        lambda results, plot: tables(results))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
