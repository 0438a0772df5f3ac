#!/usr/bin/env bash
# The exact commands that made the shipped evaluation landmark detectors
# (src/fomm/assets/landmarks/{puppet,face}-64.pt and their .json training records, which also hold
# each detector's AKD on the held-out test identities of its dataset: test_akd_px).
#
# Both train on one CPU thread (deterministic for the seed), on ground-truth keypoints of
# procedural training videos at 64x64 (seed 0):
#   puppet: 3200 videos x 4 frames (many identities and poses: hands over the head are rare),
#           3000 steps, tested on 160 held-out identities;
#   face:   400 videos x 16 frames, 2500 steps, tested on 40 held-out identities.
# About 7-9 minutes of training each, plus a few minutes of data generation, on a shared 2-core box.
#
# The shipped files were made with WORK=/tmp/lmk (their JSON "command" shows the data path; the face
# data folder was then named face64, from these same fomm synth arguments).
#
# usage: bash scripts/train_landmarks.sh    (data goes to $WORK, default /tmp/fomm-landmarks;
#                                            CATEGORIES="face" to make one)
set -euo pipefail

WORK=${WORK:-/tmp/fomm-landmarks}
OUT=${OUT:-src/fomm/assets/landmarks}
mkdir -p "$WORK" "$OUT"

for category in ${CATEGORIES:-puppet face}; do
  case "$category" in
    puppet) train=3200; test=160; frames=4;  steps=3000 ;;
    face)   train=400;  test=40;  frames=16; steps=2500 ;;
    *) echo "unknown category $category" >&2; exit 2 ;;
  esac
  data="$WORK/${category}64-${train}x${frames}"
  if [ ! -f "$data/dataset.json" ]; then
    fomm synth --category "$category" --out "$data" --size 64 --train "$train" --test "$test" \
      --frames "$frames" --seed 0 --cross-pairs 0 --quiet
  fi
  fomm train-landmarks --data "$data" --out "$OUT/${category}-64.pt" --steps "$steps" --seed 0 \
    --batch-size 32 --lr 0.002 --width 8 --threads 1 --no-progress
done
