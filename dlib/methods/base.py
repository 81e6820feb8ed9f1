"""What every method shares: networks + loss terms for a batch + its optimiser step(s).

A method is a small ``nn.Module``. The engine (:mod:`dlib.train`) only calls
:meth:`Method.train_step` with a batch and a torch generator and logs the dict it returns, so a
new method is one file that says how its loss is made (and, for adversarial methods, overrides
``train_step`` to add its discriminator update).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor, nn

from dlib.config import seeded

__all__ = ["Method", "make_config", "seeded"]


class Method(nn.Module):
    """Base class of every training method.

    Subclasses build their networks in ``__init__`` (inside :func:`seeded`), implement
    :meth:`terms`, and may override :meth:`configure_optimizers` / :meth:`train_step`.
    ``terms`` returns a dict of tensors that must contain ``"loss"`` (the quantity minimised);
    every other entry is logged as it is (scalars, or vectors such as per-dimension KL).
    """

    config: Any
    #: the engine draws ``batch_multiplier × batch_size`` images per step (FactorVAE uses a
    #: second, independent batch for its permuted codes)
    batch_multiplier: int = 1

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        # number of optimisation steps taken; a buffer so that it lives on the device and is
        # saved in checkpoints (schedules such as AnnealedVAE's capacity read it)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    # -- to be provided by subclasses -------------------------------------------------------
    def terms(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        raise NotImplementedError

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One Adam over all parameters with the config's ``lr``, ``adam_betas``, ``adam_eps``."""
        cfg = self.config
        return {
            "main": torch.optim.Adam(
                self.parameters(), lr=cfg.lr, betas=tuple(cfg.adam_betas), eps=cfg.adam_eps
            )
        }

    # -- used by the engine -----------------------------------------------------------------
    def setup_optimizers(self) -> None:
        """Create the optimisers (after the module is on its device)."""
        self.optimizers = self.configure_optimizers()

    def train_step(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """One optimisation step on batch ``x``; returns the detached loss terms."""
        if not self.optimizers:
            self.setup_optimizers()
        opt = self.optimizers["main"]
        opt.zero_grad(set_to_none=True)
        out = self.terms(x, generator)
        out["loss"].backward()
        opt.step()
        self.step += 1
        return {k: v.detach() for k, v in out.items()}

    def config_dict(self) -> dict[str, Any]:
        """The method's name and configuration, as stored in checkpoints and result files."""
        cfg = dataclasses.asdict(self.config) if dataclasses.is_dataclass(self.config) else {}
        return {"method": type(self).__name__, **cfg}


def make_config(cls: type, config: Any | None, overrides: dict[str, Any]) -> Any:
    """A config of dataclass ``cls`` from an optional base config plus keyword overrides."""
    base = config if config is not None else cls()
    if not isinstance(base, cls):
        raise TypeError(f"config must be a {cls.__name__}, got {type(base).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(overrides) - names
    if unknown:
        raise TypeError(
            f"unknown option(s) {sorted(unknown)} for {cls.__name__}; known: {sorted(names)}"
        )
    return dataclasses.replace(base, **overrides)
