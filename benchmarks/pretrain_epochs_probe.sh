#!/bin/bash
# Issue 20 probe: does an encoder's downstream quality still change after the study's pretraining cap? Continues a
# finished user_tasks.py study job's pretraining (a copy: the study's folder is left as it is) past the 100-epoch
# cap, up to CAP epochs or the plateau the study uses (no loss 1% lower for 10 epochs), then runs the user tasks'
# linear probe (gender, age, next_item; 1 / 10 / 100% labels) on the checkpoints of EPOCHS. Each probe's table is at
# the end of $DEST/epoch<E>.log.
#   bash benchmarks/pretrain_epochs_probe.sh benchmarks/out/user_tasks-runs/BTPretrain-batch256-seed2020-<digest>
# (model, seed and batch from the folder's name; CAP=300 EPOCHS="20 50 100 150 200 250 300" by default; STOP=N
# continues a job that stopped at its plateau with pretrain_stopping_step N, 0: to CAP; LR=x continues at learning
# rate x, DEST=folder elsewhere for it). Rerun, it resumes the pretraining after its last epoch and probes only the
# checkpoints not probed yet.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:?a finished user_tasks.py study job folder (with pretrain/)}
CAP=${CAP:-300}
EPOCHS=${EPOCHS:-20 50 100 150 200 250 300}
DEST=${DEST:-benchmarks/out/pretrain-epochs/$(basename "$RUN")}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296
NAME=$(basename "$RUN")
MODEL=${NAME%%-*}
SEED=$(echo "$NAME" | sed -E 's/.*-seed([0-9]+)-.*/\1/')
BATCH=$(echo "$NAME" | sed -E 's/.*-batch([0-9]+)-.*/\1/')
# the study's encoder and plateau, read from benchmarks/user_tasks.py (ENCODER, PLATEAU)
STUDY=$(python -c "import sys; sys.path.insert(0, '.'); from benchmarks.user_tasks import ENCODER, PLATEAU
print(' '.join(f'--{k}={v}' for k, v in {**ENCODER, **PLATEAU}.items()))")
SET="--model=$MODEL --dataset=ml-1m --data_path=../shared/datasets --seed=$SEED --train_batch_size=$BATCH
     --show_progress=False $STUDY"
mkdir -p "$DEST"
if [ ! -e "$DEST/pretrain" ]; then cp -r "$RUN/pretrain" "$DEST/pretrain"; fi
if [ -z "${PROBES_ONLY:-}" ]; then  # PROBES_ONLY=1: the checkpoints saved so far, while the pretraining goes on
    python run_recbole_bt.py $SET ${STOP:+--pretrain_stopping_step=$STOP} ${LR:+--learning_rate=$LR} \
        --train_stage=pretrain --pretrain_epochs="$CAP" --checkpoint_dir="$DEST/pretrain" \
        --checkpoint_last=True --resume_file="$DEST/pretrain/$MODEL-ml-1m-pretrain-last.pth" >> "$DEST/pretrain.log" 2>&1
    grep -E "pretraining stopped" "$DEST/pretrain.log" | tail -1 || true
fi
for e in $EPOCHS; do
    checkpoint="$DEST/pretrain/$MODEL-ml-1m-$e.pth"
    [ -e "$checkpoint" ] || continue
    [ -e "$DEST/epoch$e.log" ] && grep -q "user tasks" "$DEST/epoch$e.log" && continue
    python run_recbole_bt.py $SET --train_stage=user_tasks --pre_model_path="$checkpoint" \
        --user_task_protocols=probe > "$DEST/epoch$e.log" 2>&1
done
for e in $EPOCHS; do  # the probes' test metrics, one line per checkpoint
    [ -e "$DEST/epoch$e.log" ] || continue
    echo "epoch $e: $(grep -E '^\| (gender|age|next_item) \| probe' "$DEST/epoch$e.log" | awk -F'|' '{printf "%s@%s %s; ", $2, $4, $6}')"
done
