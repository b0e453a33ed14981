#!/bin/bash
# Issue 19: SASRec, CL4SRec, DuoRec and BTSRec compared at validated settings, 3 seeds each, to early stopping, with
# paired tests against SASRec: ML-1M leave-one-out (seen items masked, the package recipe) and ml-1m-realtime under
# BT-SR's temporal protocol. Each auxiliary weight is chosen on validation with the first seed (--select: the same
# rule as `run_recbole_bt.py --models ... --select`), then run with every seed. It runs on benchmarks/baseline.py's
# run folders, found by config whatever the label, so the runs that bt_sr_runs.sh trained (SASRec, BTSRec's alpha
# sweep, the ML-1M BTSRec) serve here unchanged; rerunning reuses finished runs and resumes one in progress after
# its last completed epoch. Two at a time, one thread each. Add --finished-only to a line for the tables so far.
#   OUT=$PWD/benchmarks/out bash benchmarks/comparison_runs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/benchmarks/out}
export OMP_NUM_THREADS=1
. benchmarks/run_archive.sh  # restore the finished runs archived in the repository, archive new ones on exit
restore_runs
trap archive_runs EXIT
LMD="--select CL4SRec:lmd=0.001,0.01,0.1 --select DuoRec:lmd=0.001,0.01,0.1"
# 1. ml-1m-realtime, BT-SR's protocol and recipe (the options of bt_sr_runs.sh: its runs are these runs)
RT="--dataset ml-1m-realtime --data_path ../shared/datasets --out $OUT --config_files protocol/bt-sr-temporal.yaml
    --epochs 200 --patience 30 --topk 1 5 10 --parallel 2 --threads 1 --no-record
    --metrics Hit NDCG Coverage Effective_Rank Effective_Rank_Centred Hit_Head Hit_Mid Hit_Tail"
python benchmarks/baseline.py converge $RT --run SASRec-CE:model=SASRec --run CL4SRec:model=CL4SRec \
    --run DuoRec:model=DuoRec --run BTSRec-CE:model=BTSRec $LMD --select BTSRec-CE:alpha=0.05,0.1,0.2,0.3,0.5 \
    --baseline SASRec-CE
# 2. ML-1M leave-one-out, seen items masked, the package recipe (SASRec's runs are the recipe study's d0.1)
R="MAX_ITEM_LIST_LENGTH=200,n_heads=1,train_batch_size=128,learning_rate=0.001,hidden_dropout_prob=0.1,attn_dropout_prob=0.1"
python benchmarks/baseline.py converge --dataset ml-1m --data_path ../shared/datasets --out $OUT --parallel 2 --threads 1 \
    --no-record --run SASRec:$R --run CL4SRec:model=CL4SRec,$R --run DuoRec:model=DuoRec,$R \
    --run BTSRec:model=BTSRec,$R $LMD --select BTSRec:alpha=0.1,0.2,0.3 --baseline SASRec
