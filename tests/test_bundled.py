"""The bundled-model registry: one model per procedural category, the default first."""

from __future__ import annotations

import pytest

import fomm.bundled as B
from fomm.errors import FommError
from fomm.models import registry


def test_registry_paths_and_default(monkeypatch, tmp_path):
    (tmp_path / "bundled").mkdir()
    (tmp_path / "demo" / "face").mkdir(parents=True)
    monkeypatch.setattr(registry, "assets_dir", lambda: tmp_path)
    with pytest.raises(FommError, match="no bundled model"):
        B.default_category()
    (tmp_path / "bundled" / "puppet-64.pth").write_bytes(b"x")
    assert B.bundled_categories() == ["puppet"] and B.default_category() == "puppet"
    assert B.bundled_checkpoint_path() == tmp_path / "bundled" / "puppet-64.pth"
    with pytest.raises(FommError, match="bundled face model is missing.*--category puppet"):
        B.bundled_checkpoint_path("face")
    (tmp_path / "bundled" / "face-64.pth").write_bytes(b"x")
    assert B.bundled_categories() == ["face", "puppet"] and B.default_category() == "face"
    assert B.bundled_checkpoint_path("puppet").name == "puppet-64.pth"
    with pytest.raises(FommError, match="category 'cat'.*face, puppet"):
        B.bundled_checkpoint_path("cat")
    with pytest.raises(FommError, match="face demo inputs are missing"):
        B.demo_inputs()
    for name in ("source.png", "driving.mp4"):
        (tmp_path / "demo" / "face" / name).write_bytes(b"x")
    assert B.demo_inputs("face") == (
        tmp_path / "demo" / "face" / "source.png",
        tmp_path / "demo" / "face" / "driving.mp4",
    )


def test_shipped_demo_inputs_exist_for_every_category():
    for category in B.BUNDLED_MODELS:
        source, driving = B.demo_inputs(category)
        assert source.is_file() and driving.is_file()
