"""Shared pieces of the benchmarks: run specs, side-by-side worker processes, timing, RSS, RESULTS.md rows.

Every benchmark runs each of its runs in its own process (so peak RSS and thread count are per run), up to
`--parallel` at once, and writes one JSON file under benchmarks/results/ plus rows in benchmarks/RESULTS.md.
"""
import argparse
import datetime
import glob
import hashlib
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS_DIR = os.path.join(HERE, "results")
RESULTS_MD = os.path.join(HERE, "RESULTS.md")
QUICK_DATA = {"dataset": "tiny", "data_path": os.path.join(ROOT, "tests", "fixtures"),
              "config_files": [os.path.join(ROOT, "tests", "fixtures", "tiny.yaml")]}  # fmt: skip


def add_common_arguments(parser, dataset):
    """The arguments every benchmark takes: data, threads and parallel runs, --quick, recording, output folder."""
    parser.add_argument("job", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("--run", action="append", default=[], help="LABEL:key=value,... (repeatable)")
    parser.add_argument("--dataset", default=dataset)
    parser.add_argument("--data_path", default=None)
    parser.add_argument("--config_files", nargs="*", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--parallel", type=int, default=0, help="runs at once (0: all)")
    parser.add_argument("--quick", action="store_true", help="tiny dataset, seconds-long runs, nothing recorded")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    parser.add_argument("--out", default=os.path.join(HERE, "out"), help="folder for per-run logs")
    parser.add_argument("--set", default="", help="key=value,... applied to every run")


def subcommand(args, worker, record=None):
    """Run the `_worker JSON` (one run, in its own process) and `record PATH` subcommands; their exit status, or
    None when `args.bench` is a benchmark."""
    if args.bench == "_worker":
        return worker(json.loads(args.job)) or 0
    if args.bench == "record" and record is not None:
        return record(args.job)
    return None


def data_spec(args):
    """(dataset and config files of the runs, base config with the data path) from the common arguments."""
    # a file here becomes its absolute path (workers run in their own folder); a preset's short name
    # (protocol/<name>.yaml, found inside the package by recbole_bt.config.resolve_config_file) stays as it is
    files = [os.path.abspath(f) if os.path.exists(f) else f for f in args.config_files or []]
    data = {"dataset": args.dataset, "config_files": files or None}
    base = {"show_progress": False}
    if args.data_path:
        base["data_path"] = os.path.abspath(args.data_path)  # workers run in their own folder
    if args.quick:
        data = dict(QUICK_DATA)
        base["data_path"] = data.pop("data_path")
    return data, base


def parse_value(text):
    """'64' -> 64, '1e-3' -> 0.001, 'true' -> True, 'all_positions' -> 'all_positions'."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        try:
            return float(text)
        except ValueError:
            return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def parse_run(text):
    """'LABEL:key=value,key=value' (or 'key=value,...') -> (label, {key: value})."""
    head = text.split("=", 1)[0]  # a label ends at the last ':' before the first '=' (values may hold ':')
    label, settings = (text[: head.rindex(":")], text[head.rindex(":") + 1 :]) if ":" in head else ("", text)
    config = {}
    for item in filter(None, settings.split(",")):
        key, _, value = item.partition("=")
        config[key.strip()] = parse_value(value.strip())
    label = label or "/".join(f"{k}={v}" for k, v in config.items())
    return label, config


def machine(threads):
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores, {threads} thread(s)/run, {gpu}, torch {torch.__version__}"


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def set_threads(threads):
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)


def run_workers(script, jobs, parallel, threads, out_dir):
    """Run `python script _worker JSON` for each job (with its extra environment `job["env"]`, if any),
    `parallel` at a time; returns their JSON results in order."""
    os.makedirs(out_dir, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONPATH=ROOT)
    pending, running, results = list(enumerate(jobs)), [], [None] * len(jobs)
    while pending or running:
        while pending and len(running) < parallel:
            index, job = pending.pop(0)
            job = dict(job, threads=threads, out=os.path.join(out_dir, f"run{index}.json"))
            log = open(os.path.join(out_dir, f"run{index}.log"), "w")
            cwd = os.path.join(out_dir, f"run{index}")  # RecBole's log/ and saved/ folders, one per run
            os.makedirs(cwd, exist_ok=True)
            print(f"[start] {job['label']} (log: {log.name})", flush=True)
            proc = subprocess.Popen([sys.executable, script, "_worker", json.dumps(job)], cwd=cwd,
                                    env=dict(env, **job.get("env", {})),
                                    stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
            running.append((index, job, proc, log))
        time.sleep(1)
        for entry in list(running):
            index, job, proc, log = entry
            if proc.poll() is None:
                continue
            running.remove(entry)
            log.close()
            if proc.returncode == 0 and os.path.exists(job["out"]):
                with open(job["out"]) as f:
                    results[index] = json.load(f)
            else:
                results[index] = {"label": job["label"], "failed": f"exit {proc.returncode}, see {log.name}"}
            print(f"[done]  {job['label']}: {'failed' if 'failed' in results[index] else 'ok'}", flush=True)
    return results


def rerun_argv(argv):
    """A saved run's argv as a user would rerun it: without --no-record and --out DIR."""
    kept, skip = [], False
    for arg in argv:
        if not skip and arg not in ("--no-record", "--out"):
            kept.append(arg)
        skip = arg == "--out"
    return kept


def record_saved(path, prefix, tables):
    """Append the section of a saved result JSON (e.g. of a --no-record run in another checkout) to RESULTS.md;
    `tables(bench, results)` -> (header, rows, extra markdown). Its copy goes to benchmarks/results."""
    with open(path) as f:
        payload = json.load(f)
    bench = payload["argv"][1]
    header, rows, extra = tables(bench, payload["results"])
    save(f"{prefix}-{bench}-{payload['dataset']}", payload, record=True, rows=rows, header=header,
         argv=rerun_argv(payload["argv"]), extra=extra)  # fmt: skip
    return 0


def mean_std(values):
    """'mean ± sample std' of a list of numbers (std 0 for one value)."""
    import statistics

    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values) if len(values) > 1 else 0:.4f}"


def runs_by_label(results):
    """(label, its finished runs) for each run label, in the order of `results` (a label's failed runs left out)."""
    for label in dict.fromkeys(r["label"] for r in results):
        yield label, [r for r in results if r["label"] == label and "failed" not in r]


def markdown_table(header, rows):
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(map(str, r)) + " |" for r in rows])


def save(name, payload, record, rows, header, results_dir=None, argv=None, extra=""):
    """Write <results_dir>/<name>-<stamp>.json (default benchmarks/results/) and, if `record`, append a
    section to RESULTS.md with the machine, the command (`argv`, default sys.argv), the JSON's path, the table
    and `extra` (more markdown after the table)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    results_dir = results_dir or RESULTS_DIR
    os.makedirs(results_dir, exist_ok=True)
    path = os.path.join(results_dir, f"{name}-{stamp}.json")
    with open(path, "w") as f:
        json.dump(payload, f, indent=1)
    table = markdown_table(header, rows) + (f"\n\n{extra}" if extra else "")
    print(table)
    if record:
        argv = argv or sys.argv
        script = os.path.join("benchmarks", os.path.basename(argv[0]))
        command = "python " + " ".join(shlex.quote(a) for a in [script] + argv[1:])
        with open(RESULTS_MD, "a") as f:
            f.write(f"\n### {name}, {payload['date']}\n\n- machine: {payload['machine']}\n- command: `{command}`\n"
                    f"- raw results: `{os.path.relpath(path, ROOT)}`\n\n{table}\n")  # fmt: skip
    return path


def results_dir_of(args):
    """Where a benchmark's JSON goes: benchmarks/results (None) when its table is recorded in RESULTS.md, else
    under --out (--quick: <out>/quick), so that an unrecorded run leaves nothing in the repository."""
    if args.quick:
        return os.path.join(os.path.abspath(args.out), "quick")
    return os.path.abspath(args.out) if args.no_record else None


def run_and_save(script, prefix, args, data, jobs, tables, parallel=2):
    """Run `jobs` (`run_workers`, `--parallel` at once, else `parallel`), save their JSON (benchmarks/results, or
    under --out with --quick or --no-record) and, unless --quick or --no-record, record the table in RESULTS.md;
    `tables(results, plot)` -> (header, rows, extra markdown[, more
    payload]), where `plot` is the path for a figure next to RESULTS.md (None when nothing is recorded). The
    section is named <prefix>-<bench>-<dataset> (no prefix: <bench>-<dataset>). Returns the exit status: 1 when a
    run failed."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = "-".join(filter(None, (prefix, args.bench)))
    results = run_workers(script, jobs, args.parallel or parallel, args.threads, os.path.join(args.out, f"{name}-{stamp}"))
    payload = {"date": datetime.date.today().isoformat(), "machine": machine(args.threads), "dataset": data["dataset"],
               "argv": sys.argv, "results": results}  # fmt: skip
    record_it = not (args.quick or args.no_record)
    name = f"{name}-{data['dataset']}"
    header, rows, extra, *more = tables(results, os.path.join(HERE, f"{name}-{stamp}.png") if record_it else None)
    payload.update(*more)
    save(name, payload, record=record_it, rows=rows, header=header, results_dir=results_dir_of(args), extra=extra)
    return 1 if any("failed" in r for r in results) else 0


def run_folder(out, kind, label, seed, job, keys=("dataset", "config_files", "config")):
    """<out>/<kind>-runs/<label>-seed<seed>-<digest of the job's `keys`>: where a resumable run keeps its
    checkpoints and result. The same command finds it again, and so does any command that runs the same job under
    another label (the first folder of that seed and digest)."""
    digest = hashlib.sha1(json.dumps({k: job.get(k) for k in keys}, sort_keys=True, default=str).encode()).hexdigest()[:10]
    found = sorted(glob.glob(os.path.join(glob.escape(out), f"{kind}-runs", f"*-seed{seed}-{digest}")))
    slug = "".join(c if c.isalnum() or c in ".=-" else "-" for c in label)
    return found[0] if found else os.path.join(out, f"{kind}-runs", f"{slug}-seed{seed}-{digest}")


def finished(folder, compute):
    """The result a run left in `folder`/result.json, or `compute()`'s, saved there (no folder: just `compute()`)."""
    done = os.path.join(folder, "result.json") if folder else None
    if done and os.path.exists(done):
        with open(done) as f:
            return json.load(f)
    result = compute()
    if done:
        os.makedirs(folder, exist_ok=True)
        with open(done, "w") as f:
            json.dump(result, f)
    return result


def pretrain(model, job, config):
    """The pretraining stage of a pretrain -> fine-tune chain: `model` trained with ``train_stage: pretrain`` on the
    job's data (``pretrain_epochs`` capped at the job's, when it sets one). Returns its `pretrain_result` with the
    loss curve, ``seconds`` (its epochs' time), and ``checkpoint``: the absolute path to fine-tune or evaluate from.

    With ``job["folder"]`` it is resumable: checkpoints go to <folder>/pretrain, a stage found finished there is
    reused, and one in progress resumes after its last completed epoch (``checkpoint_last``)."""
    from recbole_bt.quick_start import prepare
    from recbole_bt.resume import resume_state_saver

    stage = dict(config, train_stage="pretrain")
    if job.get("pretrain_epochs"):
        stage["pretrain_epochs"] = job["pretrain_epochs"]
    folder = os.path.join(job["folder"], "pretrain") if job.get("folder") else None

    def train():
        if folder:
            stage.update(checkpoint_dir=folder, checkpoint_last=True)
            for last in glob.glob(os.path.join(glob.escape(folder), "*-pretrain-last.pth")):  # a stage in progress
                stage["resume_file"] = last
        _, train_data, valid_data, _, trainer = prepare(model, job["dataset"], job.get("config_files"), stage)
        trainer.fit(train_data, valid_data, saved=True, show_progress=False,
                    callback_fn=resume_state_saver(trainer, train_data, True))  # fmt: skip
        curve = trainer.pretrain_curve
        return dict(trainer.pretrain_result, curve=curve, seconds=round(sum(p["seconds"] for p in curve), 3),
                    pretrained_model_file=os.path.abspath(trainer.pretrain_result["pretrained_model_file"]))  # fmt: skip

    result = finished(folder, train)
    print(json.dumps(result), flush=True)
    return dict(result, checkpoint=result["pretrained_model_file"])
