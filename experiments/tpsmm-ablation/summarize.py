"""Collect model/static reconstruction L1 and AKD from the `fomm evaluate` reports into results.json."""

import json
import sys
from pathlib import Path

rows = {}
for path in sorted(Path(sys.argv[1]).glob("*.json")):
    report = json.loads(path.read_text())
    rec = report["reconstruction"]
    rows[path.stem] = {
        "checkpoint": Path(report["checkpoint"]).name,
        "frames_scored": report["counts"]["reconstruction"] if "counts" in report else None,
        "model": {k: rec["model"][k] for k in ("l1", "psnr", "ssim", "akd", "akd_l1") if k in rec["model"]},
        "static": {k: rec["static"][k] for k in ("l1", "akd") if k in rec["static"]},
    }
Path(sys.argv[2]).write_text(json.dumps(rows, indent=1) + "\n")
print(json.dumps(rows, indent=1))
