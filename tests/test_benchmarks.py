"""The benchmark harness's --quick size, as a CI smoke check (tiny data, seconds; RESULTS.md untouched)."""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch
import yaml

from conftest import ROOT

RESULTS_MD = os.path.join(ROOT, "benchmarks", "RESULTS.md")


def run_quick(script, bench, tmp_path, name, *extra, stdout=None):
    """Run `benchmarks/<script> <bench> --quick [extra]`; returns the runs of its JSON (RESULTS.md stays untouched);
    its output goes into the list `stdout` when given."""
    before = open(RESULTS_MD).read()
    result = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", script), bench, "--quick", "--out",
                             str(tmp_path), *extra], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    if stdout is not None:
        stdout.append(result.stdout)
    [path] = glob.glob(str(tmp_path / "quick" / f"{name}-tiny-*.json"))
    assert open(RESULTS_MD).read() == before
    with open(path) as f:
        return json.load(f)["results"]


@pytest.mark.spawns(several=True)
@pytest.mark.parametrize("bench", ["throughput", "quality"])
def test_train_modes_quick(tmp_path, bench):
    runs = run_quick("train_modes.py", bench, tmp_path, bench)
    assert [r["label"] for r in runs] == ["prefix", "all_positions"]
    assert all(r["peak_rss_mb"] > 0 for r in runs)
    if bench == "throughput":
        assert all(r["targets_per_second"] > 0 and r["epoch_seconds_measured"] for r in runs)
    else:
        assert all(r["curve"] and 0 <= r["at"]["9"]["test"]["ndcg@10"] <= 1 for r in runs)
        assert all(r["protocol"].endswith("seen items not masked (RecBole's default)") for r in runs)


@pytest.mark.spawns(several=True)
@pytest.mark.parametrize("bench", ["quality", "step"])
def test_btsrec_quick(tmp_path, bench):
    runs = run_quick("btsrec.py", bench, tmp_path, f"btsrec-{bench}")
    if bench == "quality":  # 3 models, one seed each, with its test metrics and its learning curve
        assert [r["label"] for r in runs] == ["SASRec-CE", "BTSRec-CE", "BTSRec-SCE"]
        assert all(0 <= r["test"]["itemcoverage@10"] <= 1 and len(r["curve"]) == r["epochs"] for r in runs)
    else:  # BTSRec vs SASRec and SCE vs CE on the data, SCE vs CE on a synthetic catalog: time and memory each
        sys.path.insert(0, ROOT)
        from benchmarks.btsrec import step_costs

        costs = step_costs(runs)
        assert [list(c) for c in costs.values()] == [["SASRec-CE", "BTSRec-CE"], ["SASRec-CE", "SASRec-SCE"], ["CE", "SCE"]]
        assert all(c["seconds"] > 0 and c["peak_mb"] >= 0 for run in costs.values() for c in run.values())


@pytest.mark.spawns  # one run at a time (evaluation.py runs its jobs one by one)
@pytest.mark.parametrize("bench", ["cost", "protocol"])
def test_evaluation_quick(tmp_path, bench):
    [run] = run_quick("evaluation.py", bench, tmp_path, f"evaluation-{bench}")
    if bench == "cost":  # the same evaluation with and without the new metrics, side by side
        assert run["ratio"] > 0 and len(run["seconds"]["base"]) == len(run["seconds"]["with new metrics"]) == 2
        assert {"coverage@10", "effective_rank", "hit_tail@10"} <= set(run["result"])
    else:  # the temporal split both ways, then one run with every metric
        assert [s["exclude_test_users"] for s in run["split"]] == [True, False]
        assert run["split"][0]["train_rows"] < run["split"][1]["train_rows"]
        assert {"coverage@10", "effective_rank", "hit_head@10"} <= set(run["test"])


@pytest.mark.spawns(several=True)
def test_clue_quick(tmp_path):
    """CLUE pretrain -> fine-tune, CLUEZero and SASRec, one seed each, on the tiny dataset."""
    runs = run_quick("clue.py", "quality", tmp_path, "clue-quality")
    assert [r["label"] for r in runs] == ["CLUE", "CLUEZero", "SASRec-CE"]
    assert runs[0]["pretrain"]["epochs"] == 2 and len(runs[0]["pretrain"]["curve"]) == 2
    assert all("pretrain" not in r and 0 <= r["test"]["mrr@10"] <= 1 for r in runs[1:])


@pytest.mark.spawns(several=True)
def test_user_tasks_quick(tmp_path):
    runs = run_quick("user_tasks.py", "study", tmp_path, "user_tasks-study", "--methods", "BTPretrain", "DualEncoder", "none")
    assert [(r["method"], r["batch"]) for r in runs] == [
        ("BTPretrain", 16), ("DualEncoder", 16), ("none", 16),  # the main grid first
        ("BTPretrain", 4), ("DualEncoder", 4),  # no pretraining does not depend on the batch
    ]
    for r in runs:
        protocols = {"probe", "finetune"} if r["batch"] == 16 else {"probe"}
        assert {t: set(p) for t, p in r["user_tasks"].items() if t != "users"} == dict.fromkeys(
            ["gender", "age", "next_item"], protocols)
        assert ("pretrain" in r) == (r["method"] != "none")
        rows = [row for t in ("gender", "age", "next_item") for row in r["user_tasks"][t]["probe"].values()]
        assert not any("per_user" in row for row in rows)  # the job folders keep the test users' rows, not the JSON
    # the JSON keeps BTPretrain vs DualEncoder's paired tests, from those rows: every protocol at the main batch,
    # the probe at the other, per task and label ratio
    [path] = glob.glob(str(tmp_path / "quick" / "user_tasks-study-tiny-*.json"))
    with open(path) as f:
        tests = json.load(f)["bt_vs_de"]
    assert sorted(tests) == sorted(f"{batch} {task} {protocol} {ratio}" for task in ("gender", "age", "next_item")
                                   for batch, protocols in ((16, ("probe", "finetune")), (4, ("probe",)))
                                   for protocol in protocols for ratio in ("0.01", "0.1", "1.0"))  # fmt: skip
    assert all(0 < p <= 1 and not low > change > high for p, change, low, high in tests.values())  # NaN: DE's mean 0
    with open(path) as f:  # and "most with small batches": batch 4's gains against batch 16's, per task x ratio
        trend, batches = json.load(f)["batch_trend"]
    assert batches == [4, 16] and set(trend) <= {f"{t} {r}" for t in ("gender", "age", "next_item")
                                                  for r in ("0.01", "0.1", "1.0")}  # fmt: skip
    # the same command again (an interrupted study restarted) reuses every finished job: nothing recomputed
    done = {path: os.stat(path).st_mtime_ns for path in glob.glob(str(tmp_path / "quick" / "user_tasks-runs" / "*" / "**" / "result.json"), recursive=True)}
    assert len(done) == 5 + 4  # the jobs and their pretraining stages
    assert len(glob.glob(str(tmp_path / "quick" / "user_tasks-runs" / "*" / "defaults.json"))) == 5  # checked on reuse
    for path in glob.glob(str(tmp_path / "quick" / "user_tasks-study-tiny-*.json")):
        os.remove(path)
    again = run_quick("user_tasks.py", "study", tmp_path, "user_tasks-study", "--methods", "BTPretrain", "DualEncoder", "none")
    assert [dict(r, peak_rss_mb=0) for r in again] == [dict(r, peak_rss_mb=0) for r in runs]
    assert {path: os.stat(path).st_mtime_ns for path in done} == done
    workers = lambda: [p for p in glob.glob(str(tmp_path / "user_tasks-study-*")) if os.path.isdir(p)]  # noqa: E731
    assert len(workers()) == 1  # the finished jobs were read back in process: no worker (nor its logs) the second time
    # the zero-shot probe: every finished job's encoder on next_item with no label, nothing of the study retrained
    zero = run_quick("user_tasks.py", "zero-shot", tmp_path, "user_tasks-zero-shot", "--methods", "BTPretrain",
                     "DualEncoder", "none")  # fmt: skip
    assert [(r["method"], r["batch"]) for r in zero] == [(r["method"], r["batch"]) for r in runs]
    assert all(r["zero_shot"]["labelled_users"] == r["zero_shot"]["epochs"] == 0 for r in zero)
    assert {path: os.stat(path).st_mtime_ns for path in done} == done
    # the head-start probe: the attribute probes again from the majority-class start, nothing of the study retrained
    heads = run_quick("user_tasks.py", "head-start", tmp_path, "user_tasks-head-start", "--methods", "BTPretrain",
                      "DualEncoder", "none")  # fmt: skip
    assert [(r["method"], r["batch"]) for r in heads] == [(r["method"], r["batch"]) for r in runs]
    assert all({t: set(p) for t, p in r["user_tasks"].items() if t != "users"} == {"gender": {"probe"}, "age": {"probe"}}
               for r in heads)  # fmt: skip
    # and the fine-tuning's: at the main batch only (the study fine-tunes there), in its own folder
    tuned = run_quick("user_tasks.py", "head-start-finetune", tmp_path, "user_tasks-head-start-finetune", "--methods",
                      "BTPretrain", "DualEncoder", "none")  # fmt: skip
    assert [(r["method"], r["batch"]) for r in tuned] == [(r["method"], r["batch"]) for r in runs[:3]]
    assert all({t: set(p) for t, p in r["user_tasks"].items() if t != "users"} == {"gender": {"finetune"},
               "age": {"finetune"}} for r in tuned)  # fmt: skip
    assert {path: os.stat(path).st_mtime_ns for path in done} == done
    # the rank probe: the effective rank of every user's h(s) (hidden_size 8 in --quick), as is and centred
    ranks = run_quick("user_tasks.py", "rank", tmp_path, "user_tasks-rank", "--methods", "BTPretrain", "DualEncoder",
                      "none")  # fmt: skip
    assert [(r["method"], r["batch"]) for r in ranks] == [(r["method"], r["batch"]) for r in runs]
    users = sum(runs[0]["user_tasks"]["users"]["gender"][part] for part in ("train", "valid", "test"))
    assert all(r["representation"]["dims"] == 8 and r["representation"]["users"] == users
               and 1 < r["representation"]["effective_rank_centred"] <= 8 for r in ranks)  # fmt: skip
    assert {path: os.stat(path).st_mtime_ns for path in done} == done
    # a job restored from the archive on a fresh machine (no encoder) with no probe result: listed, not pretrained
    [encoder] = glob.glob(str(tmp_path / "quick" / "user_tasks-runs" / "DualEncoder-batch4-*" / "pretrain"))
    shutil.rmtree(encoder)
    shutil.rmtree(os.path.join(os.path.dirname(encoder), "rank"))
    for path in glob.glob(str(tmp_path / "quick" / "user_tasks-rank-tiny-*.json")):
        os.remove(path)
    out = []
    ranks = run_quick("user_tasks.py", "rank", tmp_path, "user_tasks-rank", "--methods", "BTPretrain", "DualEncoder",
                      "none", stdout=out)  # fmt: skip
    assert [(r["method"], r["batch"]) for r in ranks] == [(r["method"], r["batch"]) for r in runs[:4]]
    assert not os.path.exists(encoder)
    assert "Encoders not on this machine (their jobs restored from the archive; left out): DualEncoder batch 4" \
        in out[0]
    # --finished-only (a study that spans sessions, read back so far): the unfinished job is left out, not trained
    [unfinished] = glob.glob(str(tmp_path / "quick" / "user_tasks-runs" / "DualEncoder-batch4-*" / "result.json"))
    os.remove(unfinished)
    for path in glob.glob(str(tmp_path / "quick" / "user_tasks-study-tiny-*.json")):
        os.remove(path)
    so_far = run_quick("user_tasks.py", "study", tmp_path, "user_tasks-study", "--methods", "BTPretrain", "DualEncoder",
                       "none", "--finished-only")  # fmt: skip
    assert [dict(r, peak_rss_mb=0) for r in so_far] == [dict(r, peak_rss_mb=0) for r in runs[:4]]
    assert not os.path.exists(unfinished) and len(workers()) == 1


def test_user_tasks_table_tests_btpretrain_against_the_dual_encoder():
    """Per-user next-item NDCG@10 of two seeds x 5 test users per method: the row's p is scipy's Wilcoxon over the
    10 pooled (user, seed) pairs (one row: Holm leaves it), after the relative difference of the means."""
    sys.path.insert(0, ROOT)
    from scipy import stats

    from benchmarks.user_tasks_tables import report_main

    values = {"BTPretrain": {1: [0.5, 0.6, 0.9, 0.3, 0.8], 2: [0.4, 0.7, 0.8, 0.5, 0.6]},
              "DualEncoder": {1: [0.1, 0.2, 0.3, 0.0, 0.5], 2: [0.2, 0.1, 0.0, 0.3, 0.1]}}  # fmt: skip
    results = []
    for method, seeds in values.items():
        for seed, v in seeds.items():
            row = {"ndcg@10": sum(v) / 5, "hit@10": 0.5, "per_user": {"user": [3, 1, 4, 5, 9], "ndcg@10": v}}
            results.append({"method": method, "batch": 256, "seed": seed, "label": method,
                            "user_tasks": {"users": {}, "next_item": {"probe": {"1.0": row}}}})  # fmt: skip
    header, rows = report_main(results, 256)
    assert header[-1].startswith("BTPretrain vs DualEncoder: change [95% t-interval of the paired difference, unadjusted], p (Wilcoxon")
    bt, de = values["BTPretrain"][1] + values["BTPretrain"][2], values["DualEncoder"][1] + values["DualEncoder"][2]
    change, low, high, p = re.fullmatch(r"([+-][0-9.]+)% \[([+-][0-9.]+)%, ([+-][0-9.]+)%\], p ([0-9.e-]+)\*",
                                        rows[0][-1]).groups()  # fmt: skip
    assert float(change) == pytest.approx((sum(bt) - sum(de)) / sum(de) * 100, abs=0.05)
    diff = [x - y for x, y in zip(bt, de)]
    interval = stats.t.interval(0.95, 9, loc=sum(diff) / 10, scale=stats.sem(diff))
    assert [float(low), float(high)] == pytest.approx([100 * v / (sum(de) / 10) for v in interval], abs=0.05)
    assert float(p) == pytest.approx(stats.wilcoxon(bt, de).pvalue, rel=0.05)


def test_user_tasks_compares_btpretrain_with_the_dual_encoder_at_every_batch_size():
    """Probe next-item NDCG@10 at batch 32 and 256, two seeds x 5 test users: each batch's cell is the change of the
    means, then scipy's Wilcoxon over its 10 pooled pairs, Holm over the study's two comparisons; the study's JSON
    (no test users' rows, the tests kept) gives the same tables."""
    sys.path.insert(0, ROOT)
    from scipy import stats

    from benchmarks.user_tasks import lean
    from benchmarks.user_tasks_tables import bt_vs_de, report_bt_vs_de_by_batch, tables

    values = {(32, "BTPretrain"): [[0.5, 0.6, 0.9, 0.3, 0.8], [0.4, 0.7, 0.8, 0.5, 0.6]],
              (32, "DualEncoder"): [[0.1, 0.2, 0.3, 0.0, 0.5], [0.2, 0.1, 0.0, 0.3, 0.1]],
              (256, "BTPretrain"): [[0.5, 0.1, 0.4, 0.3, 0.2], [0.3, 0.2, 0.0, 0.5, 0.6]],
              (256, "DualEncoder"): [[0.4, 0.3, 0.3, 0.1, 0.5], [0.2, 0.1, 0.2, 0.3, 0.4]]}  # fmt: skip
    results = []
    for (batch, method), seeds in values.items():
        for seed, v in zip((1, 2), seeds):
            row = {"ndcg@10": sum(v) / 5, "hit@10": 0.5, "per_user": {"user": [3, 1, 4, 5, 9], "ndcg@10": v}}
            results.append({"method": method, "batch": batch, "seed": seed, "label": f"{method} {batch}",
                            "pretrain": {"epochs": 9, "stopped": "", "seconds": 90, "pretrain_loss": 1.0},
                            "user_tasks": {"users": {}, "next_item": {"probe": {"1.0": row}}}})  # fmt: skip
    header, rows = report_bt_vs_de_by_batch(results, "probe", ["1.0"])
    assert header == ["task", "label ratio", "pretraining batch 32", "pretraining batch 256"]
    pooled = {k: v[0] + v[1] for k, v in values.items()}
    raw = [stats.wilcoxon(pooled[(b, "BTPretrain")], pooled[(b, "DualEncoder")]).pvalue for b in (32, 256)]
    small = min(raw)
    holm = [2 * small if p == small else max(p, 2 * small) for p in raw]
    for batch, cell, p in zip((32, 256), rows[0][2:], holm):
        change, adjusted = re.fullmatch(r"([+-][0-9.]+)% \[[^]]+\], p ([0-9.e-]+)\*?", cell).groups()
        bt, de = sum(pooled[(batch, "BTPretrain")]), sum(pooled[(batch, "DualEncoder")])
        assert float(change) == pytest.approx(100 * (bt - de) / de, abs=0.05)
        assert float(adjusted) == pytest.approx(min(p, 1), rel=0.05)
    assert rows[0][2].endswith("*") and not rows[0][3].endswith("*")  # batch 32's gap is clear, 256's is not
    # what the study's JSON holds: its results without the rows, the tests JSON-encoded; the same tables from it
    saved = json.loads(json.dumps({"results": [lean(r) for r in results], **tables("study", results)[3]}))
    assert not any("per_user" in r["user_tasks"]["next_item"]["probe"]["1.0"] for r in saved["results"])
    assert saved["bt_vs_de"] == json.loads(json.dumps(bt_vs_de(results)))
    again = tables("study", saved["results"], tests=saved["bt_vs_de"], trend=saved["batch_trend"])
    assert again[:3] == tables("study", results)[:3] and "Most with small batches?" in again[2]
    assert "BTPretrain vs DualEncoder at each pretraining batch size" in again[2]
    # a study of other methods (`--methods CLUE`): no comparison to make, no empty table of it
    others = [dict(r, method="CLUE") for r in results]
    assert "BTPretrain vs DualEncoder at each" not in tables("study", others)[2]


def test_user_tasks_tests_whether_btpretrain_gains_more_at_the_smallest_batch():
    """Gender accuracy of 4 test users, one seed, at batch 32, 64 and 1024: per user the gain (BT - DE) / DE's mean
    at each batch, the smallest batch's against the largest's (64 and CLUE left out; user 7, BTPretrain's at batch 32
    only, left out of the pairs). By hand: DE's mean 0.5 at both, gains [0, 2, 2, 0] (mean +100%) and [0, 0, 0, 2]
    (+50%), their difference [0, 2, 2, -2]: mean 0.5, scipy's Wilcoxon and t-interval of it. A second seed run at
    batch 32 only changes nothing (its DualEncoder is not in the scale of the seed both batches have)."""
    sys.path.insert(0, ROOT)
    from scipy import stats

    from benchmarks.user_tasks_tables import batch_trend, report_batch_trend

    values = {(32, "BTPretrain"): [1, 1, 1, 1, 1], (32, "DualEncoder"): [1, 0, 0, 1],
              (64, "BTPretrain"): [0, 0, 0, 0], (64, "DualEncoder"): [1, 1, 1, 1], (64, "CLUE"): [1, 1, 1, 1],
              (1024, "BTPretrain"): [1, 1, 0, 1], (1024, "DualEncoder"): [1, 1, 0, 0]}  # fmt: skip
    results = []
    for (batch, method), v in values.items():
        row = {"accuracy": sum(v) / len(v), "per_user": {"user": [3, 1, 4, 5, 7][:len(v)], "accuracy": v}}
        results.append({"method": method, "batch": batch, "seed": 2020, "label": f"{method} {batch}",
                        "user_tasks": {"users": {}, "gender": {"probe": {"0.01": row}}}})  # fmt: skip
    for method, v in (("BTPretrain", [0, 0, 0, 0]), ("DualEncoder", [1, 1, 1, 1])):  # seed 2021, batch 32 only
        row = {"accuracy": sum(v) / len(v), "per_user": {"user": [3, 1, 4, 5], "accuracy": v}}
        results.append({"method": method, "batch": 32, "seed": 2021, "label": f"{method} 32 seed 2021",
                        "user_tasks": {"users": {}, "gender": {"probe": {"0.01": row}}}})  # fmt: skip
    tests, batches = batch_trend(results)
    assert batches == [32, 64, 1024] and list(tests) == ["gender 0.01"]
    p, small, large, difference, low, high = tests["gender 0.01"]
    diff = [0, 2, 2, -2]
    assert [small, large, difference] == pytest.approx([1.0, 0.5, 0.5])
    assert [low, high] == pytest.approx(stats.t.interval(0.95, 3, loc=0.5, scale=stats.sem(diff)))
    assert p == pytest.approx(stats.wilcoxon(diff).pvalue)
    header, rows = report_batch_trend(results)
    assert header[2:4] == ["change at batch 32", "change at batch 1024"]
    assert rows == [["gender", "0.01", "+100.0%", "+50.0%", f"+50.0 points [{100 * low:+.1f}, {100 * high:+.1f}], "
                     f"p {p:.2g}"]]  # fmt: skip


def test_user_tasks_batch_table_says_how_each_pretraining_ended():
    """Per method x batch: the seeds that stopped at the plateau (not at the cap), the mean wall time, best loss and
    collapse indicators at the end ('-' for an indicator the method does not report)."""
    sys.path.insert(0, ROOT)
    from benchmarks.user_tasks_tables import report_batch

    def run(method, seed, stopped, seconds, loss, stds):
        row = {"accuracy": 0.7 + seed / 100}
        pretraining = {"epochs": seconds // 10, "stopped": stopped, "seconds": seconds, "pretrain_loss": loss, **stds}
        return {"method": method, "batch": 32, "seed": seed, "pretrain": pretraining,
                "user_tasks": {"users": {}, "gender": {"probe": {"1.0": row}}}}  # fmt: skip

    plateau = "no loss 1% below 20.1 for 10 epochs (best 20.0, pretrain_stopping_step 10)"
    cap = "pretrain_epochs = 100 reached (loss still falling)"
    results = [run("BTPretrain", 1, plateau, 300, 20.0, {"embedding_std": 0.1, "projection_std": 0.05}),
               run("BTPretrain", 2, cap, 1000, 22.0, {"embedding_std": 0.2, "projection_std": 0.07}),
               run("DualEncoder", 1, cap, 500, 4.5, {"embedding_std": 0.3})]  # fmt: skip
    header, rows = report_batch(results, "probe", ["1.0"])
    assert header[-4:] == ["stopped at the plateau (seeds)", "pretrain s (epochs x median epoch)", "best loss",
                           "embedding std / projection std at the end"]  # fmt: skip
    assert rows == [["BTPretrain", 32, "0.7150 ± 0.0071", "30, 100", "1 of 2", "650", "21.000", "0.150 / 0.060"],
                    ["DualEncoder", 32, "0.7100", "50", "0 of 1", "500", "4.500", "0.300 / -"]]  # fmt: skip


def test_user_tasks_compares_pretraining_losses_at_equal_optimizer_steps():
    """Batch 1024 takes a quarter of batch 256's steps per epoch: after 1 and 2 epochs' steps at 256, its epochs 4
    and 8; batch 32's epochs 1/8 and 2/8 of them, at least epoch 1. A seed that stopped before a point is left out
    of its mean and counted; a run without a curve (none: no pretraining) gets no row."""
    sys.path.insert(0, ROOT)
    from benchmarks.user_tasks_tables import equal_steps_table, report_equal_steps

    def run(method, batch, seed, losses):
        curve = [{"epoch": i + 1, "loss": loss} for i, loss in enumerate(losses)]
        return {"method": method, "batch": batch, "seed": seed, "pretrain": {"curve": curve}, "user_tasks": {}}

    results = [run("BTPretrain", 256, 1, [9.0, 5.0]), run("BTPretrain", 256, 2, [7.0, 3.0]),
               run("BTPretrain", 1024, 1, [8, 7, 6, 5.5, 5, 4, 3, 2.5]), run("BTPretrain", 1024, 2, [9, 8, 7, 4.5]),
               run("DualEncoder", 32, 1, [6.0]), {"method": "none", "batch": 256, "seed": 1, "user_tasks": {}}]
    header, rows = report_equal_steps(results, 256, at=(1, 2))
    assert header == ["method", "batch", "after 1 epochs' steps", "after 2 epochs' steps"]
    assert rows == [["BTPretrain", 256, "8.00", "4.00"], ["BTPretrain", 1024, "5.00", "2.50 (1)"],
                    ["DualEncoder", 32, "6.00", "6.00"]]  # fmt: skip
    assert "equal optimizer steps" in equal_steps_table(results, 256) and equal_steps_table(results[-1:], 256) == ""


def test_a_pretrainings_wall_time_leaves_out_the_time_its_process_stood_paused():
    """Epochs of 30, 32, 31, 29 s and one of 600 s (SIGSTOP while a test suite ran): 5 x the median epoch, 31 s x 5
    (their total 722 s); the stored total when the stage kept no curve."""
    sys.path.insert(0, ROOT)
    from benchmarks.harness import pretrain_seconds

    curve = [{"epoch": i + 1, "seconds": s} for i, s in enumerate([30.0, 32.0, 600.0, 31.0, 29.0])]
    assert pretrain_seconds({"curve": curve, "seconds": 722.0}) == pytest.approx(155.0)
    assert pretrain_seconds({"seconds": 722.0}) == 722.0


def test_user_tasks_rank_table_sets_each_encoders_rank_beside_its_study_row():
    """Per method x batch: the mean ± std of the effective ranks over seeds, out of H, beside the study's pretraining
    loss and 100%-label probe accuracies; no pretraining: no loss; a failed probe: its own row."""
    sys.path.insert(0, ROOT)
    from benchmarks.user_tasks_tables import report_rank

    def rank(method, seed, value, centred):
        rep = {"users": 10, "dims": 64, "effective_rank": value, "effective_rank_centred": centred}
        return {"method": method, "batch": 256, "seed": seed, "label": f"{method} {seed}", "representation": rep}

    def study(method, seed, loss, gender, age):
        tasks = {t: {"probe": {"1.0": {"accuracy": a}}} for t, a in (("gender", gender), ("age", age))}
        return {"method": method, "batch": 256, "seed": seed, "user_tasks": tasks,
                **({"pretrain": {"pretrain_loss": loss}} if loss is not None else {})}  # fmt: skip

    results = [rank("BTPretrain", 1, 30.0, 20.0), rank("BTPretrain", 2, 40.0, 30.0), rank("none", 1, 60.0, 55.0),
               {"label": "DualEncoder 1", "failed": "RuntimeError: boom"}]
    studies = [study("BTPretrain", 1, 8.0, 0.7, 0.3), study("BTPretrain", 2, 9.0, 0.8, 0.4),
               study("none", 1, None, 0.72, 0.35), study("DualEncoder", 1, 5.0, 0.7, 0.3)]
    header, rows = report_rank(results, studies)
    assert header[3:6] == ["effective rank of h(s) / H", "centred", "pretraining loss"]
    assert rows == [["BTPretrain", 256, 2, "35.0000 ± 7.0711 / 64", "25.0000 ± 7.0711", "8.5000 ± 0.7071",
                     "0.7500 ± 0.0707", "0.3500 ± 0.0707"],
                    ["none", 256, 1, "60.0000 / 64", "55.0000", "-", "0.7200", "0.3500"],
                    ["**failed**: DualEncoder 1", "RuntimeError: boom", "", "", "", "", "", ""]]  # fmt: skip


def test_archive_runs_keeps_small_files_and_the_probes_results_but_no_checkpoint(tmp_path):
    """runs_common.sh's `archive_runs`: a finished job's small files and every user_tasks.py probe's results (a fresh
    machine reads them back without the encoder's checkpoint); no checkpoint, no unfinished job."""
    sys.path.insert(0, ROOT)
    from benchmarks.user_tasks import PROBES

    out, archive = tmp_path / "out", tmp_path / "archive"
    job = out / "user_tasks-runs" / "BTPretrain-batch32-seed1-abc"
    probes = [f"{probe}/{name}" for probe in PROBES for name in ("defaults.json", "result.json")]
    for path in ("result.json", "defaults.json", "pretrain/result.json", "pretrain/BTPretrain-ml-1m-9.pth", *probes):
        (job / path).parent.mkdir(parents=True, exist_ok=True)
        (job / path).write_text(path)
    (out / "user_tasks-runs" / "DualEncoder-batch32-seed1-def" / "pretrain").mkdir(parents=True)  # still training
    function = "$(sed -n '/^archive_runs()/,/^}/p' benchmarks/runs_common.sh)"
    command = f'OUT={out}; ARCHIVE={archive}; eval "{function}"; archive_runs'
    subprocess.run(["bash", "-c", command], cwd=ROOT, check=True)
    kept = sorted(os.path.relpath(p, archive) for p in glob.glob(str(archive / "**" / "*"), recursive=True)
                  if os.path.isfile(p))  # fmt: skip
    assert kept == [f"user_tasks-runs/BTPretrain-batch32-seed1-abc/{p}"
                    for p in sorted(["defaults.json", "result.json", *probes])]  # fmt: skip


def test_user_tasks_record_refuses_a_probes_json(tmp_path):
    """A head-start or zero-shot JSON holds no study results: `record` says so in one line and writes nothing."""
    sys.path.insert(0, ROOT)
    from benchmarks.user_tasks import record

    path = tmp_path / "user_tasks-head-start-ml-1m-20261203-013352.json"
    path.write_text(json.dumps({"argv": ["benchmarks/user_tasks.py", "head-start"], "dataset": "ml-1m", "results": []}))
    before = open(RESULTS_MD).read()
    with pytest.raises(SystemExit, match="record takes a study's JSON; .* is of `head-start`: run that probe again"):
        record(str(path))
    assert open(RESULTS_MD).read() == before


def test_user_tasks_caps_a_larger_batch_at_the_main_batchs_optimizer_steps():
    """The YAML caps pretraining at 100 epochs: at batch 1024 beside the main 256 an epoch has 1/4 the steps, so its
    cap is 400 epochs; at or below the main batch the YAML's cap stands (no key: the job's folder as before); a
    --pretrain-epochs cap applies to every job as given."""
    sys.path.insert(0, ROOT)
    from benchmarks.user_tasks import YAML_CAP, pretrain_cap

    assert YAML_CAP == yaml.safe_load(open(os.path.join(ROOT, "properties", "model", "SequencePretrainer.yaml")))[
        "pretrain_epochs"] == 100  # fmt: skip
    assert [pretrain_cap(b, 256) for b in (32, 64, 256, 512, 1024, 300)] == [None, None, None, 200, 400, 118]
    assert [pretrain_cap(b, 256, 7) for b in (32, 1024)] == [7, 7]


def test_user_tasks_counts_a_larger_batchs_plateau_window_in_the_main_batchs_optimizer_steps(tmp_path):
    """The plateau window (10 epochs without a loss 1% lower) at batch 1024 beside the main 256 is 40 epochs, the
    steps of 10 at 256, but none for BTPretrain (to the cap); at or below the main batch no key, so those jobs keep
    their folders (their digests). The older rules stay available for the folders they made."""
    sys.path.insert(0, ROOT)
    from benchmarks.user_tasks import YAML_WINDOW, pretrain_window, study_jobs

    assert YAML_WINDOW == 10
    assert [pretrain_window(b, 256, "DualEncoder") for b in (32, 256, 300, 1024)] == [
        {}, {}, {"pretrain_stopping_step": 12}, {"pretrain_stopping_step": 40}]  # fmt: skip
    assert [pretrain_window(b, 256, "BTPretrain") for b in (256, 1024)] == [{}, {"pretrain_stopping_step": 0}]
    assert pretrain_window(1024, 256, "BTPretrain", bt_to_cap=False) == {"pretrain_stopping_step": 40}
    args = argparse.Namespace(out=str(tmp_path), quick=False, batch_sizes=[64, 256, 1024], main_batch=256,
                              seeds=[2020], methods=["BTPretrain", "DualEncoder", "none"], pretrain_epochs=None,
                              batch_protocols="probe", window_in_epochs=False, bt_window_in_steps=False)  # fmt: skip

    def study():
        return {job["label"]: job for job in study_jobs(args, {"dataset": "ml-1m", "config_files": None}, {"x": 1})}

    jobs = study()
    assert jobs["BTPretrain batch 1024 seed 2020"]["config"]["pretrain_stopping_step"] == 0
    assert jobs["DualEncoder batch 1024 seed 2020"]["config"]["pretrain_stopping_step"] == 40
    assert jobs["BTPretrain batch 1024 seed 2020"]["pretrain_epochs"] == 400
    assert all("pretrain_stopping_step" not in jobs[f"BTPretrain batch {b} seed 2020"]["config"] for b in (64, 256))
    args.bt_window_in_steps = True  # the batch-1024 BTPretrain jobs stopped at the 40-epoch window: other folders
    older = study()
    assert older["BTPretrain batch 1024 seed 2020"]["config"]["pretrain_stopping_step"] == 40
    assert older["BTPretrain batch 1024 seed 2020"]["folder"] != jobs["BTPretrain batch 1024 seed 2020"]["folder"]
    assert older["DualEncoder batch 1024 seed 2020"]["folder"] == jobs["DualEncoder batch 1024 seed 2020"]["folder"]
    args.window_in_epochs = True  # the jobs as they were before the window was counted in steps
    assert all("pretrain_stopping_step" not in job["config"] for job in study_jobs(args, {"dataset": "ml-1m"}, {}))


@pytest.mark.spawns(several=True)
def test_scale_quick(tmp_path):
    """BTSRec on a synthetic catalog (every id present), SCE and CE under a memory cap: SCE and chunked CE train,
    CE's materialised logits do not fit and its row records the failed allocation (not a crash of the benchmark)."""
    sce, ce, chunked = run_quick("scale.py", "train", tmp_path, "scale-train")
    assert [sce["label"], ce["label"], chunked["label"]] == ["BTSRec-SCE", "BTSRec-CE", "BTSRec-CE-chunked"]
    assert sce["catalog_items"] == ce["catalog_items"] == sce["synthetic"]["items"]
    for trained in (sce, chunked):  # the chunked CE never holds the [P N] logits: it fits where plain CE does not
        assert trained["finished"] and trained["steps"] == trained["steps_asked"] and all(s > 0 for s in trained["step_seconds"])
    assert not ce["finished"] and ce["steps"] == 0 and "allocate" in ce["error"]
    assert all(r["peak_rss_mb"] >= r["peak_rss_prepare_mb"] > 0 for r in (sce, ce, chunked))


def run_speed(tmp_path, bench, *args):
    """`benchmarks/speed.py <bench> --quick`: the runs of its JSON (RESULTS.md untouched)."""
    before = open(RESULTS_MD).read()
    result = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "speed.py"), bench, "--quick", "--out",
                             str(tmp_path), *args], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [path] = glob.glob(str(tmp_path / "quick" / f"speed-{bench}-*.json"))
    assert open(RESULTS_MD).read() == before
    with open(path) as f:
        return json.load(f)["results"]


def test_epoch_flops_by_hand():
    sys.path.insert(0, ROOT)
    from benchmarks.speed import epoch_flops

    # rows of 2 and 3 real positions computed at 3; H 2, inner 4, 1 layer, 10 items, 5 targets
    real, computed = epoch_flops([2, 3], 5, [3, 3], hidden=2, inner=4, n_layers=1, n_items=10)
    per_position = 8 * 4 + 4 * 2 * 4  # 8 H^2 + 4 H I = 64
    assert real["encoder"] == 3 * per_position * 5 and computed["encoder"] == 3 * per_position * 6
    assert real["attention"] == 3 * 2 * 2 * (2 * 3 + 3 * 4)  # 2 H n(n + 1) per row
    assert computed["attention"] == 3 * 4 * 2 * (9 + 9)  # 4 H L^2 per row, dense
    assert real["logits"] == computed["logits"] == 3 * 2 * 2 * 10 * 5


@pytest.mark.spawns(several=True)
def test_speed_epoch_quick(tmp_path):
    plain, levers = run_speed(tmp_path, "epoch", "--set", "train_batch_size=8",
                              "--run", "plain:fused_attention=false,fused_ce=false,length_bucketing=false",
                              "--run", "levers:train_mode=all_positions")  # fmt: skip
    assert plain["computed_slots"] > levers["computed_slots"] >= levers["real_positions"] == plain["real_positions"]
    for run in (plain, levers):
        assert run["floor_seconds"] > 0 and run["epoch_seconds"] > 0 and run["targets_per_second"] > 0
        assert run["floor_pct"] == pytest.approx(100 * run["floor_seconds"] / run["epoch_seconds"], rel=0.05)
        assert set(run["gflops"]) == {"fp32", "bf16"} and all(v > 0 for v in run["gflops"]["fp32"].values())


@pytest.mark.spawns  # speed.py runs its jobs one at a time
def test_speed_loss_quick(tmp_path):
    runs = run_speed(tmp_path, "loss")
    assert [r["items"] for r in runs] == [50, 200]
    assert all(set(r["seconds"]) == {"CE", "CE-chunked", "SCE-max", "SCE-union"} for r in runs)
    assert all(s > 0 for r in runs for s in r["seconds"].values())


@pytest.mark.spawns  # speed.py runs its jobs one at a time
def test_speed_curves_quick(tmp_path):
    runs = run_speed(tmp_path, "curves", "--run", "fp32-s1:seed=1", "--run", "bf16-s1:seed=1,precision=bf16")
    assert [len(r["curve"]) for r in runs] == [2, 2]  # --quick: 2 epochs, a validation after each
    assert all(0 < c["valid_ndcg@10"] <= 1 for r in runs for c in r["curve"])


def test_baseline_table_tests_each_label_against_the_baseline(tmp_path):
    """Per-user NDCG@10 of two seeds per label (6 users each): the p-value of each label against the baseline is
    scipy's Wilcoxon over the pooled (user, seed) pairs, Holm-adjusted over the two comparisons."""
    sys.path.insert(0, ROOT)
    from scipy import stats

    from benchmarks.baseline import report

    values = {"base": {1: [0.1, 0.2, 0.3, 0.0, 0.5, 0.1], 2: [0.2, 0.1, 0.0, 0.3, 0.1, 0.2]},
              "up": {1: [0.5, 0.6, 0.9, 0.3, 0.8, 0.4], 2: [0.4, 0.7, 0.8, 0.5, 0.6, 0.9]},
              "same": {1: [0.1, 0.25, 0.3, 0.0, 0.4, 0.2], 2: [0.2, 0.1, 0.05, 0.3, 0.1, 0.1]}}  # fmt: skip
    results = []
    for label, seeds in values.items():
        for seed, ndcg in seeds.items():
            folder = tmp_path / f"{label}-{seed}"
            folder.mkdir()
            (folder / "per_user.json").write_text(json.dumps({"user": list(range(6)), "ndcg@10": ndcg, "hit@10": ndcg}))
            metrics = {"ndcg@10": sum(ndcg) / 6, "hit@10": 0.5, "coverage@10": 0.3}
            results.append({"label": label, "seed": seed, "folder": str(folder), "valid": metrics, "test": metrics,
                            "test_unmasked": metrics, "epochs": 3, "best_epoch": 2, "train_seconds": 3.0,
                            "wall_seconds": 6.0, "curve": []})  # fmt: skip
    header, rows, _ = report(results, baselines=["base"])
    assert "test coverage@10 masked" in header
    assert header[-2].startswith("test NDCG@10 masked vs baseline: change [95% t-interval of the paired difference, unadjusted], "
                                 "p (Wilcoxon signed-rank over users x seeds, Holm over the 2 tested)")
    pooled = lambda label: values[label][1] + values[label][2]  # noqa: E731
    p_up = stats.wilcoxon(pooled("up"), pooled("base")).pvalue
    p_same = stats.wilcoxon(pooled("same"), pooled("base")).pvalue
    low, high = sorted([p_up, p_same])
    expected = {"up": 2 * p_up if p_up == low else max(2 * low, p_up),
                "same": 2 * p_same if p_same == low else max(2 * low, p_same)}  # Holm, 2 comparisons
    cells = {row[0]: row[-2] for row in rows}
    assert cells["base"] == "baseline"
    mean = lambda label: sum(pooled(label)) / 12  # noqa: E731
    for label in ("up", "same"):
        change, low, high, p = re.fullmatch(r"([+-][0-9.]+)% \[([+-][0-9.]+)%, ([+-][0-9.]+)%\] vs base, p ([0-9.e-]+)\*?",
                                            cells[label]).groups()  # fmt: skip
        assert float(p) == pytest.approx(min(expected[label], 1.0), rel=0.05)
        assert float(change) == pytest.approx((mean(label) - mean("base")) / mean("base") * 100, abs=0.05)
        diff = [x - y for x, y in zip(pooled(label), pooled("base"))]
        interval = stats.t.interval(0.95, 11, loc=sum(diff) / 12, scale=stats.sem(diff))
        assert [float(low), float(high)] == pytest.approx([100 * v / mean("base") for v in interval], abs=0.05)
    assert cells["up"].endswith("*") and not cells["same"].endswith("*")

    # LABEL=BASE: only that pair is tested (Holm over 1: the raw p), the other label gets no cell
    header, rows, _ = report(results, baselines=["up=base"])
    cells = {row[0]: row[-2] for row in rows}
    assert cells["same"] == "" and cells["base"] == "baseline"
    assert float(cells["up"].split("p ")[1].rstrip("*")) == pytest.approx(p_up, rel=0.05)

    # a label tested against two baselines lists both comparisons (Holm over the 2), in the order they were asked
    header, rows, _ = report(results, baselines=["up=base", "up=same"])
    cells = {row[0]: row[-2] for row in rows}
    assert cells["base"] == cells["same"] == "baseline"
    against_base, against_same = cells["up"].split("; ")
    assert " vs base, p " in against_base and " vs same, p " in against_same
    p_up_same = stats.wilcoxon(pooled("up"), pooled("same")).pvalue
    low = min(p_up, p_up_same)
    assert float(against_same.split("p ")[1].rstrip("*")) == pytest.approx(
        min(2 * p_up_same if p_up_same == low else max(2 * low, p_up_same), 1.0), rel=0.05)


def test_baseline_best_epoch_is_the_later_of_equal_scores():
    """RecBole's early stopping takes a score equal to the best as a new best and saves that model (the tested one):
    the run's best epoch is the later of the two 0.1620s, not the first."""
    sys.path.insert(0, ROOT)
    from benchmarks.baseline import best_point

    curve = [{"epoch": e, "valid_ndcg@10": v} for e, v in enumerate([0.15, 0.162, 0.161, 0.162, 0.159], start=1)]
    assert best_point(curve)["epoch"] == 4
    assert best_point(curve[:3])["epoch"] == 2


def test_baseline_table_times_an_epoch_by_its_median():
    """A run paused for an hour in its second epoch (SIGSTOP, or stopped and resumed later) keeps its typical epoch
    time: train s / epoch is the median over the label's epochs, wall minutes are epochs x the median epoch."""
    sys.path.insert(0, ROOT)
    from benchmarks.baseline import report

    metrics = {"ndcg@10": 0.1, "hit@10": 0.2}
    def run(train, wall):  # per-epoch seconds -> a result with the cumulative curve baseline.py writes
        curve = [{"epoch": i + 1, "train_seconds": sum(train[: i + 1]), "wall_seconds": sum(wall[: i + 1])}
                 for i in range(len(train))]  # fmt: skip
        return {"label": "A", "seed": len(train), "valid": metrics, "test": metrics, "test_unmasked": metrics,
                "epochs": len(train), "best_epoch": 1, "train_seconds": sum(train), "wall_seconds": sum(wall),
                "curve": curve}  # fmt: skip
    header, [row], _ = report([run([10, 3610, 12], [11, 3611, 13]), run([14, 16], [15, 17])])
    assert row[header.index("train s / epoch (median)")] == "14"  # of 10, 3610, 12, 14, 16
    assert row[header.index("wall min per run (epochs x median epoch)")] == f"{(3 * 13 + 2 * 16) / 2 / 60:.1f}"


def test_baseline_curves_in_numbers_at_equal_epochs():
    """Valid NDCG@10 after epochs 1, 5 and 10 (later ones no run reached are left out): the mean ± std over the seeds
    that trained that far, their count when not all did; a failed run is not a seed."""
    sys.path.insert(0, ROOT)
    from benchmarks.baseline import curve_report

    def run(label, seed, values):
        return {"label": label, "seed": seed, "epochs": len(values),
                "curve": [{"epoch": e, "valid_ndcg@10": v} for e, v in enumerate(values, start=1)]}  # fmt: skip
    pretrained = [0.1, 0.2, 0.2, 0.3, 0.4, 0.4, 0.4, 0.4, 0.4, 0.5]
    results = [run("CLUE", 1, pretrained), run("CLUE", 2, [v + 0.1 for v in pretrained]),
               run("CLUEZero", 1, [0.0, 0.1, 0.1, 0.1, 0.2, 0.3]), {"label": "CLUEZero", "failed": "MemoryError"}]
    header, rows = curve_report(results)
    assert header == ["run"] + [f"valid NDCG@10 after epoch {e}" for e in (1, 5, 10)]
    assert rows == [["CLUE", "0.1500 ± 0.0707", "0.4500 ± 0.0707", "0.5500 ± 0.0707"],
                    ["CLUEZero", "0.0000", "0.2000", "-"]]  # fmt: skip
    results.append(run("CLUEZero", 2, [0.1] * 12))
    assert curve_report(results)[1][1] == ["CLUEZero", "0.0500 ± 0.0707", "0.1500 ± 0.0707", "0.1000 (1 of 2 seeds)"]


def test_comparisons_from_baseline_options():
    sys.path.insert(0, ROOT)
    from benchmarks.baseline import comparisons

    labels = ["SASRec-CE", "BTSRec-CE", "SASRec-SCE", "BTSRec-SCE"]
    assert comparisons(labels, ["SASRec-CE"]) == [("BTSRec-CE", "SASRec-CE"), ("SASRec-SCE", "SASRec-CE"),
                                                  ("BTSRec-SCE", "SASRec-CE")]  # fmt: skip
    assert comparisons(labels, ["BTSRec-CE=SASRec-CE", "BTSRec-SCE=SASRec-SCE"]) == [
        ("BTSRec-CE", "SASRec-CE"), ("BTSRec-SCE", "SASRec-SCE")]
    assert comparisons(labels, []) == []


def test_main_table_names_the_value_chosen_on_validation():
    """A --run label whose weight was chosen on validation names the value in the table; others stay as they are."""
    sys.path.insert(0, ROOT)
    from benchmarks.baseline import name_chosen

    rows = [["SASRec", 3], ["DuoRec", 3], ["BTSRec-CE", 3]]
    chosen = {"DuoRec": "DuoRec-lmd=0.01", "BTSRec-CE": "BTSRec-CE-alpha=0.2"}
    assert [row[0] for row in name_chosen(rows, chosen)] == [
        "SASRec", "DuoRec (lmd=0.01, chosen on validation)", "BTSRec-CE (alpha=0.2, chosen on validation)"]


def test_pretraining_line_gives_epochs_stop_loss_time_and_collapse_indicators():
    sys.path.insert(0, ROOT)
    from benchmarks.baseline import pretraining_lines

    stop = "no lower loss for 10 epochs (best -0.9620, pretrain_stopping_step 10)"
    stages = [{"epochs": 17, "stopped": stop, "pretrain_loss": -0.962, "seconds": 494.0, "embedding_std": 0.112,
               "projection_std": 0.061},
              {"epochs": 26, "stopped": stop, "pretrain_loss": -0.964, "seconds": 869.0, "embedding_std": 0.116,
               "projection_std": 0.061}]  # fmt: skip
    results = [{"label": "CLUE", "seed": s, "pretrain": p} for s, p in zip((2020, 2021), stages)]
    results.append({"label": "SASRec", "seed": 2020})
    assert pretraining_lines(results) == [
        f"- pretraining of CLUE (then fine-tuned from it): epochs 17, 26; stopped: {stop}; "
        "lowest loss -0.9630 ± 0.0014; 11.4 min per run (epochs x median epoch); embedding std 0.1140 ± 0.0028; projection std 0.0610 ± 0.0000 at the end"]


def test_saved_json_puts_a_list_of_values_on_one_line(tmp_path):
    """A run's per-user rows take a line each in the saved JSON, which reads back as what was saved."""
    sys.path.insert(0, ROOT)
    from benchmarks.harness import to_json

    payload = {"results": [{"label": "a", "per_user": {"user": list(range(1000)), "ndcg@10": [0.25] * 1000},
                            "curve": [{"epoch": 1}, {"epoch": 2}], "config": {}}], 2020: None, "argv": []}  # fmt: skip
    text = to_json(payload)
    assert json.loads(text) == json.loads(json.dumps(payload))  # the int key as json.dumps writes it
    lines = text.splitlines()
    assert f'    "user": {json.dumps(list(range(1000)))},' in lines and '    "ndcg@10": [0.25, 0.25, ' in text
    assert '     "epoch": 1' in lines  # a list of objects: one line per key, as before
    assert len(text) < len(json.dumps(payload, indent=1)) / 1.8


def test_sweep_table_pools_labels_by_value(tmp_path):
    """The sweep table has one row per value of the key: a label's override, else the value its checkpoint
    trained with (`settings`), else --sweep-absent; the trade-off plot and learning curves are drawn."""
    sys.path.insert(0, ROOT)
    from benchmarks.baseline import sweep_report
    from recbole_bt.plots import plot_curves, plot_sweep

    def run(label, seed, hit, config=None, settings=None):
        test = {"ndcg@10": hit / 2, "hit@1": hit / 4, "hit@5": hit / 2, "hit@10": hit, "coverage@10": 0.3,
                "hit_head@10": hit, "hit_mid@10": hit, "hit_tail@10": hit}  # fmt: skip
        return {"label": label, "seed": seed, "config": config or {}, "settings": settings or {}, "test": test,
                "epochs": 5, "best_epoch": 3}  # fmt: skip

    results = [run("SASRec", 1, 0.2), run("SASRec", 2, 0.4), run("BTSRec", 1, 0.1, settings={"alpha": 0.2}),
               run("a0.5", 1, 0.05, config={"alpha": 0.5}, settings={"alpha": 0.5})]  # fmt: skip
    header, rows, records = sweep_report(results, "alpha", absent=0)
    assert header[:4] == ["alpha", "runs (label)", "test ndcg@10 masked", "test hit@1 masked"]
    assert [row[:2] for row in rows] == [[0, "2 (SASRec)"], [0.2, "1 (BTSRec)"], [0.5, "1 (a0.5)"]]
    assert rows[0][header.index("test hit@10 masked")] == "0.3000 ± 0.1414"
    assert rows[1][header.index("test hit@10 masked")] == "0.1000"  # one run: no spread to print
    pytest.importorskip("matplotlib")
    assert plot_sweep(records, "alpha", str(tmp_path / "sweep.png")) and (tmp_path / "sweep.png").stat().st_size > 0
    assert plot_curves({"A": [[0.1, 0.2], [0.1, 0.3, 0.2]]}, str(tmp_path / "c.png")) and (tmp_path / "c.png").exists()
    assert plot_curves({}, str(tmp_path / "none.png")) is None


def test_sweep_value_of_a_run_kept_without_checkpoints_is_its_models_default(tmp_path):
    """A finished run restored from benchmarks/results has no checkpoint: the swept key's value comes from the
    config its job builds, so BTSRec without an alpha override is its default 0.2 (not --sweep-absent's 0), and a
    model without the key (SASRec) has none."""
    sys.path.insert(0, ROOT)
    from benchmarks.baseline import settings_of

    def job(**config):
        return {"dataset": "ml-100k", "config_files": None, "folder": str(tmp_path), "keep_keys": ["alpha"],
                "config": dict(config, seed=1)}  # fmt: skip

    assert settings_of(job(model="BTSRec")) == {"alpha": 0.2}
    assert settings_of(job(model="BTSRec", alpha=0.05)) == {"alpha": 0.05}
    assert settings_of(job(model="SASRec")) == {}
    assert settings_of(dict(job(model="BTSRec"), keep_keys=[])) == {}


def test_recipe_of_a_run_kept_without_checkpoints_comes_from_its_job(tmp_path):
    """`baseline.py study` names the recipe of an archived run (job.json, no checkpoint) from the config its job
    builds, and says "?" for a folder that holds neither."""
    sys.path.insert(0, ROOT)
    from benchmarks.baseline import recipe_of

    with open(tmp_path / "job.json", "w") as f:
        json.dump({"label": "x", "dataset": "ml-100k", "config_files": None,
                   "config": {"model": "SASRec", "MAX_ITEM_LIST_LENGTH": 200, "train_batch_size": 128}}, f)  # fmt: skip
    recipe = recipe_of(str(tmp_path))
    assert "L 200" in recipe and "batch 128" in recipe
    assert recipe_of(str(tmp_path / "empty")) == "?"


def test_a_run_under_changed_package_defaults_is_neither_reused_nor_resumed(tmp_path):
    """A run folder's digest is the job as given: a finished (or half-trained) CL4SRec run that relied on lmd's
    default of its day (the papers' 0.1, before the all_positions default became 0.001) must fail with one line
    naming the key, not be reused as a run of today's default. Same defaults, or a run from before defaults.json:
    reused."""
    sys.path.insert(0, ROOT)
    from benchmarks.baseline import converge
    from benchmarks.harness import package_defaults

    job = {"label": "CL4SRec", "dataset": "ml-100k", "config_files": None, "folder": str(tmp_path / "run"),
           "config": {"model": "CL4SRec", "seed": 2020}}  # fmt: skip
    defaults = package_defaults("CL4SRec", job)
    assert defaults["lmd"] == 0.001 and defaults["loss_type"] == "CE" and "seed" not in defaults
    assert "fused_attention" not in defaults  # same function either way: a change of it keeps runs valid
    os.makedirs(job["folder"])
    with open(os.path.join(job["folder"], "result.json"), "w") as f:
        json.dump({"valid": {"ndcg@10": 0.5}}, f)
    assert converge(job)["valid"] == {"ndcg@10": 0.5}  # no defaults.json: a run from before them, reused
    for then in (defaults, dict(defaults, lmd=0.1)):
        with open(os.path.join(job["folder"], "defaults.json"), "w") as f:
            json.dump(then, f)
        if then["lmd"] == 0.001:
            assert converge(job)["valid"] == {"ndcg@10": 0.5}
        else:
            with pytest.raises(RuntimeError, match=r"ran under other package defaults \(lmd 0.1 -> 0.001\): set the key"):
                converge(job)


@pytest.mark.spawns(several=True)
def test_baseline_select_chooses_on_validation_and_reuses_runs_of_any_label(tmp_path):
    """--select trains each candidate with the first seed, picks the best masked valid NDCG@10 and runs it with every
    seed, the first seed's run being the candidate's; a candidate that another label already trained is reused, and
    the model's default value (BTSRec's alpha 0.2) is the run without the key. The runs share slots with
    --share-cores (as benchmarks/runs_common.sh has them): the queue is empty at the end."""
    def converge(*runs):
        cmd = [sys.executable, os.path.join(ROOT, "benchmarks", "baseline.py"), "converge", "--quick", "--out",
               str(tmp_path), "--no-record", "--share-cores", str(tmp_path / "cores"), "--priority", "18",
               *runs]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        [path] = glob.glob(str(tmp_path / "quick" / "baseline-converge-tiny-*.json"))
        with open(path) as f:
            payload = json.load(f)
        os.remove(path)
        return payload

    [a05] = converge("--run", "a05:model=BTSRec,alpha=0.5", "--seeds", "2020")["results"]
    payload = converge("--run", "BT:model=BTSRec", "--select", "BT:alpha=0.2,0.5", "--seeds", "2020", "2021")
    selection = {r["label"]: r for r in payload["selection"]}
    assert sorted(selection) == ["BT-alpha=0.2", "BT-alpha=0.5"] and {r["seed"] for r in selection.values()} == {2020}
    assert selection["BT-alpha=0.5"]["folder"] == a05["folder"] and selection["BT-alpha=0.5"]["test"] == a05["test"]
    assert "alpha" not in selection["BT-alpha=0.2"]["config"]  # BTSRec's default: the run without the key
    best = max(selection.values(), key=lambda r: r["valid"]["ndcg@10"])
    assert payload["chosen"] == {"BT": best["label"]}
    runs = payload["results"]
    assert [(r["label"], r["seed"], r["config"].get("alpha")) for r in runs] == [("BT", s, best["config"].get("alpha")) for s in (2020, 2021)]
    assert runs[0]["folder"] == best["folder"]  # the chosen candidate is the first seed's run
    assert all("per_user" in r for r in runs) and not any("per_user" in r for r in selection.values())
    left = os.listdir(tmp_path / "cores")
    assert "slot0" in left and not [f for f in left if f.startswith("wait-")]  # slots used, no ticket left behind


@pytest.mark.spawns(several=True)
def test_baseline_quick_reuses_and_resumes(tmp_path):
    """Two seeds to early stopping, tested masked and unmasked; the same command again reuses the finished runs,
    and a run whose result was lost continues from its checkpoint to the same figures."""
    runs = run_quick("baseline.py", "converge", tmp_path, "baseline-converge")
    assert [r["seed"] for r in runs] == [2020, 2021] and not any(r["resumed"] for r in runs)
    for r in runs:  # the package defaults each run started under, checked when it is reused or resumed
        with open(os.path.join(r["folder"], "defaults.json")) as f:
            assert json.load(f)["loss_type"] == "CE"
    for r in runs:
        assert len(r["curve"]) == r["epochs"] and 1 <= r["best_epoch"] <= r["epochs"]
        assert r["test"].keys() == r["test_unmasked"].keys() == {"hit@10", "ndcg@10"}
        assert "seen items masked" in r["protocol"]
        with open(os.path.join(r["folder"], "per_user.json")) as f:
            per_user = json.load(f)
        assert sum(per_user["ndcg@10"]) / len(per_user["ndcg@10"]) == pytest.approx(r["test"]["ndcg@10"], abs=1e-4)
    [lost] = glob.glob(str(tmp_path / "quick" / "baseline-runs" / "defaults-seed2021-*" / "result.json"))
    os.remove(lost)
    [per_user] = glob.glob(str(tmp_path / "quick" / "baseline-runs" / "defaults-seed2020-*" / "per_user.json"))
    before = open(per_user).read()
    os.remove(per_user)  # a finished run from before per-user files: the rerun rebuilds it from the best checkpoint
    for path in glob.glob(str(tmp_path / "quick" / "baseline-converge-tiny-*.json")):
        os.remove(path)
    again = run_quick("baseline.py", "converge", tmp_path, "baseline-converge")
    assert [r["resumed"] for r in again] == [False, True]
    assert [(r["test"], r["test_unmasked"], r["best_epoch"]) for r in again] == [
        (r["test"], r["test_unmasked"], r["best_epoch"]) for r in runs]
    assert json.loads(open(per_user).read()) == json.loads(before)


@pytest.mark.spawns(several=True)
def test_data_scale_quick(tmp_path):
    """RecBole's prefix rows and the rows from the interaction table: the same training rows, the same step losses
    and validation metrics (tests/test_rows.py compares the rows themselves), each phase timed with its peak RSS."""
    before, after = run_quick("data_scale.py", "measure", tmp_path, "data_scale-measure")
    assert [before["config"]["row_builder"], after["config"]["row_builder"]] == ["prefix_rows", "interactions"]
    assert before["outcome"] == after["outcome"] == "ok"
    assert before["training_rows"] == after["training_rows"] > 0 and before["step_targets"] == after["step_targets"]
    assert before["losses"] == after["losses"] and before["valid"] == after["valid"]
    assert all(r[f"peak_rss_{phase}_mb"] > 0 for r in (before, after) for phase in ("prepare", "steps", "eval"))


@pytest.mark.spawns
def test_baseline_pretrains_then_fine_tunes_and_reuses_the_stage(tmp_path):
    """A train_stage=finetune run without pre_model_path pretrains first in its folder, then fine-tunes from that
    checkpoint; the same command again after its fine-tuning result was lost reuses the finished pretraining stage
    (not retrained: same checkpoint file, untouched) and ends with the same figures."""
    chain = ("--run", "CLUE:model=CLUE,train_stage=finetune,user_token=last,hidden_size=8,n_heads=2,inner_size=16", "--seeds", "2020")
    [run] = run_quick("baseline.py", "converge", tmp_path, "baseline-converge", *chain)
    stage = run["pretrain"]
    assert stage["epochs"] == 2 and stage["stopped"].startswith("pretrain_epochs = 2 reached")
    assert isinstance(stage["seconds"], float) and stage["seconds"] >= 0  # tiny's epochs can take under a millisecond
    checkpoint = stage["pretrained_model_file"]
    assert checkpoint.startswith(os.path.join(run["folder"], "pretrain")) and os.path.exists(checkpoint)
    # every pretraining epoch's state: a stage interrupted there resumes after its last epoch (tests/test_resume.py)
    assert os.path.exists(os.path.join(run["folder"], "pretrain", "CLUE-tiny-pretrain-last.pth"))
    assert run["config"]["pretrain_epochs"] == 2  # the --pretrain-epochs cap is part of the run's config (its folder)
    with open(os.path.join(run["folder"], "saved", os.listdir(os.path.join(run["folder"], "saved"))[0]), "rb") as f:
        assert torch.load(f, weights_only=False)["config"]["pre_model_path"] == checkpoint  # fine-tuned from it
    stamp = os.stat(checkpoint).st_mtime_ns
    os.remove(os.path.join(run["folder"], "result.json"))
    for path in glob.glob(str(tmp_path / "quick" / "baseline-converge-tiny-*.json")):
        os.remove(path)
    [again] = run_quick("baseline.py", "converge", tmp_path, "baseline-converge", *chain)
    assert again["pretrain"] == stage and os.stat(checkpoint).st_mtime_ns == stamp
    assert (again["test"], again["best_epoch"]) == (run["test"], run["best_epoch"])
    # the stage's result lost too: it resumes from its last epoch's state (it had ended: nothing retrained)
    for path in [os.path.join(run["folder"], "pretrain", "result.json"), os.path.join(run["folder"], "result.json"),
                 *glob.glob(str(tmp_path / "quick" / "baseline-converge-tiny-*.json"))]:  # fmt: skip
        os.remove(path)
    [third] = run_quick("baseline.py", "converge", tmp_path, "baseline-converge", *chain)
    assert third["pretrain"] == stage and os.stat(checkpoint).st_mtime_ns == stamp and third["test"] == run["test"]
    # all of it finished: read back in the command's own process, no worker started
    workers = glob.glob(str(tmp_path / "baseline-converge-*" / "run0.log"))
    for path in glob.glob(str(tmp_path / "quick" / "baseline-converge-tiny-*.json")):
        os.remove(path)
    [fourth] = run_quick("baseline.py", "converge", tmp_path, "baseline-converge", *chain)
    assert glob.glob(str(tmp_path / "baseline-converge-*" / "run0.log")) == workers
    assert (fourth["test"], fourth["pretrain"], fourth["folder"]) == (run["test"], stage, run["folder"])


def test_a_job_config_built_in_a_benchmark_process_ignores_its_command_line(monkeypatch):
    """RecBole's Config reads `--key=value` off sys.argv; a benchmark's own options there (`--epochs=7`) must not
    become the config of a job it reads back, and its command line stays as it was (it is recorded)."""
    from benchmarks.harness import job_config

    argv = ["baseline.py", "converge", "--epochs=7", "--learning_rate=0.5"]
    monkeypatch.setattr(sys, "argv", list(argv))
    fixtures = os.path.join(ROOT, "tests", "fixtures")
    config = job_config("SASRec", "tiny", None, {"data_path": fixtures, "epochs": 3})
    assert (config["epochs"], config["learning_rate"]) == (3, 0.001) and sys.argv == argv


def test_a_finished_pretraining_stage_is_found_in_its_moved_folder(tmp_path):
    """A stage's result names its checkpoint by the path it had; after its run folder moved (renamed, another
    checkout) the fine-tuning starts from the checkpoint in the folder, not from the old path."""
    from benchmarks.harness import pretrain

    stage = tmp_path / "CLUE-seed2020-new" / "pretrain"
    stage.mkdir(parents=True)
    (stage / "CLUE-ml-1m-26.pth").write_bytes(b"")
    (tmp_path / "CLUE-seed2020-old" / "pretrain").mkdir(parents=True)  # the folder it had, still there
    old = str(tmp_path / "CLUE-seed2020-old" / "pretrain" / "CLUE-ml-1m-26.pth")
    (stage / "result.json").write_text(json.dumps({"epochs": 26, "pretrained_model_file": old}))
    job = {"folder": str(stage.parent), "dataset": "ml-1m"}
    assert pretrain("CLUE", job, {})["checkpoint"] == str(stage / "CLUE-ml-1m-26.pth")
    os.remove(stage / "CLUE-ml-1m-26.pth")  # nothing there: the path it had (checkpoint.py's one line if missing)
    assert pretrain("CLUE", job, {})["checkpoint"] == old


def test_only_recorded_benchmarks_write_into_the_repository(tmp_path):
    """A benchmark's JSON goes to benchmarks/results (None: the default) only when its table goes into RESULTS.md."""
    from argparse import Namespace

    from benchmarks.harness import results_dir_of

    out = str(tmp_path)
    assert results_dir_of(Namespace(quick=False, no_record=False, out=out)) is None
    assert results_dir_of(Namespace(quick=False, no_record=True, out=out)) == out
    assert results_dir_of(Namespace(quick=True, no_record=False, out=out)) == os.path.join(out, "quick")


def test_a_run_folder_is_keyed_without_where_the_data_and_config_files_lie(tmp_path, monkeypatch):
    """The same job from two checkouts (another data path, a config file given by its absolute path in each) gets
    one folder name; another config value gets another."""
    from benchmarks import harness
    from benchmarks.harness import ROOT as HARNESS_ROOT
    from benchmarks.harness import run_folder

    def job(data_path, root, **config):
        return {"dataset": "ml-1m", "config_files": [os.path.join(root, "benchmarks", "x.yaml"), "protocol/p.yaml"],
                "config": {"data_path": data_path, "model": "SASRec", **config}}

    here = run_folder(str(tmp_path), "baseline", "SASRec", 2020, job("/work/shared/datasets", HARNESS_ROOT))
    os.makedirs(here)
    with monkeypatch.context() as m:
        m.setattr(harness, "ROOT", "/home/u/recbole-bt")  # the other checkout's harness
        there = run_folder("/elsewhere", "baseline", "SASRec", 2020, job("/home/u/data", "/home/u/recbole-bt"))
    assert os.path.basename(there) == os.path.basename(here)
    assert run_folder(str(tmp_path), "baseline", "again", 2020, job("/d", HARNESS_ROOT)) == here  # found by its key
    other = run_folder(str(tmp_path), "baseline", "SASRec", 2020, job("/d", HARNESS_ROOT, lmd=0.1))
    assert other != here and run_folder(str(tmp_path), "baseline", "SASRec", 2021, job("/d", HARNESS_ROOT)) != here


def test_every_archived_run_is_found_by_its_own_job():
    """Each archived run folder (benchmarks/results/<kind>-runs) is named by its job.json's key, so a checkout
    anywhere reads it back instead of training it again."""
    from benchmarks.harness import run_folder

    folders = glob.glob(os.path.join(ROOT, "benchmarks", "results", "baseline-runs", "*"))
    assert folders
    for folder in folders:
        with open(os.path.join(folder, "job.json")) as f:
            job = json.load(f)
        seed = job["config"]["seed"]
        assert os.path.basename(run_folder("/nowhere", "baseline", job["label"], seed, job)) == os.path.basename(folder)


@pytest.mark.spawns
def test_baseline_study_of_run_folders_unrecorded_stays_under_out(tmp_path):
    """`baseline.py study --no-record` lists the run folders (a run paused in epoch 2 keeps its median epoch time)
    and writes its JSON under --out, nothing into benchmarks/results."""
    folder = tmp_path / "baseline-runs" / "paused-seed2020-0123456789"
    folder.mkdir(parents=True)
    (folder / "curve.jsonl").write_text("".join(json.dumps({"epoch": e, "train_seconds": t, "valid_ndcg@10": v}) + "\n"
                                                for e, t, v in ((1, 10, 0.1), (2, 3620, 0.3), (3, 3632, 0.2))))
    before = set(os.listdir(os.path.join(ROOT, "benchmarks", "results")))
    cmd = [sys.executable, os.path.join(ROOT, "benchmarks", "baseline.py"), "study", "--out", str(tmp_path), "--no-record"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert set(os.listdir(os.path.join(ROOT, "benchmarks", "results"))) == before
    [path] = glob.glob(str(tmp_path / "baseline-study-ml-1m-*.json"))
    [row] = json.load(open(path))["results"]
    assert (row["label"], row["seed"], row["epochs"], row["best_epoch"]) == ("paused", 2020, 3, 2)
    assert row["train_s_per_epoch"] == 12  # median of 10, 3610, 12


def test_loss_terms_split_the_gradient_by_the_weight(workdir):
    """DuoRec's dropout views ('us', no partner sampling) draw only from torch's generator, so the same seed gives
    the same masks: the auxiliary term and its gradient double with the weight, and the next-item part does not
    move; at weight 0 there is no auxiliary part."""
    from benchmarks.loss_terms import batch_terms
    from conftest import TINY_YAML, tiny_config
    from recbole_bt.quick_start import prepare

    config = tiny_config(model="DuoRec", contrast="us", same_target_sampling=False, lmd=0.1, hidden_size=8,
                         n_heads=2, inner_size=16)  # fmt: skip
    _, train_data, _, _, trainer = prepare("DuoRec", "tiny", [TINY_YAML], config)
    model, interaction = trainer.model, next(iter(train_data))
    model.train()
    l1, a1, g1, ga1, c1 = batch_terms(model, interaction, "lmd", seed=7)
    model.lmd = 0.2
    l2, a2, g2, ga2, c2 = batch_terms(model, interaction, "lmd", seed=7)
    assert model.lmd == 0.2  # restored after the weight-0 pass
    assert l1 == pytest.approx(l2, rel=1e-6) and g1 == pytest.approx(g2, rel=1e-5) and c1 == pytest.approx(c2, abs=1e-4)
    assert a1 > 0 and a2 == pytest.approx(2 * a1, rel=1e-4) and ga2 == pytest.approx(2 * ga1, rel=1e-4)
    model.lmd = 0
    assert batch_terms(model, interaction, "lmd", seed=7)[1:4:2] == (0.0, 0.0)


@pytest.mark.spawns
def test_loss_terms_quick(tmp_path):
    [run] = run_quick("loss_terms.py", "measure", tmp_path, "loss_terms")
    assert run["label"] == "CL4SRec-quick" and set(run["states"]) == {"initial", "best checkpoint"}
    for state in run["states"].values():
        assert state["weight"] == "lmd 0.1" and state["aux"] > 0 and state["grad_aux"] > 0


def test_loss_terms_names_a_run_in_progress(tmp_path):
    from benchmarks.loss_terms import checkpoint_state

    (tmp_path / "curve.jsonl").write_text('{"epoch": 1}\n{"epoch": 2}\n{"epoch": 3}\n')
    assert checkpoint_state(str(tmp_path)) == "best checkpoint so far (in progress, 3 epochs run)"
    (tmp_path / "result.json").write_text("{}")
    assert checkpoint_state(str(tmp_path)) == "best checkpoint"


def test_bt_terms_of_a_batch_by_hand():
    """The 3x2 views of tests/test_bt_loss.py: on_diag 2 - sqrt(3), off_diag 1 (times lambda), C_ii sqrt(3)/2 and
    1/2; z_1's centred columns [1, 0, -1] and [-1/3, 2/3, -1/3] have kurtosis 1.5 each, and their largest square
    carries 1/2 and 2/3 of the column's sum of squares."""
    import math

    from benchmarks.bt_terms import batch_measures

    class Views:
        lambd = 0.5

        def projected_views(self, interaction):
            return (torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]),
                    torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]))  # fmt: skip

    on_diag, off_diag, c_ii, kurtosis, share = batch_measures(Views(), None)
    assert on_diag == pytest.approx(2 - math.sqrt(3), rel=1e-5) and off_diag == pytest.approx(0.5, rel=1e-5)
    assert c_ii == pytest.approx((math.sqrt(3) / 2 + 0.5) / 2, rel=1e-5)
    assert kurtosis == pytest.approx(1.5, rel=1e-5) and share == pytest.approx(7 / 12, rel=1e-5)


@pytest.mark.spawns
def test_bt_terms_quick(tmp_path):
    """A 2-epoch BTPretrain against its untrained encoder: at the batch it trained at, its loss is lower and its
    views agree more (every figure from a fixed seed); the run-steering keys are not in the rebuilt config."""
    untrained, trained = run_quick("bt_terms.py", "measure", tmp_path, "bt_terms")
    assert untrained["label"].startswith("random weights") and untrained["epochs"] == 0 and trained["epochs"] == 2
    assert trained["trained_batch"] == 32 and set(trained["by_batch"]) == {"8", "32"}
    at_32, random_32 = trained["by_batch"]["32"], untrained["by_batch"]["32"]
    assert at_32["loss"] < 0.8 * random_32["loss"] and at_32["mean_c_ii"] > random_32["mean_c_ii"] + 0.1
    assert at_32["batches"] == random_32["batches"] >= 2


def test_bt_terms_rebuilds_the_model_not_the_run():
    from benchmarks.bt_terms import checkpoint_config

    class Saved(dict):  # a saved Config: its final values by key, the keys the run was given by source
        file_config_dict = {"hidden_size": 8, "epochs": 3}
        variable_config_dict = {"seed": 7}
        cmd_config_dict = {"resume_file": "x.pth", "train_batch_size": 1024, "n_heads": 2}

    model, dataset, config = checkpoint_config({"config": Saved(model="BTPretrain", dataset="ml-1m")}, "data")
    assert (model, dataset) == ("BTPretrain", "ml-1m")
    assert config == {"hidden_size": 8, "seed": 7, "n_heads": 2, "data_path": "data"}


def test_bt_terms_refuses_a_foreign_checkpoint_in_one_line(tmp_path):
    from benchmarks.bt_terms import pretraining_checkpoint

    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(SystemExit, match=r"^bt_terms.py: checkpoint '.*notes.pth' is not a RecBole checkpoint"):
        pretraining_checkpoint(str(text))
    torch.save({"config": {"model": "DualEncoder", "train_stage": "pretrain"}, "state_dict": {}}, tmp_path / "de.pth")
    with pytest.raises(SystemExit, match="is a DualEncoder checkpoint of train_stage pretrain; it measures BTPretrain"):
        pretraining_checkpoint(str(tmp_path / "de.pth"))
