"""The user-task study's tables, paired tests and plot (`benchmarks/user_tasks.py`, which runs the jobs).

The main table gives, per task x protocol x label ratio, the test users' mean +- std over seeds and BTPretrain's
relative difference to DualEncoder ((BT - DE) / DE), the figure the 8-20% claim is about, with a paired test over
test users x seeds (`bt_vs_de`); a second table gives that difference at every pretraining batch size (linear
probe), and a third tests "most with small batches" (`batch_trend`: the gain at the smallest batch against the
largest). The pretrainings' losses are compared at equal optimizer steps (`report_equal_steps`). A plot of the
probe metrics against the batch size goes next to RESULTS.md (matplotlib). The zero-shot, head-start and rank
probes' tables are here too.
"""
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import HERE, markdown_table, mean_std, pretrain_seconds  # noqa: E402

MAIN_METRIC = {"gender": "accuracy", "age": "accuracy", "next_item": "ndcg@10"}
SECOND_METRIC = {"gender": "macro_f1", "age": "macro_f1", "next_item": "hit@10"}
ZERO_SHOT_NOTE = (
    "Zero-shot: the next_item task with label ratio 0 (nothing trained; the encoder's user vector times its own item "
    "table, the start of every next_item head in the study), on the study's test users; the other columns: the "
    "study's heads trained from that start (probe: frozen encoder; finetune: encoder and head); mean ± std over "
    "seeds.")

RANK_NOTE = (
    "Rank: the effective rank (exp of the entropy of the normalised singular values; H for H equal ones, 1 for a "
    "rank-1 matrix) of every user's h(s) [U H] from each finished encoder, as is and centred (minus the mean user), "
    "mean ± std over seeds; beside it the study's pretraining loss and linear-probe gender and age accuracy at "
    "100% labels. Random weights: the same encoder untrained.")
PROTOCOL_NAME = {"probe": "linear probe", "finetune": "fine-tuning"}
HEAD_START_NOTE = (
    "Head start: the study's gender and age linear probes again on each finished encoder, the head starting as the "
    "labelled users' majority-class rule (user_task_head_start: prior: zero weights, bias their log class "
    "frequencies; a candidate of the selection on the validation users, so no head ends below it there) instead of "
    "random weights; the same users, labels, optimiser and selection; mean ± std over seeds.")


def _values(runs, task, protocol, ratio, metric):
    out = []
    for r in runs:
        row = r["user_tasks"].get(task, {}).get(protocol, {})
        row = row.get(str(ratio), row.get(ratio))  # JSON keys are strings
        if row is not None:
            out.append(row[metric])
    return out


def _relative(bt, de):
    if not bt or not de or statistics.mean(de) == 0:
        return "-"
    return f"{100 * (statistics.mean(bt) - statistics.mean(de)) / statistics.mean(de):+.1f}%"


def _per_user(results):
    """{(task, protocol, label ratio, batch, method): {seed: {user: main metric}}} of BTPretrain's and
    DualEncoder's rows that kept their test users' outcomes (`per_user`)."""
    out = {}
    for r in results:
        if "failed" in r or r["method"] not in ("BTPretrain", "DualEncoder"):
            continue
        for task, rows in r["user_tasks"].items():
            for protocol, by_ratio in (rows.items() if task != "users" else ()):
                for ratio, row in by_ratio.items():
                    if "per_user" in row:
                        users = row["per_user"]
                        key = (task, protocol, ratio, r["batch"], r["method"])
                        out.setdefault(key, {})[r["seed"]] = dict(zip(users["user"], users[MAIN_METRIC[task]]))
    return out


def bt_vs_de(results):
    """{"<batch> <task> <protocol> <label ratio>": [p, change, low, high]}: BTPretrain against DualEncoder on each
    task's main metric wherever both kept the test users' rows (`per_user`): the paired Wilcoxon signed-rank test
    over test users x seeds (pooled), Holm-adjusted over every such comparison of the study (batch sizes,
    protocols, label ratios, tasks), and the mean paired difference with its 95% t-interval, as fractions of
    DualEncoder's mean (unadjusted)."""
    from recbole_bt.evaluator.significance import compare_runs

    per_seed = {(f"{batch} {task} {protocol} {ratio}", method): seeds
                for (task, protocol, ratio, batch, method), seeds in _per_user(results).items()}  # fmt: skip
    pairs = {key: ((key, "BTPretrain"), (key, "DualEncoder")) for key in dict.fromkeys(k for k, _ in per_seed)}
    p_values, intervals = compare_runs(per_seed, list(pairs.values()))
    return {key: [p_values[pair], *intervals[pair]] for key, pair in pairs.items() if pair in p_values}


def batch_trend(results, protocol="probe"):
    """{"<task> <label ratio>": [p, small, large, difference, low, high]}: does BTPretrain gain more over DualEncoder
    at the smallest pretraining batch than at the largest ("most with small batches")? Per test user x seed (the same
    users at every batch: the split follows the seed; the seeds both methods ran at both batches), the gain at a batch
    is (BTPretrain - DualEncoder) / the mean of DualEncoder at that batch over those seeds, so its mean is the change
    `bt_vs_de` reports over them (a scale from other seeds could put a change below -100%); the paired Wilcoxon
    signed-rank test of the smallest batch's gain against the largest's, Holm over the tasks x label ratios;
    `small`, `large` and the mean `difference` (small - large) with its 95% t-interval, as fractions (unadjusted)."""
    from recbole_bt.evaluator.significance import holm, paired_interval, paired_test, pooled_pairs

    rows = {(task, ratio, batch, method): seeds  # -> {seed: {user: value}}
            for (task, kept, ratio, batch, method), seeds in _per_user(results).items() if kept == protocol}
    batches = sorted({key[2] for key in rows})
    raw, figures = {}, {}
    for task, ratio in dict.fromkeys(key[:2] for key in rows) if len(batches) > 1 else ():
        cells = [[rows.get((task, ratio, batch, m), {}) for m in ("BTPretrain", "DualEncoder")]
                 for batch in (batches[0], batches[-1])]  # fmt: skip
        seeds = set.intersection(*(set(bt) & set(de) for bt, de in cells))  # the seeds of all four: one scale each
        gains = []
        for bt, de in ([{seed: runs[seed] for seed in seeds} for runs in cell] for cell in cells):
            a, b = pooled_pairs(bt, de)
            if not a or statistics.mean(b) == 0:
                break
            scale = statistics.mean(b)
            gains.append({seed: {u: (v - de[seed][u]) / scale for u, v in users.items() if u in de[seed]}
                          for seed, users in bt.items() if seed in de})  # fmt: skip
        if len(gains) == 2:
            small, large = pooled_pairs(*gains)
            if small:
                raw[f"{task} {ratio}"] = paired_test(small, large)
                figures[f"{task} {ratio}"] = [statistics.mean(small), statistics.mean(large),
                                              *paired_interval(small, large)]  # fmt: skip
    return {key: [p, *figures[key]] for key, p in zip(raw, holm(list(raw.values())))}, batches


def report_batch_trend(results, protocol="probe", trend=None):
    """Per task x label ratio: BTPretrain's change over DualEncoder at the smallest and largest pretraining batch,
    their difference [95% t-interval] and Holm p (`batch_trend`; `trend`: a saved JSON's (tests, batches))."""
    from recbole_bt.evaluator.significance import stars

    tests, batches = batch_trend(results, protocol) if trend is None else trend
    if len(batches) < 2:
        return None, []
    small, large = batches[0], batches[-1]
    header = ["task", "label ratio", f"change at batch {small}", f"change at batch {large}",
              f"difference (batch {small} - batch {large}) [95% t-interval], p (Wilcoxon over test users x seeds, "
              "Holm over this table's comparisons)"]  # fmt: skip
    rows = [[*key.split(" "), f"{100 * t[1]:+.1f}%", f"{100 * t[2]:+.1f}%",
             f"{100 * t[3]:+.1f} points [{100 * t[4]:+.1f}, {100 * t[5]:+.1f}], p {t[0]:.2g}{stars(t[0])}"]
            for key, t in tests.items()]  # fmt: skip
    return header, rows


def _compared(runs, task, protocol, ratio, batch, tests):
    """BTPretrain's change over DualEncoder (means over seeds), then its interval and Holm p where tested."""
    bt, de = ([r for r in runs if r["method"] == m and r["batch"] == batch] for m in ("BTPretrain", "DualEncoder"))
    metric = MAIN_METRIC[task]
    cell = _relative(_values(bt, task, protocol, ratio, metric), _values(de, task, protocol, ratio, metric))
    test = tests.get(f"{batch} {task} {protocol} {ratio}")
    if test is None:
        return cell
    from recbole_bt.evaluator.significance import bracket, stars

    return f"{cell}{bracket(tuple(test[1:]))}, p {test[0]:.2g}{stars(test[0])}"


def report_main(results, batch, tests=None):
    """Per task x protocol x label ratio: each method's mean +- std (main metric / second metric), and BTPretrain
    against DualEncoder: the relative difference and the paired test (`bt_vs_de`; None: computed from `results`)."""
    tests = bt_vs_de(results) if tests is None else tests
    ok = [r for r in results if "failed" not in r and r["batch"] == batch]
    methods = list(dict.fromkeys(r["method"] for r in ok))
    header = ["task", "protocol", "label ratio"] + methods + [
        "BTPretrain vs DualEncoder: change [95% t-interval of the paired difference, unadjusted], p (Wilcoxon "
        "signed-rank of the main metric over test users x seeds, Holm over the study's comparisons)"]
    rows = []
    first = ok[0]["user_tasks"] if ok else {}
    for task in [t for t in first if t != "users"]:
        for protocol in first[task]:
            for ratio in first[task][protocol]:
                cells = []
                for m in methods:
                    runs = [r for r in ok if r["method"] == m]
                    main = _values(runs, task, protocol, ratio, MAIN_METRIC[task])
                    second = _values(runs, task, protocol, ratio, SECOND_METRIC[task])
                    cells.append(f"{mean_std(main)} / {mean_std(second)}" if main else "-")
                rows.append([task, protocol, ratio] + cells + [_compared(ok, task, protocol, ratio, batch, tests)])
    failed = [r for r in results if "failed" in r]
    rows += [[f"**failed**: {r['label']}", r["failed"]] + [""] * (len(header) - 2) for r in failed]
    return header, rows


def report_bt_vs_de_by_batch(results, protocol, ratios, tests=None):
    """Per task x label ratio, one column per pretraining batch size: BTPretrain's change over DualEncoder with its
    interval and Holm p (`bt_vs_de`), the figure of "most with small batches and few labels"."""
    tests = bt_vs_de(results) if tests is None else tests
    ok = [r for r in results if "failed" not in r]
    batches = sorted({r["batch"] for r in ok if r["method"] in ("BTPretrain", "DualEncoder")})
    tasks = [t for t in (ok[0]["user_tasks"] if ok else {}) if t != "users"]
    header = ["task", "label ratio"] + [f"pretraining batch {b}" for b in batches]
    rows = [[task, ratio] + [_compared(ok, task, protocol, ratio, b, tests) for b in batches]
            for task in tasks for ratio in ratios]  # fmt: skip
    return header, rows


def report_batch(results, protocol, ratios):
    """Per method x batch size: the main metric of every task at each label ratio, and the pretraining's epochs, how
    many stopped at the plateau of their loss (not at the pretrain_epochs cap), cost and collapse indicators."""
    ok = [r for r in results if "failed" not in r and r["method"] != "none"]
    tasks = [t for t in (ok[0]["user_tasks"] if ok else {}) if t != "users"]
    header = ["method", "batch"] + [f"{t} {MAIN_METRIC[t]} @{ratio}" for ratio in ratios for t in tasks] + [
        "pretrain epochs (per seed)", "stopped at the plateau (seeds)", "pretrain s (epochs x median epoch)",
        "best loss", "embedding std / projection std at the end"]  # fmt: skip
    rows = []
    for method in dict.fromkeys(r["method"] for r in ok):
        for batch in sorted({r["batch"] for r in ok if r["method"] == method}):
            runs = [r for r in ok if r["method"] == method and r["batch"] == batch]
            cells = [mean_std(_values(runs, t, protocol, ratio, MAIN_METRIC[t])) for ratio in ratios for t in tasks]
            pre = [r["pretrain"] for r in runs]
            plateau = sum(bool(p.get("stopped")) and not p["stopped"].startswith("pretrain_epochs") for p in pre)
            stds = " / ".join(_mean_of(pre, k) for k in ("embedding_std", "projection_std"))
            rows.append([method, batch] + cells + [
                ", ".join(str(p["epochs"]) for p in pre), f"{plateau} of {len(pre)}",
                f"{statistics.mean(pretrain_seconds(p) for p in pre):.0f}",
                f"{statistics.mean(p['pretrain_loss'] for p in pre):.3f}", stds])  # fmt: skip
    return header, rows


STEPS_AT = (5, 10, 25, 50, 100)  # the equal-steps table's points, in epochs of the main batch


def report_equal_steps(results, main_batch, at=STEPS_AT):
    """Per method x batch size: the mean pretraining loss over seeds after the optimizer steps of `at` epochs of
    the main batch. An epoch at batch b takes main_batch / b times the main batch's steps, so the point is that
    run's epoch nearest to E x b / main_batch (at least 1): a batch-size trend at equal epochs would be one of
    steps too. '-': no run got that far; 'x (n)': only n of the seeds did."""
    ok = [r for r in results if "failed" not in r and r["method"] != "none" and r.get("pretrain", {}).get("curve")]
    header = ["method", "batch"] + [f"after {e} epochs' steps" for e in at]
    rows = []
    for method in dict.fromkeys(r["method"] for r in ok):
        for batch in sorted({r["batch"] for r in ok if r["method"] == method}):
            curves = [{point["epoch"]: point["loss"] for point in r["pretrain"]["curve"]}
                      for r in ok if r["method"] == method and r["batch"] == batch]  # fmt: skip
            cells = []
            for e in at:
                epoch = max(1, int(e * batch / main_batch + 0.5))  # halves up
                losses = [c[epoch] for c in curves if epoch in c]
                cells.append("-" if not losses else f"{statistics.mean(losses):.2f}"
                             + ("" if len(losses) == len(curves) else f" ({len(losses)})"))  # fmt: skip
            rows.append([method, batch] + cells)
    return header, rows


def equal_steps_table(results, main_batch):
    """The markdown of `report_equal_steps` under its caption ('' when no run kept its loss curve)."""
    header, rows = report_equal_steps(results, main_batch)
    if not rows:
        return ""
    return (f"Pretraining loss at equal optimizer steps (each run's epoch nearest the steps of E epochs at batch "
            f"{main_batch}; mean over seeds, '(n)' where only n seeds got there). A loss's level depends on the batch "
            f"(BTPretrain estimates its correlations from the batch's rows, DualEncoder's negatives are the batch's "
            f"targets): compare how each row falls, not levels across rows:\n\n" + markdown_table(header, rows))


def _mean_of(pretrainings, key):
    """The mean of `key` over the pretrainings that report it ('-' when none does: DualEncoder has no projector)."""
    values = [p[key] for p in pretrainings if p.get(key) is not None]
    return f"{statistics.mean(values):.3f}" if values else "-"


def baselines(results):
    ok = [r for r in results if "failed" not in r]
    if not ok:
        return ""
    users = ok[0]["user_tasks"]["users"]
    parts = [f"{t}: {u['train']} train / {u['valid']} valid / {u['test']} test users"
             + (f", majority-class test accuracy "
                f"{statistics.mean(r['user_tasks']['users'][t]['majority_accuracy'] for r in ok):.4f}"
                if "majority_accuracy" in u else "") for t, u in users.items()]  # fmt: skip
    return "Users per task (seed of the first run): " + "; ".join(parts) + "."


def plot_batch(results, protocol, ratio, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return None
    ok = [r for r in results if "failed" not in r and r["method"] != "none"]
    tasks = [t for t in (ok[0]["user_tasks"] if ok else {}) if t != "users"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for method in dict.fromkeys(r["method"] for r in ok):
            batches = sorted({r["batch"] for r in ok if r["method"] == method})
            means, stds = [], []
            for b in batches:
                runs = [r for r in ok if r["method"] == method and r["batch"] == b]
                v = _values(runs, task, protocol, ratio, MAIN_METRIC[task])
                means.append(statistics.mean(v))
                stds.append(statistics.stdev(v) if len(v) > 1 else 0)
            ax.errorbar(batches, means, yerr=stds, marker="o", capsize=3, label=method)
        none = [r for r in results if "failed" not in r and r["method"] == "none"]
        if none:
            ax.axhline(statistics.mean(_values(none, task, protocol, ratio, MAIN_METRIC[task])), color="grey", ls="--",
                       label="no pretraining")
        majority = [r["user_tasks"]["users"][task].get("majority_accuracy") for r in ok]
        if MAIN_METRIC[task] == "accuracy" and None not in majority:  # predicting the most frequent class
            ax.axhline(statistics.mean(majority), color="black", ls=":", label="majority class")
        ax.set(xscale="log", xlabel="pretraining batch size",
               title=f"{task}: {MAIN_METRIC[task]} ({protocol}, labels {ratio})")
        ax.set_xticks(sorted({r["batch"] for r in ok}), [str(b) for b in sorted({r["batch"] for r in ok})])
        ax.minorticks_off()  # the log axis' minor labels (3 x 10^1) would print over the batch sizes
    axes[0][0].legend(fontsize=8)  # the first task's (an attribute's): every line, the majority class's too
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    print(f"plot: {path}")
    return path


def trend_table(results, trend=None, protocol="probe"):
    """The markdown of `report_batch_trend` under its caption ('' when no two batch sizes have the test users' rows)."""
    header, rows = report_batch_trend(results, protocol, trend)
    if not rows:
        return ""
    return ("Most with small batches? BTPretrain's change over DualEncoder at the smallest and the largest "
            f"pretraining batch ({PROTOCOL_NAME[protocol]}, each task's main metric, the same test users and seeds), "
            "and the paired test of the difference:\n\n" + markdown_table(header, rows))


def tables(bench, results, plot=None, main_batch=None, tests=None, trend=None):
    """(header, rows, extra markdown, {"bt_vs_de": the paired tests, "batch_trend": `batch_trend`'s}) of the study;
    `tests`, `trend`: those a saved JSON kept (its results no longer have the test users' rows), else computed from
    `results`."""
    tests = bt_vs_de(results) if tests is None else tests
    trend = batch_trend(results) if trend is None else trend
    ok = [r for r in results if "failed" not in r]
    batches = sorted({r["batch"] for r in ok})
    main_batch = main_batch or (256 if 256 in batches else (batches[0] if batches else None))
    header, rows = report_main(results, main_batch, tests)
    ratios = list(next((r["user_tasks"]["gender"]["probe"] for r in ok if "gender" in r["user_tasks"]), {"1.0": 0}))
    cells = " / ".join(f"{t} {MAIN_METRIC[t]} / {SECOND_METRIC[t]}" for t in MAIN_METRIC)
    by_batch = report_bt_vs_de_by_batch(results, "probe", ratios, tests)
    by_batch = len(by_batch[0]) > 2 and (  # a batch column: BTPretrain or DualEncoder among the results
        "BTPretrain vs DualEncoder at each pretraining batch size (linear probe, each task's main metric): change of "
        "the mean [95% t-interval of the paired difference, unadjusted], p (Wilcoxon signed-rank over test users x "
        "seeds, Holm over the study's comparisons):\n\n" + markdown_table(*by_batch))
    extra = [baselines(results), f"Cells: mean ± std over seeds, {cells}; pretraining batch {main_batch}.",
             "Batch-size study (linear probe, test users):", markdown_table(*report_batch(results, "probe", ratios)),
             equal_steps_table(results, main_batch), by_batch, trend_table(results, trend)]  # fmt: skip
    extra = [e for e in extra if e]
    if plot and len(batches) > 1:
        plot = plot_batch(results, "probe", ratios[-1], plot)
        if plot:
            extra.append(f"![batch-size study]({os.path.relpath(plot, HERE)})")
    return header, rows, "\n\n".join(extra), {"bt_vs_de": tests, "batch_trend": trend}


def report_zero_shot(results, studies):
    """Per method x batch size: the next_item task's zero-shot NDCG@10 / HR@10 (label ratio 0, `results`) beside
    what the study's heads reached from it (`studies`: the study jobs' results, in the same order), NDCG@10."""
    trained = [(protocol, ratio) for protocol in ("probe", "finetune") for ratio in ("0.01", "0.1", "1.0")]
    header = ["method", "batch", "seeds", "zero-shot NDCG@10 / HR@10 (no label)"] + [
        f"{protocol} NDCG@10 @{ratio}" for protocol, ratio in trained]
    pairs = [(z, s) for z, s in zip(results, studies) if "failed" not in z and "failed" not in s]
    rows = []
    for method, batch in dict.fromkeys((z["method"], z["batch"]) for z, _ in pairs):
        group = [(z, s) for z, s in pairs if (z["method"], z["batch"]) == (method, batch)]
        zero = [z["zero_shot"] for z, _ in group]
        studied = [s for _, s in group]
        rows.append([method, batch, len(group), f"{mean_std([r['ndcg@10'] for r in zero])} / "
                     f"{mean_std([r['hit@10'] for r in zero])}"] + [
            mean_std(v) if (v := _values(studied, "next_item", protocol, ratio, "ndcg@10")) else "-"
            for protocol, ratio in trained])  # fmt: skip
    failed = [z for z in results if "failed" in z]
    rows += [[f"**failed**: {z['label']}", z["failed"]] + [""] * (len(header) - 2) for z in failed]
    return header, rows


def report_head_start(results, studies, protocol="probe"):
    """Per method x batch size: the gender and age heads' test accuracy (`protocol`: linear probe or fine-tuning)
    from the study (random start, `studies`, in the same order) -> from the majority-class start (`results`), at
    each label ratio."""
    ratios = ("0.01", "0.1", "1.0")
    header = ["method", "batch", "seeds"] + [f"{task} accuracy @{ratio}: random -> prior start"
                                             for task in ("gender", "age") for ratio in ratios]  # fmt: skip
    pairs = [(h, s) for h, s in zip(results, studies) if "failed" not in h and s and "failed" not in s]
    rows = []
    for method, batch in dict.fromkeys((h["method"], h["batch"]) for h, _ in pairs):
        group = [(h, s) for h, s in pairs if (h["method"], h["batch"]) == (method, batch)]
        cells = [f"{mean_std(_values([s for _, s in group], task, protocol, ratio, 'accuracy'))} -> "
                 f"{mean_std(_values([h for h, _ in group], task, protocol, ratio, 'accuracy'))}"
                 for task in ("gender", "age") for ratio in ratios]  # fmt: skip
        rows.append([method, batch, len(group)] + cells)
    failed = [h for h in results if "failed" in h]
    rows += [[f"**failed**: {h['label']}", h["failed"]] + [""] * (len(header) - 2) for h in failed]
    return header, rows


def head_start_tables(results, studies, protocol="probe"):
    """`report_head_start`, the majority-class accuracy, and BTPretrain against DualEncoder from the prior start at
    each pretraining batch size (`report_bt_vs_de_by_batch`: its own paired tests, Holm over these comparisons)."""
    header, rows = report_head_start(results, studies, protocol)
    ok = [r for r in results if "failed" not in r]
    by_batch = markdown_table(*report_bt_vs_de_by_batch(ok, protocol, ["0.01", "0.1", "1.0"]))
    extra = [HEAD_START_NOTE.replace("linear probes", {"probe": "linear probes", "finetune": "fine-tuning"}[protocol]),
             baselines(ok), f"BTPretrain vs DualEncoder from the majority-class start ({PROTOCOL_NAME[protocol]}, "
             "accuracy): change of the mean [95% t-interval of the paired difference, unadjusted], p (Wilcoxon "
             "signed-rank over test users x seeds, Holm over this table's comparisons):", by_batch,
             trend_table(ok, protocol=protocol)]  # fmt: skip
    return header, rows, "\n\n".join(e for e in extra if e)


def report_rank(results, studies):
    """Per method x batch size: the effective rank of the users' h(s) (`results` of the `rank` probe) beside the
    study's best pretraining loss and gender / age linear-probe accuracy at 100% labels (`studies`, in the same
    order)."""
    header = ["method", "batch", "seeds", "effective rank of h(s) / H", "centred", "pretraining loss",
              "gender accuracy @1.0 (probe)", "age accuracy @1.0 (probe)"]  # fmt: skip
    pairs = [(r, s) for r, s in zip(results, studies) if "failed" not in r and s and "failed" not in s]
    rows = []
    for method, batch in dict.fromkeys((r["method"], r["batch"]) for r, _ in pairs):
        group = [(r, s) for r, s in pairs if (r["method"], r["batch"]) == (method, batch)]
        reps = [r["representation"] for r, _ in group]
        studied = [s for _, s in group]
        losses = [s["pretrain"]["pretrain_loss"] for s in studied if "pretrain" in s]
        rows.append([method, batch, len(group),
                     f"{mean_std([x['effective_rank'] for x in reps])} / {reps[0]['dims']}",
                     mean_std([x["effective_rank_centred"] for x in reps]), mean_std(losses) if losses else "-",
                     *(mean_std(v) if (v := _values(studied, task, "probe", "1.0", "accuracy")) else "-"
                       for task in ("gender", "age"))])  # fmt: skip
    failed = [r for r in results if "failed" in r]
    rows += [[f"**failed**: {r['label']}", r["failed"]] + [""] * (len(header) - 2) for r in failed]
    return header, rows
