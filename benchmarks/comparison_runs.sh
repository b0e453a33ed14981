#!/bin/bash
# Issue 19: SASRec, CL4SRec, DuoRec and BTSRec compared at validated settings, 3 seeds each, to early stopping, with
# paired tests: ML-1M leave-one-out (seen items masked, the package recipe) and ml-1m-realtime under BT-SR's
# temporal protocol, one comparison per core. Each auxiliary weight is chosen on validation with the first seed
# (--select), then run with every seed. Rerunning the script reuses finished runs and resumes a run in progress
# after its last completed epoch (run folders under $OUT/comparison-*/runs).
#   OUT=$PWD/benchmarks/out bash benchmarks/comparison_runs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/benchmarks/out}
export OMP_NUM_THREADS=1
MODELS="--models=SASRec,CL4SRec,DuoRec,BTSRec --seeds=3 --data_path=../shared/datasets"
SELECT="--select=CL4SRec:lmd=0.001,0.01,0.1 --select=DuoRec:lmd=0.001,0.01,0.1 --select=BTSRec:alpha=0.05,0.1,0.2"
METRICS="--metrics=['Hit','NDCG','Coverage','Effective_Rank']"
python run_recbole_bt.py $MODELS $SELECT "$METRICS" --topk=[1,5,10] --dataset=ml-1m --eval_mask_seen=True \
    --out="$OUT/comparison-ml-1m" > "$OUT/comparison-ml-1m.log" 2>&1 &
python run_recbole_bt.py $MODELS $SELECT "$METRICS" --topk=[1,5,10] --dataset=ml-1m-realtime \
    --config_files=protocol/bt-sr-temporal.yaml --out="$OUT/comparison-ml-1m-realtime" \
    > "$OUT/comparison-ml-1m-realtime.log" 2>&1 &
wait
