"""Compact checkpoints the book can ship: a trained model's networks in float16, plus its config.

A training checkpoint (:func:`dlib.train.save_checkpoint`) keeps Adam's two moment estimates and
(for FactorVAE) a 6-million-parameter discriminator: several MB to tens of MB per model. To
*use* a trained model — encode, decode, traverse, score — only the encoder and decoder are
needed, and float16 weights change the codes by about 1e-3 of their scale. A compact file holds

* ``config`` (the method's :meth:`~dlib.methods.base.Method.config_dict`), ``image_shape``;
* ``state``: every encoder/decoder tensor in float16 (other sub-networks are left out);
* ``probe``: the posterior means of a fixed set of dataset indices computed by the *full
  precision* model when it was saved, and any ``scores`` recorded with it, so that a loaded
  model can be checked against what it was (:func:`check_compact`).

At the CPU scale (32×32, width ½: 167k parameters) a file is about 0.35 MB, so twenty stay
under 8 MB.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlib.methods.base import Method

__all__ = ["COMPACT_VERSION", "save_compact", "load_compact", "load_beside", "probe_indices",
           "check_compact"]

COMPACT_VERSION = 1
_KEEP = ("encoder.", "decoder.")


def probe_indices(data: Any, num: int = 512, seed: int = 0) -> np.ndarray:
    """A fixed set of ``num`` distinct dataset indices (sorted), the same for every model."""
    rs = np.random.RandomState(seed)
    return np.sort(rs.choice(data.num_observations, size=min(num, data.num_observations),
                             replace=False))


@torch.no_grad()
def _means(method: Method, data: Any, index: np.ndarray) -> np.ndarray:
    dev = next(method.parameters()).device
    images = data.images_from_classes(torch.as_tensor(data.index_to_classes(index)), "cpu")
    x = data.observe(images).to(dev)
    return method.encode(x)[0].float().cpu().numpy()


def save_compact(path: str | os.PathLike, method: Method, data: Any,
                 scores: dict[str, float] | None = None, extra: dict[str, Any] | None = None,
                 num_probe: int = 512) -> Path:
    """Write ``method``'s encoder and decoder in float16 with its config and a probe of its
    codes on ``data`` (see the module docstring); returns the path. Atomic."""
    if not hasattr(method, "encode"):
        raise TypeError(f"{type(method).__name__} has no encoder: compact checkpoints hold "
                        "encoder/decoder models")
    method.eval()
    state = {k: v.detach().cpu().half() for k, v in method.state_dict().items()
             if k.startswith(_KEEP) and v.is_floating_point()}
    if not state:
        raise ValueError(f"{type(method).__name__} has no encoder./decoder. parameters")
    index = probe_indices(data, num_probe)
    record = {
        "version": COMPACT_VERSION,
        "config": method.config_dict(),
        "image_shape": list(method.image_shape),
        "dataset": {"name": data.name, "image_size": int(data.image_shape[-1])},
        "state": state,
        "probe": {"index": torch.as_tensor(index), "mean": torch.as_tensor(
            _means(method, data, index))},
        "scores": dict(scores or {}),
        "extra": dict(extra or {}),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(record, tmp)
    os.replace(tmp, path)
    return path


def _build(config: dict[str, Any], image_shape: tuple[int, int, int]) -> Method:
    import dlib.methods

    name = config.get("method")
    cls = getattr(dlib.methods, str(name), None)
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise ValueError(f"unknown method class {name!r} in the compact checkpoint")
    cfg_cls = cls.config_class  # type: ignore[attr-defined]
    fields = {f.name: f for f in dataclasses.fields(cfg_cls)}
    options = {}
    for key, value in config.items():
        if key == "method":
            continue
        if key not in fields:
            raise ValueError(f"{name}: the checkpoint has option {key!r}, which this dlib's "
                             f"{cfg_cls.__name__} does not know")
        options[key] = tuple(value) if isinstance(value, list) else value
    return cls(image_shape, cfg_cls(**options))


def load_compact(path: str | os.PathLike, device: torch.device | str = "cpu"
                 ) -> tuple[Method, dict[str, Any]]:
    """The method stored at ``path`` (float32 weights on ``device``, eval mode) and the record
    (config, dataset, probe, scores, extra)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no compact checkpoint at {path}")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file
        raise ValueError(f"{path} is not a readable compact checkpoint: {err}") from err
    if not isinstance(record, dict) or record.get("version") != COMPACT_VERSION:
        raise ValueError(f"{path} is not a compact checkpoint of version {COMPACT_VERSION}")
    method = _build(record["config"], tuple(record["image_shape"]))
    own = method.state_dict()
    wanted = {k for k, v in own.items() if k.startswith(_KEEP) and v.is_floating_point()}
    missing, unknown = wanted - set(record["state"]), set(record["state"]) - wanted
    if missing or unknown:
        raise ValueError(f"{path}: weights do not fit {type(method).__name__} "
                         f"(missing {sorted(missing)[:3]}, unknown {sorted(unknown)[:3]})")
    for k, v in record["state"].items():
        own[k].copy_(v.float())
    method.to(device).eval()
    return method, record


def load_beside(result: Any, device: torch.device | str = "cpu"
                ) -> tuple[Method, dict[str, Any]]:
    """The compact checkpoint stored beside a saved result (:class:`dlib.results.Result`, its
    ``.json`` with a ``.pt`` of the same name): ``(method, record)`` as :func:`load_compact`."""
    path = Path(result.path).with_suffix(".pt")
    if not path.exists():
        raise FileNotFoundError(f"{Path(result.path).name} has no checkpoint beside it "
                                f"({path.name})")
    return load_compact(path, device)


def check_compact(method: Method, record: dict[str, Any], data: Any) -> float:
    """Largest |mean code now − mean code stored| on the record's probe images, relative to the
    stored codes' standard deviation (float16 weights: ~1e-3)."""
    index = record["probe"]["index"].numpy()
    stored = record["probe"]["mean"].numpy()
    now = _means(method, data, index)
    scale = float(stored.std()) or 1.0
    return float(np.abs(now - stored).max() / scale)
