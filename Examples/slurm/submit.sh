#!/bin/bash
# Usage: submit.sh SWEEP.json OUT_DIR [SHARDS] — an array of SHARDS tasks
# (one shard each), then the merge once every task has succeeded (afterok).
set -euo pipefail
SWEEP=$(realpath "$1"); OUT=$(realpath -m "$2"); SHARDS=${3:-8}
HERE=$(cd "$(dirname "$0")" && pwd)
export SWEEP OUT WNFLOW=${WNFLOW:-$(command -v wnflow || echo wnflow)}
mkdir -p "$OUT"
jid=$(sbatch --parsable --export=ALL --array=1-"$SHARDS" "$HERE/sweep.sbatch")
sbatch --parsable --export=ALL --dependency=afterok:"${jid%%;*}" "$HERE/merge.sbatch"
echo "array job $jid ($SHARDS shards); merged output will be $OUT/merged.jsonl"
