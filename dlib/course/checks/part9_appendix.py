"""Self-checks of the appendix: the training engine (chapters/91_engine).

The check runs ``torch.optim.Adam`` once per model as the independent reference; no expected
number is stored here.
"""

from __future__ import annotations

from typing import Any

from dlib.course.checks.core import WrongForm, exercise_check


def _reference(theta0, grads, lr, beta1, beta2, eps, bias_correction=True):
    """Each model's parameters after the given gradients, by torch.optim.Adam (float64)."""
    import torch

    out = []
    for i in range(theta0.shape[0]):
        p = torch.nn.Parameter(theta0[i].clone())
        if bias_correction:
            opt = torch.optim.Adam([p], lr=float(lr[i]), betas=(float(beta1[i]),
                                                                float(beta2[i])),
                                   eps=float(eps[i]))
            for g in grads:
                p.grad = g[i].clone()
                opt.step()
        else:  # the classic slip: no bias correction
            m = torch.zeros_like(p)
            v = torch.zeros_like(p)
            with torch.no_grad():
                for g in grads:
                    m = beta1[i] * m + (1 - beta1[i]) * g[i]
                    v = beta2[i] * v + (1 - beta2[i]) * g[i] ** 2
                    p -= lr[i] * m / (v.sqrt() + eps[i])
        out.append(p.detach())
    return torch.stack(out)


@exercise_check("ex-m91-stacked-adam",
                answer="a function stacked_adam(theta, grad, m, v, t, lr, beta1, beta2, eps) of "
                       "(N, P) tensors theta, grad, m, v, the step number t (1 for the first "
                       "step) and (N, 1) tensors lr, beta1, beta2, eps, returning the tuple "
                       "(theta, m, v) after one Adam step of every model")
def _ex_m91_stacked_adam(answer: Any) -> list[str]:
    import torch

    if not callable(answer):
        raise WrongForm(f"The answer is of type {type(answer).__name__}, not a function.")
    g = torch.Generator().manual_seed(91)
    n, p, steps = 3, 7, 5
    f64 = torch.float64
    theta0 = torch.randn(n, p, generator=g, dtype=f64)
    grads = [torch.randn(n, p, generator=g, dtype=f64) * 10 ** (-k) for k in range(steps)]
    lr = torch.tensor([[1e-3], [3e-2], [1e-1]], dtype=f64)
    beta1 = torch.tensor([[0.9], [0.5], [0.0]], dtype=f64)
    beta2 = torch.tensor([[0.999], [0.9], [0.99]], dtype=f64)
    eps = torch.tensor([[1e-8], [1e-3], [1e-6]], dtype=f64)
    theta, m, v = theta0.clone(), torch.zeros_like(theta0), torch.zeros_like(theta0)
    for t, grad in enumerate(grads, 1):
        try:
            result = answer(theta.clone(), grad.clone(), m.clone(), v.clone(), t, lr.clone(),
                            beta1.clone(), beta2.clone(), eps.clone())
        except NotImplementedError:
            raise
        except Exception as err:  # noqa: BLE001 - report any failure of the learner's code
            return [f"At step {t} your function raised {type(err).__name__}: {err}"]
        if not isinstance(result, (tuple, list)) or len(result) != 3:
            raise WrongForm("Return the tuple (theta, m, v).")
        theta, m, v = (torch.as_tensor(r, dtype=f64) for r in result)
        if theta.shape != (n, p) or m.shape != (n, p) or v.shape != (n, p):
            return [f"theta, m and v must keep the shape ({n}, {p}); got {tuple(theta.shape)}, "
                    f"{tuple(m.shape)}, {tuple(v.shape)}."]
    want = _reference(theta0, grads, lr[:, 0], beta1[:, 0], beta2[:, 0], eps[:, 0])
    if torch.allclose(theta, want, rtol=1e-9, atol=1e-12):
        return []
    if torch.allclose(theta, _reference(theta0, grads, lr[:, 0], beta1[:, 0], beta2[:, 0],
                                        eps[:, 0], bias_correction=False), rtol=1e-9,
                      atol=1e-12):
        return ["Your update has no bias correction: divide m by 1 − β₁ᵗ and v by 1 − β₂ᵗ."]
    same = _reference(theta0, grads, lr[:1, 0].expand(n), beta1[:1, 0].expand(n),
                      beta2[:1, 0].expand(n), eps[:1, 0].expand(n))
    if torch.allclose(theta, same, rtol=1e-9, atol=1e-12):
        return ["Every model got the first model's settings: use each row of lr, beta1, "
                "beta2 and eps for its own model (they broadcast over the columns)."]
    bad = [i for i in range(n) if not torch.allclose(theta[i], want[i], rtol=1e-9, atol=1e-12)]
    return [f"After {steps} steps model(s) {bad} differ from torch.optim.Adam: check where eps "
            "enters (outside the square root of the corrected v) and that v averages squared "
            "gradients."]
