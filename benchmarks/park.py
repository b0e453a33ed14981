"""Runs in progress parked in the repository, so that a later session on another machine resumes them.

A run's checkpoints stay in ``--out`` (benchmarks/out, ignored by git): finished runs travel as their small files
(`benchmarks/runs_common.sh` archives them), but a run in progress on a machine that a later session does not get
back would start again from epoch 0. `park` copies each run in progress (a folder of ``--out``/<kind>-runs with no
result.json and a last-epoch checkpoint, ``checkpoint_last``) into ``--to``/<kind>-runs/<run>:

- its small files (job.json, defaults.json, curve.jsonl, a finished pretraining stage's result.json; no lock),
- every ``*-last.pth`` (weights, optimizer, early-stopping state, random generators: what an exact resume needs),
  checked to load (a file caught half-written is read again), but that of a finished pretraining stage,
- the model file each last checkpoint names (the best model so far, the latest pretrained one), or that a finished
  pretraining stage's result.json names (the one a chain fine-tunes from), without its optimizer state, which
  nothing reads again (a third of the size).

It removes the parked copies of runs that have finished since, and leaves alone runs that trained under
``--min-minutes`` (cheaper to train again than to commit). `restore` copies each parked run into ``--out`` where
that folder is missing (a fresh machine; the machine that parked it keeps its own, newer state); the run resumes
after its parked epoch when its script runs again, at any path (`recbole_bt.resume.beside`). Commit the parked
folder after `park`: ``git add -A benchmarks/results/parked``.

    python benchmarks/park.py park --out benchmarks/out
    python benchmarks/park.py restore --out benchmarks/out
"""
import argparse
import glob
import json
import os
import shutil
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from recbole_bt.resume import beside, save_whole  # noqa: E402

PARKED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "parked")
SKIPPED = {"training.lock"}


def runs_in(root):
    """{<kind>-runs/<run>: folder} of the run folders under `root`."""
    return {os.path.relpath(f, root): f for f in sorted(glob.glob(os.path.join(glob.escape(root), "*-runs", "*")))
            if os.path.isdir(f)}  # fmt: skip


def in_progress(folder):
    """The last-epoch checkpoints of a run folder that has not finished ([] for a finished or a new one)."""
    if os.path.exists(os.path.join(folder, "result.json")):
        return []
    return sorted(glob.glob(os.path.join(glob.escape(folder), "**", "*-last.pth"), recursive=True))


def trained_minutes(folder):
    """Training time so far: the curve's last point, or a pretraining stage's epochs."""
    seconds = 0.0
    curve = os.path.join(folder, "curve.jsonl")
    if os.path.exists(curve):
        with open(curve) as f:
            points = [json.loads(line) for line in f if line.strip()]
        seconds += points[-1]["train_seconds"] if points else 0.0
    for last in glob.glob(os.path.join(glob.escape(folder), "**", "*-pretrain-last.pth"), recursive=True):
        state = load_whole(last).get("pretrain_state", {})
        seconds += sum(p.get("seconds", 0.0) for p in state.get("curve", []))
    return seconds / 60


def load_whole(path, tries=3):
    """The checkpoint at `path`; a file being written (by a run that does not save whole) is read again."""
    for attempt in range(tries):
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception:  # noqa: BLE001 - a truncated zip or pickle, whatever torch raises for it
            if attempt == tries - 1:
                raise
            time.sleep(5)


def companion(checkpoint):
    """The model file a last-epoch checkpoint names: the best model (fine-tuning) or the latest pretrained one."""
    if checkpoint.get("best_model_file"):
        return checkpoint["best_model_file"]
    return checkpoint.get("pretrain_state", {}).get("pretrained_model_file")


def park_run(folder, target):
    """Copy the run in progress at `folder` into `target` (replaced whole, through a temporary folder)."""
    part = target + ".part"
    shutil.rmtree(part, ignore_errors=True)
    for here, _, files in os.walk(folder):
        into = os.path.join(part, os.path.relpath(here, folder))
        os.makedirs(into, exist_ok=True)
        for name in files:
            if name not in SKIPPED and not name.endswith((".pth", ".tmp")):
                shutil.copy2(os.path.join(here, name), into)
    for last in in_progress(folder):
        into = os.path.join(part, os.path.relpath(os.path.dirname(last), folder))
        stage = os.path.join(os.path.dirname(last), "result.json")
        if last.endswith("-pretrain-last.pth") and os.path.exists(stage):  # a finished stage: its result and model
            with open(stage) as f:
                model_file = json.load(f)["pretrained_model_file"]
            found = beside(model_file, stage)
        else:
            checkpoint = load_whole(last)
            save_whole(checkpoint, os.path.join(into, os.path.basename(last)))
            model_file = companion(checkpoint)
            found = beside(model_file, last) if model_file else None
        if found and os.path.exists(found):
            model = {k: v for k, v in load_whole(found).items() if k != "optimizer"}
            save_whole(model, os.path.join(into, os.path.basename(found)))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(part, target)


def park(out, to=PARKED, min_minutes=10.0):
    """Park the runs in progress of `out` into `to`; drop the parked copies of runs finished since. Returns
    {run: what was done}."""
    done = {}
    for run, folder in runs_in(out).items():
        target = os.path.join(to, run)
        if os.path.exists(os.path.join(folder, "result.json")):
            if os.path.exists(target):
                shutil.rmtree(target)
                done[run] = "finished: parked copy removed"
        elif in_progress(folder):
            minutes = trained_minutes(folder)
            if minutes < min_minutes:
                done[run] = f"{minutes:.0f} min trained: not parked"
                continue
            park_run(folder, target)
            size = sum(os.path.getsize(os.path.join(h, n)) for h, _, names in os.walk(target) for n in names)
            done[run] = f"{minutes:.0f} min trained: parked ({size / 2**20:.1f} MiB)"
    return done


def restore(out, to=PARKED):
    """Copy each parked run into `out` where its folder is missing. Returns the runs restored."""
    restored = []
    for run, parked in runs_in(to).items():
        if run.endswith(".part"):  # a park that did not end
            continue
        folder = os.path.join(out, run)
        if not os.path.exists(folder):
            shutil.copytree(parked, folder)
            restored.append(run)
    return restored


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["park", "restore"])
    parser.add_argument("--out", default="benchmarks/out", help="the runs' output folder (default: benchmarks/out)")
    parser.add_argument("--to", default=PARKED, help="where parked runs go (default: benchmarks/results/parked)")
    parser.add_argument("--min-minutes", type=float, default=10.0,
                        help="park only runs that trained at least this long (default: 10)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.action == "park":
        for run, what in park(args.out, args.to, args.min_minutes).items():
            print(f"{run}: {what}")
    else:
        for run in restore(args.out, args.to):
            print(f"restored {run}: it resumes after its parked epoch")


if __name__ == "__main__":
    main()
