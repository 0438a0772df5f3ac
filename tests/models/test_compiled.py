"""torch.compile for inference: the cache folder and the compile time printed once (torch.compile
itself is replaced here: compiling a network takes minutes on 2 cores)."""

from __future__ import annotations

import torch

from fomm.models import compiled


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("FOMM_HOME", str(tmp_path))
    assert compiled.inductor_cache_dir() == tmp_path / "inductor"
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "own"))
    assert compiled.inductor_cache_dir() == tmp_path / "own"


def test_compile_time_is_printed_once_and_weights_are_frozen(monkeypatch, tmp_path, capsys):
    import torch._inductor.config as inductor_config

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(torch, "compile", lambda fn: fn)
    # the config module's own patch(): pytest's monkeypatch undoes a setattr on it by deleting the
    # setting (torch._inductor.config.freezing then "does not exist" for every later compile)
    with inductor_config.patch(freezing=False):
        call = compiled.compile_call(lambda x: x + 1, "generator")
        assert inductor_config.freezing and (tmp_path / "cache").is_dir()
    assert call(1) == 2 and call(2) == 3
    err = capsys.readouterr().err
    assert err.count("torch.compile of the generator") == 1 and str(tmp_path / "cache") in err
