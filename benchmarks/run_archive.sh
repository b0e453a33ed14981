# Sourced by bt_sr_runs.sh and comparison_runs.sh: finished baseline.py runs travel with the repository (their
# small files, no checkpoints, in benchmarks/results/baseline-runs). `restore_runs` copies them into
# $OUT/baseline-runs on a fresh machine; `archive_runs` (run on exit) copies every finished run back (commit
# benchmarks/results/baseline-runs afterwards).
ARCHIVE=benchmarks/results/baseline-runs

restore_runs() {
    mkdir -p "$OUT/baseline-runs"
    for run in "$ARCHIVE"/*/; do
        [ -d "$run" ] && [ ! -e "$OUT/baseline-runs/$(basename "$run")" ] && cp -r "$run" "$OUT/baseline-runs/"
    done
    return 0
}

archive_runs() {
    for run in "$OUT"/baseline-runs/*/; do
        [ -e "$run/result.json" ] || continue
        mkdir -p "$ARCHIVE/$(basename "$run")"
        cp "$run"/{job.json,curve.jsonl,result.json,per_user.json} "$ARCHIVE/$(basename "$run")/" 2>/dev/null || true
    done
}
