"""Turn a training checkpoint into the bundled model shipped in src/fomm/assets/bundled/.

Keeps only what inference needs (kp_detector and generator state dicts, the config, and where it
came from), stored in float16 to halve the size; fomm.load_model loads it back into float32.

    python scripts/make_bundled_model.py runs/puppet64/checkpoints/best.pt --category puppet
    python scripts/make_bundled_model.py RUN/checkpoints/best.pt --category face --config-name face-64

``--category`` picks the output file from fomm.bundled.BUNDLED_MODELS (face-64.pth, puppet-64.pth).

``--config-name`` names the preset the run's model config equals (checked), for runs started from
a copy of the preset's YAML.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fomm.bundled import BUNDLED_MODELS
from fomm.models.checkpoint import atomic_torch_save, read_checkpoint


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--category", choices=sorted(BUNDLED_MODELS), default="puppet")
    parser.add_argument("--out", default=None, help="default: src/fomm/assets/bundled/<the category's file>")
    parser.add_argument("--config-name", help="the preset whose model_params the run used")
    args = parser.parse_args()
    args.out = args.out or str(Path("src/fomm/assets/bundled") / BUNDLED_MODELS[args.category])
    data = read_checkpoint(args.checkpoint)
    if args.config_name:
        from fomm.config import Config, load_preset

        ours = Config.from_dict(data["config"]).to_dict()["model_params"]
        preset = load_preset(args.config_name).to_dict()["model_params"]
        if ours != preset:
            print(f"error: the checkpoint's model_params differ from preset {args.config_name}", file=sys.stderr)
            return 2
        data["config_name"] = args.config_name

    def half(state):
        return {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}

    bundled = {
        "fomm_format": data["fomm_format"],
        "config": data["config"],
        "config_name": data.get("config_name"),
        "generator": half(data["generator"]),
        "kp_detector": half(data["kp_detector"]),
        "epoch": data.get("epoch", 0),
        "step": data.get("step", 0),
        "category": args.category,
        "source": {
            "checkpoint": Path(args.checkpoint).name,
            "step": data.get("step", 0),
            "epoch": data.get("epoch", 0),
            "dtype": "float16",
        },
    }
    atomic_torch_save(bundled, args.out)
    size = Path(args.out).stat().st_size / 2**20
    print(f"wrote {args.out} ({size:.1f} MB) from {args.checkpoint} (step {bundled['step']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
