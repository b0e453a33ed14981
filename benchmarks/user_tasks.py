"""BTPretrain vs DualEncoder vs CLUE vs no pretraining on the downstream user tasks, and how each depends on the
pretraining batch size (Liu et al. 2025's claim, SPEC section 2; recbole_bt/tasks).

    # every method x seed x batch size: pretraining at train_batch_size B to the plateau of its own loss (stopped
    # once the loss has fallen by less than 1% over pretrain_stopping_step 10 epochs: PLATEAU below; capped at the
    # optimizer steps of pretrain_epochs 100 at the main batch, `pretrain_cap`, and above the main batch both counted
    # in those steps, `pretrain_window`, BTPretrain there to the cap; --pretrain-epochs N caps every job at N), then
    # train_stage: user_tasks on its checkpoint (no pretraining: random weights). At --main-batch every protocol
    # (linear probe and fine-tuning) x label ratio x task; at the other batch sizes --batch-protocols.
    python benchmarks/user_tasks.py study --dataset ml-1m --data_path ../shared/datasets --batch-sizes 32 64 256 1024

    # interrupted (a killed process, the end of a session)? The same command again reuses every finished job and
    # pretraining stage (folders under --out/user_tasks-runs) and resumes a pretraining after its last epoch; the
    # same command + --finished-only trains nothing: the tables of the jobs finished so far, the others listed

    # a probe of the next_item task: each finished job's encoder scored with no labelled user (its own item scores,
    # label ratio 0) beside the heads the study trained from that start; the study's arguments, trains no encoder
    python benchmarks/user_tasks.py zero-shot --dataset ml-1m --data_path ../shared/datasets \
        --batch-sizes 32 64 256 1024

    # a probe of the attribute tasks: the gender and age linear probes of each finished job's encoder again, the
    # head starting as the majority-class rule (user_task_head_start: prior), beside the study's (random start)
    python benchmarks/user_tasks.py head-start --dataset ml-1m --data_path ../shared/datasets \
        --batch-sizes 32 64 256 1024
    # the same for the study's fine-tuning (encoder and head; at the main batch, where the study fine-tunes)
    python benchmarks/user_tasks.py head-start-finetune --dataset ml-1m --data_path ../shared/datasets \
        --batch-sizes 32 64 256 1024

    # dimensional collapse: the effective rank of every user's h(s) from each finished job's encoder (seconds a job)
    python benchmarks/user_tasks.py rank --dataset ml-1m --data_path ../shared/datasets --batch-sizes 32 64 256 1024

    # record a finished run's JSON (e.g. one run with --no-record from another checkout) in RESULTS.md
    python benchmarks/user_tasks.py record path/to/user_tasks-study-ml-1m-STAMP.json

Every method uses the same encoder (ENCODER below: the SASRec-family recipe's length 200 and one head) and its own
YAML otherwise (CLUE: a [UR] token, dropout views;
BTPretrain: crop / mask / reorder views, BT on a 256-256 projector; DualEncoder: in-batch softmax, temperature 0.1).
The tables, paired tests and plot: `benchmarks/user_tasks_tables.py`. `--quick`: the tiny test dataset, seconds.
"""
import argparse
import json
import os
import sys
import time

import yaml

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import (  # noqa: E402
    HERE, ROOT, add_common_arguments, data_spec, finished, parse_run, peak_rss_mb, pretrain, record_saved,
    run_and_save, guard_defaults, run_folder, set_threads, subcommand,
)  # fmt: skip
from benchmarks.user_tasks_tables import (  # noqa: E402
    RANK_NOTE, ZERO_SHOT_NOTE, head_start_tables, report_rank, report_zero_shot, tables,
)  # fmt: skip

METHODS = ["BTPretrain", "DualEncoder", "CLUE", "none"]  # none: BTPretrain's encoder, random weights
ENCODER = {"n_layers": 2, "n_heads": 1, "hidden_size": 64, "inner_size": 256, "MAX_ITEM_LIST_LENGTH": 200}
# the plateau of a pretraining loss: the BT and in-batch softmax losses keep falling for as long as they are trained
# (ml-100k, batch 256, epochs 17 to 27: BT -1.6%, DualEncoder -0.5% an epoch; `python run_recbole_bt.py
# --model=BTPretrain --dataset=ml-100k --train_stage=pretrain --pretrain_epochs=60 --pretrain_stopping_step=0
# --MAX_ITEM_LIST_LENGTH=200 --n_heads=1 --train_batch_size=256`), so "no lower loss" (pretrain_min_delta 0, the
# YAML's) would run every one of them to the pretrain_epochs cap; 1% over 10 epochs is a plateau
PLATEAU = {"pretrain_min_delta": 0.01}
# the pretraining epochs' cap and plateau window at the main batch: the package's (SequencePretrainer.yaml)
PRETRAINER_YAML = yaml.safe_load(open(os.path.join(ROOT, "properties", "model", "SequencePretrainer.yaml")))
YAML_CAP, YAML_WINDOW = PRETRAINER_YAML["pretrain_epochs"], PRETRAINER_YAML["pretrain_stopping_step"]
FOLDER_KEYS = ("dataset", "config_files", "config", "method", "pretrain_epochs")  # what a job's folder stands for


# ----------------------------------------------------------------------------------------------- worker
def model_of(job):
    """The model a job trains: its method's, BTPretrain's encoder for no pretraining."""
    return "BTPretrain" if job["method"] == "none" else job["method"]


def pipeline(job):
    from recbole_bt.quick_start import run_recbole_bt

    config, out = dict(job["config"]), {}
    model = model_of(job)
    if job["method"] != "none":
        out["pretrain"] = pretrain(model, job, config)
        config["pre_model_path"] = out["pretrain"].pop("checkpoint")
    start = time.perf_counter()
    result = run_recbole_bt(model, job["dataset"], job.get("config_files"), dict(config, train_stage="user_tasks"))
    out.update(user_tasks=result["user_tasks"], tasks_seconds=round(time.perf_counter() - start, 1))
    return out


def study_encoder(job):
    """(config, model) of a probe of a finished study job: the job's config, with ``pre_model_path`` its finished
    pretraining stage's checkpoint, reused from the study's folder (no pretraining: random weights, none)."""
    config, model = dict(job["config"]), model_of(job)
    if job["method"] != "none":
        config["pre_model_path"] = pretrain(model, dict(job, folder=job["study_folder"]), config)["checkpoint"]
    return config, model


def zero_shot_pipeline(job):
    """The next_item task's zero-shot score of a finished study job's encoder: label ratio 0, nothing trained, the
    model's own item scores (`h(s)` times its item table) on the study's test users."""
    from recbole_bt.quick_start import run_recbole_bt

    config, model = study_encoder(job)
    config.update(train_stage="user_tasks", user_tasks="next_item", user_task_protocols="probe", label_ratios=[0])
    row = run_recbole_bt(model, job["dataset"], job.get("config_files"), config)["user_tasks"]["next_item"]["probe"][0]
    return {"zero_shot": {k: v for k, v in row.items() if k != "per_user"}}


def head_start_pipeline(job):
    """The gender and age linear probes (fine-tuning for `head-start-finetune`) of a finished study job's encoder
    with ``user_task_head_start: prior``: each head starts as the labelled users' majority-class rule (zero weights,
    their log class frequencies), a candidate of the selection on the validation users; the study's own heads start
    from random weights."""
    from recbole_bt.quick_start import run_recbole_bt

    config, model = study_encoder(job)
    config.update(train_stage="user_tasks", user_tasks=["gender", "age"], user_task_protocols=HEAD_START[job["bench"]],
                  user_task_head_start="prior")  # fmt: skip
    return {"user_tasks": run_recbole_bt(model, job["dataset"], job.get("config_files"), config)["user_tasks"]}


def rank_pipeline(job):
    """The effective rank of every user's h(s) [U H] from a finished study job's encoder (as is, and centred): the
    dimensional-collapse indicator beside the study's per-dimension stds, which stay up when the users' vectors
    spread along a few directions only."""
    from recbole_bt.evaluator.metrics import effective_rank
    from recbole_bt.quick_start import prepare
    from recbole_bt.tasks.protocols import embed
    from recbole_bt.tasks.sequences import user_sequences

    config, model = study_encoder(job)
    config, _, valid_data, _, trainer = prepare(model, job["dataset"], job.get("config_files"),
                                                dict(config, train_stage="user_tasks"))  # fmt: skip
    users = user_sequences(valid_data, trainer.model)
    h = embed(trainer.model, users.item_seq, users.item_seq_len, config["eval_batch_size"])  # [U H]
    return {"representation": {"users": len(users), "dims": h.shape[1], "effective_rank": effective_rank(h),
                               "effective_rank_centred": effective_rank(h, centred=True)}}  # fmt: skip


HEAD_START = {"head-start": "probe", "head-start-finetune": "finetune"}  # the protocol each one trains
PROBES = {"zero-shot": zero_shot_pipeline, **dict.fromkeys(HEAD_START, head_start_pipeline),
          "rank": rank_pipeline}  # on finished encoders


def described(job, result):
    """A job's result with what the tables need of the job."""
    return dict(result, label=job["label"], method=job["method"], batch=job["batch"], seed=job["config"]["seed"])


def worker(job):
    set_threads(job["threads"])
    guard_defaults(job["folder"], model_of(job), job)
    compute = PROBES.get(job.get("bench"), pipeline)
    result = dict(described(job, finished(job["folder"], lambda: compute(job))), peak_rss_mb=round(peak_rss_mb()))
    with open(job["out"], "w") as f:
        json.dump(result, f)


def read_back(job):
    """A finished job's result as its worker returns it (but its memory), read from its folder in this process: no
    worker to start, no data to load; None when the job still has to run. A job whose package defaults changed
    since is a failed row, as in its worker."""
    if not os.path.exists(os.path.join(job["folder"], "result.json")):
        return None
    try:
        guard_defaults(job["folder"], model_of(job), job)
        return described(job, finished(job["folder"], None))
    except Exception as e:  # noqa: BLE001 - its one line, as a worker's failure
        return {"label": job["label"], "failed": f"{type(e).__name__}: {e}"}


def lean(result):
    """A job's result as the study's JSON keeps it: without the test users' rows (`per_user`). The whole study's
    rows would take several MiB; every job's folder keeps them, and the JSON keeps the paired tests they gave
    (`user_tasks_tables.bt_vs_de`)."""
    if "failed" in result:
        return result
    tasks = {task: rows if task == "users" else {
        protocol: {ratio: {k: v for k, v in row.items() if k != "per_user"} for ratio, row in by_ratio.items()}
        for protocol, by_ratio in rows.items()} for task, rows in result["user_tasks"].items()}  # fmt: skip
    return dict(result, user_tasks=tasks)


def record(path):
    plot = os.path.join(HERE, os.path.basename(path).replace(".json", ".png"))
    with open(path) as f:
        payload = json.load(f)
    if payload["argv"][1] != "study":  # a probe's tables need the study jobs' folders, not its JSON alone
        raise SystemExit(f"record takes a study's JSON; {path} is of `{payload['argv'][1]}`: run that probe again "
                         f"without --no-record (it reads the finished jobs back in seconds) to record it")
    tests = payload.get("bt_vs_de")  # None in a JSON from before the tests were kept: from its results
    trend = payload.get("batch_trend")
    return record_saved(path, "user_tasks",
                        lambda bench, results: tables(bench, results, plot, tests=tests, trend=trend)[:3])


# ----------------------------------------------------------------------------------------------- main
def pretrain_cap(batch, main_batch, cap=None):
    """A job's pretraining epochs at most: `cap` when given; else the YAML's (None: left to it) up to the main batch,
    and above it the optimizer steps of the YAML's cap at the main batch (400 epochs at batch 1024 beside 256): an
    epoch at 4x the batch takes 1/4 the steps, and BTPretrain at batch 256 still lowered its loss by 1% per 10 epochs
    at epoch 100 (`benchmarks/pretrain_epochs_probe.sh`: its probes gained to epoch 100, flat from 100 to its plateau
    at 170), so 100 epochs at 1024 would stop it at a quarter of those steps."""
    if cap or batch <= main_batch:
        return cap
    return -(-YAML_CAP * batch // main_batch)


def pretrain_window(batch, main_batch, method=None, bt_to_cap=True):
    """A job's plateau window (`PLATEAU`'s epochs without a loss 1% lower), as a config key: none up to the main
    batch (the YAML's 10 epochs; the job's folder as before), and above it the optimizer steps of those 10 epochs at
    the main batch (40 epochs at batch 1024 beside 256), as `pretrain_cap` scales the cap: counted in epochs,
    BTPretrain at batch 1024 met the plateau rule after 38-57 epochs (230-340 steps, its loss 23-27 against 8.5 at
    batch 256 after 2300 steps, RESULTS.md "State at 05:25"), a window of 60 steps.

    BTPretrain above the main batch (`bt_to_cap`): no plateau stop (0), its pretraining runs to the cap, the steps
    of the main batch's 100 epochs, as it does at and below the main batch (its loss still falls there at the cap).
    At batch 1024 its loss stalled from epoch 90 to about 210 (epochs at 19-30, 10-epoch means 21-23), so the
    40-epoch window stopped it at 154 and 164 epochs; it then fell to 7.7 by epoch 400 while its linear probe rose
    (gender @1% 0.527 -> 0.629, age @1% 0.154 -> 0.255; RESULTS.md "State at 13:40"): its loss's plateau is not
    where it ends. DualEncoder's and CLUE's losses fall smoothly to their plateaus, well inside the cap, and keep
    the window."""
    if batch <= main_batch:
        return {}
    if method == "BTPretrain" and bt_to_cap:
        return {"pretrain_stopping_step": 0}
    return {"pretrain_stopping_step": -(-YAML_WINDOW * batch // main_batch)}


def window(args, batch, method):
    """A job's `pretrain_window` under the study's arguments (the older rules for the folders they made)."""
    if args.window_in_epochs:
        return {}
    return pretrain_window(batch, args.main_batch, method, bt_to_cap=not args.bt_window_in_steps)


def study_jobs(args, data, base):
    """The study's jobs (method x batch size x seed), each with its run folder, in the order they run."""
    jobs, out = [], os.path.join(os.path.abspath(args.out), "quick" if args.quick else "")
    # the main grid first, then the other batch sizes; seed by seed within each, so that a study stopped part-way
    # (several sessions on 2 cores) holds every method's run of its first seeds: paired comparisons, not one method
    for batch in sorted(args.batch_sizes, key=lambda b: b != args.main_batch):
        protocols = {} if batch == args.main_batch else {"user_task_protocols": args.batch_protocols}
        for seed in args.seeds:
            for method in args.methods:
                if method == "none" and batch != args.main_batch:
                    continue  # no pretraining: nothing depends on the batch size
                job = dict(data, label=f"{method} batch {batch} seed {seed}", method=method, batch=batch,
                           pretrain_epochs=pretrain_cap(batch, args.main_batch, args.pretrain_epochs),
                           config=dict(base, seed=seed, train_batch_size=batch, **protocols,
                                       **window(args, batch, method)))
                job["folder"] = run_folder(out, "user_tasks", f"{method}-batch{batch}", seed, job, FOLDER_KEYS)
                jobs.append(job)
    # at the other batch sizes BTPretrain and DualEncoder (the paper's comparison) before CLUE's probes
    jobs.sort(key=lambda job: job["batch"] != args.main_batch and job["method"] not in ("BTPretrain", "DualEncoder"))
    return jobs


def encoder_here(job):
    """Whether a finished study job's encoder is on this machine: its pretraining stage's folder finished (no
    pretraining, random weights: always)."""
    return job["method"] == "none" or os.path.exists(os.path.join(job["folder"], "pretrain", "result.json"))


def finished_probe(args, data, jobs):
    """The `zero-shot`, `head-start` and `rank` probes: for every finished job of the study, its encoder evaluated again
    (`PROBES`; its folder inside the job's), beside what the study's heads reached (`head-start-finetune`: the
    main batch's jobs, the only ones the study fine-tunes). Trains no encoder."""
    if args.bench == "head-start-finetune":
        jobs = [job for job in jobs if job["batch"] == args.main_batch]
    done = [job for job in jobs if os.path.exists(os.path.join(job["folder"], "result.json"))]
    waiting = [job["label"] for job in jobs if job not in done]
    # a job restored from the archive (a fresh machine) has its results but not its encoder: its probe, unless
    # archived too, would pretrain it again (hours), so it is listed instead
    gone = [job for job in done if not encoder_here(job) and not os.path.exists(
        os.path.join(job["folder"], args.bench, "result.json"))]  # fmt: skip
    done = [job for job in done if job not in gone]
    probes = [dict(job, bench=args.bench, study_folder=job["folder"], folder=os.path.join(job["folder"], args.bench))
              for job in done]  # fmt: skip

    def report(results, plot):
        studies = [read_back(job) for job in done]
        if args.bench == "zero-shot":
            header, rows, note = *report_zero_shot(results, studies), ZERO_SHOT_NOTE
        elif args.bench == "rank":
            header, rows, note = *report_rank(results, studies), RANK_NOTE
        else:
            header, rows, note = head_start_tables(results, studies, HEAD_START[args.bench])
        left_out = "\n\nStudy jobs not finished yet (left out): " + ", ".join(waiting) if waiting else ""
        if gone:
            left_out += ("\n\nEncoders not on this machine (their jobs restored from the archive; left out): "
                         + ", ".join(job["label"] for job in gone))  # fmt: skip
        return header, rows, note + left_out

    return run_and_save(os.path.abspath(__file__), "user_tasks", args, data, probes, report, read_back=read_back)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", choices=["study", *PROBES, "record", "_worker"])
    add_common_arguments(parser, dataset="ml-1m")
    parser.add_argument("--seeds", type=int, nargs="+", default=[2020, 2021, 2022])
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--pretrain-epochs", type=int, default=None,
                        help="cap on every job's pretraining epochs (default: `pretrain_cap`, to the plateau of the loss)")
    parser.add_argument("--window-in-epochs", action="store_true",
                        help="the plateau window in epochs at every batch size (no `pretrain_window`: the study's "
                             "batch-1024 jobs before 2026-12-03, read back with --finished-only)")
    parser.add_argument("--bt-window-in-steps", action="store_true",
                        help="BTPretrain above the main batch stopped at the plateau window too, as the other methods "
                             "(no run to the cap: the study's batch-1024 BTPretrain jobs of 2026-12-03, 06:25-13:40)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64, 256, 1024])
    parser.add_argument("--main-batch", type=int, default=256, help="the batch size of the full task grid")
    parser.add_argument("--batch-protocols", default="probe", help="protocols at the other batch sizes")
    parser.add_argument("--finished-only", action="store_true",
                        help="train nothing: the tables of the jobs that have finished (the others are listed)")
    args = parser.parse_args()
    status = subcommand(args, worker, record)
    if status is not None:
        return status

    data, base = data_spec(args)
    base.update(ENCODER, **PLATEAU, **parse_run(args.set)[1])
    if args.quick:
        args.pretrain_epochs, args.seeds, args.batch_sizes, args.main_batch = 1, args.seeds[:1], [4, 16], 16
        base.update(hidden_size=8, n_heads=2, inner_size=16, MAX_ITEM_LIST_LENGTH=10, probe_epochs=3, task_epochs=1,
                    user_split=[0.5, 0.25, 0.25])  # fmt: skip
    jobs = study_jobs(args, data, base)
    if args.bench in PROBES:
        return finished_probe(args, data, jobs)
    waiting = []
    if args.finished_only:  # a study spans several sessions: its tables so far, read back
        waiting = [job["label"] for job in jobs if not os.path.exists(os.path.join(job["folder"], "result.json"))]
        jobs = [job for job in jobs if job["label"] not in waiting]

    def report(results, plot):
        header, rows, extra, tests = tables(args.bench, results, plot, args.main_batch)
        left_out = "\n\nNot finished yet (left out): " + ", ".join(waiting) if waiting else ""
        return header, rows, extra + left_out, tests

    return run_and_save(os.path.abspath(__file__), "user_tasks", args, data, jobs, report, read_back=read_back,
                        keep=lean)


if __name__ == "__main__":
    sys.exit(main())
