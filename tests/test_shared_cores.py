"""benchmarks/harness.py's --share-cores: run slots shared by several benchmark processes through file locks.

Each `SharedCores` here stands for one process (flock locks belong to an open file, so two in one process exclude
each other as two processes would)."""
import json
import os
import sys
import threading
import time

import pytest

from conftest import ROOT

sys.path.insert(0, ROOT)
from benchmarks.harness import (  # noqa: E402
    GLIBC_MALLOC, SharedCores, read_or_run, release, rerun_argv, run_workers, try_lock,
)  # fmt: skip


def test_a_slot_is_held_until_closed(tmp_path):
    a, b = SharedCores(str(tmp_path), 1), SharedCores(str(tmp_path), 1)
    held = a.take()
    assert held is not None and b.take() is None
    held.close()
    assert b.take() is not None


def test_a_waiting_lower_priority_goes_first_then_arrival_order(tmp_path):
    running = SharedCores(str(tmp_path), 1, priority=0).take()
    late, early, urgent = (SharedCores(str(tmp_path), 1, priority=p) for p in (20, 20, 18))
    assert early.take() is None
    time.sleep(0.01)
    assert late.take() is None and urgent.take() is None  # all three queued, the slot busy
    running.close()
    assert early.take() is None and late.take() is None  # not their turn: priority 18 waits
    first = urgent.take()
    assert first is not None and late.take() is None  # early arrived before late
    first.close()
    assert late.take() is None and early.take() is not None


def test_a_released_slot_waits_a_while_for_its_holders_priority(tmp_path):
    """Between two commands of one script (priority 19) nothing of it waits; a priority-20 run does not take the
    slot it just released until `grace` has passed, while a 19 (its next command) or an 18 takes it at once."""
    release(SharedCores(str(tmp_path), 1, priority=19).take())
    later = SharedCores(str(tmp_path), 1, priority=20)
    assert later.take() is None
    same = SharedCores(str(tmp_path), 1, priority=19).take()
    assert same is not None
    release(same)
    urgent = SharedCores(str(tmp_path), 1, priority=18).take()
    assert urgent is not None and later.take() is None
    release(urgent)
    assert later.take() is None  # released by 18 now
    past = time.time() - SharedCores.grace - 1
    os.utime(tmp_path / "slot0", (past, past))
    held = later.take()
    assert held is not None  # the grace has passed
    held.close()  # a plain close (its process killed): no release time, nobody waits
    assert SharedCores(str(tmp_path), 1, priority=30).take() is not None
    gone = try_lock(str(tmp_path / "training.lock"))
    os.unlink(gone.name)  # its folder moved away while the run trained
    release(gone)
    assert gone.closed


def test_a_dead_processs_ticket_and_slot_are_free(tmp_path):
    (tmp_path / "wait-0000000-1-1").write_text("")  # a ticket nobody holds: its process died
    (tmp_path / "slot0").write_text("")  # a slot file nobody holds
    assert SharedCores(str(tmp_path), 1, priority=5).take() is not None
    assert not (tmp_path / "wait-0000000-1-1").exists()


def test_leaving_the_queue_lets_the_next_one_in(tmp_path):
    busy = SharedCores(str(tmp_path), 1).take()
    first, second = SharedCores(str(tmp_path), 1), SharedCores(str(tmp_path), 1)
    assert first.take() is None and second.take() is None
    busy.close()
    assert second.take() is None  # first's turn
    first.leave()
    assert second.take() is not None


WORKER = """import json, sys
job = json.loads(sys.argv[2])
json.dump({"label": job["label"]}, open(job["out"], "w"))
"""


@pytest.mark.spawns  # three short workers (no torch), one at a time
def test_run_workers_waits_for_a_slot_and_for_a_folder_another_process_trains(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    folders = {name: tmp_path / name for name in ("done", "free", "theirs")}
    for folder in folders.values():
        folder.mkdir()
    (folders["done"] / "result.json").write_text("{}")
    jobs = [{"label": name, "folder": str(folder)} for name, folder in folders.items()]
    cores = str(tmp_path / "cores")
    other = SharedCores(cores, 1).take()  # another process trains: the only slot is taken...
    theirs = try_lock(str(folders["theirs"] / "training.lock"))  # ...on the folder of the job "theirs"
    results = {}
    thread = threading.Thread(target=lambda: results.update(
        done=run_workers(str(script), jobs, 2, 1, str(tmp_path / "logs"), SharedCores(cores, 1))))
    thread.start()
    time.sleep(4)
    started = sorted(f for f in os.listdir(tmp_path / "logs") if f.endswith(".json"))
    assert started == ["run0.json"]  # a finished folder needs no slot; the others wait
    other.close()
    time.sleep(4)
    assert sorted(f for f in os.listdir(tmp_path / "logs") if f.endswith(".json")) == ["run0.json", "run1.json"]
    theirs.close()  # the other process is done with that folder
    thread.join(timeout=30)
    assert [json.loads(open(tmp_path / "logs" / f"run{i}.json").read())["label"] for i in range(3)] == [
        "done", "free", "theirs"]
    assert [r["label"] for r in results["done"]] == ["done", "free", "theirs"]
    assert os.listdir(cores) == ["slot0"]  # no ticket left behind


SHARING = """import json, os, sys
job = json.loads(sys.argv[2])
done = os.path.join(job.get("folder") or ".", "result.json")  # no folder: its own working directory
reused = os.path.exists(done)
if not reused:
    json.dump({"trained by": job["label"]}, open(done, "w"))
json.dump(dict(json.load(open(done)), label=job["label"], reused=reused), open(job["out"], "w"))
"""


@pytest.mark.spawns  # three short workers (no torch)
def test_read_or_run_reads_finished_jobs_back_and_runs_a_shared_folder_once(tmp_path):
    """A job read back needs no worker; two labels of one folder run one after the other, the later one (logged
    under <logs>-reused) reusing the first's run; a job without a folder runs with the first pass."""
    script = tmp_path / "worker.py"
    script.write_text(SHARING)
    shared, mine = tmp_path / "shared", tmp_path / "mine"
    shared.mkdir()
    mine.mkdir()
    jobs = [{"label": "read", "folder": str(mine)}, {"label": "A", "folder": str(shared)},
            {"label": "B", "folder": str(shared)}, {"label": "C"}]  # fmt: skip
    results = read_or_run(str(script), jobs, lambda job: {"label": "read back"} if job["label"] == "read" else None,
                          2, 1, str(tmp_path / "logs"))  # fmt: skip
    assert [r["label"] for r in results] == ["read back", "A", "B", "C"]
    assert [r.get("reused") for r in results[1:]] == [False, True, False]
    assert results[2]["trained by"] == "A"
    assert sorted(os.listdir(tmp_path / "logs")) == ["run0", "run0.json", "run0.log", "run1", "run1.json", "run1.log"]
    assert sorted(os.listdir(tmp_path / "logs-reused")) == ["run0", "run0.json", "run0.log"]


def test_where_and_when_a_run_went_is_not_part_of_its_command():
    argv = ["baseline.py", "converge", "--out", "o", "--share-cores", "o/cores", "--priority", "18", "--no-record",
            "--seeds", "2020"]
    assert rerun_argv(argv) == ["baseline.py", "converge", "--seeds", "2020"]


ENV_WORKER = """import json, os, sys
job = json.loads(sys.argv[2])
json.dump({k: os.environ.get(k) for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")},
          open(job["out"], "w"))
"""


@pytest.mark.spawns  # two short workers (no torch)
def test_workers_keep_freed_memory_unless_a_job_asks_for_glibc_defaults(tmp_path, monkeypatch):
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    script = tmp_path / "worker.py"
    script.write_text(ENV_WORKER)
    jobs = [{"label": "cache"}, {"label": "glibc", "env": GLIBC_MALLOC}]
    cache, glibc = run_workers(str(script), jobs, 1, 3, str(tmp_path / "logs"))
    assert cache == {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "4294967296", "OMP_NUM_THREADS": "3"}
    assert glibc == {"MALLOC_MMAP_THRESHOLD_": None, "MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "3"}


def test_with_slot_waits_for_a_slot_then_runs_its_command_and_gives_the_slot_back(tmp_path):
    """benchmarks/with_slot.py with the only slot held by another run: its command has not run after a second; once
    the slot is given back it runs, with_slot exits with the command's status, and the slot is free again."""
    import subprocess

    marker = tmp_path / "ran"
    held = SharedCores(str(tmp_path / "cores"), 1).take()
    command = [sys.executable, os.path.join(ROOT, "benchmarks", "with_slot.py"), "--share-cores",
               str(tmp_path / "cores"), "--slots", "1", "--poll", "0.1", "--", sys.executable, "-c",
               f"open({str(marker)!r}, 'w'); raise SystemExit(3)"]  # fmt: skip
    waiting = subprocess.Popen(command)
    time.sleep(1.5)
    assert waiting.poll() is None and not marker.exists()  # queued behind the held slot
    release(held)
    assert waiting.wait(timeout=60) == 3 and marker.exists()
    assert SharedCores(str(tmp_path / "cores"), 1).take() is not None  # given back
