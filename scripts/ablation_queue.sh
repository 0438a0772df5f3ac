#!/usr/bin/env bash
# Runs the keypoint-collapse ablation one run at a time (one CPU thread each) from a queue file:
# each line of QUEUE is a config name under experiments/ablation/configs/ (without .yaml). Every run has the
# same data, seed and step count; after training, scripts/ablation_eval.py measures it on the held-out split.
# Usage: scripts/ablation_queue.sh QUEUE RUNS_DIR STEPS BATCH
set -u
queue=$1; runs=$2; steps=$3; batch=$4
repo=$(cd "$(dirname "$0")/.." && pwd)
while true; do
  name=$(head -n 1 "$queue"); [ -z "$name" ] && break
  sed -i 1d "$queue"
  cfg="$repo/training/ablation/configs/$name.yaml"
  echo "$(date +%T) start $name"
  fomm train --config "$cfg" --data /root/fomm-data/puppet64 --out "$runs/$name" --seed 0 --threads 1 \
    --max-steps "$steps" --batch-size "$batch" --checkpoint-every 100 --vis-every 100 --keep 2 --quiet --no-tensorboard
  echo "$(date +%T) trained $name"
  OMP_NUM_THREADS=1 python "$repo/scripts/ablation_eval.py" "$runs/$name" --data /root/fomm-data/puppet64-test \
    --step "$steps" && echo "$(date +%T) evaluated $name"
done
