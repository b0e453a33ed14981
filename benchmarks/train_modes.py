"""Prefix rows vs all-positions training, side by side: throughput, memory, and quality at a wall-time budget.

    # epoch time, training targets per second and peak RSS of each run (one epoch, or --max-seconds of it)
    python benchmarks/train_modes.py throughput --dataset ml-1m --data_path ../shared/datasets \
        --run prefix:train_mode=prefix --run all_positions:train_mode=all_positions --max-seconds 300

    # best validation NDCG@10 within the budget (and at half of it), its test metrics, the learning curve
    python benchmarks/train_modes.py quality --dataset ml-1m --data_path ../shared/datasets --budget-minutes 60 \
        --run prefix:train_mode=prefix --run ap:train_mode=all_positions,train_batch_size=64

A run is `LABEL:key=value,...` (any recbole_bt config key; `model` defaults to --model, SASRec); runs go in
separate processes, `--parallel` at a time (default: all side by side), `--threads` torch threads each.
`--quick` uses the tiny test dataset and seconds-long budgets (a CI smoke check; nothing is recorded).
Training time excludes validation; each run's setup (data, split, model) is timed separately.
"""
import argparse
import copy
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import (  # noqa: E402
    add_common_arguments, data_spec, parse_run, peak_rss_mb, run_and_save, set_threads,
)  # fmt: skip


class TimeSlice:
    """An endless, reshuffled pass over a training DataLoader, handed out in slices of `seconds` of wall time,
    counting batches, training targets and completed epochs. Anything else is the wrapped loader's."""

    def __init__(self, loader, target_field):
        self.loader, self.target_field = loader, target_field
        self.seconds, self._it = None, None
        self.batches = self.targets = self.epochs = self.epoch_batches = 0
        self.first_epoch_seconds, self._epoch_start = None, None

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        end = time.perf_counter() + self.seconds
        while time.perf_counter() < end:
            if self._it is None:
                self._it, self._epoch_start, self.epoch_batches = iter(self.loader), time.perf_counter(), 0
            try:
                batch = next(self._it)
            except StopIteration:
                if self.epochs == 0:
                    self.first_epoch_seconds = time.perf_counter() - self._epoch_start
                self._it, self.epochs = None, self.epochs + 1
                continue
            self.batches, self.epoch_batches = self.batches + 1, self.epoch_batches + 1
            self.targets += int((batch[self.target_field] > 0).sum()) if self.target_field in batch else len(batch)
            yield batch

    def epochs_done(self):
        return self.epochs + self.epoch_batches / max(len(self.loader), 1)


def build(job):
    """Config, data, model and trainer of one run, built by run_recbole_bt's own `prepare`."""
    from recbole_bt.data import target_list_field
    from recbole_bt.quick_start import prepare

    start = time.perf_counter()
    config, train_data, valid_data, test_data, trainer = prepare(
        job["config"]["model"], job["dataset"], job.get("config_files"), job["config"]
    )
    setup_seconds = time.perf_counter() - start
    trainer.eval_collector.data_collect(train_data)
    return config, TimeSlice(train_data, target_list_field(config)), valid_data, test_data, trainer, setup_seconds


def throughput(job):
    config, train, _, _, trainer, setup_seconds = build(job)
    train.seconds = job["max_seconds"]
    start = time.perf_counter()
    trainer.train_one_epoch(train, 0)  # one slice: the first epoch, or as much of it as max_seconds allows
    seconds = time.perf_counter() - start
    full = train.first_epoch_seconds is not None
    return {
        "train_rows": len(train.loader.dataset),
        "batches_per_epoch": len(train),
        "batches_timed": train.batches,
        "seconds_timed": round(seconds, 2),
        "epoch_seconds": round(train.first_epoch_seconds if full else seconds / train.batches * len(train), 1),
        "epoch_seconds_measured": full,
        "targets_per_second": round(train.targets / seconds, 1),
        "setup_seconds": round(setup_seconds, 1),
    }


def quality(job):
    config, train, valid_data, test_data, trainer, setup_seconds = build(job)
    budget, every = job["budget_seconds"], job["eval_every_seconds"]
    milestones = sorted({budget / 2, budget})
    curve, reports, best, best_state, trained = [], {}, None, None, 0.0
    while trained < budget:
        train.seconds = min(every, budget - trained)
        start = time.perf_counter()
        loss = trainer.train_one_epoch(train, len(curve))
        trained += time.perf_counter() - start
        score, result = trainer.validate(valid_data)
        curve.append({"train_seconds": round(trained, 1), "epochs": round(train.epochs_done(), 3),
                      "valid_ndcg@10": result["ndcg@10"], "loss": loss if isinstance(loss, float) else None})  # fmt: skip
        print(json.dumps(curve[-1]), flush=True)
        if best is None or score > best["valid_score"]:
            best = {"valid_score": score, "valid": dict(result), "train_seconds": round(trained, 1)}
            best_state = copy.deepcopy(trainer.model.state_dict())
        for milestone in [m for m in milestones if m not in reports and trained >= m - 1]:
            current = copy.deepcopy(trainer.model.state_dict())
            trainer.model.load_state_dict(best_state)
            test = trainer.evaluate(test_data, load_best_model=False)
            trainer.model.load_state_dict(current)
            reports[milestone] = dict(best, test=dict(test))
    from recbole_bt.data.masking import describe_protocol

    return {"curve": curve, "at": {str(int(m)): r for m, r in reports.items()}, "setup_seconds": round(setup_seconds, 1),
            "epochs": round(train.epochs_done(), 2), "batches": train.batches, "targets": train.targets,
            "protocol": describe_protocol(config)}  # fmt: skip


def worker(job):
    set_threads(job["threads"])
    result = {"throughput": throughput, "quality": quality}[job["bench"]](job)
    result.update(label=job["label"], config=job["config"], peak_rss_mb=round(peak_rss_mb()))
    with open(job["out"], "w") as f:
        json.dump(result, f)


def first_reach(curve, level):
    return next((point["train_seconds"] for point in curve if point["valid_ndcg@10"] >= level), None)


def report_quality(results, budget):
    half, full = str(int(budget / 2)), str(int(budget))
    header = ["run", f"best valid NDCG@10 by {budget / 120:g} min", f"by {budget / 60:g} min",
              "test NDCG@10 / HR@10 (of the best by end)", "epochs", "peak RSS MB",
              "train s to reach ref", "train s at best"]  # fmt: skip
    ok = [r for r in results if "failed" not in r]
    reference = max((r for r in ok if r["config"].get("train_mode") == "prefix"), default=None,
                    key=lambda r: r["at"][full]["valid_score"])  # fmt: skip
    level = reference["at"][full]["valid_score"] if reference else None
    rows = []
    for r in results:
        if "failed" in r:
            rows.append([r["label"], "failed: " + r["failed"]] + [""] * (len(header) - 2))
            continue
        end, test = r["at"][full], r["at"][full]["test"]
        reach = first_reach(r["curve"], level) if level is not None else None
        rows.append([r["label"], f"{r['at'][half]['valid_score']:.4f}", f"{end['valid_score']:.4f}",
                     f"{test['ndcg@10']:.4f} / {test['hit@10']:.4f}", r["epochs"], r["peak_rss_mb"],
                     "n/a (no prefix run)" if level is None else "never" if reach is None else f"{reach:.0f}",
                     f"{end['train_seconds']:.0f}"])  # fmt: skip
    return header, rows, level


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", choices=["throughput", "quality", "_worker"])
    add_common_arguments(parser, dataset="ml-100k")
    parser.add_argument("--model", default="SASRec")
    parser.add_argument("--max-seconds", type=float, default=600, help="throughput: cap on the timed epoch")
    parser.add_argument("--budget-minutes", type=float, default=60, help="quality: training wall time per run")
    parser.add_argument("--eval-every", type=float, default=120, help="quality: seconds of training between validations")
    args = parser.parse_args()
    if args.bench == "_worker":
        return worker(json.loads(args.job))

    data, base = data_spec(args)
    base.update(parse_run(args.set)[1])
    if args.quick:
        args.max_seconds, args.budget_minutes, args.eval_every = 2, 0.15, 3
    runs = args.run or ["prefix:train_mode=prefix", "all_positions:train_mode=all_positions"]
    jobs = []
    for text in runs:
        label, config = parse_run(text)
        config = dict(base, model=args.model, **config)
        jobs.append(dict(data, bench=args.bench, label=label, config=config, max_seconds=args.max_seconds,
                         budget_seconds=args.budget_minutes * 60, eval_every_seconds=args.eval_every))  # fmt: skip
    return run_and_save(os.path.abspath(__file__), "", args, data, jobs,
                        lambda results, plot: tables(args.bench, args.budget_minutes * 60, results), parallel=len(jobs))


def tables(bench, budget, results):
    """(header, rows, extra markdown: the protocols, more payload: the quality reference) of a bench's results."""
    protocols = "\n".join(f"- protocol: {p}" for p in sorted({r["protocol"] for r in results if "protocol" in r}))
    if bench == "quality":
        header, rows, level = report_quality(results, budget)
        return header, rows, protocols, {"reference_valid_ndcg@10": level}
    header = ["run", "train rows", "batches/epoch", "epoch s", "targets/s", "peak RSS MB", "setup s (data, model)"]
    rows = [[r["label"], "failed: " + r["failed"]] + [""] * 5 if "failed" in r else
            [r["label"], r["train_rows"], r["batches_per_epoch"],
             f"{r['epoch_seconds']}{'' if r['epoch_seconds_measured'] else ' (extrapolated)'}",
             r["targets_per_second"], r["peak_rss_mb"], r["setup_seconds"]] for r in results]  # fmt: skip
    return header, rows, protocols

if __name__ == "__main__":
    sys.exit(main())
