"""The comparison runner (recbole_bt/comparison.py): the table by hand, two tiny runs end to end, failures
reported, reuse on rerun, and the command line."""
import csv
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import FIXTURES, RUN_SCRIPT, TINY_YAML, tiny_config
from recbole_bt import ConfigError
from recbole_bt.comparison import comparison_table, parse_seeds, parse_select, parse_sweep, run_comparison, run_specs


def _record(group, seed, status="ok", error="", **metrics):
    return {"model": group.split(" ")[0], "group": group, "seed": seed, "status": status, "error": error,
            "test_result": metrics, "best_valid_result": {}, "seconds": 1.0, "protocol": "P",
            "epochs_run": 10 + seed, "best_epoch": seed}  # fmt: skip


def test_table_by_hand():
    records = [_record("A", 1, **{"ndcg@10": 0.10, "averagepopularity@10": 50.0}),
               _record("A", 2, **{"ndcg@10": 0.20, "averagepopularity@10": 70.0}),
               _record("B", 1, **{"ndcg@10": 0.30, "averagepopularity@10": 40.0}),
               _record("B", 2, status="failed", error="ValueError: boom")]  # fmt: skip
    protocol, blank, *lines = comparison_table(records).splitlines()
    assert protocol == "Protocol: P." and blank == ""
    assert lines[0] == "| model | runs | epochs (best) | ndcg@10 | averagepopularity@10 |"
    # A: mean 0.15, sample std 0.0707; B: one finished run, no std; B best on both (popularity: smaller is better)
    assert lines[2] == "| A | 2/2 | 11 (1), 12 (2) | 0.1500 ± 0.0707 | 60.0000 ± 14.1421 |"
    assert lines[3] == "| B | 1/2 (1 failed) | 11 (1) | **0.3000** | **40.0000** |"
    # B over the runner-up A: ndcg (0.30 - 0.15) / 0.15 = +100%; popularity (60 - 40) / 60 = +33.3% (lower is better)
    assert lines[4] == "| improvement of the best over the runner-up | | | +100.0% | +33.3% |"
    assert lines[-1] == "- B, seed 2: ValueError: boom"
    with_baselines = comparison_table(records, baselines=["B"]).splitlines()[2:]
    # A against the baseline B: (0.15 - 0.30) / 0.30 = -50%
    assert with_baselines[4] == "| improvement of the best over the strongest baseline | | | -50.0% | -50.0% |"


def test_seeds_and_sweep_parsing():
    assert parse_seeds("3") == [2020, 2021, 2022] and parse_seeds("7,9") == [7, 9] and parse_seeds(2, 5) == [5, 6]
    assert parse_sweep("alpha=0,0.1,0.5") == ("alpha", [0, 0.1, 0.5])
    assert parse_sweep("loss_type=CE,SCE") == ("loss_type", ["CE", "SCE"])
    for bad in ("alpha", "=1,2", "alpha="):
        with pytest.raises(ConfigError, match="--sweep"):
            parse_sweep(bad)
    with pytest.raises(ConfigError, match="--seeds"):
        parse_seeds("two")
    specs = run_specs(["BTSRec"], [1, 2], ("alpha", [0, 0.2]))
    assert [s.label for s in specs] == ["BTSRec alpha=0 seed=1", "BTSRec alpha=0 seed=2", "BTSRec alpha=0.2 seed=1",
                                        "BTSRec alpha=0.2 seed=2"]  # fmt: skip


def test_two_tiny_runs_a_failure_and_reuse(workdir):
    logs = []
    config = tiny_config(epochs=1, hidden_size=8, n_heads=2, inner_size=16, metrics=["Hit", "NDCG"], topk=[10])
    out = run_comparison(["SASRec", "BTSRec", "NoSuchModel"], "tiny", [2020], [TINY_YAML], config,
                         out_dir="cmp", log=logs.append)  # fmt: skip
    runs = {r["model"]: r for r in out["runs"]}
    assert runs["SASRec"]["status"] == runs["BTSRec"]["status"] == "ok"
    assert runs["NoSuchModel"]["status"] == "failed" and "NoSuchModel" in runs["NoSuchModel"]["error"]
    protocol, _, *table = out["table"].splitlines()
    assert protocol == ("Protocol: leave-one-out (last item test, second-to-last validation), full ranking of the "
                        "catalog, seen items not masked (RecBole's default).")  # fmt: skip
    best = max(("SASRec", "BTSRec"), key=lambda m: runs[m]["test_result"]["ndcg@10"])
    assert table[0] == (f"| model | runs | epochs (best) | hit@10 | ndcg@10 | ndcg@10 vs {best}: change [95% interval], p "
                        f"| hit@10 vs {best}: change [95% interval], p |")  # fmt: skip
    assert [row.split(" | ")[0] for row in table[2:5]] == ["| SASRec", "| BTSRec", "| NoSuchModel"]
    assert table[2].startswith("| SASRec | 1/1 | 1 (1) |")
    assert table[4].startswith("| NoSuchModel | 0/1 (1 failed) | - | - | - | - | - |")
    assert len(runs["SASRec"]["test_per_user"]["ndcg@10"]) == 40  # every test user's value, for the paired tests
    assert sum("**" in row for row in table[2:4]) >= 1 and "Failed runs:" in table
    with open(out["paths"]["results.csv"]) as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["ok", "ok", "failed"]
    assert float(rows[0]["ndcg@10"]) == runs["SASRec"]["test_result"]["ndcg@10"]
    with open(out["paths"]["results.json"]) as f:
        assert len(json.load(f)["runs"]) == 3
    assert open(out["paths"]["table.md"]).read().strip() == out["table"]

    calls = []

    def runner(*args):
        calls.append(args[0])
        raise RuntimeError("still no such model")

    again = run_comparison(["SASRec", "BTSRec", "NoSuchModel"], "tiny", [2020], [TINY_YAML], config,
                           out_dir="cmp", log=logs.append, runner=runner)  # fmt: skip
    assert calls == ["NoSuchModel"]  # the finished runs are reused, the failed one is retried
    assert [r["test_result"] for r in again["runs"][:2]] == [runs["SASRec"]["test_result"], runs["BTSRec"]["test_result"]]
    assert sum("reused" in line for line in logs) == 2
    changed = run_comparison(["SASRec"], "tiny", [2020], [TINY_YAML], dict(config, learning_rate=0.01),
                             out_dir="cmp", log=logs.append, runner=runner)  # fmt: skip
    assert calls[-1] == "SASRec" and changed["runs"][0]["status"] == "failed"  # another config: not reused


@pytest.mark.spawns
def test_command_line_comparison(tmp_path):
    cmd = [sys.executable, RUN_SCRIPT, "--models=SASRec,BTSRec", "--seeds=1", "--dataset=tiny", f"--data_path={FIXTURES}",
           f"--config_files={TINY_YAML}", "--epochs=1", "--hidden_size=8", "--n_heads=2", "--inner_size=16",
           "--out=cmp", "--checkpoint_dir=saved"]  # fmt: skip
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    table = open(tmp_path / "cmp" / "table.md").read()
    assert "| SASRec | 1/1 |" in table and "| BTSRec | 1/1 |" in table
    assert "[2/2] BTSRec seed=2020: ok" in result.stdout
    bad = subprocess.run(cmd[:2] + ["--sweep=alpha"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: --sweep must look like")
    bad = subprocess.run(cmd[:2] + ["--models=SASRec,DuoRec", "--select=DuoRec:lmd=0.1,-1"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.strip() == "error: 'lmd' must be a finite number in [0, inf), got -1"
    assert os.path.isdir(tmp_path / "cmp" / "runs")
    # a sweep's runs are the same whether the model is named by --model or --models: the second reuses the first
    sweep = [a for a in cmd if not a.startswith("--models=")] + ["--sweep=alpha=0.3"]
    first = subprocess.run(sweep + ["--model=BTSRec"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0 and "[1/1] BTSRec alpha=0.3 seed=2020: ok" in first.stdout, first.stderr[-2000:]
    again = subprocess.run(sweep + ["--models=BTSRec"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "[1/1] BTSRec alpha=0.3 seed=2020: reused" in again.stdout, again.stderr[-2000:]


def test_sweep_runs_and_trade_off_plot(workdir):
    pytest.importorskip("matplotlib")
    from recbole_bt.plots import sweep_series

    config = tiny_config(epochs=1, hidden_size=8, n_heads=2, inner_size=16, topk=[1, 5, 10],
                         metrics=["Hit", "NDCG", "Coverage", "Hit_Head", "Hit_Mid", "Hit_Tail"])  # fmt: skip
    out = run_comparison(["BTSRec"], "tiny", [2020, 2021], [TINY_YAML], config, out_dir="sweep",
                         sweep=("alpha", [0, 0.3]), log=lambda *_: None)  # fmt: skip
    assert [r["group"] for r in out["runs"]] == ["BTSRec alpha=0"] * 2 + ["BTSRec alpha=0.3"] * 2
    series = sweep_series(out["runs"], "alpha")
    points = series[("BTSRec", "hit@10")]
    assert [p[0] for p in points] == [0, 0.3]
    values = [r["test_result"]["hit@10"] for r in out["runs"][:2]]
    assert points[0][1] == pytest.approx(sum(values) / 2)
    assert os.path.getsize(out["paths"]["plot"]) > 1000


def _per_user(group, seed, ndcg):
    record = _record(group, seed, **{"ndcg@10": sum(ndcg) / len(ndcg)})
    record["test_per_user"] = {"user": list(range(len(ndcg))), "ndcg@10": ndcg, "hit@10": [float(v > 0) for v in ndcg]}
    return record


def test_significance_by_hand_against_scipy():
    """4 users, one seed: A and C each tested against the best row B (Wilcoxon, pairs of the same users),
    Holm over the 2 tests."""
    from scipy import stats

    a, b, c = [0.2, 0.0, 0.5, 0.1], [1.0, 0.6, 0.7, 0.9], [0.9, 0.3, 0.0, 0.63]
    table = comparison_table([_per_user("A", 1, a), _per_user("B", 1, b), _per_user("C", 1, c)]).splitlines()
    assert table[2] == ("| model | runs | epochs (best) | ndcg@10 | ndcg@10 vs B: change [95% interval], p "
                        "| hit@10 vs B: change [95% interval], p |")  # fmt: skip
    p_a, p_c = stats.wilcoxon(a, b).pvalue, stats.wilcoxon(c, b).pvalue
    low, high = sorted([p_a, p_c])
    holm = {p_a: 2 * p_a if p_a == low else max(2 * low, p_a), p_c: 2 * p_c if p_c == low else max(2 * low, p_c)}
    cells = {row.split(" | ")[0][2:]: row.split(" | ")[4] for row in table[4:7]}
    assert cells["B"] == "reference"
    cell = r"([+-][0-9.]+)% \[([+-][0-9.]+)%, ([+-][0-9.]+)%\], p ([0-9.e-]+)\*?"
    for name, values, p in (("A", a, p_a), ("C", c, p_c)):
        change, lo, hi, p_cell = map(float, re.fullmatch(cell, cells[name]).groups())
        assert p_cell == pytest.approx(min(holm[p], 1.0), rel=0.01)
        diff = [x - y for x, y in zip(values, b)]
        interval = stats.t.interval(0.95, 3, loc=sum(diff) / 4, scale=stats.sem(diff))
        assert [change, lo, hi] == pytest.approx([100 * v / (sum(b) / 4) for v in (sum(diff) / 4, *interval)], abs=0.05)
    assert "Holm-adjusted over the 2 rows tested" in table[-1]
    # two models only: one test, no correction; --baselines picks the reference among the baselines
    two = comparison_table([_per_user("A", 1, a), _per_user("C", 1, c)], baselines=["A"]).splitlines()
    row_c = next(row for row in two if row.startswith("| C |"))
    assert two[2].endswith("| ndcg@10 vs A: change [95% interval], p | hit@10 vs A: change [95% interval], p |")
    assert float(row_c.split(" | ")[4].split("p ")[1].rstrip("*")) == pytest.approx(stats.wilcoxon(c, a).pvalue, rel=0.01)


def test_select_chooses_on_validation_then_runs_every_seed(workdir):
    """A fake runner whose validation score peaks at lmd 0.01: the three candidates run with the first seed,
    then 0.01 with both seeds (the first reused); the table names it, the CSV shows the selection runs."""
    calls = []

    def runner(model, dataset, files, config):
        calls.append((model, config.get("lmd"), config["seed"]))
        score = {0.001: 0.2, 0.01: 0.3, 0.1: 0.1}.get(config.get("lmd"), 0.25)
        return {"test_result": {"ndcg@10": score}, "best_valid_result": {"ndcg@10": score}, "best_valid_score": score,
                "valid_score_bigger": True}  # fmt: skip

    out = run_comparison(["SASRec", "DuoRec"], "tiny", [1, 2], [TINY_YAML], tiny_config(), out_dir="sel",
                         runner=runner, log=lambda *_: None, select={"DuoRec": ("lmd", [0.001, 0.01, 0.1])})  # fmt: skip
    assert out["selected"] == {"DuoRec": {"lmd": 0.01}}
    assert calls == [("DuoRec", 0.001, 1), ("DuoRec", 0.01, 1), ("DuoRec", 0.1, 1), ("SASRec", None, 1),
                     ("SASRec", None, 2), ("DuoRec", 0.01, 2)]  # fmt: skip
    assert "| DuoRec lmd=0.01 | 2/2 |" in out["table"]
    assert "- DuoRec: lmd=0.01, chosen on validation (seed 1; best validation score of each lmd: 0.001: 0.2000, " \
           "0.01: 0.3000, 0.1: 0.1000)" in out["table"]
    with open(out["paths"]["results.csv"]) as f:
        rows = list(csv.DictReader(f))
    assert [r["phase"] for r in rows] == ["selection"] * 3 + ["test"] * 4


@pytest.mark.parametrize(
    "select, message",
    [
        (["DuoRec"], r"--select must look like MODEL:key=value1,value2,..., got 'DuoRec'"),
        (["DuoRec:lmd=0.1", "DuoRec:tau=1"], r"--select names DuoRec twice"),
        (["BTSRec:alpha=0.1"], r"--select names BTSRec, which --models does not compare"),
        (["DuoRec:lmd=0.1,-1"], r"'lmd' must be a finite number in \[0, inf\), got -1"),
    ],
)
def test_bad_select_is_one_line(workdir, select, message):
    with pytest.raises(ConfigError, match=message) as info:
        run_comparison(["SASRec", "DuoRec"], "tiny", [1], [TINY_YAML], tiny_config(), out_dir="bad",
                       select=parse_select(select), runner=lambda *a: {}, log=lambda *_: None)  # fmt: skip
    assert "\n" not in str(info.value)


def test_select_from_a_yaml_file(tmp_path):
    path = tmp_path / "select.yaml"
    path.write_text("DuoRec: {lmd: [0.001, 0.01]}\nBTSRec:\n  alpha: [0.1, 0.2]\n")
    assert parse_select([str(path)]) == {"DuoRec": ("lmd", [0.001, 0.01]), "BTSRec": ("alpha", [0.1, 0.2])}
    path.write_text("DuoRec: [0.001]\n")
    with pytest.raises(ConfigError, match="must map each model to one key and its list of values"):
        parse_select([str(path)])


def test_unvalidated_weight_warns_once(workdir):
    logs = []
    runner = lambda *a: {"test_result": {"ndcg@10": 0.1}}  # noqa: E731
    prefix = tiny_config(train_mode="prefix")  # CL4SRec's lmd has a validated default in both modes, BTSRec's alpha not
    out = run_comparison(["SASRec", "CL4SRec", "BTSRec"], "tiny", [1, 2], [TINY_YAML], prefix, out_dir="w",
                         runner=runner, log=logs.append)  # fmt: skip
    warnings = [line for line in logs if line.startswith("warning:")]
    assert warnings == ["warning: BTSRec's alpha (0.2) was chosen on validation for train_mode all_positions, never "
                        "for prefix: choose it here with --select=BTSRec:alpha=v1,v2,..."]  # fmt: skip
    assert out["table"].endswith(warnings[0].replace("warning:", "Warning:"))
    logs.clear()
    run_comparison(["BTSRec"], "tiny", [1], [TINY_YAML], prefix, out_dir="w", runner=runner, log=logs.append,
                   select={"BTSRec": ("alpha", [0.2])})  # fmt: skip
    run_comparison(["BTSRec"], "tiny", [1], [TINY_YAML], prefix, out_dir="w", runner=runner, log=logs.append,
                   sweep=("alpha", [0.2]))  # fmt: skip
    assert not any(line.startswith("warning:") for line in logs)  # chosen (or swept) here: no warning


def test_interrupted_comparison_resumes_the_run_in_progress(workdir, monkeypatch):
    """Ctrl-C during the third epoch of the second run; the same call again reuses the first run and resumes the
    second after its last completed epoch, to the figures of an uninterrupted comparison."""
    from recbole_bt.trainer import Trainer

    config = tiny_config(epochs=4, hidden_size=8, n_heads=2, inner_size=16, metrics=["Hit", "NDCG"], topk=[10])
    args = (["SASRec", "BTSRec"], "tiny", [2020], [TINY_YAML], config)
    whole = run_comparison(*args, out_dir="whole", log=lambda *_: None)
    train_epoch, calls = Trainer._train_epoch, []

    def interrupted(self, *a, **k):
        calls.append(self.config["model"])
        if calls.count("BTSRec") == 3:
            raise KeyboardInterrupt
        return train_epoch(self, *a, **k)

    monkeypatch.setattr(Trainer, "_train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_comparison(*args, out_dir="parts", log=lambda *_: None)
    calls.clear()
    logs = []
    again = run_comparison(*args, out_dir="parts", log=logs.append)
    assert calls == ["BTSRec", "BTSRec"]  # epochs 3 and 4 of the interrupted run, nothing else
    assert any("SASRec seed=2020: reused" in line for line in logs)
    assert any("BTSRec seed=2020: resuming from" in line for line in logs)
    strip = lambda r: {k: r[k] for k in ("test_result", "best_valid_result", "epochs_run", "best_epoch", "test_per_user")}  # noqa: E731
    assert [strip(r) for r in again["runs"]] == [strip(r) for r in whole["runs"]]
