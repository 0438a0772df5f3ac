"""The evaluation report: per-task tables from per-video records, the JSON and Markdown files, and
the console table of ``fomm evaluate``.

A report is a plain dict (see :func:`fomm.evaluation.evaluate.evaluate`): ``{task: {method:
{l1, psnr, ssim, akd, [akd_l1, aed, missed], num_videos, num_frames}}}`` plus ``counts``, ``protocol``,
``notes`` and ``per_video``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from fomm.atomic import atomic_path
from fomm.errors import FommError, plural
from fomm.evaluation.metrics import summarize

__all__ = ["METHODS", "console_table", "json_safe", "keypoint_table", "report_markdown", "task_table", "write_report"]

METHODS = ("model", "static", "global_affine")
TASK_TITLES = {"reconstruction": "Reconstruction", "cross_identity": "Cross-identity animation"}
# column key, header, digits
COLUMNS = (
    ("l1", "L1 ↓", 4),
    ("psnr", "PSNR (dB) ↑", 2),
    ("ssim", "SSIM ↑", 4),
    ("akd", "AKD (px) ↓", 2),
    ("akd_l1", "AKD cmp.py (px) ↓", 2),
    ("aed", "AED ↓", 4),
    ("missed", "no keypoints (%)", 1),
)


def json_safe(x):
    """``x`` with numpy values as Python ones, non-finite floats as None and paths as strings."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, np.ndarray):
        return json_safe(x.tolist())
    if isinstance(x, Path):
        return str(x)
    return x


def task_table(records: list[dict]) -> dict:
    """``{method: {l1, psnr, ssim, akd, [akd_l1, aed, missed], num_videos, num_frames}}`` from the per-video
    records of one task (videos weighted by their scored frames)."""
    methods = [m for m in METHODS if records and all(m in r for r in records)]
    measured = {k for r in records for m in methods for k in r[m]}  # a metric nobody could compute is None
    keys = [k for k in ("l1", "psnr", "ssim", "akd", "akd_l1", "aed", "missed") if k in measured or k == "akd"]
    table = {}
    for m in methods:
        summary = summarize([{"num_frames": r["num_frames"], **r[m]} for r in records])
        table[m] = {k: summary.get(k, math.nan) for k in keys}
        table[m]["num_videos"] = summary["num_videos"]
        table[m]["num_frames"] = summary["num_frames"]
    return table


def keypoint_table(records: list[dict], names: list[str]) -> dict:
    """``{"names": names, method: [AKD px of each keypoint]}``: each method's per-keypoint AKD
    (``akd_per_keypoint`` of the per-video records) averaged over the videos, weighted by their
    scored frames; NaN for a keypoint no video measured."""
    table: dict = {"names": list(names)}
    for m in METHODS:
        rows = [r for r in records if len((r.get(m) or {}).get("akd_per_keypoint") or []) == len(names)]
        if not rows:
            continue
        values = np.array([r[m]["akd_per_keypoint"] for r in rows], dtype=np.float64)
        weights = np.array([r["num_frames"] for r in rows], dtype=np.float64)[:, None] * np.isfinite(values)
        total = np.where(np.isfinite(values), values, 0.0) * weights
        table[m] = np.where(weights.sum(0) > 0, total.sum(0) / np.maximum(weights.sum(0), 1e-12), np.nan).tolist()
    return table


def _fmt(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def _columns(report: dict) -> list[tuple[str, str, int]]:
    """The columns the report has values for (AKD by cmp.py, AED and the detector misses only when
    measured)."""
    tables = [report.get(t) or {} for t in report.get("tasks", [])]
    present = {k for table in tables for m in table.values() for k in m}
    return [c for c in COLUMNS if c[0] in ("l1", "psnr", "ssim", "akd") or c[0] in present]


def _cell(metrics: dict, key: str, digits: int) -> str:
    value = metrics.get(key)
    if key == "missed" and value is not None:
        value = 100.0 * value
    return _fmt(value, digits)


def _coverage(report: dict, task: str) -> str:
    counts = report.get("counts", {}).get(task, {})
    excluded = (report.get("protocol") or {}).get("source_frame") == "excluded"
    return f"{plural(counts.get('videos', 0), 'video')}, {plural(counts.get('frames', 0), 'frame')} scored; " + (
        "frame 0 (the source) excluded" if excluded else "frame 0 (the source) included, as the original"
    )


def _header_lines(report: dict) -> list[str]:
    ds = report.get("dataset") or {}
    what = (
        f"procedural {ds.get('category')} ({ds.get('size')}x{ds.get('size')}, seed {ds.get('seed')})"
        if ds.get("kind") == "procedural"
        else "videos"
    )
    lines = [
        f"- checkpoint: `{report.get('checkpoint') or 'bundled / in-memory model'}` (config {report.get('config')})",
        f"- data: `{report.get('data')}` — {what}; model frame size {'x'.join(map(str, report.get('frame_shape') or []))}",
    ]
    det = report.get("landmark_detector")
    if det and det.get("weights"):
        lines.append(
            f"- landmark detector: `{det['weights']}` (AKD on held-out test frames when trained: "
            f"{_fmt(det.get('test_akd_px'), 2)} px)"
        )
    elif det and det.get("faces"):
        lines.append(f"- face metrics: {det['faces']}")
    if report.get("max_videos"):
        lines.append(f"- at most {plural(report['max_videos'], 'video')} per task (--max-videos)")
    return lines


def _task_lines(report: dict, task: str, columns) -> list[str]:
    table = report.get(task) or {}
    lines = [f"## {TASK_TITLES.get(task, task)} ({_coverage(report, task)})", ""]
    lines.append("| method | " + " | ".join(h for _, h, _ in columns) + " |")
    lines.append("|---|" + "---:|" * len(columns))
    for method, m in table.items():
        lines.append(f"| {method} | " + " | ".join(_cell(m, k, d) for k, _, d in columns) + " |")
    stick = (report.get("landmark_detector_akd") or {}).get(task)
    if stick is not None:
        lines += [
            "",
            f"Landmark detector's own AKD on the real target frames: {_fmt(stick, 2)} px (the measuring stick's error).",
        ]
    missed = (report.get("reference_missed") or {}).get(task)
    if missed is not None:
        lines += ["", f"Keypoint detector found nothing on {100 * missed:.1f}% of the real frames."]
    return lines + [""] + _keypoint_lines(report, task)


def _keypoint_lines(report: dict, task: str) -> list[str]:
    """The AKD of each ground-truth keypoint (procedural data): which parts the model follows."""
    table = (report.get("akd_per_keypoint") or {}).get(task)
    if not table:
        return []
    methods = [m for m in METHODS if m in table]
    lines = [f"AKD per keypoint (px), {TASK_TITLES.get(task, task).lower()}:", ""]
    lines.append("| keypoint | " + " | ".join(methods) + " |")
    lines.append("|---|" + "---:|" * len(methods))
    for i, name in enumerate(table["names"]):
        lines.append(f"| {name} | " + " | ".join(_fmt(table[m][i], 2) for m in methods) + " |")
    return lines + [""]


def report_markdown(report: dict) -> str:
    """The report as a Markdown document: one table per task."""
    lines = ["# FOMM evaluation", "", *_header_lines(report), ""]
    columns = _columns(report)
    for task in report.get("tasks", []):
        lines += _task_lines(report, task, columns)
    lines.append("Protocol: " + "; ".join(f"{k}: {v}" for k, v in (report.get("protocol") or {}).items()) + ".")
    lines.append("")
    notes = report.get("notes") or []
    if notes:
        lines += ["## Notes", "", *(f"- {n}" for n in notes), ""]
    secs = report.get("seconds") or {}
    if secs:
        lines += [f"Time: {secs.get('total', 0):.1f} s.", ""]
    return "\n".join(lines)


def console_table(report: dict) -> str:
    """The tables as aligned plain text for the terminal, with the notes."""
    columns = _columns(report)
    out = []
    for task in report.get("tasks", []):
        out.append(f"{TASK_TITLES.get(task, task)} ({_coverage(report, task)})")
        rows = [["method", *(h for _, h, _ in columns)]]
        rows += [[m, *(_cell(v, k, d) for k, _, d in columns)] for m, v in (report.get(task) or {}).items()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            out.append(
                "  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
            )
        stick = (report.get("landmark_detector_akd") or {}).get(task)
        if stick is not None:
            out.append(f"  (the landmark detector's own AKD on the real frames: {_fmt(stick, 2)} px)")
        missed = (report.get("reference_missed") or {}).get(task)
        if missed is not None:
            out.append(f"  (no face / keypoints found on {100 * missed:.1f}% of the real frames)")
        out.append("")
    out += [f"note: {n}" for n in report.get("notes") or []]
    return "\n".join(out).rstrip() + "\n"


def write_report(report: dict, out: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``report`` as JSON to ``out`` and as Markdown beside it (``.md``), atomically."""
    out = Path(out)
    if out.suffix.lower() != ".json":
        raise FommError(
            f"report path {out} does not end in .json; pass e.g. --out report.json (the Markdown table goes beside it)"
        )
    md = out.with_suffix(".md")
    text = json.dumps(json_safe(report), indent=2, allow_nan=False) + "\n"
    try:
        with atomic_path(out) as tmp:
            tmp.write_text(text)
        with atomic_path(md) as tmp:
            tmp.write_text(report_markdown(report))
    except OSError as exc:
        raise FommError(f"cannot write {out} ({exc.strerror or exc}); choose a folder you can write to") from None
    return out, md
