"""The construction behind Locatello et al.'s impossibility theorem (ICML 2019, Theorem 1).

For a factorised distribution z ~ P with density p(z) = Π_i p_i(z_i) in d > 1 dimensions:

    g(u)_i = P(z_i ≤ u_i)              the factorised CDF: z ↦ independent uniforms
    h(v)_i = Φ⁻¹(v_i)                  the inverse standard-normal CDF: uniforms ↦ N(0, I)
    A      = I − 2 v vᵀ                a Householder reflection (orthogonal, no zero entry)
    f      = g⁻¹ ∘ h⁻¹ ∘ A ∘ h ∘ g     f(z) is distributed as z, yet ∂f_i/∂u_j ≠ 0 for all i, j

with v_1 = √α, v_i = √((1 − α)/(d − 1)) for i ≥ 2 and α ∈ (0, ½). f⁻¹ uses Aᵀ in place of A;
a Householder matrix is symmetric and its own inverse, so for it f⁻¹ = f. Any orthogonal A with
no zero entry works (:func:`random_rotation` gives one that mixes more). For a standard-normal P
(a VAE's prior) h ∘ g is the identity and f is the linear map A itself.

Everything is written in torch and differentiable, so Jacobians come from autograd; use float64
for round trips to 1e-6 and beyond.

Holds :func:`std_normal_cdf`, :func:`std_normal_icdf`, :class:`Marginal`, :class:`Normal`,
:class:`Uniform`, :class:`GaussianMixture`, :class:`Factorised`, :func:`householder`,
:func:`random_rotation`, :func:`entangle`, :func:`disentangle`, :func:`jacobian` and
:func:`log_abs_det_jacobian`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

_SQRT2 = math.sqrt(2.0)


def std_normal_cdf(x: Tensor) -> Tensor:
    """Φ(x), the standard-normal CDF."""
    return 0.5 * torch.erfc(-x / _SQRT2)


def std_normal_icdf(u: Tensor) -> Tensor:
    """Φ⁻¹(u) for u ∈ (0, 1): the function h of the proof, coordinate-wise."""
    return _SQRT2 * torch.erfinv(2.0 * u - 1.0)


# ------------------------------------------------------------------------------------------------
# One-dimensional marginals with CDF, inverse CDF and density
# ------------------------------------------------------------------------------------------------


class Marginal:
    """A continuous distribution on the real line: ``cdf``, ``icdf``, ``log_prob``, ``sample``."""

    def cdf(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def icdf(self, u: Tensor) -> Tensor:
        raise NotImplementedError

    def log_prob(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def sample(self, n: int, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float64) -> Tensor:
        """Inverse-transform sampling: icdf of uniforms."""
        u = torch.rand(n, generator=generator, dtype=dtype)
        return self.icdf(u.clamp(1e-12, 1 - 1e-12))


class Normal(Marginal):
    """N(loc, scale²)."""

    def __init__(self, loc: float = 0.0, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.loc, self.scale = float(loc), float(scale)

    def cdf(self, x: Tensor) -> Tensor:
        return std_normal_cdf((x - self.loc) / self.scale)

    def icdf(self, u: Tensor) -> Tensor:
        return self.loc + self.scale * std_normal_icdf(u)

    def log_prob(self, x: Tensor) -> Tensor:
        return -0.5 * ((x - self.loc) / self.scale) ** 2 - math.log(self.scale) - 0.5 * math.log(
            2 * math.pi
        )

    def __repr__(self) -> str:
        return f"Normal({self.loc:g}, {self.scale:g})"


class Uniform(Marginal):
    """Uniform on (low, high)."""

    def __init__(self, low: float = 0.0, high: float = 1.0) -> None:
        if not high > low:
            raise ValueError(f"need low < high, got {low}, {high}")
        self.low, self.high = float(low), float(high)

    def cdf(self, x: Tensor) -> Tensor:
        return ((x - self.low) / (self.high - self.low)).clamp(0.0, 1.0)

    def icdf(self, u: Tensor) -> Tensor:
        return self.low + u * (self.high - self.low)

    def log_prob(self, x: Tensor) -> Tensor:
        inside = (x > self.low) & (x < self.high)
        value = torch.full_like(x, -math.log(self.high - self.low))
        return torch.where(inside, value, torch.full_like(x, -math.inf))

    def __repr__(self) -> str:
        return f"Uniform({self.low:g}, {self.high:g})"


class GaussianMixture(Marginal):
    """A mixture of narrow Gaussians — a "discrete-like" factor with a density everywhere.

    The inverse CDF has no closed form: bisection to machine precision, then one Newton step
    written so that autograd sees d icdf/du = 1/p(x) (the implicit-function derivative).
    """

    def __init__(self, locs: Sequence[float], scales: Sequence[float] | float = 0.1,
                 weights: Sequence[float] | None = None) -> None:
        self.locs = torch.as_tensor(locs, dtype=torch.float64)
        k = self.locs.numel()
        self.scales = torch.as_tensor(scales, dtype=torch.float64).expand(k).clone()
        w = torch.ones(k, dtype=torch.float64) if weights is None else torch.as_tensor(
            weights, dtype=torch.float64)
        if (self.scales <= 0).any() or (w <= 0).any() or w.numel() != k:
            raise ValueError("scales and weights must be positive, one per component")
        self.weights = w / w.sum()

    def _params(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return (self.locs.to(x), self.scales.to(x), self.weights.to(x))

    def cdf(self, x: Tensor) -> Tensor:
        loc, scale, w = self._params(x)
        return (w * std_normal_cdf((x[..., None] - loc) / scale)).sum(-1)

    def log_prob(self, x: Tensor) -> Tensor:
        loc, scale, w = self._params(x)
        comp = Normal().log_prob((x[..., None] - loc) / scale) - scale.log()
        return torch.logsumexp(comp + w.log(), dim=-1)

    def icdf(self, u: Tensor) -> Tensor:
        loc, scale, _ = self._params(u)
        with torch.no_grad():
            lo = torch.full_like(u, float((loc - 40 * scale).min()))
            hi = torch.full_like(u, float((loc + 40 * scale).max()))
            for _ in range(100):
                mid = 0.5 * (lo + hi)
                below = self.cdf(mid) < u
                lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
            x0 = 0.5 * (lo + hi)
        # one Newton step: value x0 (to rounding), derivative ∂x/∂u = 1/p(x0) for autograd
        return x0 - (self.cdf(x0) - u) / self.log_prob(x0).exp().detach()

    def __repr__(self) -> str:
        return f"GaussianMixture(locs={self.locs.tolist()}, scales={self.scales.tolist()})"


class Factorised:
    """A factorised distribution p(z) = Π_i p_i(z_i) given by its d marginals."""

    def __init__(self, marginals: Sequence[Marginal]) -> None:
        if len(marginals) < 1:
            raise ValueError("need at least one marginal")
        self.marginals = list(marginals)

    @property
    def dim(self) -> int:
        return len(self.marginals)

    def _check(self, z: Tensor) -> None:
        if z.ndim != 2 or z.shape[1] != self.dim:
            raise ValueError(f"expected points (n, {self.dim}), got {tuple(z.shape)}")

    def cdf(self, z: Tensor) -> Tensor:
        """g(z): every coordinate through its own marginal CDF (n, d) → [0, 1]^d."""
        self._check(z)
        return torch.stack([m.cdf(z[:, i]) for i, m in enumerate(self.marginals)], 1)

    def icdf(self, u: Tensor) -> Tensor:
        """g⁻¹(u)."""
        self._check(u)
        return torch.stack([m.icdf(u[:, i]) for i, m in enumerate(self.marginals)], 1)

    def log_prob(self, z: Tensor) -> Tensor:
        """log p(z) = Σ_i log p_i(z_i), (n,)."""
        self._check(z)
        return sum(m.log_prob(z[:, i]) for i, m in enumerate(self.marginals))

    def sample(self, n: int, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float64) -> Tensor:
        """n independent draws (n, d)."""
        return torch.stack([m.sample(n, generator, dtype) for m in self.marginals], 1)

    def __repr__(self) -> str:
        return f"Factorised({self.marginals})"


# ------------------------------------------------------------------------------------------------
# The construction
# ------------------------------------------------------------------------------------------------


def householder(dim: int, alpha: float, dtype: torch.dtype = torch.float64) -> Tensor:
    """A = I − 2 v vᵀ with v_1 = √α and v_i = √((1 − α)/(d − 1)): orthogonal, symmetric, and for
    α ∈ (0, ½) without zero entries (A_ii = 1 − 2v_i², A_ij = −2 v_i v_j)."""
    if dim < 2:
        raise ValueError(f"the theorem needs d > 1, got {dim}")
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha must lie in (0, 1/2), got {alpha}")
    v = torch.full((dim,), math.sqrt((1.0 - alpha) / (dim - 1)), dtype=dtype)
    v[0] = math.sqrt(alpha)
    return torch.eye(dim, dtype=dtype) - 2.0 * torch.outer(v, v)


def random_rotation(dim: int, generator: torch.Generator | None = None,
                    dtype: torch.dtype = torch.float64) -> Tensor:
    """A uniformly random orthogonal matrix (QR of a Gaussian matrix with the sign fix); its
    entries are non-zero with probability one."""
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=dtype))
    return q * torch.sign(torch.diagonal(r))


def entangle(z: Tensor, dist: Factorised, A: Tensor) -> Tensor:
    """f(z) = g⁻¹(h⁻¹(A h(g(z)))) for points z (n, d) of ``dist``."""
    y = std_normal_icdf(dist.cdf(z)) @ A.T.to(z)  # rows: A h(g(z))
    return dist.icdf(std_normal_cdf(y))


def disentangle(z: Tensor, dist: Factorised, A: Tensor) -> Tensor:
    """f⁻¹(z) = g⁻¹(h⁻¹(Aᵀ h(g(z)))) (A is orthogonal, so A⁻¹ = Aᵀ)."""
    return entangle(z, dist, A.T)


def jacobian(fn: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
    """(n, d, d): ∂fn(z)_i/∂z_j at every row of ``z``, for a row-wise map ``fn`` (autograd)."""
    z = z.detach().requires_grad_(True)
    out = fn(z)
    rows = [torch.autograd.grad(out[:, i].sum(), z, retain_graph=True)[0]
            for i in range(out.shape[1])]
    return torch.stack(rows, 1)


def log_abs_det_jacobian(z: Tensor, dist: Factorised, A: Tensor) -> Tensor:
    """log |det ∂f/∂z| (n,) in closed form: log p(z) − log p(f(z)). (h∘g and its inverse
    contribute densities that cancel, and |det A| = 1.) This *is* the statement that f preserves
    the density: p(f(z)) |det J_f(z)| = p(z)."""
    return dist.log_prob(z) - dist.log_prob(entangle(z, dist, A))
