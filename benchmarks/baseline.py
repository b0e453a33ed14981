"""The SASRec-family baseline at convergence: a recipe study on validation, and converged runs over seeds.

    # every --run (LABEL:key=value,...) x --seeds, each to early stopping on masked valid NDCG@10 (patience
    # --patience, at most --epochs), tested at its best epoch with and without seen-item masking
    python benchmarks/baseline.py converge --dataset ml-1m --data_path ../shared/datasets --seeds 2020 \
        --run sasrec+:MAX_ITEM_LIST_LENGTH=200,hidden_dropout_prob=0.1,attn_dropout_prob=0.1,train_batch_size=128

    # any model and protocol: e.g. BT-SR's (preset), more metrics, and a paired test of each label against one
    python benchmarks/baseline.py converge --dataset ml-1m-realtime --data_path ../shared/datasets \
        --config_files protocol/bt-sr-temporal.yaml --epochs 200 --patience 30 \
        --metrics Hit NDCG Coverage Effective_Rank_Centred \
        --run SASRec-CE:model=SASRec --run BTSRec-CE:model=BTSRec,alpha=0.2,lambda=0.05 --baseline SASRec-CE

    # record a finished run's JSON (e.g. one written with --no-record in another checkout) in RESULTS.md
    python benchmarks/baseline.py record path/to/baseline-converge-ml-1m-STAMP.json

Protocol: the config's split (ML-1M: RecBole's leave-one-out), full ranking, ``eval_mask_seen: True`` for
validation and early stopping; the test figures are given masked (the literature's protocol) and unmasked
(RecBole's), from the same best checkpoint. Each run also leaves its masked test's per-user NDCG@10 and HR@10 in
its folder (per_user.json); with ``--baseline LABEL`` the table adds, for every other label, the p-value of a
Wilcoxon signed-rank test of per-user NDCG@10 against that label's runs, pairs pooled over the seeds both have,
Holm-adjusted over the labels (``*``: below 0.05).

Runs survive interruption: each (label, seed, config) has its own folder under ``--out``/baseline-runs; a
finished run leaves result.json there and is reused by a later invocation with the same command; a run in
progress leaves RecBole's best checkpoint (with the package's resume state) and its curve, and continues from
that checkpoint's epoch (the epochs after it repeat exactly). Each run is `LABEL:key=value,...` on top of
``--set`` and the package defaults, each in its own process, ``--parallel`` at a time, ``--threads`` threads.
"""
import argparse
import datetime
import glob
import hashlib
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recbole_bt.evaluator.significance import stars  # noqa: E402
from benchmarks.harness import (  # noqa: E402
    ROOT, add_common_arguments, data_spec, machine, mean_std, parse_run, peak_rss_mb, record_saved, run_workers,
    runs_by_label, save, set_threads, subcommand,
)  # fmt: skip

METRICS = {"metrics": ["Hit", "NDCG"], "topk": [10], "valid_metric": "NDCG@10", "eval_mask_seen": True}


def run_folder(out, label, seed, job):
    """The folder of one (label, seed, config): the same command finds it again."""
    key = {k: job[k] for k in ("dataset", "config_files", "config")}
    digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return os.path.join(out, "baseline-runs", f"{label}-seed{seed}-{digest}")


def converge(job):
    """Train to early stopping (or resume a run in progress), test the best checkpoint masked and unmasked."""
    from recbole.data.dataloader import FullSortEvalDataLoader

    from recbole_bt.data.masking import describe_protocol
    from recbole_bt.quick_start import prepare
    from recbole_bt.resume import resume_state_saver

    folder = job["folder"]
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "job.json"), "w") as f:
        json.dump({k: job[k] for k in ("label", "dataset", "config_files", "config")}, f, indent=1)
    done = os.path.join(folder, "result.json")
    checkpoints = sorted(glob.glob(os.path.join(folder, "saved", "*.pth")), key=os.path.getmtime)
    if os.path.exists(done):
        if checkpoints and not os.path.exists(os.path.join(folder, "per_user.json")):  # a run from before them
            per_user_of_checkpoint(job, checkpoints[-1])
        with open(done) as f:
            return json.load(f)
    config = dict(job["config"], checkpoint_dir=os.path.join(folder, "saved"))
    if checkpoints:
        config["resume_file"] = checkpoints[-1]
    start = time.perf_counter()
    config, train_data, valid_data, test_data, trainer = prepare(config["model"], job["dataset"],
                                                                 job.get("config_files"), config)  # fmt: skip
    setup = time.perf_counter() - start
    curve_path = os.path.join(folder, "curve.jsonl")
    curve = []
    if checkpoints and os.path.exists(curve_path):  # keep the epochs up to the checkpoint's
        with open(curve_path) as f:
            curve = [p for p in map(json.loads, f) if p["epoch"] <= trainer.start_epoch]
    with open(curve_path, "w") as f:
        f.writelines(json.dumps(p) + "\n" for p in curve)
    clock = {"train": curve[-1]["train_seconds"] if curve else 0.0, "wall": curve[-1]["wall_seconds"] if curve else 0.0}
    train_epoch, valid_epoch = trainer._train_epoch, trainer._valid_epoch
    last = {"t": time.perf_counter()}

    def timed_train(*args, **kwargs):
        t = time.perf_counter()
        loss = train_epoch(*args, **kwargs)
        clock["train"] += time.perf_counter() - t
        return loss

    def recorded_valid(*args, **kwargs):
        score, result = valid_epoch(*args, **kwargs)
        now = time.perf_counter()
        clock["wall"] += now - last["t"]
        last["t"] = now
        point = {"epoch": len(curve) + 1, "train_seconds": round(clock["train"], 1),
                 "wall_seconds": round(clock["wall"], 1), "valid_ndcg@10": result["ndcg@10"]}  # fmt: skip
        curve.append(point)
        with open(curve_path, "a") as f:
            f.write(json.dumps(point) + "\n")
        print(json.dumps(point), flush=True)
        return score, result

    trainer._train_epoch, trainer._valid_epoch = timed_train, recorded_valid
    last["t"] = time.perf_counter()
    best_score, best_valid = trainer.fit(train_data, valid_data, saved=True, show_progress=False,
                                         callback_fn=resume_state_saver(trainer, train_data, True))  # fmt: skip
    trainer.eval_collector.keep_per_user = True  # each test user's NDCG/HR, for paired tests between runs
    test = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    trainer.eval_collector.keep_per_user = False
    save_per_user(folder, trainer.eval_collector.per_user)
    unmasked_data = FullSortEvalDataLoader(config, test_data._dataset, test_data._sampler, shuffle=False)
    unmasked = trainer.evaluate(unmasked_data, load_best_model=False, show_progress=False)
    best_epoch = max(curve, key=lambda p: p["valid_ndcg@10"])["epoch"]
    result = {"valid": dict(best_valid), "test": dict(test), "test_unmasked": dict(unmasked), "epochs": len(curve),
              "best_epoch": best_epoch, "wall_seconds": clock["wall"], "train_seconds": round(clock["train"], 1),
              "setup_seconds": round(setup, 1), "resumed": bool(checkpoints), "protocol": describe_protocol(config),
              "curve": curve}  # fmt: skip
    with open(done, "w") as f:
        json.dump(result, f)
    return result


def per_user_of_checkpoint(job, checkpoint):
    """per_user.json of a finished run from its best checkpoint (the last one RecBole saved): the masked test again."""
    from recbole_bt.quick_start import prepare

    config = dict(job["config"], checkpoint_dir=os.path.join(job["folder"], "saved"))
    config, _, _, test_data, trainer = prepare(config["model"], job["dataset"], job.get("config_files"), config)
    trainer.eval_collector.keep_per_user = True
    trainer.evaluate(test_data, load_best_model=True, model_file=checkpoint, show_progress=False)
    save_per_user(job["folder"], trainer.eval_collector.per_user)


def save_per_user(folder, per_user):
    """The masked test's per-user NDCG@10 and HR@10 (users by internal id, in evaluation order) in the run folder."""
    from recbole_bt.evaluator.significance import per_user_from_topk

    values = per_user_from_topk(per_user["topk"], ks=(10,))
    with open(os.path.join(folder, "per_user.json"), "w") as f:
        json.dump({"user": per_user["user"].tolist(), **{k: v.round(6).tolist() for k, v in values.items()}}, f)


def paired_p_values(results, baseline, metric="ndcg@10", test="wilcoxon"):
    """{label: Holm-adjusted p} of each label's runs against `baseline`'s over the test users, the pairs pooled
    over the seeds both have (each run's per_user.json); labels without per-user data are left out."""
    from recbole_bt.evaluator.significance import holm, paired_test

    def per_seed(label):
        out = {}
        for r in results:
            path = os.path.join(r.get("folder", ""), "per_user.json")
            if r["label"] == label and "failed" not in r and os.path.exists(path):
                with open(path) as f:
                    data = json.load(f)
                out[r["seed"]] = dict(zip(data["user"], data[metric]))
        return out

    base = per_seed(baseline)
    raw = {}
    for label in dict.fromkeys(r["label"] for r in results):
        runs = per_seed(label) if label != baseline else {}
        pairs = [(v, base[seed][u]) for seed, users in runs.items() if seed in base
                 for u, v in users.items() if u in base[seed]]  # fmt: skip
        if pairs:
            a, b = zip(*pairs)
            raw[label] = paired_test(a, b, test)
    return dict(zip(raw, holm(list(raw.values()))))


def worker(job):
    set_threads(job["threads"])
    result = converge(job)
    result.update(label=job["label"], seed=job["config"]["seed"], config=job["config"], peak_rss_mb=round(peak_rss_mb()),
                  folder=job["folder"])  # fmt: skip
    with open(job["out"], "w") as f:
        json.dump(result, f)


def reference_level(path):
    """(label, best validation NDCG@10, train seconds to reach it) of the best run of a saved
    `train_modes.py quality` JSON (e.g. RecBole's SASRec at its defaults for an hour), or None."""
    if not path:
        return None
    with open(path) as f:
        runs = [r for r in json.load(f)["results"] if "failed" not in r]
    best = max(runs, key=lambda r: max(p["valid_ndcg@10"] for p in r["curve"]))
    level = max(p["valid_ndcg@10"] for p in best["curve"])
    return best["label"], level, next(p["train_seconds"] for p in best["curve"] if p["valid_ndcg@10"] >= level)


def report(results, reference=None, baseline=None):
    extra_metrics = [k for k in dict.fromkeys(k for r in results if "test" in r for k in r["test"])
                     if k not in ("ndcg@10", "hit@10")]  # fmt: skip
    header = ["run", "seeds", "valid NDCG@10 (masked)", "test NDCG@10 masked", "test HR@10 masked",
              *[f"test {k} masked" for k in extra_metrics], "test NDCG@10 unmasked", "test HR@10 unmasked",
              "epochs run (best)", "train s / epoch", "wall min per run"]  # fmt: skip
    p_values = paired_p_values(results, baseline) if baseline else {}
    if baseline:
        header.append(f"test NDCG@10 vs {baseline}: p (Wilcoxon over users x seeds, Holm)")
    if reference:
        header.append(f"train s to reach {reference[0]}'s best valid {reference[1]:.4f} ({reference[2]:.0f} s there)")
    rows = []
    for label, runs in runs_by_label(results):
        if not runs:
            rows.append([label, "failed"] + [""] * (len(header) - 2))
            continue
        pick = lambda part, key: [r[part][key] for r in runs]  # noqa: E731
        rows.append([label, len(runs), mean_std(pick("valid", "ndcg@10")), mean_std(pick("test", "ndcg@10")),
                     mean_std(pick("test", "hit@10")), *[mean_std(pick("test", k)) for k in extra_metrics],
                     mean_std(pick("test_unmasked", "ndcg@10")),
                     mean_std(pick("test_unmasked", "hit@10")),
                     ", ".join(f"{r['epochs']} ({r['best_epoch']})" for r in runs),
                     f"{statistics.mean(r['train_seconds'] / r['epochs'] for r in runs):.0f}",
                     f"{statistics.mean(r['wall_seconds'] for r in runs) / 60:.1f}"])  # fmt: skip
        if baseline:
            p = p_values.get(label)
            rows[-1].append("baseline" if label == baseline else "n/a (no per-user data)" if p is None
                            else f"{p:.2g}{stars(p)}")  # fmt: skip
        if reference:
            reach = [next((p["train_seconds"] for p in r["curve"] if p["valid_ndcg@10"] >= reference[1]), None)
                     for r in runs]  # fmt: skip
            rows[-1].append(", ".join("never" if t is None else f"{t:.0f} ({reference[2] / t:.1f}x sooner)"
                                      for t in reach))  # fmt: skip
    protocols = sorted({r["protocol"] for r in results if "protocol" in r})
    configs = {r["label"]: r["config"] for r in results if "config" in r}
    extra = "\n".join([f"- protocol: {p}" for p in protocols]
                      + [f"- {label}: `{json.dumps(cfg, sort_keys=True)}`" for label, cfg in configs.items()])  # fmt: skip
    return header, rows, extra


RECIPE_KEYS = {"MAX_ITEM_LIST_LENGTH": "L", "train_batch_size": "batch", "n_heads": "heads", "hidden_dropout_prob": "dropout",
               "attn_dropout_prob": "attn dropout", "learning_rate": "lr", "lr_warmup_epochs": "warmup",
               "lr_decay": "decay", "precision": "precision", "train_windows": "windows",
               "item_inter_num_interval": "items with interactions in"}  # fmt: skip
UNREMARKABLE = {"train_windows": "all", "item_inter_num_interval": "[1,inf)"}  # said only when they differ


def recipe_of(folder):
    """The recipe a run trained with, read from the config inside its checkpoint."""
    import torch

    checkpoints = sorted(glob.glob(os.path.join(folder, "saved", "*.pth")), key=os.path.getmtime)
    if not checkpoints:
        return "?"
    config = torch.load(checkpoints[-1], map_location="cpu", weights_only=False)["config"]
    return ", ".join(f"{name} {config[key]}" for key, name in RECIPE_KEYS.items()
                     if config[key] is not None and config[key] != UNREMARKABLE.get(key))  # fmt: skip


def study(out, labels=None):
    """Every run folder under `out`/baseline-runs (or those of `labels`), finished or not: its curve's best
    validation, epochs and budget, for the record of a recipe study (runs stopped by hand included, as such)."""
    rows = []
    for folder in sorted(glob.glob(os.path.join(out, "baseline-runs", "*"))):
        name = os.path.basename(folder)
        label, seed = name.rsplit("-seed", 1)[0], int(name.rsplit("-seed", 1)[1].split("-")[0])
        curve_path = os.path.join(folder, "curve.jsonl")
        if (labels and label not in labels) or not os.path.exists(curve_path):
            continue
        with open(curve_path) as f:
            curve = [json.loads(line) for line in f]
        if not curve:
            continue
        best = max(curve, key=lambda p: p["valid_ndcg@10"])
        done = os.path.exists(os.path.join(folder, "result.json"))
        status = "early-stopped" if done else f"not finished (stopped or running after {len(curve)} epochs)"
        rows.append({"label": label, "seed": seed, "status": status, "recipe": recipe_of(folder),
                     "epochs": len(curve), "best_epoch": best["epoch"],
                     "best_valid": best["valid_ndcg@10"], "train_s_per_epoch": curve[-1]["train_seconds"] / len(curve),
                     "valid_by_epoch": [p["valid_ndcg@10"] for p in curve]})  # fmt: skip
    header = ["run", "seed", "recipe", "status", "epochs", "best valid NDCG@10 (epoch)", "train s / epoch",
              "valid NDCG@10 at epoch 10 / 20 / 30"]  # fmt: skip
    table = [[r["label"], r["seed"], r["recipe"], r["status"], r["epochs"], f"{r['best_valid']:.4f} ({r['best_epoch']})",
              f"{r['train_s_per_epoch']:.0f}", " / ".join(f"{r['valid_by_epoch'][e - 1]:.4f}" if len(r["valid_by_epoch"]) >= e
                                                         else "-" for e in (10, 20, 30))] for r in rows]  # fmt: skip
    return header, table, rows


def tables(bench, results, reference=None):
    return report(results, reference)  # p-values need the run folders' per_user.json: converge's own table has them


def record(path):
    """Copy a saved result JSON into benchmarks/results and append its section to RESULTS.md."""
    return record_saved(path, "baseline", tables)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", choices=["converge", "study", "record", "_worker"])
    add_common_arguments(parser, dataset="ml-1m")
    parser.add_argument("--model", default="SASRec")
    parser.add_argument("--seeds", type=int, nargs="+", default=[2020, 2021, 2022])
    parser.add_argument("--epochs", type=int, default=100, help="at most this many epochs")
    parser.add_argument("--patience", type=int, default=10, help="stopping_step on masked valid NDCG@10")
    parser.add_argument("--metrics", nargs="+", default=["Hit", "NDCG"], help="RecBole metrics of every run (@10)")
    parser.add_argument("--topk", type=int, nargs="+", default=[10], help="cut-offs of the metrics (10 always)")
    parser.add_argument("--baseline", default=None, help="a --run label: paired tests of every other label against it")
    parser.add_argument("--reference", default=None,
                        help="a train_modes.py quality JSON: the table adds when each run first reached its best")
    args = parser.parse_args()
    status = subcommand(args, worker, record)
    if status is not None:
        return status

    if args.bench == "study":  # the run folders as they are: nothing is trained
        header, table, rows = study(os.path.abspath(args.out), [parse_run(t)[0] for t in args.run] or None)
        payload = {"date": datetime.date.today().isoformat(), "machine": machine(args.threads), "dataset": args.dataset,
                   "argv": sys.argv, "results": rows}  # fmt: skip
        save(f"baseline-study-{args.dataset}", payload, record=not args.no_record, rows=table, header=header)
        return 0

    data, base = data_spec(args)
    base.update(METRICS, metrics=args.metrics, topk=sorted(set(args.topk) | {10}), model=args.model, epochs=args.epochs, stopping_step=args.patience, **parse_run(args.set)[1])
    if args.quick:
        base.update(epochs=3)
        args.seeds = args.seeds[:2]
    out = os.path.abspath(args.out)
    runs = [parse_run(text) for text in args.run or ["defaults:"]]
    jobs = []
    for label, config in runs:
        for seed in args.seeds:
            job = dict(data, bench="converge", label=label, config=dict(base, seed=seed, **config))
            job["folder"] = run_folder(os.path.join(out, "quick") if args.quick else out, label, seed, job)
            jobs.append(job)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    results = run_workers(os.path.abspath(__file__), jobs, args.parallel or 2, args.threads,
                          os.path.join(out, f"baseline-{args.bench}-{stamp}"))  # fmt: skip
    payload = {"date": datetime.date.today().isoformat(), "machine": machine(args.threads), "dataset": data["dataset"],
               "argv": sys.argv, "results": results}  # fmt: skip
    reference = reference_level(args.reference)
    header, rows, extra = report(results, reference, args.baseline)
    if reference:
        extra += f"\n- reference: `{os.path.relpath(os.path.abspath(args.reference), ROOT)}`"
    results_dir = os.path.join(out, "quick") if args.quick else None
    save(f"baseline-{args.bench}-{data['dataset']}", payload, record=not (args.quick or args.no_record), rows=rows,
         header=header, results_dir=results_dir, extra=extra)  # fmt: skip
    return 1 if any("failed" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
