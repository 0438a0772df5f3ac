"""``fomm train --compile`` for TPSMM runs: the keypoint detector and the inpainting network run
compiled (the same parameters, the same checkpoints) and give eager's losses. torch.compile's
default compiler takes minutes on 2 cores, so it is asked for its ``aot_eager`` backend here: the
same graph capture (Dynamo) and autograd tracing, without generating kernels."""

from __future__ import annotations

import csv

import pytest
import torch
import yaml
from test_tpsmm_train import tiny_config, train  # noqa: I001 - tests/training/test_tpsmm_train.py

from fomm.models.checkpoint import read_checkpoint


def losses(run) -> list[dict]:
    with (run / "log.csv").open() as fh:
        return [
            {k: float(v) for k, v in row.items() if k not in ("step", "epoch", "seconds")} for row in csv.DictReader(fh)
        ]


@pytest.mark.slow
def test_compiled_parts_give_eager_losses_and_plain_checkpoints(tpsmm_data, tmp_path, monkeypatch, capsys):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny_config()))
    config = ["--config", str(tmp_path / "tiny.yaml"), "--max-steps", "2", "--vis-every", "0"]
    assert train(tpsmm_data, tmp_path / "eager", *config) == 0
    compiled, real = [], torch.compile

    def aot_eager(module, **options):
        compiled.append(type(module).__name__)
        return real(module, backend="aot_eager", **options)

    monkeypatch.setattr(torch, "compile", aot_eager)
    assert train(tpsmm_data, tmp_path / "compiled", *config, "--compile") == 0
    assert compiled == ["TpsKeypointDetector", "InpaintingNetwork"]
    err = capsys.readouterr().err
    assert ", compiled" in err and "not used by Thin-Plate Spline" not in err  # --compile is no longer FOMM only
    eager, fast = losses(tmp_path / "eager"), losses(tmp_path / "compiled")
    assert len(eager) == len(fast) == 2  # step 2 trained the compiled parts' parameters
    for a, b in zip(eager, fast):
        assert b == pytest.approx(a, rel=1e-4, abs=1e-6)
    saved = read_checkpoint(tmp_path / "compiled" / "checkpoints" / "step-00000002.pt")
    assert not [k for part in ("kp_detector", "inpainting_network") for k in saved[part] if "_orig_mod" in k]
