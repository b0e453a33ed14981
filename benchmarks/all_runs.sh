#!/bin/bash
# Every long run of issues 18, 19 and 20 at once: bt_sr_runs.sh, comparison_runs.sh and pretraining_runs.sh side by
# side, sharing two run slots (one thread each), so a core never idles while one script waits for its last run; a
# waiting run of the earlier issue starts first. Each script's output goes to $OUT/<script>.log. Rerunning resumes
# everything (finished runs reused, a run in progress continued after its last completed epoch).
#   OUT=$PWD/benchmarks/out nohup bash benchmarks/all_runs.sh > benchmarks/out/all_runs.log 2>&1 &
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/benchmarks/out}
mkdir -p "$OUT"
# A script first reads its finished runs back (a minute) without asking for a slot: the next one starts after that,
# so that a later issue's run does not take the slots before an earlier issue's first waiting run asks.
for script in bt_sr_runs comparison_runs pretraining_runs; do
    OUT=$OUT bash "benchmarks/$script.sh" >> "$OUT/$script.log" 2>&1 &
    sleep "${STAGGER:-120}"
done
wait
