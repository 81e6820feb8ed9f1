"""The loss of one training step of each supported method, written for many models at once.

A *kernel* says, for one method family, (1) which random inputs a step consumes and in which
order it draws them from a model's generator (the order of :meth:`Method.train_step`, so that a
batched run sees exactly the batches and noise of separate :func:`dlib.train.fit` runs), (2)
which configuration fields may differ between the models (they become tensors of shape (N,)),
and (3) the step itself: forward with :func:`torch.func.vmap` over the model axis, gradients,
and the optimiser update(s) through :class:`dlib.engine.batched.BatchedAdam`.

Kernels write no loss of their own: each calls (under vmap) the pure loss functions of its
method's module, the ones the eager method calls (:func:`dlib.methods.vae.vae_terms` with the
family's regulariser, :func:`dlib.methods.tcvae.tcvae_terms`,
:func:`dlib.methods.factor.factor_vae_terms`, :func:`dlib.methods.factor.discriminator_loss`),
so a loss is written once. ``tests/test_engine.py`` checks every kernel against the eager methods.

Holds :class:`Kernel` and its subclasses (:class:`VAEKernel`, :class:`AnnealedKernel`,
:class:`DIPKernel`, :class:`TCVAEKernel`, :class:`FactorKernel`, :class:`PriorKernel`), the
table :data:`KERNELS` and :func:`kernel_for`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.func import functional_call

from dlib.distributions import reparameterise
from dlib.methods.aae import FactorVAEPrior
from dlib.methods.annealed import AnnealedVAE, annealed_regularizer
from dlib.methods.base import Method
from dlib.methods.dip import DIPVAE, dip_regularizer
from dlib.methods.factor import (
    FactorVAE,
    density_ratio_estimate,
    discriminator_loss,
    factor_vae_terms,
)
from dlib.methods.tcvae import BetaTCVAE, tcvae_log_weights, tcvae_terms
from dlib.methods.vae import VAE, beta_kl, vae_terms
from dlib.theory.kl import permute_dims

if TYPE_CHECKING:  # pragma: no cover
    from dlib.engine.batched import BatchedState

Params = dict[str, Tensor]

# configuration fields that are optimiser settings (read from the optimisers, may differ) or
# initialisation seeds (differ by design): never part of the "same architecture" check
_FREE_FIELDS = {"seed", "lr", "adam_betas", "adam_eps", "d_lr", "d_adam_betas"}


def _sub(params: Params, prefix: str) -> Params:
    """The entries of ``params`` under ``prefix.``, with the prefix removed."""
    n = len(prefix) + 1
    return {k[n:]: v for k, v in params.items() if k.startswith(prefix + ".")}


class Kernel:
    """Base of the per-family step functions (see the module docstring)."""

    #: configuration fields that may differ between the models (become (N,) tensors)
    hyper_fields: tuple[str, ...] = ()
    #: the method classes this kernel trains (exact classes or subclasses that override none of
    #: ``terms``, ``regularizer``, ``train_step``)
    classes: tuple[type[Method], ...] = ()

    def __init__(self, template: Method) -> None:
        self.template = template
        self.num_latents = int(template.config.num_latents)

    # -- hyperparameters ------------------------------------------------------------------------
    def hyper_values(self, method: Method) -> dict[str, float]:
        """This model's values of :attr:`hyper_fields` (floats)."""
        return {f: float(getattr(method.config, f)) for f in self.hyper_fields}

    def static_config(self, method: Method) -> dict[str, Any]:
        """The configuration fields that must agree between batched models."""
        cfg = method.config_dict()
        return {k: v for k, v in cfg.items()
                if k not in _FREE_FIELDS and k not in self.hyper_fields}

    # -- randomness -----------------------------------------------------------------------------
    def draw(self, data: Any, batch_size: int, gen: torch.Generator) -> dict[str, Tensor]:
        """One model's random inputs of one step, drawn in the order its ``train_step`` uses."""
        x = data.sample(batch_size, gen)
        eps = torch.randn((batch_size, self.num_latents), device=x.device, dtype=x.dtype,
                          generator=gen)
        return {"x": x, "eps": eps}

    # -- the step -------------------------------------------------------------------------------
    def step(self, st: BatchedState, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        raise NotImplementedError

    def prepare(self, device: torch.device, batch_size: int) -> None:
        """Build constants on the device before any capture (no host→device copies later)."""


class VAEKernel(Kernel):
    """VAE, β-VAE, AnnealedVAE, DIP-VAE-I/II and β-TCVAE: one optimiser, one loss."""

    hyper_fields = ("beta",)
    classes = (VAE,)

    def regularizer(self, h: dict[str, Tensor], mean: Tensor, logvar: Tensor, z: Tensor,
                    kl_dims: Tensor, step: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The family's regulariser (its method module's pure function) with this model's
        hyperparameters ``h``."""
        return beta_kl(kl_dims, h["beta"]), {}

    def _forward(self, p: Params, x: Tensor, eps: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Posterior, reparameterised code and decoder logits of one model (under vmap)."""
        mean, logvar = functional_call(self.template.encoder, _sub(p, "encoder"), (x,))
        z = reparameterise(mean, logvar, noise=eps)
        logits = functional_call(self.template.decoder, _sub(p, "decoder"), (z,))
        return mean, logvar, z, logits

    def _one(self, p: Params, x: Tensor, eps: Tensor, h: dict[str, Tensor],
             step: Tensor) -> dict[str, Tensor]:
        """The eager method's ``terms`` for one model (runs under vmap)."""
        mean, logvar, z, logits = self._forward(p, x, eps)
        return vae_terms(x, logits, mean, logvar, z,
                         lambda m, lv, z_, kd: self.regularizer(h, m, lv, z_, kd, step))

    def step(self, st: BatchedState, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        params = st.param_views()
        out = st.map(self._one, params, inputs["x"], inputs["eps"], st.hyper, st.step)
        st.update(out["loss"], st.groups, params)
        return {k: v.detach() for k, v in out.items()}


class AnnealedKernel(VAEKernel):
    """AnnealedVAE: γ·|KL − C(t)| with the capacity ramp read from each model's step counter."""

    hyper_fields = ("gamma", "c_max", "iteration_threshold")
    classes = (AnnealedVAE,)

    def regularizer(self, h, mean, logvar, z, kl_dims, step):
        return annealed_regularizer(kl_dims, step, h["gamma"], h["c_max"],
                                    h["iteration_threshold"])


class DIPKernel(VAEKernel):
    """DIP-VAE-I/II: β·KL + the DIP penalty (λ_d resolved per model by the method's rule)."""

    hyper_fields = ("beta", "lambda_od", "lambda_d")
    classes = (DIPVAE,)

    def hyper_values(self, method: Method) -> dict[str, float]:
        assert isinstance(method, DIPVAE)
        return {"beta": float(method.config.beta), "lambda_od": float(method.config.lambda_od),
                "lambda_d": float(method.lambda_d)}

    def regularizer(self, h, mean, logvar, z, kl_dims, step):
        return dip_regularizer(mean, logvar, kl_dims, self.template.config.dip_type, h["beta"],
                               h["lambda_od"], h["lambda_d"])


class TCVAEKernel(VAEKernel):
    """β-TCVAE: α·MI + β·TC + γ·dim-KL estimated on the batch (the log weights built once)."""

    hyper_fields = ("alpha", "beta", "gamma")
    classes = (BetaTCVAE,)

    def prepare(self, device: torch.device, batch_size: int) -> None:
        # a constant built once on the device: creating it inside a captured step would copy
        # from the host during capture
        self.log_w = tcvae_log_weights(self.template.config, batch_size, device)

    def _one(self, p, x, eps, h, step):
        mean, logvar, z, logits = self._forward(p, x, eps)
        return tcvae_terms(x, logits, mean, logvar, z, self.log_w, h["alpha"], h["beta"],
                           h["gamma"])


class FactorKernel(Kernel):
    """FactorVAE: a discriminator step on detached codes, then the VAE step with the updated D.
    """

    hyper_fields = ("beta", "gamma")
    classes = (FactorVAE,)

    def draw(self, data, batch_size, gen):
        second = self.template.config.permute == "second"
        x = data.sample(batch_size * (2 if second else 1), gen)
        shape = (batch_size, self.num_latents)
        out = {"x": x, "eps": torch.randn(shape, device=x.device, dtype=x.dtype, generator=gen)}
        if second:
            out["eps2"] = torch.randn(shape, device=x.device, dtype=x.dtype, generator=gen)
        out["keys"] = torch.rand(shape, device=x.device, dtype=x.dtype, generator=gen)
        return out

    def _encode(self, p: Params, x: Tensor, eps: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        mean, logvar = functional_call(self.template.encoder, _sub(p, "encoder"), (x,))
        return mean, logvar, reparameterise(mean, logvar, noise=eps)

    def _d_loss(self, pd: Params, z: Tensor, z_perm: Tensor) -> tuple[Tensor, Tensor]:
        disc = self.template.discriminator
        return discriminator_loss(functional_call(disc, pd, (z,)),
                                  functional_call(disc, pd, (z_perm,)))

    def _objective(self, p: Params, pd: Params, x: Tensor, mean: Tensor, logvar: Tensor,
                   z: Tensor, h: dict[str, Tensor]) -> dict[str, Tensor]:
        logits = functional_call(self.template.decoder, _sub(p, "decoder"), (z,))
        tc = density_ratio_estimate(functional_call(self.template.discriminator, pd, (z,)))
        return factor_vae_terms(x, logits, mean, logvar, tc, h["beta"], h["gamma"],
                                self.template.penalty_name)

    def reference(self, st: BatchedState, vae_p: Params, x_ref: Tensor, z: Tensor,
                  inputs: dict[str, Tensor]) -> Tensor:
        """The samples D tells the codes from: the (second batch's) codes, columns permuted."""
        if "eps2" in inputs:
            frozen = {k: v.detach() for k, v in vae_p.items()}
            _, _, z = st.map(self._encode, frozen, x_ref, inputs["eps2"])
        return permute_dims(z.detach(), keys=inputs["keys"])

    def step(self, st: BatchedState, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        second = "eps2" in inputs
        x = inputs["x"]
        b = inputs["eps"].shape[1]
        x_vae, x_perm = (x[:, :b], x[:, b:]) if second else (x, x)
        params = st.param_views()
        vae_p = {k: v for k, v in params.items() if not k.startswith("discriminator.")}
        mean, logvar, z = st.map(self._encode, vae_p, x_vae, inputs["eps"])
        z_ref = self.reference(st, vae_p, x_perm, z, inputs)
        # 1) the discriminator step on detached codes
        d_groups = [g for g in st.groups if g.prefix == "discriminator"]
        pd = _sub(params, "discriminator")
        d_loss, d_acc = st.map(self._d_loss, pd, z.detach(), z_ref)
        st.update(d_loss, d_groups, params)
        # 2) the VAE step with the updated discriminator (fresh views of its updated weights)
        pd = {k: v.detach() for k, v in _sub(st.param_views(), "discriminator").items()}
        out = st.map(self._objective, vae_p, pd, x_vae, mean, logvar, z, st.hyper)
        st.update(out["loss"], [g for g in st.groups if g.prefix != "discriminator"], params)
        out = {k: v.detach() for k, v in out.items()}
        out.update(d_loss=d_loss.detach(), d_accuracy=d_acc.detach())
        return out


class PriorKernel(FactorKernel):
    """FactorVAE's prior variant and the AAE: D tells the codes from samples of N(0, I)."""

    classes = (FactorVAEPrior,)

    def draw(self, data, batch_size, gen):
        x = data.sample(batch_size, gen)
        shape = (batch_size, self.num_latents)
        eps = torch.randn(shape, device=x.device, dtype=x.dtype, generator=gen)
        prior = torch.randn(shape, device=x.device, dtype=x.dtype, generator=gen)
        return {"x": x, "eps": eps, "prior": prior}

    def reference(self, st, vae_p, x_ref, z, inputs):
        return inputs["prior"]


#: most specific first
KERNELS: tuple[type[Kernel], ...] = (PriorKernel, FactorKernel, AnnealedKernel, DIPKernel,
                                     TCVAEKernel, VAEKernel)
_OVERRIDABLE = ("terms", "regularizer", "train_step", "_objective", "tc_estimate",
                "discriminator_loss", "configure_optimizers", "reference_codes")


def kernel_for(method: Method) -> type[Kernel] | None:
    """The kernel that reproduces ``method``'s training step, or None (then: train it alone).

    A subclass qualifies only if it changes none of the functions that define the step (it may
    swap the networks, as long as they are plain modules without buffers).
    """
    for kernel in KERNELS:
        for cls in kernel.classes:
            if isinstance(method, cls):
                same = all(getattr(type(method), name, None) is getattr(cls, name, None)
                           for name in _OVERRIDABLE)
                return kernel if same else None
    return None
