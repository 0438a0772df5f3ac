"""Measure one ablation run on the held-out split: reconstruction L1 and AKD (``fomm evaluate``,
frame 0 left out) and keypoint coverage (:func:`fomm.training.recipe.keypoint_coverage`).

Usage: python scripts/ablation_eval.py RUN_DIR --data HELD_OUT_DIR --step N [--max-videos 20]
Writes RUN_DIR/ablation.json (and RUN_DIR/eval.json / eval.md from fomm evaluate); --suffix -600
writes ablation-600.json and eval-600.json instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from fomm.data.video_io import read_frames
from fomm.evaluation.evaluate import evaluate, write_report
from fomm.models.checkpoint import load_model
from fomm.training.recipe import keypoint_coverage, normalized_to_px


def learned_keypoints(model, frames: np.ndarray) -> np.ndarray:
    """``(T, K, 2)`` normalised keypoints of ``frames`` (T, H, W, 3) uint8 or float on [0, 1]."""
    x = torch.from_numpy(np.asarray(frames, dtype=np.float32)).permute(0, 3, 1, 2)
    if x.max() > 1.5:
        x = x / 255.0
    with torch.no_grad():
        return model.kp_detector(x)["value"].numpy()


def coverage(model, data: Path, max_videos: int, radius: float = 3.0) -> dict:
    """Coverage over the first ``max_videos`` test videos (all frames), pooled over frames."""
    preds, gts = [], []
    for npz in sorted((data / "test").glob("*.npz"))[:max_videos]:
        gt = np.load(npz)
        frames, _ = read_frames(npz.with_suffix(""))
        size = frames.shape[1]
        preds.append(normalized_to_px(learned_keypoints(model, frames), size))
        gts.append(normalized_to_px(gt["keypoints"], size))
    return keypoint_coverage(np.concatenate(preds), np.concatenate(gts), radius)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--data", required=True)
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: --checkpoint)")
    p.add_argument("--checkpoint", default=None, help="checkpoint file instead of RUN/checkpoints/step-N.pt")
    p.add_argument("--max-videos", type=int, default=20)
    p.add_argument("--suffix", default="", help="write ablation<SUFFIX>.json and eval<SUFFIX>.json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    run, data = Path(args.run), Path(args.data)
    ckpt = Path(args.checkpoint) if args.checkpoint else run / "checkpoints" / f"step-{args.step:08d}.pt"
    run.mkdir(parents=True, exist_ok=True)
    model = load_model(ckpt)
    report = evaluate(model, data, max_videos=args.max_videos, tasks=["reconstruction"], progress=False)
    write_report(report, run / f"eval{args.suffix}.json")
    rec = report["reconstruction"]
    result = {
        "run": run.name,
        "checkpoint": str(ckpt),
        "l1": rec["model"]["l1"],
        "l1_static": rec["static"]["l1"],
        "akd": rec["model"]["akd"],
        "akd_static": rec["static"]["akd"],
        "num_videos": rec["model"].get("num_videos"),
        "num_frames": rec["model"].get("num_frames"),
        "coverage": coverage(model, data, args.max_videos),
    }
    result["step"] = args.step
    (run / f"ablation{args.suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
