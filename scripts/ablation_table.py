"""Collect the ablation runs' RUN/ablation.json into experiments/ablation/README-table.md and results.json.

Usage: python scripts/ablation_table.py RUNS_DIR OUT_DIR [SUFFIX]
(SUFFIX: read RUN/ablation<SUFFIX>.json, write table<SUFFIX>.md and results<SUFFIX>.json.)
Each row: reconstruction L1 and AKD (model and ratio to the static baseline; frame 0 as the source),
and keypoint coverage on the held-out split (scripts/ablation_eval.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

DESCRIPTIONS = {
    "a-anchor": "(a) anchor: original objective and conventions (no pixel L1, default generator init, batch BN, "
    "2 down blocks, dense motion at 0.5, align_corners false, pad 0)",
    "b-recipe": "(b) today's puppet-64 recipe (pad 0)",
    "c-pad3": "(c) = b + kp pad 3",
    "d-spread": "(d) = b + keypoints started spread (bias 3, decaying to 0 at step 200)",
    "e-eqwarm": "(e) = b + equivariance warm-up (x5 falling to x1 at step 200)",
    "f-sep": "(f) = b + separation prior (10, sigma 0.1)",
    "g-kp15": "(g) = b + 15 keypoints",
    "h-temp05": "(h) = b + heatmap temperature 0.05",
    "i-pad3-sep-weak": "(i) = b + pad 3 + weak narrow separation prior (1, sigma 0.05)",
}


def row(r: dict) -> str:
    c = r["coverage"]
    name = DESCRIPTIONS.get(r["run"], r["run"])
    l1r = r["l1"] / r["l1_static"]
    akd = f"{r['akd']:.2f} ({r['akd'] / r['akd_static']:.2f}x)" if r.get("akd") is not None else "-"
    return (
        f"| {name} | {r['l1']:.4f} ({l1r:.2f}x) | {akd} | {c['covered']:.2f} | {c['claimed']:.2f} | "
        f"{c['on_target']:.2f} | {c['spread_px']:.1f} |"
    )


def main(argv: list[str]) -> int:
    runs, out = Path(argv[0]), Path(argv[1])
    suffix = argv[2] if len(argv) > 2 else ""
    results = [json.loads(p.read_text()) for p in sorted(runs.glob(f"*/ablation{suffix}.json"))]
    out.mkdir(parents=True, exist_ok=True)
    (out / f"results{suffix}.json").write_text(json.dumps(results, indent=2) + "\n")
    first = results[0] if results else {}
    lines = [
        f"Held-out puppet split (seed 1), {first.get('num_videos')} videos, {first.get('num_frames')} frames; "
        f"static baseline: L1 {first.get('l1_static', float('nan')):.4f}, AKD {first.get('akd_static') or float('nan'):.2f} px.",
        "",
        "| run | recon. L1 (x static) | AKD px (x static) | GT kps covered (of 20) | GT kps claimed | "
        "learned kps on a GT kp | kp spread px |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [row(r) for r in results]
    (out / f"table{suffix}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
