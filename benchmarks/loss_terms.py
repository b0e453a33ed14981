"""How much an auxiliary loss weighs in training, measured: per run, the next-item loss and the weighted auxiliary
term (CL4SRec's and DuoRec's ``lmd * L_CL``, BTSRec's ``alpha * L_BT``), their gradients' norms over the model's
parameters and the cosine between the two, at the run's random initialisation and at its best checkpoint.

    # a converged run's folder (benchmarks/baseline.py converge; its checkpoints stay on the machine that trained it)
    python benchmarks/loss_terms.py measure benchmarks/out/baseline-runs/CL4SRec-lmd=0.001-seed2020-* --batches 20

Per training batch (the run's own dataloader, in train mode): the loss with the run's weight, then with the weight
set to 0 from the same random state (the next-item term comes first in every model here, so it sees the same
dropout masks; the tool checks that it equals the first call's ``L_pred``). The auxiliary gradient is the
difference of the two gradients. A weight whose gradient is a small fraction of the next-item one, or points away
from it (cosine < 0), is the measured form of "the term adds little" or "the term works against the next item".
`--quick`: a tiny CL4SRec run trained for 2 epochs, seconds.
"""
import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import QUICK_DATA, machine, results_dir_of, save, set_threads  # noqa: E402

WEIGHTS = {"CL4SRec": "lmd", "DuoRec": "lmd", "BTSRec": "alpha"}  # the weight whose 0 switches the term off


def flat_grad(model):
    import torch

    return torch.cat([p.grad.reshape(-1) if p.grad is not None else p.new_zeros(p.numel()) for p in model.parameters()])


def batch_terms(model, interaction, key, seed):
    """One batch: (next-item loss, weighted auxiliary term, |grad next-item|, |grad auxiliary|, cosine)."""
    import torch

    weight = getattr(model, key)
    torch.manual_seed(seed)
    model.zero_grad()
    total = model.calculate_loss(interaction)
    total.backward()
    g_total, l_total, l_pred = flat_grad(model), total.item(), model.loss_terms["L_pred"].item()
    setattr(model, key, 0)
    try:
        torch.manual_seed(seed)
        model.zero_grad()
        pred = model.calculate_loss(interaction)
        pred.backward()
    finally:
        setattr(model, key, weight)
    if abs(pred.item() - l_pred) > 1e-4 * max(1.0, abs(l_pred)):
        raise RuntimeError(f"the next-item loss without the auxiliary term ({pred.item():.6f}) differs from the one "
                           f"beside it ({l_pred:.6f}): its random draws moved, the split would be wrong")  # fmt: skip
    g_pred = flat_grad(model)
    g_aux = g_total - g_pred
    cosine = float(torch.nn.functional.cosine_similarity(g_pred, g_aux, dim=0)) if g_aux.norm() > 0 else 0.0
    return pred.item(), l_total - pred.item(), g_pred.norm().item(), g_aux.norm().item(), cosine


def measure(model, train_data, batches, seed=0):
    """Means over the first `batches` training batches of `batch_terms`, as a dict."""
    key = WEIGHTS[type(model).__name__]
    model.train()
    rows = []
    for i, interaction in enumerate(train_data):
        if i == batches:
            break
        rows.append(batch_terms(model, interaction.to(model.device), key, seed + i))
    names = ["L_pred", "aux", "grad_pred", "grad_aux", "cosine"]
    out = {name: statistics.mean(r[j] for r in rows) for j, name in enumerate(names)}
    out.update(weight=f"{key} {getattr(model, key)}", batches=len(rows), grad_ratio=out["grad_aux"] / out["grad_pred"])
    return out


def measure_folder(folder, batches):
    """{state: measure(...)} of a run folder: its random initialisation and, if it has one, its best checkpoint."""
    import torch

    from benchmarks.baseline import best_checkpoints
    from recbole_bt.quick_start import prepare

    with open(os.path.join(folder, "job.json")) as f:
        job = json.load(f)
    config = dict(job["config"], checkpoint_dir=tempfile.mkdtemp())
    _, train_data, _, _, trainer = prepare(config["model"], job["dataset"], job.get("config_files"), config)
    states = {"initial": measure(trainer.model, train_data, batches)}
    checkpoints = best_checkpoints(folder)
    if checkpoints:
        trainer.model.load_state_dict(torch.load(checkpoints[-1], map_location="cpu", weights_only=False)["state_dict"])
        states[checkpoint_state(folder)] = measure(trainer.model, train_data, batches)
    return job, states


def checkpoint_state(folder):
    """'best checkpoint' of a finished run; of a run still training (no result.json), how far it had got."""
    if os.path.exists(os.path.join(folder, "result.json")):
        return "best checkpoint"
    curve, epochs = os.path.join(folder, "curve.jsonl"), 0
    if os.path.exists(curve):
        with open(curve) as f:
            epochs = sum(1 for _ in f)
    return f"best checkpoint so far (in progress, {epochs} epochs run)"


def quick_folder(out):
    """A tiny CL4SRec run (2 epochs) in a baseline-style folder: job.json, saved/ and result.json."""
    from recbole_bt.quick_start import run_recbole_bt

    data = dict(QUICK_DATA)
    config = {"model": "CL4SRec", "lmd": 0.1, "epochs": 2, "seed": 2020, "data_path": data.pop("data_path"),
              "hidden_size": 8, "n_heads": 2, "inner_size": 16, "show_progress": False}  # fmt: skip
    folder = os.path.join(out, "CL4SRec-quick")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "job.json"), "w") as f:
        json.dump(dict(data, label="CL4SRec-quick", config=config), f)
    result = run_recbole_bt("CL4SRec", data["dataset"], data.get("config_files"),
                            dict(config, checkpoint_dir=os.path.join(folder, "saved")))  # fmt: skip
    with open(os.path.join(folder, "result.json"), "w") as f:  # finished, as baseline.py marks its runs
        json.dump({"test": result["test_result"]}, f, default=float)
    return folder


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", choices=["measure"])
    parser.add_argument("folders", nargs="*", help="run folders (job.json, saved/ with the best checkpoint)")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="a tiny CL4SRec run, seconds, nothing recorded")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
    args = parser.parse_args()
    set_threads(args.threads)
    folders = [quick_folder(os.path.join(os.path.abspath(args.out), "quick"))] if args.quick else args.folders
    missing = [f for f in folders if not os.path.exists(os.path.join(f, "job.json"))]
    if not folders or missing:
        raise SystemExit(f"no job.json in {', '.join(missing) or 'any folder given'}: pass benchmarks/baseline.py "
                         f"run folders")
    results, rows = [], []
    for folder in folders:
        job, states = measure_folder(folder, args.batches)
        label, seed, dataset = job["label"], job["config"]["seed"], job["dataset"]
        results.append({"folder": os.path.basename(folder), "label": label, "seed": seed, "dataset": dataset,
                        "states": states})
        for state, m in states.items():
            rows.append([label, seed, state, m["weight"], m["batches"], f"{m['L_pred']:.4f}", f"{m['aux']:.4g}",
                         f"{m['aux'] / m['L_pred']:.2%}", f"{m['grad_pred']:.4g}", f"{m['grad_aux']:.4g}",
                         f"{m['grad_ratio']:.3f}", f"{m['cosine']:+.3f}"])  # fmt: skip
    header = ["run", "seed", "weights", "auxiliary weight", "batches", "next-item loss", "weighted auxiliary term",
              "term / loss", "gradient norm, next-item", "gradient norm, auxiliary", "gradient ratio",
              "cosine of the gradients"]  # fmt: skip
    payload = {"date": datetime.date.today().isoformat(), "machine": machine(args.threads), "argv": sys.argv,
               "results": results}  # fmt: skip
    save(f"loss_terms-{results[0]['dataset']}", payload, record=not (args.quick or args.no_record), rows=rows,
         header=header, results_dir=results_dir_of(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
