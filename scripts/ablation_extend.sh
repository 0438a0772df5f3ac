#!/usr/bin/env bash
# Second ablation round: continue finished ablation runs (same data, seed, batch) to STEPS steps with
# fomm train --resume, then measure them again (RUN/ablation-STEPS.json).
# Usage: scripts/ablation_extend.sh RUNS_DIR STEPS NAME...
set -u
runs=$1; steps=$2; shift 2
repo=$(cd "$(dirname "$0")/.." && pwd)
for name in "$@"; do
  echo "$(date +%T) extend $name"
  fomm train --out "$runs/$name" --resume --max-steps "$steps" --threads 1 --quiet --no-tensorboard
  OMP_NUM_THREADS=1 python "$repo/scripts/ablation_eval.py" "$runs/$name" --data /root/fomm-data/puppet64-test \
    --step "$steps" --suffix "-$steps" && echo "$(date +%T) evaluated $name"
done
