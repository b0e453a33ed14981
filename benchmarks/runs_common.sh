# Sourced (from the repository root) by bt_sr_runs.sh and comparison_runs.sh, which share their runs: baseline.py
# finds a run folder by its config, so both scripts must pass the same options, defined here once.
# - OUT (default benchmarks/out), one torch thread per run;
# - finished runs travel with the repository (their small files, no checkpoints, in benchmarks/results/baseline-runs):
#   they are restored into $OUT/baseline-runs on a fresh machine, and every finished run is archived back on exit
#   (commit benchmarks/results/baseline-runs afterwards);
# - BT_SR: ml-1m-realtime under BT-SR's temporal protocol and recipe (the preset), early stopping as the reference;
#   LOO: ML-1M leave-one-out, seen items masked; RECIPE: the package's SASRec recipe on it (the study's d0.1).
OUT=${OUT:-$PWD/benchmarks/out}
export OMP_NUM_THREADS=1
ARCHIVE=benchmarks/results/baseline-runs
BT_SR="--dataset ml-1m-realtime --data_path ../shared/datasets --out $OUT --config_files protocol/bt-sr-temporal.yaml
    --epochs 200 --patience 30 --topk 1 5 10 --parallel 2 --threads 1 --no-record
    --metrics Hit NDCG Coverage Effective_Rank Effective_Rank_Centred Hit_Head Hit_Mid Hit_Tail"
LOO="--dataset ml-1m --data_path ../shared/datasets --out $OUT --parallel 2 --threads 1 --no-record"
RECIPE="MAX_ITEM_LIST_LENGTH=200,n_heads=1,train_batch_size=128,learning_rate=0.001,hidden_dropout_prob=0.1,attn_dropout_prob=0.1"

archive_runs() {
    for run in "$OUT"/baseline-runs/*/; do
        [ -e "$run/result.json" ] || continue
        mkdir -p "$ARCHIVE/$(basename "$run")"
        cp "$run"/{job.json,curve.jsonl,result.json,per_user.json} "$ARCHIVE/$(basename "$run")/" 2>/dev/null || true
    done
}

mkdir -p "$OUT/baseline-runs"
for run in "$ARCHIVE"/*/; do
    if [ -d "$run" ] && [ ! -e "$OUT/baseline-runs/$(basename "$run")" ]; then cp -r "$run" "$OUT/baseline-runs/"; fi
done
trap archive_runs EXIT
