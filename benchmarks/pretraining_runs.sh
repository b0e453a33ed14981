#!/bin/bash
# Issue 20: the pretraining claims at real budgets. Every stage runs to its plateau (pretraining: no lower loss for
# pretrain_stopping_step epochs, in the user-task study no loss 1% lower, its PLATEAU; fine-tuning: early stopping
# on masked valid NDCG@10), 3 seeds, two runs at a time at one thread each. Rerunning reuses finished runs and
# pretraining stages and resumes a pretraining or (in step 1) a fine-tuning after its last completed epoch; finished
# runs are archived into benchmarks/results on exit. Add --finished-only to a line for its tables so far (it reads
# the finished runs back and trains nothing).
#   OUT=$PWD/benchmarks/out bash benchmarks/pretraining_runs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PRIORITY=20  # its runs before those of later issues when the scripts run side by side
. benchmarks/runs_common.sh  # OUT, the protocols' options; restores the archived finished runs, archives on exit
# 1. CLUE (pretrained, then fine-tuned) vs CLUEZero (the same fine-tuning from random weights) vs SASRec, ML-1M
#    leave-one-out, seen items masked, the package recipe for every stage (SASRec's runs are the recipe study's d0.1);
#    CLUE against CLUEZero is the test of "pretraining helps" (the same model and fine-tuning, random weights)
python benchmarks/baseline.py converge $LOO --run SASRec:$RECIPE --run CLUE:model=CLUE,train_stage=finetune,$RECIPE \
    --run CLUEZero:model=CLUEZero,$RECIPE --baseline SASRec --baseline CLUE=CLUEZero
# probes: the probes of the study's finished encoders (nothing pretrained again; an encoder restored from the
#    archive, not on this machine, is listed): next_item with no label (each encoder's own item scores, seconds a
#    job), and the gender / age heads from the majority-class start: linear probes at every batch size (a minute a
#    job), fine-tuning at batch 256 (where the study fine-tunes; minutes a job); the effective rank of the users'
#    h(s) (dimensional collapse; seconds a job)
probes() {
    for probe in zero-shot head-start head-start-finetune rank; do
        python benchmarks/user_tasks.py $probe $STUDY --parallel 1 --threads 1
    done
}
# 2. the user tasks (gender, age, next item; probe and fine-tune; label ratios 1/10/100%) of BTPretrain, DualEncoder,
#    CLUE and random weights, each pretrained at batch 32 / 64 / 256 / 1024 (the full grid at 256, probes elsewhere).
#    First the jobs that pretrain within a session (an hour or two on one core): every job at batch 32 / 64 / 256,
#    CLUE's at 1024; and their probes while this machine holds their encoders
STUDY="--dataset ml-1m --data_path ../shared/datasets --out $OUT --batch-sizes 32 64 256 1024 --no-record $CORES"
python benchmarks/user_tasks.py study $STUDY --batch-sizes 32 64 256 --parallel 2 --threads 1
probes
#    Step 4's long jobs start beside it at a lower priority: they take a run slot whenever CLUE's jobs leave one idle
#    (three jobs on two slots: the third alone for hours), and wait for the slots' CLUE jobs otherwise
python benchmarks/user_tasks.py study $STUDY --parallel 2 --threads 1 --priority $((PRIORITY + 1)) &
long=$!
python benchmarks/user_tasks.py study $STUDY --methods CLUE --parallel 2 --threads 1
probes
# 3. does BTPretrain's linear probe still change after its pretraining stopped? Each continuation in a run slot
#    (with_slot.py), beside step 4's jobs; a job restored from the archive has no checkpoint to continue.
#    batch 64 stopped at the 100-epoch cap as 256 did (its loss still falling; at 256 the probe did not change after
#    epoch 100, RESULTS.md "Probe: is BTPretrain's 100-epoch cap its plateau?"): seed 2020 on to its plateau or 150
#    epochs (its 100 epochs already hold 4x the optimizer steps of 100 at batch 256, where the probe stopped gaining;
#    50 more, about an hour, say whether it still gains)
(
    for run in "$OUT"/user_tasks-runs/BTPretrain-batch64-seed2020-*/; do
        [ -d "$run/pretrain" ] || continue
        python benchmarks/with_slot.py $CORES -- env CAP=150 EPOCHS="100 150" \
            bash benchmarks/pretrain_epochs_probe.sh "${run%/}"
    done
) &
continuations=$!
# 4. the whole study: BTPretrain's and DualEncoder's jobs at 1024 left (4-4.5 hours each: a session may end
#    part-way, and a fresh machine lose them), started in step 2; once it ends, the same line again (it reuses every
#    finished job: a job that failed is tried again), then the probes of their encoders
wait $long || true
python benchmarks/user_tasks.py study $STUDY --parallel 2 --threads 1
probes
wait $continuations
