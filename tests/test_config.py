import numpy as np
import pytest
import torch

from dlib import config


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("DLIB_PROFILE", "full")
    assert config.profile() == "full"
    assert config.by_profile(quick=1, full=2) == 2
    monkeypatch.setenv("DLIB_PROFILE", "QUICK ")
    assert config.profile() == "quick"
    assert config.is_quick()
    assert config.by_profile(quick=1, full=2) == 1


def test_profile_default_follows_cuda(monkeypatch):
    monkeypatch.delenv("DLIB_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert config.profile() == "quick"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.profile() == "full"


def test_bad_profile_is_an_error(monkeypatch):
    monkeypatch.setenv("DLIB_PROFILE", "fast")
    with pytest.raises(ValueError, match="DLIB_PROFILE"):
        config.profile()


def test_device_choice(monkeypatch):
    monkeypatch.delenv("DLIB_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert config.device().type == "cpu"
    assert config.device("cpu").type == "cpu"
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        config.device("cuda")
    monkeypatch.setenv("DLIB_DEVICE", "cpu")
    assert config.device().type == "cpu"


def test_seed_everything_reproduces_global_streams():
    rs1 = config.seed_everything(3)
    a = (np.random.rand(3), torch.rand(3), rs1.rand(2))
    rs2 = config.seed_everything(3)
    b = (np.random.rand(3), torch.rand(3), rs2.rand(2))
    np.testing.assert_array_equal(a[0], b[0])
    assert torch.equal(a[1], b[1])
    np.testing.assert_array_equal(a[2], b[2])
    with pytest.raises(ValueError):
        config.seed_everything(-1)


def test_progress_respects_tqdm_disable(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert config.progress(range(3), total=3).disable
    monkeypatch.setenv("TQDM_DISABLE", "0")
    assert not config.progress_disabled()


def test_cache_dir_override(monkeypatch, tmp_path):
    monkeypatch.setenv("DLIB_CACHE", str(tmp_path / "c"))
    assert config.cache_dir() == tmp_path / "c"
    assert (tmp_path / "c").is_dir()
