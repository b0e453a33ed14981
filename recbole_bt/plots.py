"""Figures of a comparison. Need matplotlib (the ``plot`` extra: ``pip install .[plot]``); without it each
function returns None.

- `plot_sweep`: the BT-SR paper's trade-off plot of a parameter sweep (`recbole_bt.comparison`, ``--sweep``):
  HR@1/5/10, coverage@10 and the popularity-bucket hit rates against the swept value, mean ± std over seeds.
- `plot_curves`: learning curves, the validation metric after every epoch of each run, one colour per label.
"""
import statistics

PANELS = (("accuracy", ("hit@1", "hit@5", "hit@10")), ("catalog coverage", ("coverage@10",)),
          ("hit@10 by item popularity", ("hit_head@10", "hit_mid@10", "hit_tail@10")))  # fmt: skip


def sweep_series(records, key):
    """{(group without the swept value, metric): [(value, mean, std), ...]} over the finished runs."""
    series = {}
    for r in records:
        if r["status"] != "ok" or key not in r["overrides"]:
            continue
        row = r["group"].replace(f" {key}={r['overrides'][key]}", "")
        for metric, value in r["test_result"].items():
            series.setdefault((row, metric), {}).setdefault(r["overrides"][key], []).append(value)
    return {k: [(v, statistics.mean(x), statistics.stdev(x) if len(x) > 1 else 0.0) for v, x in sorted(by_value.items())]
            for k, by_value in series.items()}  # fmt: skip


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def plot_sweep(records, key, path):
    """Write the trade-off plot to `path` (PNG); returns the path, or None without matplotlib or numeric values."""
    plt = _pyplot()
    if plt is None:
        return None
    series = sweep_series(records, key)
    if not series or not all(isinstance(v, (int, float)) for points in series.values() for v, _, _ in points):
        return None
    one_row = len({row for row, _ in series}) == 1
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.2))
    for ax, (title, metrics) in zip(axes, PANELS):
        for (row, metric), points in series.items():
            if metric in metrics:
                xs, means, stds = zip(*points)
                ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=metric if one_row else f"{row} {metric}")
        ax.set(xlabel=key, title=title)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return path


def plot_curves(curves, path, metric="valid NDCG@10"):
    """Write learning curves to `path` (PNG): `curves` {label: [[value after epoch 1, 2, ...] of each run]}, one
    colour per label, one line per run (seed); returns the path, or None without matplotlib or curves."""
    plt = _pyplot()
    if plt is None or not any(runs for runs in curves.values()):
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for colour, (label, runs) in enumerate(curves.items()):
        for i, values in enumerate(runs):
            ax.plot(range(1, len(values) + 1), values, color=f"C{colour}", lw=1, alpha=0.8, label=label if i == 0 else None)
    ax.set(xlabel="epoch", ylabel=metric, title="learning curves (one line per seed)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return path
