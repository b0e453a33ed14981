"""Where the long runs stand: one row per resumable run folder under --out (`baseline.py`'s baseline-runs and
`user_tasks.py`'s user_tasks-runs), for studies that span sessions.

    python benchmarks/run_status.py                     # benchmarks/out: the unfinished runs, then a count of the rest
    python benchmarks/run_status.py --out DIR --all     # every run, finished ones included

A run is `training` while a process holds its folder's lock, `stopped` when it has trained some epochs and no
process holds it (the same command that started it resumes it after its last completed epoch, on this machine),
`waiting` when nothing was trained yet, `finished` once its result is saved. For each: its pretraining stage
(epochs so far, and why it stopped), the epochs trained, the best epoch and its masked valid NDCG@10, the last
epoch's wall time and how long ago the folder last changed.
"""
import argparse
import glob
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import HERE, best_point, markdown_table, try_lock  # noqa: E402

KINDS = ("baseline-runs", "user_tasks-runs")
HEADER = ["run", "state", "pretraining", "epochs (best)", "best valid NDCG@10", "last epoch s", "changed"]


def _read_json(path):
    with open(path) as f:
        return json.load(f)


def _curve(folder):
    """The epochs a run has trained ([{epoch, wall_seconds, valid_ndcg@10}, ...], [] before its first)."""
    path = os.path.join(folder, "curve.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def pretraining(folder):
    """'N epochs' (in progress) or 'N epochs, <why it stopped>' of the run's pretraining stage; '' without one."""
    stage = os.path.join(folder, "pretrain")
    if os.path.exists(os.path.join(stage, "result.json")):
        done = _read_json(os.path.join(stage, "result.json"))
        return f"{done['epochs']} epochs, {done.get('stopped') or 'stopped'}"
    last = glob.glob(os.path.join(glob.escape(stage), "*-pretrain-last.pth"))
    if not last:
        return "waiting" if os.path.isdir(stage) else ""
    import torch

    state = torch.load(last[0], map_location="cpu", weights_only=False).get("pretrain_state", {})
    return f"{len(state.get('curve', []))} epochs, in progress"


def held(folder):
    """Whether a process holds the folder's training lock (a run training there now)."""
    path = os.path.join(folder, "training.lock")
    if not os.path.exists(path):
        return False
    lock = try_lock(path)
    if lock is None:
        return True
    lock.close()
    return False


def _mtime(path):
    """A path's modification time; 0 for one a running job removed since it was listed (a checkpoint replaced)."""
    try:
        return os.path.getmtime(path)
    except FileNotFoundError:
        return 0


def status(folder, now=None):
    """The row of one run folder (see HEADER)."""
    curve, done = _curve(folder), os.path.join(folder, "result.json")
    result = _read_json(done) if os.path.exists(done) else None
    if result is not None:
        state = "finished"
    elif held(folder):
        state = "training"
    else:
        state = "stopped" if curve or os.path.isdir(os.path.join(folder, "pretrain")) else "waiting"
    epochs = best = last = ""
    if result is not None and "epochs" in result:
        epochs, best = f"{result['epochs']} ({result['best_epoch']})", f"{result['valid']['ndcg@10']:.4f}"
    elif curve:
        top = best_point(curve)
        epochs, best = f"{len(curve)} ({top['epoch']})", f"{top['valid_ndcg@10']:.4f}"
    if len(curve) > 1:
        last = f"{curve[-1]['wall_seconds'] - curve[-2]['wall_seconds']:.0f}"
    paths = [folder] + glob.glob(os.path.join(glob.escape(folder), "**"), recursive=True)
    ago = ((now or time.time()) - max(_mtime(p) for p in paths)) / 60
    return [os.path.basename(folder), state, pretraining(folder), epochs, best, last,
            f"{ago:.0f} min ago" if ago < 120 else f"{ago / 60:.1f} h ago"]  # fmt: skip


def report(out, everything=False, now=None):
    """Markdown: a table per kind of run folder under `out`, unfinished runs first (every run with `everything`)."""
    parts = []
    for kind in KINDS:
        folders = sorted(glob.glob(os.path.join(glob.escape(out), kind, "*", "")))
        rows = [status(f.rstrip(os.sep), now) for f in folders]
        shown = [r for r in rows if everything or r[1] != "finished"]
        shown.sort(key=lambda r: ["training", "stopped", "waiting", "finished"].index(r[1]))
        if not rows:
            continue
        finished = sum(r[1] == "finished" for r in rows)
        table = ":\n\n" + markdown_table(HEADER, shown) if shown else ""
        parts.append(f"{kind} ({len(rows)} runs, {finished} finished){table}")
    return "\n\n".join(parts) or f"no run folders under {out}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(HERE, "out"), help="the runs' --out (default: benchmarks/out)")
    parser.add_argument("--all", action="store_true", help="list the finished runs too")
    args = parser.parse_args()
    print(report(os.path.abspath(args.out), args.all))
    return 0


if __name__ == "__main__":
    sys.exit(main())
