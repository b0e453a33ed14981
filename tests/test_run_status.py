"""benchmarks/run_status.py: the state of resumable run folders, from hand-made folders."""
import json
import os
import sys

import torch

from conftest import ROOT

sys.path.insert(0, ROOT)
from benchmarks.harness import try_lock  # noqa: E402
from benchmarks.run_status import report  # noqa: E402


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def _curve(*scores):
    return "".join(json.dumps({"epoch": i + 1, "wall_seconds": 100.0 * (i + 1) + i, "valid_ndcg@10": s}) + "\n"
                   for i, s in enumerate(scores))  # fmt: skip


def test_each_folder_says_whether_it_trains_stopped_waits_or_finished(tmp_path):
    runs = tmp_path / "baseline-runs"
    done = {"epochs": 5, "best_epoch": 3, "valid": {"ndcg@10": 0.1234}}
    _write(str(runs / "done-seed1-a" / "result.json"), json.dumps(done))
    _write(str(runs / "now-seed1-b" / "curve.jsonl"), _curve(0.05, 0.07))
    _write(str(runs / "now-seed1-b" / "training.lock"), "")
    _write(str(runs / "paused-seed1-c" / "curve.jsonl"), _curve(0.1, 0.2, 0.2))  # a tie: the later epoch is the best
    _write(str(runs / "queued-seed1-d" / "training.lock"), "")  # claimed once, nothing trained
    os.makedirs(runs / "pre-seed1-e" / "pretrain")
    torch.save({"pretrain_state": {"curve": [{"loss": 2.0}, {"loss": 1.5}]}},
               str(runs / "pre-seed1-e" / "pretrain" / "CLUE-ml-1m-pretrain-last.pth"))  # two epochs so far
    job = tmp_path / "user_tasks-runs" / "BTPretrain-batch32-seed1-f"
    stopped = "no loss 1% below 20.1 for 10 epochs"
    _write(str(job / "pretrain" / "result.json"), json.dumps({"epochs": 12, "stopped": stopped}))
    _write(str(job / "result.json"), json.dumps({"user_tasks": {}}))
    for folder, dirs, files in os.walk(tmp_path):
        for name in [*dirs, *files, "."]:
            os.utime(os.path.join(folder, name), (1000.0, 1000.0))
    lock = try_lock(str(runs / "now-seed1-b" / "training.lock"))  # a run training there now
    try:
        text = report(str(tmp_path), now=1000.0 + 600)
        everything = report(str(tmp_path), everything=True, now=1000.0 + 3 * 3600)
    finally:
        lock.close()
    assert text.splitlines()[0] == "baseline-runs (5 runs, 1 finished):"
    assert text.splitlines()[4:] == [
        "| now-seed1-b | training |  | 2 (2) | 0.0700 | 101 | 10 min ago |",
        "| paused-seed1-c | stopped |  | 3 (3) | 0.2000 | 101 | 10 min ago |",
        "| pre-seed1-e | stopped | 2 epochs, in progress |  |  |  | 10 min ago |",
        "| queued-seed1-d | waiting |  |  |  |  | 10 min ago |",
        "",
        "user_tasks-runs (1 runs, 1 finished)"]
    assert "| done-seed1-a | finished |  | 5 (3) | 0.1234 |  | 3.0 h ago |" in everything
    assert f"| BTPretrain-batch32-seed1-f | finished | 12 epochs, {stopped} |  |  |  | 3.0 h ago |" in everything
    assert report(str(tmp_path / "nothing")) == f"no run folders under {tmp_path / 'nothing'}"
