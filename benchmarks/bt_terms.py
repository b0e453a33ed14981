"""Where a Barlow Twins pretraining's loss sits, term by term, at several batch sizes: for each BTPretrain
pretraining checkpoint, over one epoch of its own training sequences (train mode, as it trained; views and dropout
from a fixed seed), at each ``--eval-batches`` size, the batch means of

- the invariance term ``on_diag = sum_i (1 - C_ii)^2`` and the mean ``C_ii`` (1: the two views of a sequence agree
  on every dimension over the batch),
- the redundancy term ``lambda * off_diag`` (``sum_{i != j} C_ij^2``; about ``lambda * D^2 / B`` for independent
  dimensions, the floor a batch of B rows can show),
- the tails of the projector outputs z: the kurtosis of each dimension over the batch (3 for Gaussian rows) and the
  share of each dimension's centred sum of squares carried by the batch's top 1% of rows (about 0.08 for Gaussian
  rows), averaged over dimensions. Heavy tails mean the batch's correlations are set by a few sequences.

An encoder whose terms change with the batch size it is measured at learned batch statistics, not only the
sequences (issue 20: BTPretrain at batch 1024 against 256).

    python benchmarks/bt_terms.py measure <BTPretrain pretraining checkpoint>... --eval-batches 256 1024 --random

``--random``: the first checkpoint's encoder untrained (its config and seed), as a row. The config of each
measurement is the one its checkpoint was trained with (the keys its run was given, less those that steer a run
rather than the model: `RUN_KEYS`), at the measured batch size. `--quick`: a tiny BTPretrain pretrained 2 epochs,
seconds, nothing recorded.
"""
import argparse
import datetime
import os
import re
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import QUICK_DATA, machine, results_dir_of, save, set_threads  # noqa: E402

# keys of a checkpoint's run that say how to run, not what the model is: left out of the rebuilt config
RUN_KEYS = {"model", "dataset", "train_stage", "train_batch_size", "checkpoint_dir", "checkpoint_last", "resume_file",
            "pre_model_path", "pretrain_epochs", "pretrain_stopping_step", "pretrain_min_delta", "epochs", "save_step",
            "show_progress", "user_task_protocols", "user_tasks", "label_ratios"}  # fmt: skip
TOP_SHARE = 0.01  # the rows whose share of each dimension's sum of squares is reported


def batch_measures(model, interaction):
    """One training batch: (on_diag, lambda * off_diag, mean C_ii, kurtosis, top-1% share) of its two views."""
    from recbole_bt.loss import barlow_twins_terms

    z_1, z_2 = model.projected_views(interaction)  # [B D] each
    on_diag, off_diag, c = barlow_twins_terms(z_1, z_2, normalize_rows=False)
    z = z_1 - z_1.mean(dim=0)  # [B D]
    square = z.pow(2)
    kurtosis = (square.pow(2).mean(dim=0) / square.mean(dim=0).pow(2).clamp_min(1e-12)).mean()
    top = max(1, round(TOP_SHARE * len(z)))
    share = (square.topk(top, dim=0).values.sum(dim=0) / square.sum(dim=0).clamp_min(1e-12)).mean()
    return (on_diag.item(), model.lambd * off_diag.item(), c.diagonal().mean().item(), kurtosis.item(), share.item())


def measure(model, train_data, seed=0):
    """The means over one epoch of `train_data`'s batches (of 2 rows or more) of `batch_measures`, as a dict."""
    import torch

    model.train()  # as it trained: the projector's BatchNorm on batch statistics, dropout on
    torch.manual_seed(seed)
    rows = []
    with torch.no_grad():
        for interaction in train_data:
            if len(interaction) >= 2:
                rows.append(batch_measures(model, interaction.to(model.device)))
    names = ["on_diag", "off_diag_weighted", "mean_c_ii", "kurtosis", "top_share"]
    out = {name: statistics.mean(r[j] for r in rows) for j, name in enumerate(names)}
    out.update(loss=out["on_diag"] + out["off_diag_weighted"], batches=len(rows))
    return out


def checkpoint_config(checkpoint, data_path=None):
    """(model, dataset, config dict) of the run that saved `checkpoint`: the keys it was given, less `RUN_KEYS`."""
    saved = checkpoint["config"]
    given = {**saved.file_config_dict, **saved.variable_config_dict, **saved.cmd_config_dict}
    config = {k: v for k, v in given.items() if k not in RUN_KEYS}
    if data_path:
        config["data_path"] = data_path
    return saved["model"], saved["dataset"], config


def measure_checkpoint(path, checkpoint, eval_batches, data_path=None, random_weights=False):
    """{eval batch: measure(...)} of the encoder of the pretraining checkpoint `path` (untrained with
    `random_weights`: the same config and seed)."""
    from recbole_bt.quick_start import prepare

    model, dataset, config = checkpoint_config(checkpoint, data_path)
    by_batch = {}
    for batch in eval_batches:
        run = dict(config, train_stage="pretrain", train_batch_size=batch, checkpoint_dir=tempfile.mkdtemp())
        _, train_data, _, _, trainer = prepare(model, dataset, None, run)
        if not random_weights:
            trainer.model.load_state_dict(checkpoint["state_dict"])
        by_batch[str(batch)] = measure(trainer.model, train_data)
    described = {"trained_batch": checkpoint["config"]["train_batch_size"], "seed": checkpoint["config"]["seed"],
                 "epochs": 0 if random_weights else checkpoint_epochs(path, checkpoint), "dataset": dataset}
    return dict(described, by_batch=by_batch)


def pretraining_checkpoint(path):
    """The checkpoint at `path`, a BTPretrain pretraining's; anything else ends the run in one line."""
    from recbole_bt.checkpoint import read_checkpoint
    from recbole_bt.errors import RecBoleBTError

    try:
        checkpoint = read_checkpoint(path)
    except RecBoleBTError as e:
        raise SystemExit(f"bt_terms.py: {e}") from None
    model, stage = checkpoint["config"]["model"], checkpoint["config"]["train_stage"]
    if model != "BTPretrain" or stage != "pretrain":
        raise SystemExit(f"bt_terms.py: {path} is a {model} checkpoint of train_stage {stage}; it measures BTPretrain "
                         f"pretraining checkpoints")  # fmt: skip
    return checkpoint


def checkpoint_epochs(path, checkpoint):
    """The pretraining epochs behind a checkpoint: its file's number (`{model}-{dataset}-{epoch}.pth`), else its
    own count."""
    match = re.search(r"-(\d+)\.pth$", os.path.basename(path))
    return int(match.group(1)) if match else checkpoint["epoch"] + 1


def label_of(path):
    """A checkpoint's row label: its run folder (the one above `pretrain/`) and file."""
    folder = os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(path))))
    return f"{folder} {os.path.basename(path)}"


def quick_checkpoint(out):
    """A tiny BTPretrain pretrained for 2 epochs; the path of its last checkpoint."""
    from recbole_bt.quick_start import run_recbole_bt

    data = dict(QUICK_DATA)
    folder = os.path.join(out, "bt_terms-quick", "pretrain")
    config = {"train_stage": "pretrain", "pretrain_epochs": 2, "save_step": 1, "seed": 2020, "hidden_size": 8,
              "n_heads": 2, "inner_size": 16, "projector_sizes": [16, 16], "train_batch_size": 32,
              "data_path": data.pop("data_path"), "checkpoint_dir": folder, "show_progress": False}  # fmt: skip
    run_recbole_bt("BTPretrain", data["dataset"], data["config_files"], config)
    return os.path.join(folder, f"BTPretrain-{data['dataset']}-2.pth")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", choices=["measure"])
    parser.add_argument("checkpoints", nargs="*", help="BTPretrain pretraining checkpoints (pretrain/*-<epoch>.pth)")
    parser.add_argument("--eval-batches", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--random", action="store_true", help="also the first checkpoint's encoder untrained")
    parser.add_argument("--data_path", default=None, help="where the checkpoints' dataset is (default: theirs)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="a tiny BTPretrain, seconds, nothing recorded")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
    args = parser.parse_intermixed_args()  # options before or after the checkpoints
    set_threads(args.threads)
    if args.quick:
        args.checkpoints = [quick_checkpoint(os.path.join(os.path.abspath(args.out), "quick"))]
        args.eval_batches, args.random = [8, 32], True
    missing = [p for p in args.checkpoints if not os.path.isfile(p)]
    if not args.checkpoints or missing:
        raise SystemExit(f"no checkpoint file {', '.join(missing) or 'given'}: pass BTPretrain pretraining "
                         f"checkpoints (a study job's pretrain/BTPretrain-<dataset>-<epoch>.pth)")  # fmt: skip
    # every one read and checked before the first is measured
    checkpoints = {path: pretraining_checkpoint(path) for path in args.checkpoints}
    targets = [(f"random weights ({label_of(args.checkpoints[0])})", args.checkpoints[0], True)] if args.random else []
    targets += [(label_of(p), p, False) for p in args.checkpoints]
    results, rows = [], []
    for label, path, random_weights in targets:
        result = dict(measure_checkpoint(path, checkpoints[path], args.eval_batches, args.data_path, random_weights),
                      label=label)
        results.append(result)
        for batch, m in result["by_batch"].items():
            rows.append([label, result["trained_batch"] if not random_weights else "-", result["epochs"], batch,
                         m["batches"], f"{m['on_diag']:.3f}", f"{m['off_diag_weighted']:.3f}", f"{m['loss']:.3f}",
                         f"{m['mean_c_ii']:.4f}", f"{m['kurtosis']:.2f}", f"{m['top_share']:.3f}"])  # fmt: skip
    header = ["encoder", "trained at batch", "epochs", "measured at batch", "batches", "on_diag", "lambda * off_diag",
              "loss", "mean C_ii", "kurtosis of z", "top-1% rows' share"]  # fmt: skip
    payload = {"date": datetime.date.today().isoformat(), "machine": machine(args.threads), "argv": sys.argv,
               "results": results}  # fmt: skip
    save(f"bt_terms-{results[0]['dataset']}", payload, record=not (args.quick or args.no_record), rows=rows,
         header=header, results_dir=results_dir_of(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
