"""The compact table of a run's metrics that `run_recbole_bt` logs at the end (RecBole logs each result dict on
one long line): one row per metric, one column per cut-off K for each result.

    metric          best valid                          test
                    @1      @5      @10     @20         @1      @5      @10     @20
    hit             0.0095  0.0668  0.1145  0.1983      ...
    effective_rank  value: 41.2034                      value: 40.8813
"""


def _split_key(key):
    name, _, k = key.partition("@")
    return name, k


def _cell(value):
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def results_table(results):
    """Fixed-width text table of `results` = {"best valid": {...}, "test": {...}} (RecBole result dicts).

    Metrics with a cut-off (`hit@10`) share a row per name with one column per K; metrics without one
    (`effective_rank`) get a `value` column. A metric missing from one result shows as "-"."""
    results = {title: dict(result or {}) for title, result in results.items()}
    keys = [key for result in results.values() for key in result]
    names = list(dict.fromkeys(_split_key(key)[0] for key in keys))
    cutoffs = list(dict.fromkeys(_split_key(key)[1] for key in keys))
    cutoffs.sort(key=lambda k: (k == "", int(k) if k.isdigit() else 0))  # @1 @5 @10 ... then `value`
    header = [f"@{k}" if k else "value" for k in cutoffs]
    rows = [["metric"] + [""] * (len(cutoffs) * len(results)), [""] + header * len(results)]
    for i, title in enumerate(results):
        rows[0][1 + i * len(cutoffs)] = title
    for name in names:
        row = [name]
        for result in results.values():
            row += [_cell(result.get(f"{name}@{k}" if k else name)) if _has(name, k, keys) else "" for k in cutoffs]
        rows.append(row)
    widths = [max(len(row[i]) for row in rows[1:]) for i in range(len(rows[0]))]
    lines = []
    for r, row in enumerate(rows):
        cells = [cell.ljust(w) if i == 0 or r == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _has(name, k, keys):
    return (f"{name}@{k}" if k else name) in keys
