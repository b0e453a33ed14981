"""Compare models the way a user decides between them: every model x seed (x swept value) on the same dataset,
protocol and budget, one after the other, with progress; then a markdown table of the test metrics (mean ± std
over seeds, the best of each metric in bold, the relative improvement of the best over the strongest baseline),
a CSV (one row per run) and a JSON (everything).

    python run_recbole_bt.py --models=SASRec,CL4SRec,DuoRec,BTSRec --seeds=3 --dataset=ml-1m --epochs=50
    python run_recbole_bt.py --models=BTSRec --sweep=alpha=0,0.1,0.2,0.3 --seeds=2

Every run is `recbole_bt.quick_start.run_recbole_bt` with the shared config plus its own ``seed`` (and swept
value). A run that fails is reported in the table and the CSV with its one-line reason, and the others go on.
Each finished run is saved under ``<out>/runs/``, keyed by what defines it (model, dataset, the shared config,
the contents of the config files, seed, swept value): a rerun reuses what is already computed and only runs
what is missing or failed.
"""
import csv
import hashlib
import json
import math
import os
import re
import statistics
import time
from dataclasses import dataclass, field

from recbole.evaluator import register

from recbole_bt.config import resolve_config_file
from recbole_bt.errors import ConfigError


@dataclass
class RunSpec:
    """One run of a comparison: a model, a seed, and the config values that set it apart (a swept value)."""

    model: str
    seed: int
    overrides: dict = field(default_factory=dict)

    @property
    def group(self):
        """The table row this run belongs to: the model and its overrides, not the seed."""
        return " ".join([self.model] + [f"{k}={v}" for k, v in self.overrides.items()])

    @property
    def label(self):
        return f"{self.group} seed={self.seed}"


def parse_seeds(value, base_seed=2020):
    """``3`` -> three seeds from `base_seed`; ``2020,2024`` (or a list) -> those seeds."""
    if isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ConfigError(f"--seeds must be a number of seeds >= 1 or a list of seeds, got {value!r}")
        return [base_seed + i for i in range(value)]
    else:
        items = [v for v in str(value).split(",") if v.strip()]
        if len(items) == 1:
            return parse_seeds(_int(items[0], "--seeds"), base_seed)
    return [_int(v, "--seeds") for v in items]


def parse_sweep(text):
    """``alpha=0,0.1,0.2`` -> ("alpha", [0, 0.1, 0.2]); values parsed as YAML scalars would be."""
    key, sep, values = str(text).partition("=")
    values = [_scalar(v.strip()) for v in values.split(",") if v.strip()]
    if not sep or not key.strip() or not values:
        raise ConfigError(f"--sweep must look like key=value1,value2,..., got {text!r}")
    return key.strip(), values


def _int(text, name):
    try:
        return int(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must hold integers, got {text!r}") from None


def _scalar(text):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None, "~": None}.get(text.lower(), text)


def run_specs(models, seeds, sweep=None):
    """Every model x swept value x seed, in that order."""
    key, values = sweep if sweep else (None, [None])
    return [RunSpec(m, s, {} if key is None else {key: v}) for m in models for v in values for s in seeds]


def fingerprint(spec, dataset, config_file_list, config_dict, argv=None):
    """What defines a run's result: a change to any of these reruns it."""
    files = []
    for path in config_file_list or []:
        with open(resolve_config_file(path), "rb") as f:
            files.append(hashlib.sha1(f.read()).hexdigest())
    payload = [spec.model, spec.seed, spec.overrides, dataset, files, config_dict, sorted(argv or [])]
    return hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _slug(text):
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text)


def run_comparison(models, dataset=None, seeds=(2020, 2021, 2022), config_file_list=None, config_dict=None,
                   out_dir="comparison", sweep=None, baselines=None, log=print, runner=None, argv=None):  # fmt: skip
    """Run (or reuse) every model x seed (x swept value) and write table.md, results.csv and results.json.

    Args:
        models (list of str): model names, recbole_bt's or RecBole's.
        seeds (list of int): one run per seed and model.
        sweep (tuple, optional): ``(key, values)``: one run per value as well (`parse_sweep`).
        baselines (list of str, optional): the rows the improvement is measured against (default: every row but
            the best one, i.e. the runner-up).
        runner (callable, optional): ``runner(model, dataset, config_file_list, config_dict) -> result dict``;
            default `recbole_bt.quick_start.run_recbole_bt`.
        argv (list of str, optional): the ``--key=value`` overrides that RecBole's Config reads from the command
            line: part of what defines a run, so a changed override reruns it.

    Returns:
        dict: ``runs`` (one record per run), ``table`` (markdown) and ``paths`` of the written files (with a
        sweep, ``plot``: the trade-off plot of `recbole_bt.plots.plot_sweep`, when matplotlib is installed).
    """
    if not models:
        raise ConfigError("--models needs at least one model name")
    if runner is None:
        from recbole_bt.quick_start import run_recbole_bt as runner
    config_dict = dict(config_dict or {})
    specs = run_specs(models, seeds, sweep)
    runs_dir = os.path.join(out_dir, "runs")
    os.makedirs(runs_dir, exist_ok=True)
    records = []
    for i, spec in enumerate(specs, 1):
        key = fingerprint(spec, dataset, config_file_list, config_dict, argv)
        path = os.path.join(runs_dir, f"{_slug(spec.label)}-{key[:10]}.json")
        prefix = f"[{i}/{len(specs)}] {spec.label}"
        if os.path.exists(path):
            with open(path) as f:
                record = json.load(f)
            if record.get("status") == "ok":
                log(f"{prefix}: reused ({path})")
                records.append(record)
                continue
        log(f"{prefix}: running")
        record = _run(spec, runner, dataset, config_file_list, dict(config_dict, seed=spec.seed, **spec.overrides))
        with open(path, "w") as f:
            json.dump(record, f, indent=1, default=str)
        log(f"{prefix}: {record['status']} in {record['seconds']:.0f} s" + (f" ({record['error']})" if record["error"] else ""))
        records.append(record)
    table = results_table(records, baselines)
    paths = write_outputs(records, table, out_dir)
    if sweep:
        from recbole_bt.plots import plot_sweep

        plot = plot_sweep(records, sweep[0], os.path.join(out_dir, f"sweep-{_slug(sweep[0])}.png"))
        if plot:
            paths["plot"] = plot
        log(f"trade-off plot: {plot}" if plot else "no trade-off plot (matplotlib missing: pip install .[plot])")
    log(table)
    return {"runs": records, "table": table, "paths": paths}


def _run(spec, runner, dataset, config_file_list, config_dict):
    record = {"model": spec.model, "group": spec.group, "seed": spec.seed, "overrides": spec.overrides,
              "status": "ok", "error": "", "test_result": {}, "best_valid_result": {}}  # fmt: skip
    start = time.perf_counter()
    try:
        result = runner(spec.model, dataset, config_file_list, config_dict)
        record["test_result"] = dict(result.get("test_result") or {})
        record["best_valid_result"] = dict(result.get("best_valid_result") or {})
        record.update({key: result.get(key) for key in ("protocol", "epochs_run", "best_epoch")})
        if not record["test_result"]:
            record.update(status="failed", error="the run returned no test result")
    except Exception as e:  # a failed run is reported, the comparison goes on
        message = str(e).strip().splitlines()[0] if str(e).strip() else ""
        record.update(status="failed", error=f"{type(e).__name__}: {message}")
    record["seconds"] = round(time.perf_counter() - start, 1)
    return record


def _bigger_is_better(metric):
    return metric.split("@")[0].lower() not in register.smaller_metrics


def _finite(values):
    return [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def summarize(records):
    """{group: {"runs": (ok, total), "errors": [...], "metrics": {metric: [values over ok runs]}, "epochs": ["epochs
    run (best epoch)" per ok run]}}, in run order."""
    groups = {}
    for r in records:
        g = groups.setdefault(r["group"], {"runs": [0, 0], "errors": [], "metrics": {}, "epochs": []})
        g["runs"][1] += 1
        if r["status"] != "ok":
            g["errors"].append(f"seed {r['seed']}: {r['error']}")
            continue
        g["runs"][0] += 1
        if r.get("epochs_run") is not None:
            g["epochs"].append(f"{r['epochs_run']} ({r.get('best_epoch')})")
        for metric, value in r["test_result"].items():
            g["metrics"].setdefault(metric, []).append(value)
    return groups


def _best(scored, metric):
    """The row with the best value of `metric` among {row: value} (None when empty)."""
    if not scored:
        return None
    return (max if _bigger_is_better(metric) else min)(scored, key=scored.get)


def _improvement(scored, metric, baselines=None):
    """Relative improvement of the best row over the strongest baseline row: with `baselines` (model names), the
    best of the other rows against the best of those; without, the best row against the runner-up. Positive =
    better, for bigger- and smaller-is-better metrics alike; None when there is nothing to compare."""
    if baselines is None:
        new = scored
        base = {n: v for n, v in scored.items() if n != _best(scored, metric)}
    else:
        new = {n: v for n, v in scored.items() if n.split(" ")[0] not in baselines}
        base = {n: v for n, v in scored.items() if n.split(" ")[0] in baselines}
    if not new or not base:
        return None
    ours, theirs = new[_best(new, metric)], base[_best(base, metric)]
    if theirs == 0:
        return None
    return (ours - theirs) / abs(theirs) * (1 if _bigger_is_better(metric) else -1)


def results_table(records, baselines=None):
    """Markdown: one row per model (and swept value), one column per test metric: mean ± std over the seeds'
    runs that finished, the best in bold; a last row with the best's relative improvement over the strongest
    baseline. Failed runs are counted in the `runs` column and their reasons listed under the table."""
    groups = summarize(records)
    metrics = list(dict.fromkeys(m for g in groups.values() for m in g["metrics"]))
    means = {name: {m: statistics.mean(_finite(v)) for m, v in g["metrics"].items() if _finite(v)}
             for name, g in groups.items()}  # fmt: skip
    best = {m: _best({n: mean[m] for n, mean in means.items() if m in mean}, m) for m in metrics}
    improvement = {m: _improvement({n: mean[m] for n, mean in means.items() if m in mean}, m, baselines) for m in metrics}
    protocols = list(dict.fromkeys(r["protocol"] for r in records if r.get("protocol")))
    lines = [f"Protocol: {'; '.join(protocols) if protocols else 'not recorded'}.", ""]
    lines += ["| model | runs | epochs (best) | " + " | ".join(metrics) + " |", "|---|---|---|" + "---|" * len(metrics)]
    for name, g in groups.items():
        cells = []
        for m in metrics:
            values = _finite(g["metrics"].get(m, []))
            if not values:
                cells.append("-")
                continue
            text = f"{statistics.mean(values):.4f}" + (f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else "")
            cells.append(f"**{text}**" if best.get(m) == name else text)
        ok, total = g["runs"]
        runs = f"{ok}/{total}" if ok == total else f"{ok}/{total} ({total - ok} failed)"
        lines.append(f"| {name} | {runs} | {', '.join(g['epochs']) or '-'} | " + " | ".join(cells) + " |")
    against = "the strongest baseline" if baselines else "the runner-up"
    lines.append(f"| improvement of the best over {against} | | | " + " | ".join(
        f"{100 * improvement[m]:+.1f}%" if improvement.get(m) is not None else "-" for m in metrics) + " |")  # fmt: skip
    errors = [f"- {name}, {e}" for name, g in groups.items() for e in g["errors"]]
    if errors:
        lines += ["", "Failed runs:"] + errors
    return "\n".join(lines)


def write_outputs(records, table, out_dir):
    """table.md, results.csv (one row per run) and results.json under `out_dir`; returns their paths."""
    paths = {name: os.path.join(out_dir, name) for name in ("table.md", "results.csv", "results.json")}
    with open(paths["table.md"], "w") as f:
        f.write(table + "\n")
    metrics = list(dict.fromkeys(m for r in records for m in r["test_result"]))
    with open(paths["results.csv"], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "group", "seed", "status", "seconds", "error", "epochs_run", "best_epoch", "protocol"]
                        + metrics)  # fmt: skip
        for r in records:
            writer.writerow([r["model"], r["group"], r["seed"], r["status"], r["seconds"], r["error"],
                             r.get("epochs_run", ""), r.get("best_epoch", ""), r.get("protocol", "")]
                            + [r["test_result"].get(m, "") for m in metrics])  # fmt: skip
    with open(paths["results.json"], "w") as f:
        json.dump({"runs": records, "summary": summarize(records)}, f, indent=1, default=str)
    return paths
