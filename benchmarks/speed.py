"""Training speed against the arithmetic: epoch time, targets/s and % of the FLOP floor, per variant, side by side.

    python benchmarks/speed.py epoch --dataset ml-1m --data_path ../shared/datasets --threads 1 \
        --set MAX_ITEM_LIST_LENGTH=200,train_batch_size=128 \
        --run plain:fused_attention=false,fused_ce=false,length_bucketing=false \
        --run default: --run bf16:precision=bf16 --batches 20

Each run (`LABEL:key=value,...`, any recbole_bt config key; `model` defaults to SASRec) goes in its own process,
one at a time (`--parallel 1`, the default here: runs side by side would share the cores they are timed on).
A run reports:

- the FLOPs of one training epoch of SASRec's next-item computation (forward x 3 for forward + backward):
  Q/K/V/output projections and feed-forward (8 H^2 + 4 H I per position and layer), attention scores and
  weighted sums (2 H n(n+1) per window of n real positions and layer, causal), logits (2 H N per target);
  at the real positions, and at the slots the run's batches compute (rows padded to their batch's length,
  attention dense). Embedding lookups, LayerNorm, softmax and dropout move memory and count no FLOPs;
- this machine's matmul throughput at the model's own shapes (the logits [P H] x [H N], the encoder's
  [T H] x [H 3H], [T H] x [H I], [T I] x [I H], attention [n d] x [d n]), forward + backward, in fp32 and bf16,
  at the run's thread count;
- the epoch time (measured over `--batches` batches after 2 warm-up ones, times the batches of an epoch; a
  bucketed epoch's batches come in random order, so its first batches are a sample; 0 = the whole epoch),
  training targets per second, the floor (real-position FLOPs / the throughput at the run's precision) and
  the % of the floor reached, the share of the time spent in the dataloader (RecBole's collate and
  Interaction), and the seconds of one validation (full ranking of every validation user); `--profile` adds
  the top operators of one training step.

A run's `malloc=glibc` (not a config key) leaves glibc's malloc its defaults, against the workers' `MALLOC_CACHE`
(`benchmarks/harness.py`): e.g. BTPretrain's pretraining at batch 1024, each way:

    python benchmarks/speed.py epoch --dataset ml-1m --data_path ../shared/datasets --threads 1 --batches 6 \
        --set model=BTPretrain,train_stage=pretrain,MAX_ITEM_LIST_LENGTH=200,n_heads=1 \
        --run cache:train_batch_size=1024 --run glibc:train_batch_size=1024,malloc=glibc

    # the loss alone, forward + backward, per catalog size: plain CE, chunked CE, SCE (max, union)
    python benchmarks/speed.py loss --threads 1 --positions 14400 --items 1000,3706,10000,30000,100000,300000

    # torch.compile on the attention core (scores, causal mask, softmax, dropout, weighted sum), forward + backward,
    # against eager and against the fused path's explicit dropout attention; compile and recompile seconds
    python benchmarks/speed.py compile --threads 1

    # a lever's quality: validation NDCG@10 after every epoch, per run (e.g. precision x seed), side by side
    python benchmarks/speed.py curves --dataset ml-1m --data_path ../shared/datasets --threads 1 --parallel 2 \
        --set MAX_ITEM_LIST_LENGTH=200,train_batch_size=128,epochs=10 \
        --run fp32-s1:seed=1 --run bf16-s1:seed=1,precision=bf16 --run fp32-s2:seed=2 --run bf16-s2:seed=2,precision=bf16
"""
import argparse
import datetime
import itertools
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import (  # noqa: E402
    GLIBC_MALLOC, add_common_arguments, data_spec, machine, parse_run, peak_rss_mb, results_dir_of, run_workers,
    save, set_threads,
)  # fmt: skip

MALLOC_ENVS = {"cache": {}, "glibc": GLIBC_MALLOC}  # a run's `malloc`: the workers' MALLOC_CACHE, or glibc's own

WARMUP_BATCHES = 2


def epoch_flops(lengths, n_targets, padded_lengths, hidden, inner, n_layers, n_items):
    """FLOPs of one training epoch (forward + backward = 3 x forward), split by part, at the real positions and
    at the computed slots. `lengths` [rows]: real positions per row; `padded_lengths` [rows]: the length each row
    is computed at (its batch's); `n_targets`: training targets (loss positions) of the epoch."""
    import numpy as np

    n, padded = np.asarray(lengths, dtype=np.float64), np.asarray(padded_lengths, dtype=np.float64)
    per_position = n_layers * (8 * hidden**2 + 4 * hidden * inner)
    real = {
        "encoder": 3 * per_position * n.sum(),
        "attention": 3 * n_layers * 2 * hidden * (n * (n + 1)).sum(),
        "logits": 3 * 2 * hidden * n_items * n_targets,
    }
    computed = {
        "encoder": 3 * per_position * padded.sum(),
        "attention": 3 * n_layers * 4 * hidden * (padded**2).sum(),
        "logits": real["logits"],  # the loss reads only the target positions
    }
    return real, computed


def floor(real, gflops, hidden, inner):
    """Seconds of the real-position FLOPs `real` (`epoch_flops`) at the throughputs `gflops` {shape: GFLOP/s}:
    the encoder's FLOPs split over its shapes (Q/K/V and output projections at qkv's speed, the feed-forward's two)."""
    encoder = 8 * hidden**2 + 4 * hidden * inner
    shares = {"qkv": 8 * hidden**2 / encoder, "ffn_in": 2 * hidden * inner / encoder, "ffn_out": 2 * hidden * inner / encoder}
    seconds = real["logits"] / (gflops["logits"] * 1e9) + real["attention"] / (gflops["attention"] * 1e9)
    return seconds + sum(real["encoder"] * share / (gflops[shape] * 1e9) for shape, share in shares.items())


def matmul_throughput(shapes, dtype, repeats=5):
    """{name: GFLOP/s} of forward + backward of x [M K] @ w [K N] (w a parameter) for each (name, M, K, N, batch)."""
    import torch

    result = {}
    for name, m, k, n, batch in shapes:
        x = torch.randn(batch, m, k, dtype=dtype, requires_grad=True)
        w = torch.randn(batch, k, n, dtype=dtype, requires_grad=True)

        def step():
            (x @ w).backward(torch.ones(batch, m, n, dtype=dtype))

        step()
        start = time.perf_counter()
        for _ in range(repeats):
            step()
        seconds = (time.perf_counter() - start) / repeats
        result[name] = round(3 * 2 * batch * m * k * n / seconds / 1e9, 1)
    return result


def padded_lengths(train_data, lengths):
    """The length each training row is computed at in one epoch: its batch's longest row (bucketed loaders cut
    batches to it), else MAX_ITEM_LIST_LENGTH."""
    import numpy as np

    if not hasattr(train_data, "sequence_fields"):
        return np.full(len(lengths), train_data.config["MAX_ITEM_LIST_LENGTH"])
    out = np.empty(len(lengths))
    for batch in train_data.sampler.batches():
        out[batch] = lengths[batch].max()
    return out


class Slice:
    """A training DataLoader cut to WARMUP_BATCHES untimed batches and then `n_batches` (0: the rest of the epoch),
    counting the timed batches and their targets from when the warm-up is done."""

    def __init__(self, loader, n_batches, target_field):
        self.loader, self.n_batches, self.target_field = loader, n_batches, target_field
        self.start, self.batches, self.targets, self.data_seconds = None, 0, 0, 0.0
        self.warmup = min(WARMUP_BATCHES, len(loader) - 1)  # a tiny epoch: fewer warm-up batches

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        stop = None if self.n_batches == 0 else self.warmup + self.n_batches
        batches = itertools.islice(iter(self.loader), stop)
        for i in itertools.count():
            asked = time.perf_counter()
            if i == self.warmup:
                self.start = asked
            batch = next(batches, None)
            if batch is None:
                return
            if i >= self.warmup:
                self.data_seconds += time.perf_counter() - asked  # RecBole's collate and Interaction
                self.batches += 1
                self.targets += int((batch[self.target_field] > 0).sum()) if self.target_field in batch else len(batch)
            yield batch


def profile_step(trainer, train_data, rows=15):
    """The top operators (self CPU time) of one training step."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        trainer.train_one_epoch(Slice(train_data, 1, ""), 0)
    ops = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in ops) or 1
    return [{"op": e.key, "self_ms": round(e.self_cpu_time_total / 1e3, 1), "share": round(e.self_cpu_time_total / total, 3),
             "calls": e.count} for e in ops[:rows]]  # fmt: skip


def worker(job):
    import torch

    from recbole_bt.data import target_list_field
    from recbole_bt.quick_start import prepare

    set_threads(job["threads"])
    config, train_data, valid_data, _, trainer = prepare(job["config"]["model"], job["dataset"], job.get("config_files"), job["config"])
    trainer.eval_collector.data_collect(train_data)
    dataset = train_data._dataset
    target_field = target_list_field(config)
    lengths = dataset.inter_feat[dataset.item_list_length_field].numpy()
    n_targets = int((dataset.inter_feat[target_field] > 0).sum()) if target_field in dataset.inter_feat else len(lengths)
    hidden, inner, layers = config["hidden_size"], config["inner_size"], config["n_layers"]
    n_items = dataset.item_num
    padded = padded_lengths(train_data, lengths)  # one draw of a bucketed epoch's batches
    real, computed = epoch_flops(lengths, n_targets, padded, hidden, inner, layers, n_items)

    per_batch_rows = min(config["train_batch_size"], len(lengths))
    positions = int(lengths.mean() * per_batch_rows)
    targets = max(1, n_targets * per_batch_rows // len(lengths))
    mean_len, heads = int(lengths.mean()), config["n_heads"]
    shapes = [("logits", targets, hidden, n_items, 1), ("qkv", positions, hidden, 3 * hidden, 1),
              ("ffn_in", positions, hidden, inner, 1), ("ffn_out", positions, inner, hidden, 1),
              ("attention", mean_len, hidden // heads, mean_len, per_batch_rows * heads)]  # fmt: skip
    throughput = {name: [matmul_throughput(shapes, dtype) for _ in range(3)]
                  for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))}  # fmt: skip
    throughput = {name: {k: max(r[k] for r in rounds) for k in rounds[0]}
                  for name, rounds in throughput.items()}  # the best of the rounds: the machine, not its neighbours  # fmt: skip

    def floor_seconds(precision):
        return floor(real, throughput[precision], hidden, inner)

    precision = config["precision"] or "fp32"
    result = {"rows": len(lengths), "targets": n_targets, "batches_per_epoch": len(train_data),
              "real_positions": int(lengths.sum()), "computed_slots": int(padded.sum()),
              "flops_real": {k: float(v) for k, v in real.items()},
              "flops_computed": {k: float(v) for k, v in computed.items()},
              "gflops": throughput, "floor_seconds": round(floor_seconds(precision), 6),
              "floor_seconds_fp32": round(floor_seconds("fp32"), 6), "precision": precision,
              "shape": {"hidden": hidden, "inner": inner}}  # fmt: skip
    if job.get("profile"):
        result["profile"] = profile_step(trainer, train_data)

    sliced = Slice(train_data, job["batches"], target_field)
    trainer.train_one_epoch(sliced, 0)
    seconds = time.perf_counter() - sliced.start
    epoch_seconds = seconds / sliced.batches * len(train_data)  # whole epoch: the warm-up batches at the same pace
    start = time.perf_counter()
    trainer.validate(valid_data)  # full ranking of every validation user
    valid_seconds = time.perf_counter() - start
    result.update(batches_timed=sliced.batches, seconds_timed=round(seconds, 2), epoch_seconds=round(epoch_seconds, 3),
                  data_share=round(sliced.data_seconds / seconds, 4), valid_seconds=round(valid_seconds, 2),
                  targets_per_second=round(sliced.targets / seconds), floor_pct=round(100 * result["floor_seconds"] / epoch_seconds, 1),
                  label=job["label"], config=job["config"], peak_rss_mb=round(peak_rss_mb()))  # fmt: skip
    with open(job["out"], "w") as f:
        json.dump(result, f)


LOSSES = ("CE", "CE-chunked", "SCE-max", "SCE-union")
PLAIN_CE_LIMIT_BYTES = 4 << 30  # plain CE's [P N] logits (and their gradient) beyond this are not attempted


def loss_worker(job):
    """Seconds of forward + backward of each loss on random hidden states [P H] and a catalog of N items."""
    import torch
    import torch.nn.functional as F

    from recbole_bt.loss import linear_cross_entropy, scalable_cross_entropy

    set_threads(job["threads"])
    torch.manual_seed(0)
    positions, hidden_size, items = job["positions"], job["hidden"], job["items"]
    hidden = torch.randn(positions, hidden_size, requires_grad=True)
    weight = (torch.randn(items, hidden_size) / hidden_size**0.5).requires_grad_()
    targets = torch.randint(1, items, (positions,))
    runs = {
        "CE": lambda: F.cross_entropy(hidden @ weight.T, targets),
        "CE-chunked": lambda: linear_cross_entropy(hidden, weight, targets),
        "SCE-max": lambda: scalable_cross_entropy(hidden, targets, weight, reduction="max"),
        "SCE-union": lambda: scalable_cross_entropy(hidden, targets, weight, reduction="union"),
    }
    result = {"label": job["label"], "items": items, "positions": positions, "seconds": {}}
    for name in LOSSES:
        if name == "CE" and 2 * 4 * positions * items > PLAIN_CE_LIMIT_BYTES:
            result["seconds"][name] = None
            continue
        runs[name]().backward()  # warm-up
        times = []
        for _ in range(job["repeats"]):
            start = time.perf_counter()
            runs[name]().backward()
            times.append(time.perf_counter() - start)
        result["seconds"][name] = round(sorted(times)[len(times) // 2], 4)
    result["peak_rss_mb"] = round(peak_rss_mb())
    with open(job["out"], "w") as f:
        json.dump(result, f)


def loss_tables(results):
    header = ["catalog items"] + [f"{name} s" for name in LOSSES] + ["SCE-max / CE-chunked"]
    rows = []
    for r in results:
        if "failed" in r:
            rows.append([r["label"], r["failed"]] + [""] * (len(header) - 2))
            continue
        sec = r["seconds"]
        rows.append([f"{r['items']:,}"] + ["-" if sec[n] is None else sec[n] for n in LOSSES]
                    + [round(sec["SCE-max"] / sec["CE-chunked"], 2)])  # fmt: skip
    pays = [r["items"] for r in results if "failed" not in r and r["seconds"]["SCE-max"] < r["seconds"]["CE-chunked"]]
    extra = (f"- SCE (max) is cheaper than chunked full CE from {min(pays):,} items on (of those measured)" if pays
             else "- SCE (max) is not cheaper than chunked full CE at any catalog size measured")
    return header, rows, extra + "; `-`: plain CE's logits over 4 GiB, not attempted"


def compile_worker(job):
    """Seconds per forward + backward of the attention core at [B heads L d]: eager (RecBole's ops), compiled
    (torch.compile, dynamic shapes) and the fused path's `_dropout_attention`; compile and recompile seconds."""
    import torch
    import torch.nn.functional as F

    from recbole_bt.model.attention import FusedMultiHeadAttention

    set_threads(job["threads"])
    batch, heads, length, dim, p = job["shape"]
    q, k, v = [torch.randn(batch, heads, length, dim, requires_grad=True) for _ in range(3)]

    def core(q, k, v):
        scores = q @ k.transpose(-1, -2) / dim**0.5
        causal = torch.ones(q.shape[-2], q.shape[-2], dtype=torch.bool, device=q.device).triu(1)
        return F.dropout(torch.softmax(scores.masked_fill(causal, -10000.0), -1), p) @ v

    fused = FusedMultiHeadAttention.__new__(FusedMultiHeadAttention)
    fused.sqrt_attention_head_size = dim**0.5

    def seconds(fn, *tensors, repeats=3):
        fn(*tensors).sum().backward()
        start = time.perf_counter()
        for _ in range(repeats):
            fn(*tensors).sum().backward()
        return round((time.perf_counter() - start) / repeats, 3)

    start = time.perf_counter()
    compiled = torch.compile(core, dynamic=True)
    compiled(q, k, v).sum().backward()
    compile_seconds = time.perf_counter() - start
    shorter = [t[:, :, : length * 3 // 4].detach().requires_grad_() for t in (q, k, v)]
    start = time.perf_counter()
    compiled(*shorter).sum().backward()
    result = {"label": job["label"], "shape": job["shape"], "eager": seconds(core, q, k, v),
              "compiled": seconds(compiled, q, k, v), "fused_path": seconds(lambda *t: fused._dropout_attention(*t, None, p), q, k, v),
              "compile_seconds": round(compile_seconds, 1), "new_length_seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
    with open(job["out"], "w") as f:
        json.dump(result, f)


def compile_tables(results):
    header = ["shape [B heads L d], p", "eager s", "torch.compile s", "fused path s", "compile s", "first call at a new length s"]
    rows = [[r["label"], r["eager"], r["compiled"], r["fused_path"], r["compile_seconds"], r["new_length_seconds"]]
            if "failed" not in r else [r["label"], r["failed"], "", "", "", ""] for r in results]  # fmt: skip
    return header, rows, "- per forward + backward of the attention core; compile: the first call, tracing and C++ build"


def curves_worker(job):
    """RecBole's `fit` for the configured epochs (no early stop), validation NDCG@10 after each epoch."""
    from recbole_bt.quick_start import prepare

    set_threads(job["threads"])
    config, train_data, valid_data, _, trainer = prepare(job["config"]["model"], job["dataset"], job.get("config_files"), job["config"])
    curve, start = [], time.perf_counter()

    def record_point(epoch_idx, valid_score):  # fit's callback, after each validation
        curve.append({"epoch": len(curve) + 1, "valid_ndcg@10": trainer.last_valid_result["ndcg@10"],
                      "seconds": round(time.perf_counter() - start, 1)})  # fmt: skip
        print(json.dumps(curve[-1]), flush=True)

    trainer.fit(train_data, valid_data, saved=False, show_progress=False, callback_fn=record_point)
    result = {"curve": curve, "label": job["label"], "config": job["config"], "peak_rss_mb": round(peak_rss_mb())}
    with open(job["out"], "w") as f:
        json.dump(result, f)


def curve_tables(results):
    """One column per run: validation NDCG@10 after each epoch; then mean +- std per group of runs (label up to '-s')."""
    import numpy as np

    ok = [r for r in results if "failed" not in r]
    epochs = max((len(r["curve"]) for r in ok), default=0)
    header = ["epoch"] + [r["label"] for r in ok]
    rows = [[e + 1] + [f"{r['curve'][e]['valid_ndcg@10']:.4f}" if e < len(r["curve"]) else "" for r in ok] for e in range(epochs)]
    groups = {}
    for r in ok:
        groups.setdefault(r["label"].rsplit("-s", 1)[0], []).append(r)
    lines = []
    for name, runs in groups.items():
        best = [max(c["valid_ndcg@10"] for c in r["curve"]) for r in runs]
        last = [r["curve"][-1]["valid_ndcg@10"] for r in runs]
        secs = [r["curve"][-1]["seconds"] / len(r["curve"]) for r in runs]
        lines.append(f"- {name}: best validation NDCG@10 {np.mean(best):.4f} +- {np.std(best):.4f}, last "
                     f"{np.mean(last):.4f} +- {np.std(last):.4f} ({len(runs)} runs; {np.mean(secs):.0f} s per epoch "
                     f"with its validation)")  # fmt: skip
    failed = [f"- {r['label']}: {r['failed']}" for r in results if "failed" in r]
    return header, rows, "\n".join(lines + failed)


def tables(results):
    header = ["run", "precision", "epoch s", "targets/s", "floor s", "% of floor", "x first run", "slots computed / real",
              "data loading share", "validation s", "GFLOP/s logits fp32 / bf16", "peak RSS MB"]  # fmt: skip
    rows, first = [], None
    ok = [r for r in results if "failed" not in r]
    best = {p: {k: max(r["gflops"][p][k] for r in ok) for k in ok[0]["gflops"][p]} for p in ("fp32", "bf16")} if ok else {}
    for r in results:
        if "failed" in r:
            rows.append([r["label"], r["failed"]] + [""] * (len(header) - 2))
            continue
        first = first or r
        g = best
        floor_s = floor(r["flops_real"], best[r["precision"]], r["shape"]["hidden"], r["shape"]["inner"])
        rows.append([r["label"], r["precision"], round(r["epoch_seconds"], 2), r["targets_per_second"], round(floor_s, 2),
                     round(100 * floor_s / r["epoch_seconds"], 1), round(r["epoch_seconds"] / max(first["epoch_seconds"], 1e-9), 2),
                     round(r["computed_slots"] / r["real_positions"], 2), f"{100 * r['data_share']:.1f}%", r["valid_seconds"],
                     f"{g['fp32']['logits']} / {g['bf16']['logits']}", r["peak_rss_mb"]])  # fmt: skip
    extra = []
    for r in results:
        if "profile" in r:
            ops = ", ".join(f"{o['op']} {o['self_ms']} ms ({100 * o['share']:.0f}%)" for o in r["profile"][:8])
            extra.append(f"- profile of one step, {r['label']}: {ops}")
    if first is not None:
        f, c = first["flops_real"], first["flops_computed"]
        extra.append(f"- FLOPs of an epoch (first run), at real positions / at the slots it computes: encoder "
                     f"{f['encoder'] / 1e12:.3f} / {c['encoder'] / 1e12:.3f} T, attention {f['attention'] / 1e12:.3f} / "
                     f"{c['attention'] / 1e12:.3f} T, logits {f['logits'] / 1e12:.3f} T")  # fmt: skip
        extra.append(f"- matmul throughput at the model's shapes, GFLOP/s of forward + backward, the best of the runs' "
                     f"measurements (each the best of 3 rounds), used for every run's floor: fp32 {best['fp32']}, bf16 {best['bf16']}")
        extra.append("- floor: the epoch's FLOPs at real positions / that throughput at the run's precision; "
                     "% of floor = floor / epoch time")
    return header, rows, "\n".join(extra)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bench", choices=["epoch", "curves", "loss", "compile", "_worker"])
    add_common_arguments(parser, "ml-1m")
    parser.add_argument("--model", default="SASRec")
    parser.add_argument("--batches", type=int, default=20, help="batches timed (0: the whole epoch)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--positions", type=int, default=14400, help="loss: hidden states per batch (ML-1M, L=200, batch 128)")
    parser.add_argument("--hidden", type=int, default=64, help="loss: hidden size")
    parser.add_argument("--items", default="1000,3706,10000,30000,100000,300000", help="loss: catalog sizes")
    parser.add_argument("--repeats", type=int, default=3, help="loss: timed repeats (median)")
    args = parser.parse_args()
    if args.bench == "_worker":
        job = json.loads(args.job)
        workers = {"curves": curves_worker, "loss": loss_worker, "compile": compile_worker}
        return workers.get(job.get("bench"), worker)(job) or 0
    data, base = data_spec(args)
    base.update(parse_run(args.set)[1] if args.set else {})
    if args.quick:
        args.batches = 2
        if args.bench == "curves":
            base["epochs"] = min(base.get("epochs", 2), 2)
    jobs = []
    if args.bench == "loss":
        sizes = [int(n) for n in args.items.split(",")] if not args.quick else [50, 200]
        positions = args.positions if not args.quick else 64
        jobs = [dict(label=f"{n:,} items", bench="loss", items=n, positions=positions, hidden=args.hidden,
                     repeats=args.repeats) for n in sizes]  # fmt: skip
    if args.bench == "compile":
        shape = [128, 2, 200, 32, 0.5] if not args.quick else [4, 1, 8, 4, 0.5]
        jobs = [dict(label=f"{shape[:4]}, {shape[4]}", bench="compile", shape=shape)]
    for text in (args.run or ["default:"]) if args.bench not in ("loss", "compile") else []:
        label, overrides = parse_run(text)
        config = dict(base, model=args.model)
        config.update(overrides)  # a run may name its own model
        malloc = config.pop("malloc", "cache")
        if malloc not in MALLOC_ENVS:
            parser.error(f"run {text!r}: malloc must be one of {sorted(MALLOC_ENVS)}, got {malloc!r}")
        env = MALLOC_ENVS[malloc]
        jobs.append(dict(data, label=label or "default", config=config, batches=args.batches, profile=args.profile,
                         bench=args.bench, env=env))  # fmt: skip
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    results = run_workers(__file__, jobs, args.parallel or 1, args.threads, os.path.join(os.path.abspath(args.out), f"speed-{stamp}"))
    data = dict(data, dataset="synthetic") if args.bench in ("loss", "compile") else data
    payload = {"date": datetime.date.today().isoformat(), "machine": machine(args.threads), "dataset": data["dataset"],
               "argv": sys.argv, "results": results}  # fmt: skip
    header, rows, extra = {"curves": curve_tables, "loss": loss_tables, "compile": compile_tables}.get(args.bench, tables)(results)
    name = f"speed-{args.bench}-{data['dataset']}" + (f"-{args.threads}thread" if args.bench != "curves" else "")
    save(name, payload, record=not (args.quick or args.no_record), rows=rows,
         header=header, results_dir=results_dir_of(args), extra=extra)  # fmt: skip
    return 1 if any("failed" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
