"""Shared pieces of the benchmarks: run specs, side-by-side worker processes, timing, RSS, RESULTS.md rows.

Every benchmark runs each of its runs in its own process (so peak RSS and thread count are per run), up to
`--parallel` at once, and writes one JSON file under benchmarks/results/ plus rows in benchmarks/RESULTS.md.
"""
import argparse
import datetime
import fcntl
import glob
import hashlib
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# Every worker keeps the memory it frees for its next allocation (glibc's malloc otherwise maps each block above
# its threshold, at most 32 MiB, afresh and page-faults it in: a batch-1024 step at L 200 allocates many of
# 160 MiB, and ran about twice as slow; RESULTS.md, "glibc's malloc"). A job's `env` overrides it; None unsets.
MALLOC_CACHE = {"MALLOC_MMAP_THRESHOLD_": str(4 << 30), "MALLOC_TRIM_THRESHOLD_": str(4 << 30)}
GLIBC_MALLOC = dict.fromkeys(MALLOC_CACHE)  # a job env that leaves glibc's defaults
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
    parser.add_argument("--share-cores", default=None, metavar="DIR",
                        help="share the --parallel slots with every benchmark process given the same DIR: at most "
                             "--parallel runs train at once across all of them, a waiting run of a lower --priority "
                             "first, and a run folder one process trains is never trained by another at the same time")
    parser.add_argument("--priority", type=int, default=0, help="with --share-cores: lower goes first (default 0)")


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


def try_lock(path):
    """An open file holding an exclusive flock on `path` (created if need be), or None when another open file
    (of this process or any other) holds it. The lock goes with the file's closing or the process's end."""
    handle = open(path, "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return handle
    except BlockingIOError:
        handle.close()
        return None


def release(lock):
    """Close a lock file of `try_lock`, its time set to now (a slot's release time, see `SharedCores`); a file
    removed meanwhile (a run folder moved away) is just closed."""
    try:
        os.utime(lock.name)
    except FileNotFoundError:
        pass
    lock.close()


class SharedCores:
    """`slots` run slots shared by every process that uses the folder `path` (file locks, so a killed process
    frees its slots and its place in the queue). A process asks with `take()` without blocking: it joins the queue
    (a ticket file named by its priority and arrival) and gets a slot only when its ticket is the first live one.
    A slot given back with `release` stays `grace` seconds for its holder's priority or a lower one: a script that
    runs one command after another has no waiting ticket between two commands, and a later issue's run must not
    take the slot in that gap."""

    grace = 300.0

    def __init__(self, path, slots, priority=0):
        os.makedirs(path, exist_ok=True)
        self.path, self.slots, self.priority, self.ticket, self.asked = path, slots, priority, None, False

    def take(self):
        """An open slot lock (give it back with `.close()`), or None: not this process's turn, or no slot free."""
        self.asked = True
        if self.ticket is None:  # locked before it gets its name: nobody ever sees it unlocked (and stale)
            name = f"{self.priority + 10**6:07d}-{time.time_ns()}-{os.getpid()}"
            handle = try_lock(os.path.join(self.path, f"new-{name}"))
            os.rename(handle.name, os.path.join(self.path, f"wait-{name}"))
            self.ticket = (os.path.join(self.path, f"wait-{name}"), handle)
        for other in sorted(glob.glob(os.path.join(glob.escape(self.path), "wait-*"))):
            if other == self.ticket[0]:
                break
            stale = try_lock(other)  # a ticket nobody holds: its process died
            if stale is None:
                return None  # a live ticket before ours
            stale.close()
            try:
                os.unlink(other)
            except FileNotFoundError:
                pass
        for slot in range(self.slots):
            held = try_lock(os.path.join(self.path, f"slot{slot}"))
            if held is not None and self.kept_for_another(held.name):
                held.close()
            elif held is not None:
                held.truncate(0)
                held.write(str(self.priority))  # who holds it: read by the waiters once it is released
                held.flush()
                os.utime(held.name, (0, 0))  # no release time yet: a holder that dies keeps nobody waiting
                self.leave()
                return held
        return None

    def kept_for_another(self, slot):
        """Whether the free `slot` (a path) was released less than `grace` seconds ago by a run of a lower
        priority number than ours (its file holds that priority; its time is the release's)."""
        with open(slot) as f:
            text = f.read().strip()
        released = time.time() - os.path.getmtime(slot)
        return text.lstrip("-").isdigit() and int(text) < self.priority and released < self.grace

    def leave(self):
        """Leave the queue (a process with nothing to start must not hold the others back)."""
        if self.ticket is not None:
            os.unlink(self.ticket[0])
            self.ticket[1].close()
            self.ticket = None


def shared_cores(args, parallel):
    """The `SharedCores` of `--share-cores` (None without it)."""
    return SharedCores(args.share_cores, parallel, args.priority) if getattr(args, "share_cores", None) else None


def run_workers(script, jobs, parallel, threads, out_dir, cores=None):
    """Run `python script _worker JSON` for each job (environment: `MALLOC_CACHE`, its extra `job["env"]` over it),
    `parallel` at a time; returns their JSON results in order. With `cores` (a `SharedCores`), a job that has to
    train also needs one of its slots, and a job whose `folder` another process is training waits for it (and then
    reuses its result); a job whose folder holds a result starts at once."""
    os.makedirs(out_dir, exist_ok=True)
    threads_env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PYTHONPATH": ROOT}
    env = {**MALLOC_CACHE, **os.environ, **threads_env}
    pending, running, results = list(enumerate(jobs)), [], [None] * len(jobs)
    while pending or running:
        if cores:
            cores.asked = False
        for entry in list(pending):
            if len(running) == parallel:
                break
            locks = claim(entry[1], cores)
            if locks is None:
                continue
            pending.remove(entry)
            index, job = entry
            job = dict(job, threads=threads, out=os.path.join(out_dir, f"run{index}.json"))
            log = open(os.path.join(out_dir, f"run{index}.log"), "w")
            cwd = os.path.join(out_dir, f"run{index}")  # RecBole's log/ and saved/ folders, one per run
            os.makedirs(cwd, exist_ok=True)
            print(f"[start] {job['label']} (log: {log.name})", flush=True)
            proc = subprocess.Popen([sys.executable, script, "_worker", json.dumps(job)], cwd=cwd,
                                    env=worker_env(env, job.get("env", {})),
                                    stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
            running.append((index, job, proc, log, locks))
        if cores and not cores.asked:  # nothing here waits for a slot (its folders are another's, or none left)
            cores.leave()
        time.sleep(1)
        for entry in list(running):
            index, job, proc, log, locks = entry
            if proc.poll() is None:
                continue
            running.remove(entry)
            log.close()
            for lock in locks:
                release(lock)
            if proc.returncode == 0 and os.path.exists(job["out"]):
                with open(job["out"]) as f:
                    results[index] = json.load(f)
            else:
                results[index] = {"label": job["label"], "failed": f"exit {proc.returncode}, see {log.name}"}
            print(f"[done]  {job['label']}: {'failed' if 'failed' in results[index] else 'ok'}", flush=True)
    if cores:
        cores.leave()
    return results


def worker_env(env, extra):
    """`env` with a job's extra environment over it (a None value removes that variable)."""
    return {k: v for k, v in dict(env, **extra).items() if v is not None}


def claim(job, cores):
    """The locks a job needs to start under `cores` (none without it, or for a job whose folder holds its result):
    its folder's and a slot; None while either is taken."""
    folder = job.get("folder")
    if cores is None or (folder and os.path.exists(os.path.join(folder, "result.json"))):
        return []
    mine = None
    if folder:
        os.makedirs(folder, exist_ok=True)
        mine = try_lock(os.path.join(folder, "training.lock"))
        if mine is None:
            return None
        if os.path.exists(os.path.join(folder, "result.json")):  # finished while we looked
            return [mine]
    slot = cores.take()
    if slot is None:
        if mine:
            mine.close()
        return None
    return [slot] + ([mine] if mine else [])


def rerun_argv(argv):
    """A saved run's argv as a user would rerun it: without --no-record, --out DIR, --share-cores DIR and
    --priority N (where a run went and when it started, not what it is)."""
    kept, skip = [], False
    for arg in argv:
        if not skip and arg not in ("--no-record", "--out", "--share-cores", "--priority"):
            kept.append(arg)
        skip = arg in ("--out", "--share-cores", "--priority")
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
    """'mean ± sample std' of a list of numbers; the value alone for one number (one seed has no spread)."""
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def runs_by_label(results):
    """(label, its finished runs) for each run label, in the order of `results` (a label's failed runs left out)."""
    for label in dict.fromkeys(r["label"] for r in results):
        yield label, [r for r in results if r["label"] == label and "failed" not in r]


def pretrain_seconds(pretraining):
    """A pretraining stage's wall seconds (`pretrain`'s result) as its epochs x its median epoch, the figure
    `baseline.py`'s tables give a fine-tuning: a run paused (SIGSTOP while a test suite runs beside the long runs)
    carries the pause in one epoch, which the median ignores and the stored total (`seconds`, the sum of the
    epochs) does not. The stored total when the stage kept no curve."""
    times = [point["seconds"] for point in pretraining.get("curve") or ()]
    return len(times) * statistics.median(times) if times else pretraining["seconds"]


def markdown_table(header, rows):
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(map(str, r)) + " |" for r in rows])


def best_point(curve):
    """The curve's point of the best valid NDCG@10, the later of equal scores: RecBole's early stopping counts a
    score equal to the best (its metrics have 4 decimals) as a new best and saves that model, which is the one the
    test evaluates."""
    return max(reversed(curve), key=lambda p: p["valid_ndcg@10"])


def to_json(obj, level=0):
    """JSON text of `obj` with one key per line (indent 1) and each list of numbers or strings on one line: the
    per-user rows of a run (6,040 values on ML-1M) are a line each, not a line per value (half the size)."""
    pad = " " * (level + 1)
    if isinstance(obj, dict) and obj:
        items = [f"{pad}{json.dumps(k if isinstance(k, str) else json.dumps(k))}: {to_json(v, level + 1)}"
                 for k, v in obj.items()]  # fmt: skip
        return "{\n" + ",\n".join(items) + "\n" + " " * level + "}"
    if isinstance(obj, (list, tuple)) and any(isinstance(v, (dict, list, tuple)) for v in obj):
        return "[\n" + ",\n".join(pad + to_json(v, level + 1) for v in obj) + "\n" + " " * level + "]"
    return json.dumps(obj)


def save(name, payload, record, rows, header, results_dir=None, argv=None, extra=""):
    """Write <results_dir>/<name>-<stamp>.json (default benchmarks/results/) and, if `record`, append a
    section to RESULTS.md with the machine, the command (`argv`, default sys.argv), the JSON's path, the table
    and `extra` (more markdown after the table)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    results_dir = results_dir or RESULTS_DIR
    os.makedirs(results_dir, exist_ok=True)
    path = os.path.join(results_dir, f"{name}-{stamp}.json")
    with open(path, "w") as f:
        f.write(to_json(payload) + "\n")
    table = markdown_table(header, rows) + (f"\n\n{extra}" if extra else "")
    print(table)
    if record:
        argv = argv or rerun_argv(sys.argv)
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


def read_or_run(script, jobs, read_back, parallel, threads, out_dir, cores=None):
    """The results of `jobs`, in order. A finished job is read back in this process (`read_back(job)`: its result,
    or None to run it), the others go to `run_workers`; jobs that share a `folder` (one run under two labels) run
    one after the other: the later ones, logged under <out_dir>-reused, reuse the first's run."""
    results = {i: read_back(job) for i, job in enumerate(jobs)} if read_back else {}
    results = {i: result for i, result in results.items() if result is not None}
    first_of = {}
    for i, job in enumerate(jobs):
        if i not in results:
            first_of.setdefault(job.get("folder") or ("no folder", i), i)
    firsts = sorted(first_of.values())
    later = [i for i in range(len(jobs)) if i not in results and i not in firsts]
    for part, suffix in ((firsts, ""), (later, "-reused")):
        if part:
            done = run_workers(script, [jobs[i] for i in part], parallel, threads, out_dir + suffix, cores)
            results.update(zip(part, done))
    return [results[i] for i in range(len(jobs))]


def run_and_save(script, prefix, args, data, jobs, tables, parallel=2, read_back=None, keep=None):
    """Run `jobs` (`run_workers`, `--parallel` at once, else `parallel`), save their JSON (benchmarks/results, or
    under --out with --quick or --no-record) and, unless --quick or --no-record, record the table in RESULTS.md;
    `tables(results, plot)` -> (header, rows, extra markdown[, more
    payload]), where `plot` is the path for a figure next to RESULTS.md (None when nothing is recorded). The
    section is named <prefix>-<bench>-<dataset> (no prefix: <bench>-<dataset>). `read_back(job)`: a finished
    job's result read in this process (no worker for it), or None to run it. `keep(result)`: what of a result the
    JSON holds (default: all of it; the tables see every result whole). Returns the exit status: 1 when a run
    failed."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = "-".join(filter(None, (prefix, args.bench)))
    parallel = args.parallel or parallel
    results = read_or_run(script, jobs, read_back, parallel, args.threads, os.path.join(args.out, f"{name}-{stamp}"),
                          shared_cores(args, parallel))  # fmt: skip
    payload = {"date": datetime.date.today().isoformat(), "machine": machine(args.threads), "dataset": data["dataset"],
               "argv": sys.argv, "results": results}  # fmt: skip
    record_it = not (args.quick or args.no_record)
    name = f"{name}-{data['dataset']}"
    header, rows, extra, *more = tables(results, os.path.join(HERE, f"{name}-{stamp}.png") if record_it else None)
    payload.update(*more)
    if keep:
        payload["results"] = [keep(r) for r in results]
    save(name, payload, record=record_it, rows=rows, header=header, results_dir=results_dir_of(args), extra=extra)
    return 1 if any("failed" in r for r in results) else 0


def run_key(job, keys):
    """What a run folder stands for: the job's `keys`, less where this checkout keeps things (config.data_path,
    and a config file's absolute path inside the repository, keyed relative to it). The dataset's name and the
    config files name the data, so a run archived on one machine is found from a checkout anywhere else."""
    key = {k: job.get(k) for k in keys}
    if isinstance(key.get("config"), dict):
        key["config"] = {k: v for k, v in key["config"].items() if k != "data_path"}
    inside = [os.path.relpath(f, ROOT) if os.path.isabs(f) else f for f in key.get("config_files") or []]
    if inside:
        key["config_files"] = [r if not r.startswith("..") else f for r, f in zip(inside, key["config_files"])]
    return key


def run_folder(out, kind, label, seed, job, keys=("dataset", "config_files", "config")):
    """<out>/<kind>-runs/<label>-seed<seed>-<digest of the job's `run_key`>: where a resumable run keeps its
    checkpoints and result. The same command finds it again, and so does any command that runs the same job under
    another label (the first folder of that seed and digest)."""
    digest = hashlib.sha1(json.dumps(run_key(job, keys), sort_keys=True, default=str).encode()).hexdigest()[:10]
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


# Package keys that do not change what a run computes, besides the speed paths' `SPEED_KEYS` (same function; run
# mechanics): a change of their default leaves finished runs valid.
NEUTRAL_KEYS = {"fused_last_position", "partner_chunk_rows", "row_builder", "memory_check", "backend", "checkpoint_last",
                "resume_file", "test_per_user"}


def job_config(model, dataset, config_files, config):
    """recbole_bt's `build_config`, in whichever process asks: RecBole's Config also reads `--key=value` off the
    command line, and a benchmark's own options there are not the job's."""
    from recbole_bt.quick_start import build_config

    argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        return build_config(model, dataset, config_files, config)
    finally:
        sys.argv = argv


def package_defaults(model, job):
    """{key: value} of the package defaults a run of `model` leaves to the YAML files: every key recbole_bt's
    properties/ declare, but `SPEED_KEYS`, `NEUTRAL_KEYS` and the keys the job's config sets. A run folder's digest is the job as
    given (`run_key`): these are what it does not pin."""
    from recbole_bt.config import package_config_keys
    from recbole_bt.config_ranges import SPEED_KEYS

    config = job_config(model, job["dataset"], job.get("config_files"), job["config"])
    keys = sorted(package_config_keys() - set(SPEED_KEYS) - NEUTRAL_KEYS - set(job["config"]))
    values = {key: config[key] for key in keys if key in config.final_config_dict}
    return json.loads(json.dumps(values, default=str))  # as the JSON file holds them


def guard_defaults(folder, model, job):
    """Reuse (finished) or resume (in progress) a run folder only under the package defaults it started with: a run
    starting writes them to <folder>/defaults.json; later, a value changed since (a model's weight, a protocol
    file's key) is a one-line error naming it, instead of the run passing for one of today's defaults. Folders from
    before defaults.json are not checked."""
    path = os.path.join(folder, "defaults.json")
    if os.path.exists(path):
        with open(path) as f:
            then = json.load(f)
        now = package_defaults(model, job)
        changed = [f"{k} {then[k]!r} -> {now[k]!r}" for k in sorted(then) if k in now and now[k] != then[k]]
        if changed:
            raise RuntimeError(f"{folder} ran under other package defaults ({'; '.join(changed)}): set the key(s) "
                               f"in the run's config to train again, or move the folder away")
    elif not any(os.path.exists(os.path.join(folder, name)) for name in ("result.json", "saved", "pretrain")):
        os.makedirs(folder, exist_ok=True)
        with open(path, "w") as f:
            json.dump(package_defaults(model, job), f, indent=1)


def pretrain(model, job, config):
    """The pretraining stage of a pretrain -> fine-tune chain: `model` trained with ``train_stage: pretrain`` on the
    job's data (``pretrain_epochs`` capped at the job's, when it sets one). Returns its `pretrain_result` with the
    loss curve, ``seconds`` (its epochs' time), and ``checkpoint``: the absolute path to fine-tune or evaluate from.

    With ``job["folder"]`` it is resumable: checkpoints go to <folder>/pretrain, a stage found finished there is
    reused, and one in progress resumes after its last completed epoch (``checkpoint_last``)."""
    from recbole_bt.quick_start import prepare
    from recbole_bt.resume import beside, resume_state_saver

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
    checkpoint = result["pretrained_model_file"]
    if folder:  # the stage's folder may have moved since it finished (renamed, another checkout)
        checkpoint = beside(checkpoint, os.path.join(folder, "result.json"))
    return dict(result, checkpoint=checkpoint)
