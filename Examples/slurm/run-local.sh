#!/bin/bash
# The same as submit.sh on one machine: SHARDS shard processes in the
# background (each with --jobs JOBS threads), then the merge.
# Usage: run-local.sh SWEEP.json OUT_DIR [SHARDS] [JOBS]   (WNFLOW=path/to/wnflow)
set -euo pipefail
SWEEP=$1; OUT=$2; SHARDS=${3:-2}; JOBS=${4:-1}
WNFLOW=${WNFLOW:-wnflow}
mkdir -p "$OUT"
pids=()
for i in $(seq 1 "$SHARDS"); do
  "$WNFLOW" sweep "$SWEEP" --out "$OUT" --jobs "$JOBS" --shard "$i/$SHARDS" --resume --quiet &
  pids+=($!)
done
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done   # like afterok: merge only if every shard succeeded
if [ "$fail" -ne 0 ]; then echo "run-local.sh: a shard failed; not merging" >&2; exit 1; fi
exec "$WNFLOW" merge "$OUT" --out "$OUT/merged.jsonl" --sweep "$SWEEP"   # every line a run of this sweep
