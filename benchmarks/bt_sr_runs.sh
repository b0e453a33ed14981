#!/bin/bash
# BT-SR reproduced at convergence (issue 18): every run of benchmarks/RESULTS.md's "BT-SR at convergence under its
# own protocol", in order, two at a time at one thread each. Rerunning it reuses finished runs and resumes a run in
# progress after its last completed epoch (run folders under $OUT/baseline-runs). Add --finished-only to any line to
# get the table of what has finished without training; drop --no-record to append the table to RESULTS.md.
#   OUT=$PWD/benchmarks/out bash benchmarks/bt_sr_runs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PRIORITY=18  # its runs before those of later issues when the scripts run side by side
. benchmarks/runs_common.sh  # OUT, the protocols' options; restores the archived finished runs, archives on exit
# 1. SASRec vs BTSRec, CE and SCE, each BTSRec tested against the SASRec with its loss
python benchmarks/baseline.py converge $BT_SR --run SASRec-CE:model=SASRec --run BTSRec-CE:model=BTSRec \
    --run SASRec-SCE:model=SASRec,loss_type=SCE --run BTSRec-SCE:model=BTSRec,loss_type=SCE \
    --baseline BTSRec-CE=SASRec-CE --baseline BTSRec-SCE=SASRec-SCE
# 2. the alpha sweep (CE): alpha 0 is SASRec-CE (bit for bit), 0.2 is BTSRec-CE (the default); the first seed first
SWEEP="--run SASRec-CE:model=SASRec --run BTSRec-CE-a0.05:model=BTSRec,alpha=0.05 --run BTSRec-CE-a0.1:model=BTSRec,alpha=0.1
    --run BTSRec-CE:model=BTSRec --run BTSRec-CE-a0.3:model=BTSRec,alpha=0.3 --run BTSRec-CE-a0.5:model=BTSRec,alpha=0.5"
python benchmarks/baseline.py converge $BT_SR $SWEEP --sweep alpha --sweep-absent 0 --seeds 2020
python benchmarks/baseline.py converge $BT_SR $SWEEP --sweep alpha --sweep-absent 0 --baseline SASRec-CE
# 3. ML-1M leave-one-out, seen items masked, the package recipe: BTSRec against the package's SASRec (d0.1)
python benchmarks/baseline.py converge $LOO --run d0.1:$RECIPE --run BTSRec:model=BTSRec,$RECIPE --baseline BTSRec=d0.1
