"""Tune a model's hyper-parameters with RecBole's HyperTuning, the way RecBole's run_hyper.py does.

    python run_hyper_bt.py --model=BTSRec --dataset=ml-100k --config_files="a.yaml" --params_file=hyper.test

The params file has one parameter a line, in RecBole's format (e.g. `learning_rate choice [0.001,0.0005]`).
Any other --key=value is a fixed config override for every trial (highest precedence). Needs hyperopt
(pip install recbole-bt[tune]).
"""
import argparse
import sys

from recbole_bt.errors import RecBoleBTError
from recbole_bt.tuning import ALGOS, run_hyper


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", "-m", type=str, default="SASRec", help="model name (default: SASRec)")
    parser.add_argument("--dataset", "-d", type=str, default=None, help="dataset name (default: ml-100k)")
    parser.add_argument("--config_files", type=str, default=None, help="space-separated YAML config files")
    parser.add_argument("--params_file", type=str, required=True, help="the parameters to tune")
    parser.add_argument("--algo", type=str, default="exhaustive", choices=ALGOS, help="search (default: exhaustive)")
    parser.add_argument("--max_evals", type=int, default=100, help="most trials for random and bayes (default: 100)")
    parser.add_argument("--output_file", type=str, default=None, help="where to write every trial's results")
    args, rest = parser.parse_known_args()
    # Config reads --key=value overrides from sys.argv: leave it only those, not this script's own options.
    sys.argv = sys.argv[:1] + rest

    config_file_list = args.config_files.strip().split(" ") if args.config_files else None
    try:
        result = run_hyper(
            args.model,
            args.dataset,
            args.params_file,
            config_file_list=config_file_list,
            algo=args.algo,
            max_evals=args.max_evals,
            output_file=args.output_file,
        )
    except RecBoleBTError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("best params:", result["best_params"])
    print("best result:", result["best_result"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
