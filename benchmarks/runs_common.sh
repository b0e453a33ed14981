# Sourced (from the repository root) by bt_sr_runs.sh, comparison_runs.sh and pretraining_runs.sh, which share
# runs: baseline.py finds a run folder by its config, so the scripts must pass the same options, defined here once.
# - OUT (default benchmarks/out), one torch thread per run, two runs at once across all the scripts (CORES: the
#   scripts can run side by side, `benchmarks/all_runs.sh`; a waiting run of the lower PRIORITY, the issue's
#   number, which the script sets, starts first, and a run one script trains is never trained by another at once);
# - finished runs travel with the repository (their small files, no checkpoints, in benchmarks/results/baseline-runs,
#   and user_tasks.py's jobs in benchmarks/results/user_tasks-runs): they are restored into $OUT/<the same folder>
#   on a fresh machine, and every finished run is archived back on exit (commit those folders afterwards);
# - BT_SR: ml-1m-realtime under BT-SR's temporal protocol and recipe (the preset), early stopping as the reference;
#   LOO: ML-1M leave-one-out, seen items masked; RECIPE: the package's SASRec recipe on it (the study's d0.1).
OUT=${OUT:-$PWD/benchmarks/out}
export OMP_NUM_THREADS=1
CORES="--share-cores $OUT/cores --priority ${PRIORITY:-0}"
ARCHIVE=benchmarks/results  # <kind>-runs/<run>: baseline.py's runs, user_tasks.py's jobs
BT_SR="--dataset ml-1m-realtime --data_path ../shared/datasets --out $OUT --config_files protocol/bt-sr-temporal.yaml
    --epochs 200 --patience 30 --topk 1 5 10 --parallel 2 --threads 1 --no-record $CORES
    --metrics Hit NDCG Coverage Effective_Rank Effective_Rank_Centred Hit_Head Hit_Mid Hit_Tail"
LOO="--dataset ml-1m --data_path ../shared/datasets --out $OUT --parallel 2 --threads 1 --no-record $CORES"
RECIPE="MAX_ITEM_LIST_LENGTH=200,n_heads=1,train_batch_size=128,learning_rate=0.001,hidden_dropout_prob=0.1,attn_dropout_prob=0.1"

archive_runs() {  # a finished run's small files (no checkpoints), and those of its user_tasks.py probes
    for run in "$OUT"/{baseline,user_tasks}-runs/*/; do
        [ -e "$run/result.json" ] || continue
        kind=$(basename "$(dirname "$run")")
        mkdir -p "$ARCHIVE/$kind/$(basename "$run")"
        cp "$run"/{job.json,defaults.json,curve.jsonl,result.json,per_user.json} "$ARCHIVE/$kind/$(basename "$run")/" 2>/dev/null || true
        for probe in zero-shot head-start head-start-finetune rank; do  # read back without the encoder's checkpoint
            [ -e "$run/$probe/result.json" ] || continue
            mkdir -p "$ARCHIVE/$kind/$(basename "$run")/$probe"
            cp "$run/$probe"/{defaults.json,result.json} "$ARCHIVE/$kind/$(basename "$run")/$probe/" 2>/dev/null || true
        done
    done
}

for kind in baseline-runs user_tasks-runs; do
    mkdir -p "$OUT/$kind"
    for run in "$ARCHIVE/$kind"/*/; do
        if [ -d "$run" ] && [ ! -e "$OUT/$kind/$(basename "$run")" ]; then cp -r "$run" "$OUT/$kind/"; fi
    done
done
trap archive_runs EXIT
