"""Export a :class:`~fomm.models.first_order_model.FirstOrderModel` as three ONNX graphs (see
:mod:`fomm.export`), with ``torch.onnx.export`` (the ``torch.export`` based exporter)."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import shutil
import warnings
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from fomm import __version__
from fomm.atomic import make_temp_dir
from fomm.errors import FommError
from fomm.models.exported import FORMAT, MANIFEST, read_manifest  # noqa: F401 (read_manifest re-exported)
from fomm.models.generator import SourceState

OPSET = 18  # the exporter's own opset (no down-conversion); GridSample exists since opset 16
GRAPH_FILES = {
    "kp_detector": "kp_detector.onnx",
    "source_encoder": "source_encoder.onnx",
    "generator": "generator.onnx",
}


class KeypointGraph(nn.Module):
    """``image (B, 3, H, W)`` -> the detector's outputs named in ``keys`` that it gives, in that
    order: FOMM's ``value (B, K, 2)`` [, ``jacobian (B, K, 2, 2)``], TPSMM's ``fg_kp (B, 5K, 2)``."""

    def __init__(self, kp_detector: nn.Module, keys: tuple[str, ...] = ("value", "jacobian")):
        super().__init__()
        self.kp_detector = kp_detector
        self.keys = keys

    def forward(self, image):
        kp = self.kp_detector(image)
        out = tuple(kp[k] for k in self.keys if k in kp)
        return out if len(out) > 1 else out[0]


class SourceEncoderGraph(nn.Module):
    """``source (B, 3, H, W)`` -> ``features (B, F, h, w)``, ``source_small (B, 3, h', w')``."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, source):
        state = self.generator.encode_source(source)
        return state.features, state.small


class GeneratorGraph(nn.Module):
    """Per-frame generator: driving keypoints (batch B), source keypoints, ``features`` and
    ``source_small`` (batch 1, broadcast) -> ``prediction (B, 3, H, W)`` [, ``occlusion_map``]."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, kp_driving_value, kp_driving_jacobian, kp_source_value, kp_source_jacobian, features, small):
        return self.run(kp_driving_value, kp_driving_jacobian, kp_source_value, kp_source_jacobian, features, small)

    def run(self, kd_value, kd_jacobian, ks_value, ks_jacobian, features, small):
        batch = kd_value.shape[0]
        kp_driving, kp_source = {"value": kd_value}, {"value": ks_value.expand(batch, -1, -1)}
        if kd_jacobian is not None:
            kp_driving["jacobian"] = kd_jacobian
            kp_source["jacobian"] = ks_jacobian.expand(batch, -1, -1, -1)
        small = small.expand(batch, -1, -1, -1)
        # the source image itself only feeds the 'deformed' output, which is not exported
        state = SourceState(small, features.expand(batch, -1, -1, -1), small)
        out = self.generator.animate(state, kp_driving=kp_driving, kp_source=kp_source)
        return (out["prediction"], out["occlusion_map"]) if "occlusion_map" in out else out["prediction"]


class GeneratorGraphNoJacobian(GeneratorGraph):
    """:class:`GeneratorGraph` for a model without Jacobians (no Jacobian inputs)."""

    def forward(self, kp_driving_value, kp_source_value, features, small):
        return self.run(kp_driving_value, None, kp_source_value, None, features, small)


def inverse_2x2(m: torch.Tensor) -> torch.Tensor:
    """Inverse of ``(..., 2, 2)`` matrices by the adjugate (ONNX has no matrix inverse)."""
    a, b, c, d = m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1]
    det = (a * d - b * c)[..., None, None]
    return torch.stack([torch.stack([d, -b], -1), torch.stack([-c, a], -1)], -2) / det


@contextlib.contextmanager
def _onnx_inverse():
    """While tracing, ``torch.inverse`` (the Jacobians of Eq. 4) is the closed-form 2x2 inverse."""
    original = torch.inverse
    torch.inverse = inverse_2x2
    try:
        yield
    finally:
        torch.inverse = original


def export_graph(module, args, path: Path, input_names, output_names, batch_inputs, structure=None) -> None:
    """One graph, dynamic batch on the inputs named in ``batch_inputs``; quiet unless it fails.
    ``structure``: the number of tensors each argument holds (a list argument), default one each."""
    batch = torch.export.Dim("batch", min=1, max=65536)
    shapes = [{0: batch} if name in batch_inputs else {} for name in input_names]
    if structure is not None:  # group the flat names' shapes as the arguments hold them
        grouped, i = [], 0
        for n in structure:
            grouped.append(shapes[i] if n is None else shapes[i : i + n])
            i += 1 if n is None else n
        shapes = grouped
    shapes = tuple(shapes)
    log, logger = io.StringIO(), logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    with _onnx_inverse(), warnings.catch_warnings(), contextlib.redirect_stdout(log):
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                module,
                args,
                str(path),
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_shapes=shapes,
                opset_version=OPSET,
                dynamo=True,
                external_data=False,
            )
        except Exception as exc:  # the exporter's own errors are long; keep the first line
            raise FommError(f"ONNX export of {path.name} failed: {str(exc).strip().splitlines()[0]}") from exc
        finally:
            logger.setLevel(level)


def io_spec(path: Path) -> dict:
    """Names and shapes (``'batch'`` for the dynamic axis) of a graph's inputs and outputs."""
    import onnx

    graph = onnx.load(str(path)).graph

    def spec(values):
        dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
        return [{"name": v.name, "shape": dims(v)} for v in values]

    return {"file": path.name, "inputs": spec(graph.input), "outputs": spec(graph.output)}


def _write_graphs(model, folder: Path, done=lambda: None) -> dict:
    kp_detector, generator = model.kp_detector.eval(), model.generator.eval()
    h, w = model.frame_shape
    jacobian = model.has_jacobian
    images = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        kp = kp_detector(images)
        state = generator.encode_source(images[:1])
    kp_names = ["value", "jacobian"] if jacobian else ["value"]
    export_graph(
        KeypointGraph(kp_detector), (images,), folder / GRAPH_FILES["kp_detector"], ["image"], kp_names, ["image"]
    )
    done()
    export_graph(
        SourceEncoderGraph(generator),
        (images[:1].clone(),),
        folder / GRAPH_FILES["source_encoder"],
        ["source"],
        ["features", "source_small"],
        ["source"],
    )
    done()
    names = ["kp_driving_value", "kp_source_value"]
    args = [kp["value"], kp["value"][:1].clone()]
    if jacobian:
        names = ["kp_driving_value", "kp_driving_jacobian", "kp_source_value", "kp_source_jacobian"]
        args = [kp["value"], kp["jacobian"], kp["value"][:1].clone(), kp["jacobian"][:1].clone()]
    names += ["features", "source_small"]
    args += [state.features, state.small]
    occlusion = generator.dense_motion_network is not None and generator.estimate_occlusion_map
    outputs = ["prediction", "occlusion_map"] if occlusion else ["prediction"]
    export_graph(
        (GeneratorGraph if jacobian else GeneratorGraphNoJacobian)(generator),
        tuple(args),
        folder / GRAPH_FILES["generator"],
        names,
        outputs,
        [n for n in names if n.startswith("kp_driving")],
    )
    done()
    return {"jacobian": jacobian, "occlusion_map": occlusion}


def export_onnx(model, out_dir: str | Path, check: bool = True, progress: bool = False) -> dict:
    """Write the three graphs and ``manifest.json`` into ``out_dir``; returns the manifest.

    ``progress`` shows a progress bar over the three graphs (each takes seconds to a minute)."""

    def fields(model, folder: Path, done) -> dict:
        flags = _write_graphs(model, folder, done)
        return {"num_kp": int(model.config.model_params.common_params.num_kp), **flags}

    return write_export_folder(model, out_dir, GRAPH_FILES, fields, check=check, progress=progress)


def write_export_folder(model, out_dir: str | Path, graph_files: dict, write, check: bool, progress: bool) -> dict:
    """The export of either model family: ``write(model, folder, done)`` writes the graphs
    ``graph_files`` names into ``folder``, calling ``done()`` after each, and returns the family's
    manifest fields.

    The folder appears whole or not at all: the graphs are written to a temporary folder beside
    it, checked with ``onnx.checker`` and renamed into place (an existing folder is replaced only
    when it holds a previous export). A model on another device is exported from a CPU copy."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not (out_dir / MANIFEST).is_file() and any(out_dir.iterdir()):
        raise FommError(f"{out_dir} exists and is not an ONNX export folder; choose an empty or new --out folder")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    if model.device.type != "cpu":  # export from a CPU copy; the caller's model stays where it is
        model = copy.deepcopy(model).to("cpu")
    model.eval()
    tmp = make_temp_dir(out_dir)  # a killed export leaves a folder the next write here removes
    try:
        with tqdm(total=len(graph_files), desc="exporting ONNX graphs", unit="graph", disable=not progress) as bar:
            fields = write(model, tmp, lambda: bar.update(1))
        if check:
            import onnx

            for file in graph_files.values():
                onnx.checker.check_model(str(tmp / file), full_check=True)
        manifest = {
            "format": FORMAT,
            "fomm_version": __version__,
            "opset": OPSET,
            "torch_version": torch.__version__,
            "preset": model.config.name,
            "frame_shape": list(model.frame_shape),
            **fields,
            "graphs": {name: io_spec(tmp / file) for name, file in graph_files.items()},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest
