"""Train and test a model with recbole_bt, the way RecBole's run_recbole.py does; or compare several.

    python run_recbole_bt.py --model=SASRec --dataset=ml-100k --config_files="a.yaml b.yaml" --epochs=5
    python run_recbole_bt.py --models=SASRec,CL4SRec,DuoRec,BTSRec --seeds=3 --dataset=ml-100k
    python run_recbole_bt.py --model=BTSRec --sweep=alpha=0,0.1,0.2 --seeds=2
    python run_recbole_bt.py --models=SASRec,DuoRec --seeds=3 --select=DuoRec:lmd=0.001,0.01,0.1

Any other --key=value is a config override (highest precedence), shared by every run of a comparison. Models:
recbole_bt's own, then RecBole's. A comparison (--models, or --sweep) writes table.md, results.csv and
results.json under --out (default comparison/<dataset>) and reuses the runs already there.
"""
import argparse
import sys

from recbole_bt.errors import ConfigError, RecBoleBTError
from recbole_bt.quick_start import run

COMPARISON_OPTIONS = ("models", "seeds", "sweep", "out", "baselines", "select")


def compare(args, config_file_list):
    from recbole_bt.comparison import parse_seeds, parse_select, parse_sweep, run_comparison

    models = [m.strip() for m in (args.models or args.model).split(",") if m.strip()]
    sweep = parse_sweep(args.sweep) if args.sweep else None
    overrides = sys.argv[1:]
    if sweep and any(a.startswith(f"--{sweep[0]}=") for a in overrides):
        raise ConfigError(f"--{sweep[0]} is swept by --sweep: do not also set it on the command line")
    config_dict = {}
    if sweep:  # the trade-off plot's metrics: HR@1/5/10, coverage@10 and the popularity-bucket hit rates
        config_dict = {"metrics": ["Hit", "NDCG", "MRR", "Coverage", "Hit_Head", "Hit_Mid", "Hit_Tail"], "topk": [1, 5, 10]}
    dataset = args.dataset or "ml-100k"
    baselines = [b.strip() for b in args.baselines.split(",")] if args.baselines else None
    run_comparison(models, args.dataset, parse_seeds(args.seeds), config_file_list, config_dict,
                   out_dir=args.out or f"comparison/{dataset}", sweep=sweep, baselines=baselines, argv=overrides,
                   select=parse_select(args.select))  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", "-m", type=str, default="SASRec", help="model name (default: SASRec)")
    parser.add_argument("--dataset", "-d", type=str, default=None, help="dataset name (default: ml-100k)")
    parser.add_argument("--config_files", type=str, default=None, help="space-separated YAML config files")
    parser.add_argument("--nproc", type=int, default=1, help="number of processes (NCCL on GPUs, gloo on CPU)")
    parser.add_argument("--ip", type=str, default="localhost", help="the ip of the master node")
    parser.add_argument("--port", type=str, default="5678", help="the port of the master node")
    parser.add_argument("--world_size", type=int, default=-1, help="total number of processes")
    parser.add_argument("--group_offset", type=int, default=0, help="global rank offset of this group")
    parser.add_argument("--models", type=str, default=None, help="compare these models (comma-separated)")
    parser.add_argument("--seeds", type=str, default="1", help="comparison: a number of seeds from 2020, or a list")
    parser.add_argument("--sweep", type=str, default=None, help="comparison: key=v1,v2,... one run per value")
    parser.add_argument("--out", type=str, default=None, help="comparison: output folder (default comparison/<dataset>)")
    parser.add_argument("--baselines", type=str, default=None, help="comparison: the rows the improvement is against")
    parser.add_argument("--select", action="append", default=[],
                        help="comparison: MODEL:key=v1,v2,... chosen on validation (first seed); repeatable, or a YAML file")
    args, _ = parser.parse_known_args()  # other --key=value pairs are read by Config, as in RecBole
    # RecBole's Config reads every --key=value of the command line: the comparison's own options are not config
    # each run of a comparison names its model: --model is not an override (nor part of a run's definition)
    own = COMPARISON_OPTIONS + (("model", "m") if args.models or args.sweep or args.select else ())
    sys.argv = [a for a in sys.argv if a.split("=", 1)[0].lstrip("-") not in own]

    config_file_list = args.config_files.strip().split(" ") if args.config_files else None
    try:
        if args.models or args.sweep or args.select:
            compare(args, config_file_list)
            return 0
        run(
            args.model,
            args.dataset,
            config_file_list=config_file_list,
            nproc=args.nproc,
            world_size=args.world_size,
            ip=args.ip,
            port=args.port,
            group_offset=args.group_offset,
        )
    except RecBoleBTError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
