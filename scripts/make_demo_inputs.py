"""Write a bundled demo pair (source.png, driving.mp4) from a cross-identity pair of ``fomm synth``.

The source is frame 0 of the cross-identity video (the source identity in the driving video's
first pose, as the original's README asks of a source), the driving video the pair's driving clip.

    fomm synth --category puppet --out /tmp/demo-src --size 64 --train 0 --test 8 --frames 64 \\
        --cross-pairs 4 --seed 3
    python scripts/make_demo_inputs.py /tmp/demo-src puppet-cross-00000 src/fomm/assets/demo
    (the face pair: --category face, face-cross-00000, src/fomm/assets/demo/face)
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from fomm.data import video_io


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="a fomm synth folder with cross_identity/")
    parser.add_argument("pair", help="a name from cross_identity/pairs.csv, e.g. puppet-cross-00000")
    parser.add_argument("out", type=Path, help="folder for source.png and driving.mp4")
    args = parser.parse_args()
    with open(args.data / "cross_identity" / "pairs.csv", newline="") as f:
        rows = {r["name"]: r for r in csv.DictReader(f)}
    if args.pair not in rows:
        raise SystemExit(f"no pair {args.pair} in {args.data}/cross_identity/pairs.csv; pick one of {sorted(rows)}")
    source = video_io.read_frames(args.data / "cross_identity" / args.pair)[0][0]
    driving, fps = video_io.read_frames(args.data / "test" / rows[args.pair]["driving_video"])
    args.out.mkdir(parents=True, exist_ok=True)
    video_io.write_image(args.out / "source.png", source)
    video_io.write_video(args.out / "driving.mp4", driving, fps=fps)
    print(f"wrote {args.out / 'source.png'} and {args.out / 'driving.mp4'} ({len(driving)} frames at {fps:g} fps)")


if __name__ == "__main__":
    main()
