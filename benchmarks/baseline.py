"""The SASRec-family baseline at convergence: a recipe study on validation, and converged runs over seeds.

    # every --run (LABEL:key=value,...) x --seeds, each to early stopping on masked valid NDCG@10 (patience
    # --patience, at most --epochs), tested at its best epoch with and without seen-item masking
    python benchmarks/baseline.py converge --dataset ml-1m --data_path ../shared/datasets --seeds 2020 \
        --run sasrec+:MAX_ITEM_LIST_LENGTH=200,hidden_dropout_prob=0.1,attn_dropout_prob=0.1,train_batch_size=128

    # any model and protocol: e.g. BT-SR's (preset), more metrics, each BTSRec tested against the SASRec with its
    # loss (--baseline LABEL=BASE, or --baseline BASE: every other label against BASE)
    python benchmarks/baseline.py converge --dataset ml-1m-realtime --data_path ../shared/datasets \
        --config_files protocol/bt-sr-temporal.yaml --epochs 200 --patience 30 \
        --metrics Hit NDCG Coverage Effective_Rank_Centred \
        --run SASRec-CE:model=SASRec --run BTSRec-CE:model=BTSRec --run SASRec-SCE:model=SASRec,loss_type=SCE \
        --run BTSRec-SCE:model=BTSRec,loss_type=SCE --baseline BTSRec-CE=SASRec-CE --baseline BTSRec-SCE=SASRec-SCE

    # a sweep: the labels vary one key; a table by its value and BT-SR's trade-off plot (HR@1/5/10, coverage@10,
    # popularity-bucket hit rates); --sweep-absent is the value of runs whose model lacks the key
    python benchmarks/baseline.py converge ... --metrics Hit NDCG Coverage Hit_Head Hit_Mid Hit_Tail --topk 1 5 10 \
        --run SASRec-CE:model=SASRec --run a0.1:model=BTSRec,alpha=0.1 ... --sweep alpha --sweep-absent 0

    # a weight chosen on validation: each --select value trained with the first seed, the best (masked valid
    # NDCG@10) then run with every seed; a candidate any label already trained with that config is reused
    python benchmarks/baseline.py converge ... --run SASRec:model=SASRec --run DuoRec:model=DuoRec \
        --select DuoRec:lmd=0.001,0.01,0.1 --baseline SASRec

    # a pretrain -> fine-tune chain (train_stage=finetune, no pre_model_path): the pretraining stage to its plateau
    # first, in the run's folder, then fine-tuning from it to early stopping (e.g. CLUE against CLUEZero and SASRec)
    python benchmarks/baseline.py converge ... --run SASRec:model=SASRec --run CLUE:model=CLUE,train_stage=finetune \
        --run CLUEZero:model=CLUEZero --baseline SASRec

    # the tables of the runs finished so far (the same command + --finished-only: nothing is trained)

    # record a finished run's JSON in RESULTS.md (with --no-record it is written under --out, not in
    # benchmarks/results: e.g. the tables of a --finished-only look, or a run in another checkout)
    python benchmarks/baseline.py record path/to/baseline-converge-ml-1m-STAMP.json

Protocol: the config's split (ML-1M: RecBole's leave-one-out), full ranking, ``eval_mask_seen: True`` for
validation and early stopping; the test figures are given masked (the literature's protocol) and unmasked
(RecBole's), from the same best checkpoint. Each run also leaves its masked test's per-user NDCG@10 and HR@10 in
its folder (per_user.json) and in the saved JSON; with ``--baseline`` the table adds, for each compared label, the
relative change of the mean, the 95% t-interval of the mean paired difference (relative to the baseline's mean:
a claimed gain outside it is rejected by these users, one inside it is not tested by them) and the p-value of a
Wilcoxon signed-rank test of per-user NDCG@10 (and HR@10) against
its baseline's runs, pairs pooled over the seeds both have, Holm-adjusted over the comparisons (``*``: below
0.05). Every table comes with the learning curves (valid NDCG@10 after every epoch, one line per seed).

Runs survive interruption: each (label, seed, config) has its own folder under ``--out``/baseline-runs; a
finished run leaves result.json there and is reused by a later invocation with the same command; a run in
progress leaves its best checkpoint and the last completed epoch's (``checkpoint_last``, with the package's resume
state) and its curve, and continues after that epoch, to the result of an uninterrupted run; a pretraining stage
likewise (<folder>/pretrain, its last epoch's state after every epoch, reused once it has stopped). A run's folder
also keeps the package defaults it started under (defaults.json): if one has changed since (a model's weight, a
protocol file's value), the run is neither reused nor resumed but fails with one line naming the key. Each run is `LABEL:key=value,...` on top of
``--set`` and the package defaults, each in its own process, ``--parallel`` at a time, ``--threads`` threads.
"""
import argparse
import datetime
import glob
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recbole_bt.comparison import parse_select  # noqa: E402
from recbole_bt.evaluator.significance import bracket, stars  # noqa: E402
from benchmarks.harness import (  # noqa: E402
    HERE, RESULTS_MD, ROOT, add_common_arguments, best_point, data_spec, machine, mean_std, parse_run, parse_value,
    peak_rss_mb, guard_defaults, job_config, pretrain, pretrain_seconds, rerun_argv, results_dir_of, run_folder,
    read_or_run, runs_by_label, save, set_threads, shared_cores, subcommand,
)  # fmt: skip

METRICS = {"metrics": ["Hit", "NDCG"], "topk": [10], "valid_metric": "NDCG@10", "eval_mask_seen": True}


def converge(job):
    """Train to early stopping (or resume a run in progress), test the best checkpoint masked and unmasked."""
    from recbole.data.dataloader import FullSortEvalDataLoader

    from recbole_bt.data.masking import describe_protocol
    from recbole_bt.quick_start import prepare
    from recbole_bt.resume import resume_state_saver

    folder = job["folder"]
    os.makedirs(folder, exist_ok=True)
    if not os.path.exists(os.path.join(folder, "job.json")):  # the label that trained it (others may reuse it)
        with open(os.path.join(folder, "job.json"), "w") as f:
            json.dump({k: job[k] for k in ("label", "dataset", "config_files", "config")}, f, indent=1)
    done = os.path.join(folder, "result.json")
    checkpoints = best_checkpoints(folder)
    guard_defaults(folder, job["config"]["model"], job)  # reused or resumed only under the defaults it started with
    if os.path.exists(done):
        per_user_path = os.path.join(folder, "per_user.json")
        if checkpoints and not os.path.exists(per_user_path):  # a run from before them
            per_user_of_checkpoint(job, checkpoints[-1])
        with open(done) as f:
            result = json.load(f)
        if result.get("curve"):  # runs saved before best_point named the first of equal scores
            result["best_epoch"] = best_point(result["curve"])["epoch"]
        if "per_user" not in result and os.path.exists(per_user_path):
            with open(per_user_path) as f:
                result["per_user"] = json.load(f)
        return result
    config = dict(job["config"], checkpoint_dir=os.path.join(folder, "saved"), checkpoint_last=True)
    pretrained = None
    if pretrains_first(job["config"]):  # the pretraining stage first, in <folder>/pretrain (resumable, reused)
        pretrained = pretrain(config["model"], job, job["config"])
        config["pre_model_path"] = pretrained.pop("checkpoint")
    last = glob.glob(os.path.join(folder, "saved", "*-last.pth"))
    if last or checkpoints:  # the last completed epoch (runs before checkpoint_last: the best one)
        config["resume_file"] = (last or checkpoints)[-1]
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
    trained = curve[-1]["train_seconds"] if curve else 0.0  # by the run(s) before the resume
    clock = {"wall": curve[-1]["wall_seconds"] if curve else 0.0, "t": time.perf_counter()}
    save_state = resume_state_saver(trainer, train_data, True)

    def record_point(epoch_idx, valid_score):  # fit's callback, after each validation
        now = time.perf_counter()
        clock["wall"], clock["t"] = clock["wall"] + now - clock["t"], now
        point = {"epoch": len(curve) + 1, "train_seconds": round(trained + trainer.train_seconds, 1),
                 "wall_seconds": round(clock["wall"], 1), "valid_ndcg@10": trainer.last_valid_result["ndcg@10"]}  # fmt: skip
        curve.append(point)
        with open(curve_path, "a") as f:
            f.write(json.dumps(point) + "\n")
        print(json.dumps(point), flush=True)
        save_state(epoch_idx, valid_score)

    best_score, best_valid = trainer.fit(train_data, valid_data, saved=True, show_progress=False, callback_fn=record_point)
    trainer.eval_collector.keep_per_user = True  # each test user's NDCG/HR, for paired tests between runs
    test = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    trainer.eval_collector.keep_per_user = False
    per_user = save_per_user(folder, trainer.eval_collector.per_user)
    unmasked_data = FullSortEvalDataLoader(config, test_data._dataset, test_data._sampler, shuffle=False)
    unmasked = trainer.evaluate(unmasked_data, load_best_model=False, show_progress=False)
    best_epoch = best_point(curve)["epoch"]
    result = {"valid": dict(best_valid), "test": dict(test), "test_unmasked": dict(unmasked), "epochs": len(curve),
              "best_epoch": best_epoch, "wall_seconds": clock["wall"], "train_seconds": round(trained + trainer.train_seconds, 1),
              "setup_seconds": round(setup, 1), "resumed": bool(checkpoints), "protocol": describe_protocol(config),
              "curve": curve, "per_user": per_user}  # fmt: skip
    if pretrained:
        result["pretrain"] = {k: v for k, v in pretrained.items() if k != "curve"}
    with open(done, "w") as f:
        json.dump(result, f)
    return result


def pretrains_first(config):
    """A run of ``train_stage: finetune`` with no ``pre_model_path`` is a pretrain -> fine-tune chain: the model's
    pretraining stage (to its plateau, `pretrain_stopping_step`) runs first, and fine-tuning starts from it."""
    return config.get("train_stage") == "finetune" and not config.get("pre_model_path")


def pretraining_lines(results):
    """One markdown line per label with a pretraining stage: epochs, why it stopped, its loss, time and collapse
    indicators at its end (mean ± std over seeds)."""
    lines = []
    for label, runs in runs_by_label(results):
        stages = [r["pretrain"] for r in runs if "pretrain" in r]
        if stages:
            stds = [f"{key.replace('_', ' ')} " + mean_std([p[key] for p in stages if key in p])
                    for key in ("embedding_std", "projection_std") if any(key in p for p in stages)]  # fmt: skip
            lines.append(f"- pretraining of {label} (then fine-tuned from it): epochs " + ", ".join(str(p["epochs"]) for p in stages)
                         + f"; stopped: {'; '.join(dict.fromkeys(str(p.get('stopped')) for p in stages))}; lowest loss "
                         + mean_std([p["pretrain_loss"] for p in stages])
                         + f"; {statistics.mean(pretrain_seconds(p) for p in stages) / 60:.1f} min per run"
                         + " (epochs x median epoch)"
                         + "".join(f"; {s}" for s in stds) + (" at the end" if stds else ""))  # fmt: skip
    return lines


def per_user_of_checkpoint(job, checkpoint):
    """per_user.json of a finished run from its best checkpoint (the last one RecBole saved): the masked test again."""
    from recbole_bt.quick_start import prepare

    config = dict(job["config"], checkpoint_dir=os.path.join(job["folder"], "saved"))
    config, _, _, test_data, trainer = prepare(config["model"], job["dataset"], job.get("config_files"), config)
    trainer.eval_collector.keep_per_user = True
    trainer.evaluate(test_data, load_best_model=True, model_file=checkpoint, show_progress=False)
    save_per_user(job["folder"], trainer.eval_collector.per_user)


def save_per_user(folder, per_user):
    """The masked test's per-user NDCG@10 and HR@10 (users by internal id, in evaluation order) in the run
    folder's per_user.json; returns them (kept in the run's result too, for paired tests from the saved JSON)."""
    from recbole_bt.evaluator.significance import per_user_record

    data = per_user_record(per_user, ks=(10,))
    with open(os.path.join(folder, "per_user.json"), "w") as f:
        json.dump(data, f)
    return data


def comparisons(labels, baselines):
    """[(label, its baseline)] from `--baseline` values: ``BASE`` tests every other label against BASE,
    ``LABEL=BASE`` tests LABEL against BASE only (e.g. each BTSRec against the SASRec with its loss)."""
    pairs = []
    for spec in baselines or []:
        label, _, base = spec.rpartition("=")
        for other in [label] if label else [x for x in labels if x != base]:
            if (other, base) not in pairs and other != base:
                pairs.append((other, base))
    return pairs


def per_user_of(result):
    """{metric: {user: value}} of a run's masked test: from the result (runs since per-user values were kept in
    it) or from its folder's per_user.json; None without either."""
    data = result.get("per_user")
    path = os.path.join(result.get("folder", ""), "per_user.json")
    if data is None and os.path.exists(path):
        with open(path) as f:
            data = json.load(f)
    return None if data is None else {k: dict(zip(data["user"], v)) for k, v in data.items() if k != "user"}


def paired_p_values(results, pairs, metric="ndcg@10", test="wilcoxon"):
    """({(label, baseline): Holm-adjusted p}, {(label, baseline): (change, low, high)}) for each pair of `pairs`
    whose runs have per-user values: the test over the test users, pairs pooled over the seeds both labels have,
    Holm over all the pairs tested; and the 95% t-interval of the mean paired difference, relative to the
    baseline's mean."""
    from recbole_bt.evaluator.significance import compare_runs

    per_seed = {}
    for r in results:
        values = per_user_of(r) if "failed" not in r else None
        if values:
            per_seed.setdefault(r["label"], {})[r["seed"]] = values[metric]
    return compare_runs(per_seed, pairs, test)


def significance_cells(results, pairs, p_values, metric, intervals):
    """{label: 'relative difference [95% interval], p'} of each compared label against its baseline (`p_values`
    and `intervals` from `paired_p_values`; a label tested against several baselines lists each, '; ' between),
    'baseline' for the others that are a baseline."""
    means = {label: statistics.mean(r["test"][metric] for r in runs) for label, runs in runs_by_label(results) if runs}
    cells = {}
    for label, base in pairs:
        p = p_values.get((label, base))
        if p is None:
            text = f"n/a vs {base} (no per-user data)"
        else:
            change = (means[label] - means[base]) / means[base] * 100 if means.get(base) else float("nan")
            text = f"{change:+.1f}%{bracket(intervals.get((label, base)))} vs {base}, p {p:.2g}{stars(p)}"
        cells.setdefault(label, []).append(text)
    for _, base in pairs:
        cells.setdefault(base, ["baseline"])
    return {label: "; ".join(texts) for label, texts in cells.items()}


def described(job, result):
    """A run's `converge` result with what the tables need of its job."""
    return dict(result, label=job["label"], seed=job["config"]["seed"], config=job["config"], folder=job["folder"],
                settings=settings_of(job))  # fmt: skip


def worker(job):
    set_threads(job["threads"])
    result = dict(described(job, converge(job)), peak_rss_mb=round(peak_rss_mb()))
    with open(job["out"], "w") as f:
        json.dump(result, f)


def read_back(job):
    """A finished run's result as its worker returns it, read from its folder in this process (no worker to start,
    no data to load), or None when the run still has to train, or to test its best checkpoint per user (a run from
    before per_user.json). A run whose package defaults changed since is a failed row, as in its worker."""
    folder = job["folder"]
    if not os.path.exists(os.path.join(folder, "result.json")):
        return None
    if best_checkpoints(folder) and not os.path.exists(os.path.join(folder, "per_user.json")):
        return None
    try:
        return described(job, converge(job))  # trains nothing: the folder holds its result
    except Exception as e:  # noqa: BLE001 - its one line, as a worker's failure
        return {"label": job["label"], "failed": f"{type(e).__name__}: {e}"}


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


def per_epoch(run, key):
    """Each epoch's seconds of a run (`key`: train_seconds or wall_seconds, cumulative along its curve). Their median
    is the table's figure: a run paused (SIGSTOP while a test suite runs) or stopped by the end of a session and
    resumed later carries the pause in one epoch, which a median ignores and a total does not."""
    times = [0.0] + [point[key] for point in run["curve"]]
    return [b - a for a, b in zip(times, times[1:])] or [run[key] / max(run["epochs"], 1)]


def report(results, reference=None, baselines=None):
    """(header, rows, extra markdown) of the main table: one row per label, mean ± std over its seeds of every
    test metric at 10 (and the cut-off-free ones), with `baselines` (`comparisons`) the paired tests."""
    extra_metrics = [k for k in dict.fromkeys(k for r in results if "test" in r for k in r["test"])
                     if k not in ("ndcg@10", "hit@10") and (k.endswith("@10") or "@" not in k)]  # fmt: skip
    header = ["run", "seeds", "valid NDCG@10 (masked)", "test NDCG@10 masked", "test HR@10 masked",
              *[f"test {k} masked" for k in extra_metrics], "test NDCG@10 unmasked", "test HR@10 unmasked",
              "epochs run (best)", "train s / epoch (median)", "wall min per run (epochs x median epoch)"]  # fmt: skip
    pairs = comparisons([label for label, _ in runs_by_label(results)], baselines)
    significance = {}
    for metric in ("ndcg@10", "hit@10") if pairs else ():
        p_values, intervals = paired_p_values(results, pairs, metric)  # the per-user files are read once per metric
        significance[metric] = significance_cells(results, pairs, p_values, metric, intervals)
        tested = len(p_values)
        header.append(f"test {metric.replace('hit', 'HR').replace('ndcg', 'NDCG')} masked vs baseline: change [95% "
                      f"t-interval of the paired difference, unadjusted], p (Wilcoxon signed-rank over users x seeds, "
                      f"Holm over the {tested} tested)")  # fmt: skip
    if reference:
        header.append(f"train s to reach {reference[0]}'s best valid {reference[1]:.4f} ({reference[2]:.0f} s there)")
    rows = []
    for label, runs in runs_by_label(results):
        if not runs:
            rows.append([label, "failed"] + [""] * (len(header) - 2))
            continue
        pick = lambda part, key: [r[part][key] for r in runs]  # noqa: E731
        epoch_s = statistics.median(t for r in runs for t in per_epoch(r, "train_seconds"))
        wall_min = statistics.mean(r["epochs"] * statistics.median(per_epoch(r, "wall_seconds")) for r in runs) / 60
        rows.append([label, len(runs), mean_std(pick("valid", "ndcg@10")), mean_std(pick("test", "ndcg@10")),
                     mean_std(pick("test", "hit@10")), *[mean_std(pick("test", k)) for k in extra_metrics],
                     mean_std(pick("test_unmasked", "ndcg@10")),
                     mean_std(pick("test_unmasked", "hit@10")),
                     ", ".join(f"{r['epochs']} ({r['best_epoch']})" for r in runs),
                     f"{epoch_s:.0f}", f"{wall_min:.1f}"])  # fmt: skip
        rows[-1].extend(cells.get(label, "") for cells in significance.values())
        if reference:
            reach = [next((p["train_seconds"] for p in r["curve"] if p["valid_ndcg@10"] >= reference[1]), None)
                     for r in runs]  # fmt: skip
            rows[-1].append(", ".join("never" if t is None else f"{t:.0f} ({reference[2] / t:.1f}x sooner)"
                                      for t in reach))  # fmt: skip
    protocols = sorted({r["protocol"] for r in results if "protocol" in r})
    configs = {r["label"]: r["config"] for r in results if "config" in r}
    extra = "\n".join([f"- protocol: {p}" for p in protocols] + pretraining_lines(results)
                      + [f"- {label}: `{json.dumps(cfg, sort_keys=True)}`" for label, cfg in configs.items()])  # fmt: skip
    return header, rows, extra


SWEEP_METRICS = ("ndcg@10", "hit@1", "hit@5", "hit@10", "coverage@10", "hit_head@10", "hit_mid@10", "hit_tail@10",
                 "effective_rank_centred")  # fmt: skip


def sweep_value(result, key, absent):
    """The value of the swept `key` a run trained with: its override, else the config inside its checkpoint (a
    model's default), else `absent` (a model without the key, e.g. SASRec at alpha 0)."""
    if key in result.get("config", {}):
        return result["config"][key]
    value = result.get("settings", {}).get(key)
    return absent if value is None else value


def sweep_report(results, key, absent=None):
    """(header, rows, records) of a sweep: one row per value of `key` (the runs of every label at that value
    pooled), mean ± std over the runs of the metrics of BT-SR's trade-off plot; `records` feed `plot_sweep`."""
    records = [{"status": "ok", "overrides": {key: sweep_value(r, key, absent)}, "test_result": r["test"],
                "group": f"runs {key}={sweep_value(r, key, absent)}", "label": r["label"], "epochs": r["epochs"],
                "best_epoch": r["best_epoch"]} for r in results if "failed" not in r]  # fmt: skip
    metrics = [m for m in SWEEP_METRICS if any(m in r["test_result"] for r in records)]
    header = [key, "runs (label)", *[f"test {m} masked" for m in metrics], "epochs run (best)"]
    rows = []
    numeric = lambda v: isinstance(v, (int, float))  # noqa: E731
    for value in sorted({r["overrides"][key] for r in records}, key=lambda v: (0, v, "") if numeric(v) else (1, 0, str(v))):
        runs = [r for r in records if r["overrides"][key] == value]
        rows.append([value, f"{len(runs)} ({', '.join(dict.fromkeys(r['label'] for r in runs))})",
                     *[mean_std([r["test_result"][m] for r in runs]) if all(m in r["test_result"] for r in runs)
                       else "" for m in metrics],
                     ", ".join(f"{r['epochs']} ({r['best_epoch']})" for r in runs)])  # fmt: skip
    return header, rows, records


CURVE_EPOCHS = (1, 5, 10, 20, 40, 80)


def curve_report(results, epochs=CURVE_EPOCHS):
    """(header, rows) of the learning curves in numbers: per label, valid NDCG@10 after each of `epochs` (those some
    run reached), mean ± std over the seeds that trained that far (their count when not all did); how soon a
    model learns, e.g. a pretrained start against random weights."""
    labelled = [(label, runs) for label, runs in runs_by_label(results) if runs]
    epochs = [e for e in epochs if any(r["epochs"] >= e for _, runs in labelled for r in runs)]
    header = ["run"] + [f"valid NDCG@10 after epoch {e}" for e in epochs]
    rows = []
    for label, runs in labelled:
        cells = []
        for e in epochs:
            values = [r["curve"][e - 1]["valid_ndcg@10"] for r in runs if len(r["curve"]) >= e]
            cells.append("-" if not values else mean_std(values) + ("" if len(values) == len(runs) else
                                                                    f" ({len(values)} of {len(runs)} seeds)"))
        rows.append([label] + cells)
    return header, rows


def sections(results, args, stem):
    """The main table and, as extra markdown, the sweep table and the figures (`stem`-curves.png,
    `stem`-sweep-KEY.png: learning curves, trade-off plot) of a converge run with options `args`."""
    from benchmarks.harness import markdown_table
    from recbole_bt.plots import plot_curves, plot_sweep

    header, rows, extra = report(results, reference_level(args.reference), args.baseline)
    curves = {label: [[p["valid_ndcg@10"] for p in r["curve"]] for r in runs] for label, runs in runs_by_label(results)}
    extra += "\n\nLearning curves in numbers (valid NDCG@10 masked; mean ± std over seeds):\n\n"
    extra += markdown_table(*curve_report(results))
    figures = [("learning curves (valid NDCG@10 masked, after every epoch)", plot_curves(curves, f"{stem}-curves.png"))]
    if args.sweep:
        sweep_header, sweep_rows, records = sweep_report(results, args.sweep, args.sweep_absent)
        extra += f"\n\nSweep of `{args.sweep}`:\n\n{markdown_table(sweep_header, sweep_rows)}"
        figures.append((f"trade-off plot of {args.sweep}", plot_sweep(records, args.sweep, f"{stem}-sweep-{args.sweep}.png")))
    for title, path in figures:
        if path:
            extra += f"\n\n![{title}]({os.path.relpath(path, os.path.dirname(RESULTS_MD))})"
    return header, rows, extra


RECIPE_KEYS = {"MAX_ITEM_LIST_LENGTH": "L", "train_batch_size": "batch", "n_heads": "heads", "hidden_dropout_prob": "dropout",
               "attn_dropout_prob": "attn dropout", "learning_rate": "lr", "lr_warmup_epochs": "warmup",
               "lr_decay": "decay", "precision": "precision", "train_windows": "windows",
               "item_inter_num_interval": "items with interactions in"}  # fmt: skip
UNREMARKABLE = {"train_windows": "all", "item_inter_num_interval": "[1,inf)"}  # said only when they differ


def best_checkpoints(folder):
    """A run folder's best-model checkpoints (RecBole's, not the `checkpoint_last` file), the newest last."""
    files = glob.glob(os.path.join(folder, "saved", "*.pth"))
    return sorted([f for f in files if not f.endswith("-last.pth")], key=os.path.getmtime)


def settings_of(job):
    """The values of the job's `keep_keys` its run trained with (a model's default included); a key the model
    does not have is left out."""
    if not job.get("keep_keys"):
        return {}
    config = trained_config(job.get("folder"), job)
    return {k: config[k] for k in job["keep_keys"] if config[k] is not None}


def checkpoint_config(folder):
    """The config inside a run folder's best checkpoint, or None without one."""
    import torch

    checkpoints = best_checkpoints(folder)
    return torch.load(checkpoints[-1], map_location="cpu", weights_only=False)["config"] if checkpoints else None


def trained_config(folder, job=None):
    """The config a run trained with: the one inside its checkpoint, or, for a finished run kept without
    checkpoints (restored from benchmarks/results), the one its job builds (`job`, else the folder's job.json);
    None when neither exists."""
    config = checkpoint_config(folder) if folder else None
    if config is not None:
        return config
    if job is None:
        if not (folder and os.path.exists(os.path.join(folder, "job.json"))):
            return None
        with open(os.path.join(folder, "job.json")) as f:
            job = json.load(f)
    return job_config(job["config"]["model"], job["dataset"], job.get("config_files"), job["config"])


def recipe_of(folder):
    """The recipe a run trained with (`trained_config`), "?" when it cannot be told."""
    try:
        config = trained_config(folder)
    except Exception:  # a job.json from another machine whose config files are not here
        config = None
    if config is None:
        return "?"
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
        best = best_point(curve)
        done = os.path.exists(os.path.join(folder, "result.json"))
        status = "early-stopped" if done else f"not finished (stopped or running after {len(curve)} epochs)"
        rows.append({"label": label, "seed": seed, "status": status, "recipe": recipe_of(folder),
                     "epochs": len(curve), "best_epoch": best["epoch"],
                     "best_valid": best["valid_ndcg@10"],
                     "train_s_per_epoch": statistics.median(per_epoch({"curve": curve}, "train_seconds")),
                     "valid_by_epoch": [p["valid_ndcg@10"] for p in curve]})  # fmt: skip
    header = ["run", "seed", "recipe", "status", "epochs", "best valid NDCG@10 (epoch)", "train s / epoch (median)",
              "valid NDCG@10 at epoch 10 / 20 / 30"]  # fmt: skip
    table = [[r["label"], r["seed"], r["recipe"], r["status"], r["epochs"], f"{r['best_valid']:.4f} ({r['best_epoch']})",
              f"{r['train_s_per_epoch']:.0f}", " / ".join(f"{r['valid_by_epoch'][e - 1]:.4f}" if len(r["valid_by_epoch"]) >= e
                                                         else "-" for e in (10, 20, 30))] for r in rows]  # fmt: skip
    return header, table, rows


def parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", choices=["converge", "study", "record", "_worker"])
    add_common_arguments(parser, dataset="ml-1m")
    parser.add_argument("--model", default="SASRec")
    parser.add_argument("--seeds", type=int, nargs="+", default=[2020, 2021, 2022])
    parser.add_argument("--epochs", type=int, default=100, help="at most this many epochs")
    parser.add_argument("--patience", type=int, default=10, help="stopping_step on masked valid NDCG@10")
    parser.add_argument("--metrics", nargs="+", default=["Hit", "NDCG"], help="RecBole metrics of every run (@10)")
    parser.add_argument("--topk", type=int, nargs="+", default=[10], help="cut-offs of the metrics (10 always)")
    parser.add_argument("--baseline", action="append", default=[],
                        help="paired tests: BASE (every other label against it) or LABEL=BASE (repeatable)")
    parser.add_argument("--sweep", default=None, help="a key the --run labels vary: a table and trade-off plot by its value")
    parser.add_argument("--pretrain-epochs", type=int, default=None,
                        help="cap on the pretraining stage of train_stage=finetune runs (default: the model's "
                             "pretrain_epochs, stopping at the plateau of its loss)")
    parser.add_argument("--sweep-absent", type=parse_value, default=None,
                        help="the --sweep value of runs whose model has no such key (e.g. 0: SASRec is BTSRec at alpha 0)")
    parser.add_argument("--select", action="append", default=[],
                        help="LABEL:key=v1,v2,...: each value trained with the first seed, the best on masked valid "
                             "NDCG@10 then run with every seed as LABEL (repeatable; one key per label)")
    parser.add_argument("--finished-only", action="store_true",
                        help="train nothing: the tables of the runs that have finished (the others are listed)")
    parser.add_argument("--reference", default=None,
                        help="a train_modes.py quality JSON: the table adds when each run first reached its best")
    return parser


def launch(args, jobs, out, name):
    """Run `jobs` (`--finished-only`: only the finished ones); their results, in order (`read_or_run`)."""
    if args.finished_only:
        jobs = [job for job in jobs if os.path.exists(os.path.join(job["folder"], "result.json"))]
    return read_or_run(os.path.abspath(__file__), jobs, read_back, args.parallel or 2, args.threads,
                       os.path.join(out, name), shared_cores(args, args.parallel or 2))  # fmt: skip


def model_default(data, config, key):
    """The value `key` takes in a run of `config` when the run does not set it (the model's YAML, the package's)."""
    return job_config(config["model"], data["dataset"], data.get("config_files"), config)[key]


def choose(selection, select):
    """({label: its candidate with the best masked valid NDCG@10 (the first of ties)} for each --select label whose
    candidates all finished, the labels still waiting for theirs)."""
    chosen, pending = {}, set()
    for label, (key, values) in select.items():
        runs = [r for r in selection if r["label"].startswith(f"{label}-{key}=") and "failed" not in r]
        if len(runs) < len(values):
            pending.add(label)
            continue
        chosen[label] = max(runs, key=lambda r: r["valid"]["ndcg@10"])["label"]  # the first of ties
    return chosen, pending


def name_chosen(rows, chosen):
    """Rows of the main table whose first cell (a --run label) names the value chosen for it on validation, e.g.
    'DuoRec (lmd=0.01, chosen on validation)'."""
    for row in rows:
        if row[0] in chosen:
            row[0] = f"{row[0]} ({chosen[row[0]][len(row[0]) + 1:]}, chosen on validation)"
    return rows


def selection_table(selection, chosen):
    """Markdown: each --select candidate's masked valid NDCG@10 (first seed), the chosen one marked."""
    from benchmarks.harness import markdown_table

    rows = [[r["label"], r["config"]["seed"], "failed: " + r["failed"] if "failed" in r else f"{r['valid']['ndcg@10']:.4f}",
             "" if "failed" in r else f"{r['epochs']} ({r['best_epoch']})", "chosen" if r["label"] in chosen.values() else ""]
            for r in selection]  # fmt: skip
    return "Selection on validation (each candidate at the first seed; the chosen value runs with every seed):\n\n" + \
        markdown_table(["candidate", "seed", "valid NDCG@10 (masked)", "epochs run (best)", ""], rows)


def record(path):
    """Copy a saved converge JSON into benchmarks/results and append its section (tables and figures, with the
    options it was run with) to RESULTS.md."""
    with open(path) as f:
        payload = json.load(f)
    args = parser().parse_args(payload["argv"][1:])
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"baseline-{args.bench}-{payload['dataset']}"
    header, rows, extra = sections(payload["results"], args, os.path.join(HERE, f"{name}-{stamp}"))
    if payload.get("selection"):
        rows = name_chosen(rows, payload["chosen"])
        extra += "\n\n" + selection_table(payload["selection"], payload["chosen"])
    save(name, payload, record=True, rows=rows, header=header, argv=rerun_argv(payload["argv"]), extra=extra)
    return 0


def main():
    args = parser().parse_args()
    status = subcommand(args, worker, record)
    if status is not None:
        return status

    if args.bench == "study":  # the run folders as they are: nothing is trained
        header, table, rows = study(os.path.abspath(args.out), [parse_run(t)[0] for t in args.run] or None)
        payload = {"date": datetime.date.today().isoformat(), "machine": machine(args.threads), "dataset": args.dataset,
                   "argv": sys.argv, "results": rows}  # fmt: skip
        save(f"baseline-study-{args.dataset}", payload, record=not args.no_record, rows=table, header=header,
             results_dir=results_dir_of(args))
        return 0

    data, base = data_spec(args)
    base.update(METRICS, metrics=args.metrics, topk=sorted(set(args.topk) | {10}), model=args.model, epochs=args.epochs,
                stopping_step=args.patience, **parse_run(args.set)[1])  # fmt: skip
    if args.quick:
        base.update(epochs=3)
        args.seeds, args.pretrain_epochs = args.seeds[:2], 2
    out = os.path.abspath(args.out)
    runs = [parse_run(text) for text in args.run or ["defaults:"]]
    select = parse_select(args.select)
    unknown = sorted(set(select) - {label for label, _ in runs})
    if unknown:
        raise SystemExit(f"--select names {', '.join(unknown)}, which no --run label is")

    def job_of(label, config, seed):
        if args.pretrain_epochs and pretrains_first(config):  # a cap on the pretraining stage (part of the config)
            config = dict(config, pretrain_epochs=args.pretrain_epochs)
        job = dict(data, bench="converge", label=label, config=dict(base, seed=seed, **config),
                   keep_keys=[args.sweep] if args.sweep else [])  # fmt: skip
        job["folder"] = run_folder(os.path.join(out, "quick") if args.quick else out, "baseline", label, seed, job)
        return job

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    overrides = {}  # candidate label -> what it adds to its run's config (nothing for the model's own default)
    for label, config in runs:
        if label in select:
            key, values = select[label]
            default = config.get(key, model_default(data, dict(base, **config), key))
            overrides.update({f"{label}-{key}={v}": {} if v == default and key not in config else {key: v} for v in values})
    candidates = [job_of(name, dict(config, **overrides[name]), args.seeds[0])
                  for label, config in runs for name in overrides if name.startswith(f"{label}-")]  # fmt: skip
    selection = launch(args, candidates, out, f"baseline-select-{stamp}")
    chosen, pending = choose(selection, select)
    jobs = [job_of(label, dict(config, **(overrides[chosen[label]] if label in chosen else {})), seed)
            for label, config in runs if label not in pending for seed in args.seeds]  # fmt: skip
    results = launch(args, jobs, out, f"baseline-{args.bench}-{stamp}")
    unfinished = [job for job in candidates + jobs if not os.path.exists(os.path.join(job["folder"], "result.json"))]
    # the selection's per-user rows stay in its runs' folders: no test reads them, and the JSON would double in size
    payload = {"date": datetime.date.today().isoformat(), "machine": machine(args.threads), "dataset": data["dataset"],
               "argv": sys.argv, "results": results, "chosen": chosen,
               "selection": [{k: v for k, v in r.items() if k != "per_user"} for r in selection]}  # fmt: skip
    recorded = not (args.quick or args.no_record)
    name = f"baseline-{args.bench}-{data['dataset']}"
    stem = os.path.join(HERE if recorded else out, f"{name}-{stamp}")
    header, rows, extra = sections(results, args, stem)
    if selection:
        rows = name_chosen(rows, chosen)
        extra += "\n\n" + selection_table(selection, chosen)
    if args.finished_only and unfinished:
        extra += "\n\nNot finished yet (left out): " + ", ".join(f"{j['label']} seed {j['config']['seed']}" for j in unfinished)
    if args.reference:
        extra += f"\n- reference: `{os.path.relpath(os.path.abspath(args.reference), ROOT)}`"
    save(name, payload, record=recorded, rows=rows, header=header, results_dir=results_dir_of(args), extra=extra)
    return 1 if any("failed" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
