"""``fomm export``: a checkpoint as the original ``.pth.tar`` (``--format pth``) or as three ONNX
graphs with a manifest (``--format onnx``, see :mod:`fomm.export`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from fomm.errors import FommError

EXAMPLES = """examples:
  fomm export runs/puppet64/checkpoints/best.pt --out puppet64-cpk.pth.tar
  fomm export vox-cpk.pth.tar --config vox-256 --format onnx --out vox-onnx/
"""


def register(subparsers) -> None:
    from fomm.cli_args import summary

    e = subparsers.add_parser(
        "export",
        help=summary("export"),
        description="--format pth: write the original FOMM checkpoint layout (generator, kp_detector, "
        "discriminator, optimizer_* and epoch), readable by the original demo.py / train.py. "
        "--format onnx: write kp_detector.onnx, source_encoder.onnx and generator.onnx (dynamic batch) "
        "and manifest.json into a folder, for ONNX Runtime (fomm animate --backend onnxruntime).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument(
        "checkpoint",
        help="checkpoint: ours (RUN_DIR/checkpoints/*.pt), a bundled model (face-64) or a downloaded name "
        "(vox); for onnx also an original .pth.tar",
    )
    e.add_argument("out", nargs="?", help="output path: a .pth.tar file (pth) or a folder (onnx); or --out")
    e.add_argument("--out", dest="out_option", metavar="OUT", help="output path (missing folders are created)")
    e.add_argument("--format", choices=("pth", "onnx"), default="pth", help="output format (default: pth)")
    e.add_argument(
        "--config",
        help="model config for --format onnx: a preset (e.g. vox-256) or a YAML file; needed only when the "
        "checkpoint carries no config and fits no preset",
    )
    e.set_defaults(func=run_export)


def run_export(args) -> int:
    if (args.out is None) == (args.out_option is None):
        raise FommError("give the output path once: fomm export CHECKPOINT --out OUT")
    raw = args.out or args.out_option
    src, dst = Path(args.checkpoint), Path(raw)
    if args.format == "pth" and (raw.endswith(("/", "\\")) or dst.is_dir()):  # Path() drops the slash
        raise FommError(
            f"--format pth writes one file, and {raw} names a folder; give a file name such as "
            f"{dst / 'model.pth.tar'}, or --format onnx for a folder of ONNX graphs"
        )
    if src.resolve() == dst.resolve():
        raise FommError("the output path is the input checkpoint; choose another output path")
    if args.format == "onnx":
        return _export_onnx(src, dst, args.config)
    if args.config is not None:
        raise FommError("--config is used by --format onnx only; drop it for --format pth")
    return _export_pth(src, dst)


def _export_pth(src: Path, dst: Path) -> int:
    from fomm.models.checkpoint import atomic_torch_save, model_states, read_checkpoint, to_original_format

    data = read_checkpoint(src)  # a name (face-64, vox) is its file
    model_states(data, src)  # refuses a file without generator and kp_detector state dicts
    atomic_torch_save(to_original_format(data), dst)
    parts = ", ".join(k for k in ("generator", "kp_detector", "discriminator") if k in data)
    print(f"wrote {dst} (original format: {parts}, optimizers, epoch {int(data.get('epoch', 0))})")
    return 0


def _export_onnx(src: Path, dst: Path, config) -> int:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise FommError("ONNX export needs onnx and onnxscript: pip install 'fomm[onnx]'") from None
    from fomm.export import export_onnx
    from fomm.models.checkpoint import checkpoint_file, load_model

    if dst.suffix in (".onnx", ".tar", ".pt", ".pth"):
        raise FommError(f"--format onnx writes a folder of three graphs; give a folder name, not {dst.name}")
    model = load_model(checkpoint_file(src), config=config)  # not an export folder: the weights
    print(
        f"exporting {src.name} ({model.config.name or 'custom config'}, {model.frame_shape[1]}x"
        f"{model.frame_shape[0]}) to ONNX ...",
        flush=True,
    )
    manifest = export_onnx(model, dst, progress=True)
    files = ", ".join(g["file"] for g in manifest["graphs"].values())
    print(f"wrote {dst}/ ({files}, manifest.json; opset {manifest['opset']}, dynamic batch)")
    print(f"run it with: fomm animate --checkpoint {dst}/ --backend onnxruntime ... (or fomm live, fomm app)")
    return 0
