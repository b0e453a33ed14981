"""Train and test a model with recbole_bt, the way RecBole's run_recbole.py does.

    python run_recbole_bt.py --model=SASRec --dataset=ml-100k --config_files="a.yaml b.yaml" --epochs=5

Any --key=value is a config override (highest precedence). Models: recbole_bt's own, then RecBole's.
"""
import argparse
import sys

from recbole_bt.errors import RecBoleBTError
from recbole_bt.quick_start import run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", "-m", type=str, default="SASRec", help="model name (default: SASRec)")
    parser.add_argument("--dataset", "-d", type=str, default=None, help="dataset name (default: ml-100k)")
    parser.add_argument("--config_files", type=str, default=None, help="space-separated YAML config files")
    parser.add_argument("--nproc", type=int, default=1, help="number of processes (multi-GPU)")
    parser.add_argument("--ip", type=str, default="localhost", help="the ip of the master node")
    parser.add_argument("--port", type=str, default="5678", help="the port of the master node")
    parser.add_argument("--world_size", type=int, default=-1, help="total number of processes")
    parser.add_argument("--group_offset", type=int, default=0, help="global rank offset of this group")
    args, _ = parser.parse_known_args()  # other --key=value pairs are read by Config, as in RecBole

    config_file_list = args.config_files.strip().split(" ") if args.config_files else None
    try:
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
