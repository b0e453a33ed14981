"""Compare models the way a user decides between them: every model x seed (x swept value) on the same dataset,
protocol and budget, one after the other, with progress; then a markdown table of the test metrics (mean ± std
over seeds, the best of each metric in bold, the relative improvement of the best over the strongest baseline),
a CSV (one row per run) and a JSON (everything).

    python run_recbole_bt.py --models=SASRec,CL4SRec,DuoRec,BTSRec --seeds=3 --dataset=ml-1m --epochs=50
    python run_recbole_bt.py --models=SASRec,DuoRec,BTSRec --seeds=3 --select=DuoRec:lmd=0.001,0.01,0.1 \
        --select=BTSRec:alpha=0.1,0.2,0.3
    python run_recbole_bt.py --models=BTSRec --sweep=alpha=0,0.1,0.2,0.3 --seeds=2

Every run is `recbole_bt.quick_start.run_recbole_bt` with the shared config plus its own ``seed`` (and swept or
selected value). A run that fails is reported in the table and the CSV with its one-line reason, and the others
go on.

- Selection (``--select MODEL:key=v1,v2,...``, repeatable, or a YAML file ``{MODEL: {key: [v1, v2]}}``): each
  value is trained once with the first seed; the value with the best validation score (``valid_metric``) is then
  run with every seed for the test figures. The table names the value each model got and the validation score of
  every candidate; the CSV and JSON list the selection runs (``phase: selection``).
- Significance: every run keeps its test users' NDCG@K and HR@K (``test_per_user``); the table adds, for each row
  against the strongest baseline row (the best row, or the best of ``--baselines``), the mean paired difference
  (relative to the baseline's mean) with its 95% t-interval and the two-sided Wilcoxon signed-rank test, over
  (test user, seed) pairs pooled over the seeds both rows have, Holm-adjusted over the rows.
- Reuse and resume: each finished run is saved under ``<out>/runs/``, keyed by what defines it (model, dataset,
  the shared config, the contents of the config files, seed, swept or selected value); a rerun reuses what is
  already computed. A run in progress keeps its checkpoints in its own folder there, the last completed epoch's
  among them (``checkpoint_last``), so a comparison stopped by Ctrl-C or a killed process and started again with
  the same command resumes that run after its last epoch, to the result of an uninterrupted run.
"""
import csv
import glob
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
from recbole_bt.evaluator.significance import bracket, compare_runs, stars

# The auxiliary weight of each model and the train modes in which its package default was chosen on validation:
# a comparison that runs the model in another mode without --select warns (`unvalidated_weights`).
VALIDATED_WEIGHTS = {
    "BTSRec": ("alpha", ("all_positions",)),  # BT-SR's reference configs train every position (alpha 0.2)
    "CL4SRec": ("lmd", ("prefix", "all_positions")),  # the paper (one target per row); issue 19's selection
    "DuoRec": ("lmd", ("prefix", "all_positions")),  # the paper (one target per row); issue 19's selection
}


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


def parse_select(entries):
    """``["DuoRec:lmd=0.001,0.01", ...]`` (or one YAML file's path, ``{DuoRec: {lmd: [0.001, 0.01]}}``) ->
    {model: (key, [values])}; one key per model."""
    select = {}
    for entry in entries or []:
        entry = str(entry).strip()
        if entry.endswith((".yaml", ".yml")):
            from recbole_bt.config import read_yaml_file

            content = read_yaml_file(entry) if os.path.exists(entry) else None
            if not isinstance(content, dict) or not all(isinstance(v, dict) and len(v) == 1 for v in content.values()):
                raise ConfigError(f"--select file {entry!r} must map each model to one key and its list of values, "
                                  f"e.g. 'DuoRec: {{lmd: [0.001, 0.01]}}'")  # fmt: skip
            items = [(m, k, v if isinstance(v, list) else [v]) for m, kv in content.items() for k, v in kv.items()]
        else:
            model, sep, rest = entry.partition(":")
            if not sep or not model.strip():
                raise ConfigError(f"--select must look like MODEL:key=value1,value2,..., got {entry!r}")
            key, values = parse_sweep(rest)
            items = [(model.strip(), key, values)]
        for model, key, values in items:
            if model in select:
                raise ConfigError(f"--select names {model} twice: one key per model")
            if not values:
                raise ConfigError(f"--select {model}:{key} has no values")
            select[model] = (key, values)
    return select


def check_select(select, models):
    """Each selected model is compared and each candidate value is in its key's range (one line if not)."""
    from recbole_bt.config_ranges import numeric_ranges
    from recbole_bt.registry import get_model

    for model, (key, values) in select.items():
        if model not in models:
            raise ConfigError(f"--select names {model}, which --models does not compare")
        ranges = numeric_ranges(get_model(model))
        for value in values:
            if key in ranges:
                ranges[key].check(key, value)


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
                   out_dir="comparison", sweep=None, baselines=None, log=print, runner=None, argv=None,
                   select=None):  # fmt: skip
    """Run (or reuse) every model x seed (x swept value) and write table.md, results.csv and results.json.

    Args:
        models (list of str): model names, recbole_bt's or RecBole's.
        seeds (list of int): one run per seed and model.
        sweep (tuple, optional): ``(key, values)``: one run per value as well (`parse_sweep`).
        baselines (list of str, optional): the rows the improvement and the paired tests are against (default:
            the improvement of the best row over the runner-up, the tests of every row against the best row).
        runner (callable, optional): ``runner(model, dataset, config_file_list, config_dict) -> result dict``;
            default `recbole_bt.quick_start.run_recbole_bt`.
        argv (list of str, optional): the ``--key=value`` overrides that RecBole's Config reads from the command
            line: part of what defines a run, so a changed override reruns it.
        select (dict, optional): {model: (key, values)} (`parse_select`): the value is chosen on validation with
            the first seed, then run with every seed.

    Returns:
        dict: ``runs`` (one record per run, selection runs first), ``table`` (markdown), ``selected``
        ({model: {key: value}}) and ``paths`` of the written files (with a sweep, ``plot``: the trade-off plot of
        `recbole_bt.plots.plot_sweep`, when matplotlib is installed).
    """
    if not models:
        raise ConfigError("--models needs at least one model name")
    select = dict(select or {})
    if select and sweep:
        raise ConfigError("--select and --sweep cannot be combined: sweep one model, or select per model")
    check_select(select, models)
    if runner is None:
        from recbole_bt.quick_start import run_recbole_bt as runner
    config_dict = dict(config_dict or {})
    seeds = list(seeds)
    os.makedirs(os.path.join(out_dir, "runs"), exist_ok=True)
    swept = {m: (sweep[0], sweep[1]) for m in models} if sweep else {}  # a swept weight is being chosen here too
    warned = unvalidated_weights(models, dict(swept, **select), dataset, config_file_list, config_dict)
    for line in warned:
        log(f"warning: {line}")

    def run_all(specs, phase):
        records = []
        for i, spec in enumerate(specs, 1):
            step = f"{i}/{len(specs)}" if phase == "test" else f"{phase} {i}/{len(specs)}"
            record = _run_or_reuse(spec, f"[{step}] {spec.label}", runner, dataset,
                                   config_file_list, config_dict, argv, out_dir, log)  # fmt: skip
            records.append(dict(record, phase=phase))
        return records

    selection, selected = [], {}
    for model, (key, values) in select.items():
        candidates = run_all([RunSpec(model, seeds[0], {key: v}) for v in values], "selection")
        selection += candidates
        selected[model] = _best_on_validation(candidates, key)
        if selected[model] is None:
            log(f"selection of {model} {key}: every candidate failed; {model} runs at its configured value")
        else:
            log(f"selection of {model} {key}: {selected[model][key]!r} (best validation score)")
    specs = [RunSpec(spec.model, spec.seed, dict(spec.overrides, **(selected.get(spec.model) or {})))
             for spec in run_specs(models, seeds, sweep)]  # fmt: skip
    records = run_all(specs, "test")
    table = comparison_table(records, baselines)
    if select:
        table += "\n\n" + selection_lines(selection, select, selected)
    if warned:
        table += "\n\n" + "\n".join(f"Warning: {line}" for line in warned)
    paths = write_outputs(selection + records, table, out_dir)
    if sweep:
        from recbole_bt.plots import plot_sweep

        plot = plot_sweep(records, sweep[0], os.path.join(out_dir, f"sweep-{_slug(sweep[0])}.png"))
        if plot:
            paths["plot"] = plot
        log(f"trade-off plot: {plot}" if plot else "no trade-off plot (matplotlib missing: pip install .[plot])")
    log(table)
    return {"runs": selection + records, "table": table, "paths": paths, "selected": selected}


def _run_or_reuse(spec, prefix, runner, dataset, config_file_list, config_dict, argv, out_dir, log):
    """A finished run's saved record, else the run (resumed from its folder's last epoch if it has one)."""
    key = fingerprint(spec, dataset, config_file_list, config_dict, argv)
    path = os.path.join(out_dir, "runs", f"{_slug(spec.label)}-{key[:10]}.json")
    if os.path.exists(path):
        with open(path) as f:
            record = json.load(f)
        if record.get("status") == "ok":
            log(f"{prefix}: reused ({path})")
            return record
    folder = path[: -len(".json")]  # the run's checkpoints: its best model and its last completed epoch
    config = dict(config_dict, seed=spec.seed, **spec.overrides, checkpoint_dir=folder, checkpoint_last=True,
                  test_per_user=True)  # fmt: skip
    last = sorted(glob.glob(os.path.join(folder, "*-last.pth")), key=os.path.getmtime)
    if last:
        config["resume_file"] = last[-1]
    log(f"{prefix}: " + (f"resuming from {last[-1]}" if last else "running"))
    record = _run(spec, runner, dataset, config_file_list, config)
    with open(path, "w") as f:
        json.dump(record, f, indent=1, default=str)
    log(f"{prefix}: {record['status']} in {record['seconds']:.0f} s" + (f" ({record['error']})" if record["error"] else ""))
    return record


def _best_on_validation(candidates, key):
    """{key: value} of the candidate run with the best validation score, or None when none finished."""
    scored = [r for r in candidates if r["status"] == "ok" and isinstance(r.get("best_valid_score"), (int, float))]
    if not scored:
        return None
    bigger = scored[0].get("valid_score_bigger", True) is not False
    best = (max if bigger else min)(scored, key=lambda r: r["best_valid_score"])
    return {key: best["overrides"][key]}


def selection_lines(selection, select, selected):
    """Markdown lines: each selected model's value and every candidate's validation score."""
    lines = []
    for model, (key, _) in select.items():
        score = lambda r: f"{r['best_valid_score']:.4f}" if isinstance(r.get("best_valid_score"), (int, float)) \
            else r["status"] if r["status"] != "ok" else "no validation"  # noqa: E731
        scores = ", ".join(f"{r['overrides'][key]}: {score(r)}" for r in selection if r["model"] == model)
        seed = next((r["seed"] for r in selection if r["model"] == model), "?")
        chosen = f"{key}={selected[model][key]}" if selected.get(model) else f"none (all failed; {key} as configured)"
        lines.append(f"- {model}: {chosen}, chosen on validation (seed {seed}; best validation score of each "
                     f"{key}: {scores})")  # fmt: skip
    return "Selected on validation:\n\n" + "\n".join(lines)


def unvalidated_weights(models, select, dataset, config_file_list, config_dict):
    """One line per compared model whose auxiliary weight (`VALIDATED_WEIGHTS`) was never chosen on validation
    for the train mode it runs in, unless `select` ({model: (key, values)}: --select or --sweep) varies it here."""
    from recbole_bt.quick_start import build_config

    lines = []
    for model in dict.fromkeys(models):
        if model not in VALIDATED_WEIGHTS or select.get(model, (None,))[0] == VALIDATED_WEIGHTS[model][0]:
            continue
        key, modes = VALIDATED_WEIGHTS[model]
        try:
            config = build_config(model, dataset, config_file_list, config_dict)
        except Exception:  # the run itself reports a config it cannot build
            continue
        if config["train_mode"] not in modes:
            lines.append(f"{model}'s {key} ({config[key]}) was chosen on validation for train_mode "
                         f"{' / '.join(modes)}, never for {config['train_mode']}: choose it here with "
                         f"--select={model}:{key}=v1,v2,...")  # fmt: skip
    return lines


def _run(spec, runner, dataset, config_file_list, config_dict):
    record = {"model": spec.model, "group": spec.group, "seed": spec.seed, "overrides": spec.overrides,
              "status": "ok", "error": "", "test_result": {}, "best_valid_result": {}}  # fmt: skip
    start = time.perf_counter()
    try:
        result = runner(spec.model, dataset, config_file_list, config_dict)
        record["test_result"] = dict(result.get("test_result") or {})
        record["best_valid_result"] = dict(result.get("best_valid_result") or {})
        record.update({key: result.get(key) for key in ("protocol", "epochs_run", "best_epoch", "best_valid_score",
                                                        "valid_score_bigger", "test_per_user")})  # fmt: skip
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


def comparison_table(records, baselines=None):
    """Markdown: one row per model (and swept value), one column per test metric: mean ± std over the seeds'
    runs that finished, the best in bold; a last row with the best's relative improvement over the strongest
    baseline. Failed runs are counted in the `runs` column and their reasons listed under the table."""
    groups = summarize(records)
    metrics = list(dict.fromkeys(m for g in groups.values() for m in g["metrics"]))
    means = {name: {m: statistics.mean(_finite(v)) for m, v in g["metrics"].items() if _finite(v)}
             for name, g in groups.items()}  # fmt: skip
    best = {m: _best({n: mean[m] for n, mean in means.items() if m in mean}, m) for m in metrics}
    improvement = {m: _improvement({n: mean[m] for n, mean in means.items() if m in mean}, m, baselines) for m in metrics}
    reference, tested, p_values, intervals = significance(records, means, baselines)
    protocols = list(dict.fromkeys(r["protocol"] for r in records if r.get("protocol")))
    lines = [f"Protocol: {'; '.join(protocols) if protocols else 'not recorded'}.", ""]
    p_headers = [f"{m} vs {reference}: change [95% interval], p" for m in tested]
    lines += ["| model | runs | epochs (best) | " + " | ".join(metrics + p_headers) + " |",
              "|---|---|---|" + "---|" * (len(metrics) + len(p_headers))]  # fmt: skip
    for name, g in groups.items():
        cells = []
        for m in metrics:
            values = _finite(g["metrics"].get(m, []))
            if not values:
                cells.append("-")
                continue
            text = f"{statistics.mean(values):.4f}" + (f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else "")
            cells.append(f"**{text}**" if best.get(m) == name else text)
        for m in tested:
            p, interval = p_values[m].get((name, reference)), intervals[m].get((name, reference))
            cells.append("reference" if name == reference else "-" if p is None else
                         f"{100 * interval[0]:+.1f}%{bracket(interval)}, p {p:.3g}{stars(p)}")  # fmt: skip
        ok, total = g["runs"]
        runs = f"{ok}/{total}" if ok == total else f"{ok}/{total} ({total - ok} failed)"
        lines.append(f"| {name} | {runs} | {', '.join(g['epochs']) or '-'} | " + " | ".join(cells) + " |")
    against = "the strongest baseline" if baselines else "the runner-up"
    lines.append(f"| improvement of the best over {against} | | | " + " | ".join(
        [f"{100 * improvement[m]:+.1f}%" if improvement.get(m) is not None else "-" for m in metrics]
        + [""] * len(p_headers)) + " |")  # fmt: skip
    if tested:
        n = max(len(v) for v in p_values.values())
        lines += ["", f"vs {reference} ({'the strongest baseline' if baselines else 'the best row'}): each row's "
                      f"per-user {' and '.join(tested)} against {reference}'s over the (test user, seed) pairs of the "
                      f"seeds both rows have; change: the mean paired difference relative to {reference}'s mean, with "
                      f"its 95% t-interval (per row, not adjusted for the rows tested); p: two-sided Wilcoxon "
                      f"signed-rank test, Holm-adjusted over the {n} rows tested; * p < 0.05."]  # fmt: skip
    errors = [f"- {name}, {e}" for name, g in groups.items() for e in g["errors"]]
    if errors:
        lines += ["", "Failed runs:"] + errors
    return "\n".join(lines)


def significance(records, means, baselines=None):
    """(reference row, metrics tested, {metric: {(row, reference): Holm-adjusted p}}, {metric: {(row, reference):
    (change, low, high)}}) from the runs' per-user test
    values (``test_per_user``): every row against the reference row, the best row by NDCG@K (K = 10 when
    evaluated, else the largest), or the best of the `baselines` rows; (None, [], {}) without per-user values."""
    per_seed = {}
    for r in records:
        if r["status"] == "ok" and r.get("test_per_user"):
            data = r["test_per_user"]
            for metric, values in data.items():
                if metric != "user":
                    per_seed.setdefault(metric, {}).setdefault(r["group"], {})[r["seed"]] = dict(zip(data["user"], values))
    ks = sorted({int(m.split("@")[1]) for m in per_seed if m.startswith("ndcg@")})
    if not ks:
        return None, [], {}, {}
    k = 10 if 10 in ks else ks[-1]
    tested = [m for m in (f"ndcg@{k}", f"hit@{k}") if m in per_seed]
    rows = {name: mean[tested[0]] for name, mean in means.items() if tested[0] in mean
            and (not baselines or name.split(" ")[0] in baselines)}  # fmt: skip
    reference = _best(rows, tested[0])
    if reference is None:
        return None, [], {}, {}
    pairs = [(name, reference) for name in means if name != reference]
    compared = {m: compare_runs(per_seed[m], pairs) for m in tested}
    return reference, tested, {m: c[0] for m, c in compared.items()}, {m: c[1] for m, c in compared.items()}


def write_outputs(records, table, out_dir):
    """table.md, results.csv (one row per run) and results.json under `out_dir`; returns their paths."""
    paths = {name: os.path.join(out_dir, name) for name in ("table.md", "results.csv", "results.json")}
    with open(paths["table.md"], "w") as f:
        f.write(table + "\n")
    metrics = list(dict.fromkeys(m for r in records for m in r["test_result"]))
    with open(paths["results.csv"], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "group", "seed", "phase", "status", "seconds", "error", "epochs_run", "best_epoch",
                         "best_valid_score", "protocol"] + metrics)  # fmt: skip
        for r in records:
            writer.writerow([r["model"], r["group"], r["seed"], r.get("phase", "test"), r["status"], r["seconds"],
                             r["error"], r.get("epochs_run", ""), r.get("best_epoch", ""), r.get("best_valid_score", ""),
                             r.get("protocol", "")] + [r["test_result"].get(m, "") for m in metrics])  # fmt: skip
    with open(paths["results.json"], "w") as f:
        tested = [r for r in records if r.get("phase", "test") == "test"]
        json.dump({"runs": records, "summary": summarize(tested)}, f, indent=1, default=str)
    return paths
