#!/bin/bash
# Issue 19: SASRec, CL4SRec, DuoRec and BTSRec compared at validated settings, 3 seeds each, to early stopping, with
# paired tests against SASRec and of BTSRec against each contrastive model (Holm over the five): ML-1M leave-one-out
# (seen items masked, the package recipe) and ml-1m-realtime under BT-SR's temporal protocol. Each auxiliary weight
# is chosen on validation with the first seed (--select: the same rule as `run_recbole_bt.py --models ... --select`),
# then run with every seed. It runs on benchmarks/baseline.py's run folders, found by config whatever the label, so
# the runs that bt_sr_runs.sh trained (SASRec, BTSRec's alpha sweep, the ML-1M BTSRec) serve here unchanged;
# rerunning reuses finished runs and resumes one in progress after its last completed epoch. Two at a time, one
# thread each. Add --finished-only to a line for the tables so far.
#   OUT=$PWD/benchmarks/out bash benchmarks/comparison_runs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PRIORITY=19  # its runs before those of later issues when the scripts run side by side
. benchmarks/runs_common.sh  # OUT, the protocols' options; restores the archived finished runs, archives on exit
LMD="--select CL4SRec:lmd=0.001,0.01,0.1 --select DuoRec:lmd=0.001,0.01,0.1"
# 1. ml-1m-realtime, BT-SR's protocol and recipe (the options of bt_sr_runs.sh: its runs are these runs)
python benchmarks/baseline.py converge $BT_SR --run SASRec-CE:model=SASRec --run CL4SRec:model=CL4SRec \
    --run DuoRec:model=DuoRec --run BTSRec-CE:model=BTSRec $LMD --select BTSRec-CE:alpha=0.05,0.1,0.2,0.3,0.5 \
    --baseline SASRec-CE --baseline BTSRec-CE=CL4SRec --baseline BTSRec-CE=DuoRec
# 2. ML-1M leave-one-out, seen items masked, the package recipe (SASRec's runs are the recipe study's d0.1)
python benchmarks/baseline.py converge $LOO --run SASRec:$RECIPE --run CL4SRec:model=CL4SRec,$RECIPE \
    --run DuoRec:model=DuoRec,$RECIPE --run BTSRec:model=BTSRec,$RECIPE $LMD --select BTSRec:alpha=0.1,0.2,0.3 \
    --baseline SASRec --baseline BTSRec=CL4SRec --baseline BTSRec=DuoRec
