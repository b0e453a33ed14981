"""The benchmark harness's --quick size, as a CI smoke check (tiny data, seconds; RESULTS.md untouched)."""
import glob
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

SCRIPT = os.path.join(ROOT, "benchmarks", "train_modes.py")


@pytest.mark.parametrize("bench", ["throughput", "quality"])
def test_train_modes_quick(tmp_path, bench):
    results_md = os.path.join(ROOT, "benchmarks", "RESULTS.md")
    before = open(results_md).read() if os.path.exists(results_md) else None
    result = subprocess.run([sys.executable, SCRIPT, bench, "--quick", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [path] = glob.glob(str(tmp_path / "quick" / f"{bench}-tiny-*.json"))
    with open(path) as f:
        runs = json.load(f)["results"]
    assert [r["label"] for r in runs] == ["prefix", "all_positions"]
    assert all(r["peak_rss_mb"] > 0 for r in runs)
    if bench == "throughput":
        assert all(r["targets_per_second"] > 0 and r["epoch_seconds_measured"] for r in runs)
    else:
        assert all(r["curve"] and 0 <= r["at"]["30"]["test"]["ndcg@10"] <= 1 for r in runs)
    assert (open(results_md).read() if os.path.exists(results_md) else None) == before


@pytest.mark.parametrize("bench", ["quality", "step"])
def test_btsrec_quick(tmp_path, bench):
    results_md = os.path.join(ROOT, "benchmarks", "RESULTS.md")
    before = open(results_md).read()
    script = os.path.join(ROOT, "benchmarks", "btsrec.py")
    result = subprocess.run([sys.executable, script, bench, "--quick", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [path] = glob.glob(str(tmp_path / "quick" / f"btsrec-{bench}-tiny-*.json"))
    with open(path) as f:
        runs = json.load(f)["results"]
    if bench == "quality":  # 3 models x 2 seeds, each with its test metrics and its learning curve
        assert [r["label"] for r in runs] == ["SASRec-CE"] * 2 + ["BTSRec-CE"] * 2 + ["BTSRec-SCE"] * 2
        assert all(0 <= r["test"]["itemcoverage@10"] <= 1 and len(r["curve"]) == r["epochs"] for r in runs)
    else:  # BTSRec vs SASRec and SCE vs CE on the data, SCE vs CE on a synthetic catalog: time and memory each
        sys.path.insert(0, ROOT)
        from benchmarks.btsrec import step_costs

        costs = step_costs(runs)
        assert [list(c) for c in costs.values()] == [["SASRec-CE", "BTSRec-CE"], ["SASRec-CE", "SASRec-SCE"], ["CE", "SCE"]]
        assert all(c["seconds"] > 0 and c["peak_mb"] >= 0 for run in costs.values() for c in run.values())
    assert open(results_md).read() == before
