#!/usr/bin/env bash
# The GPU check (docs/deploy.md, "GPU"): on a machine with an NVIDIA GPU and a CUDA build of torch,
#   1. the parity tests on CUDA (tests/models/test_parity.py -k cuda: every generator output of the
#      original's fixture within the CPU tolerances),
#   2. fast against exact on the parity clips on CUDA (PSNR, >= 45 dB),
#   3. vox-256 animation throughput, exact and fast, at batch 1, 8 and 32,
#   4. live latency (one frame at batch 1),
#   5. one vox-256 training step in fp32 and under bf16 autocast.
# Usage: benchmarks/gpu_check.sh [options of benchmarks/gpu_check.py]   (about 5 minutes on one GPU)
# Without a CUDA device it stops at once with one line and exit status 1.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"

if ! python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    echo "gpu_check: no CUDA device (torch.cuda.is_available() is False): run it on a machine with an NVIDIA GPU and a CUDA build of torch" >&2
    exit 1
fi

echo "== parity tests on CUDA"
python -m pytest -q -p no:cacheprovider tests/models/test_parity.py -k cuda
echo "== figures"
python benchmarks/gpu_check.py "$@"
