"""Wrong answers for the self-checks of the appendix (chapter 91):
:mod:`dlib.course.checks.part9_appendix`."""




def _adam(bias=True, eps_inside=False, shared=False, plain_v=False):
    def stacked_adam(theta, grad, m, v, t, lr, beta1, beta2, eps):
        if shared:
            lr, beta1, beta2, eps = lr[:1], beta1[:1], beta2[:1], eps[:1]
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * (grad if plain_v else grad**2)
        m_hat = m / (1 - beta1**t) if bias else m
        v_hat = v / (1 - beta2**t) if bias else v
        denom = (v_hat + eps).sqrt() if eps_inside else v_hat.sqrt() + eps
        return theta - lr * m_hat / denom, m, v
    return stacked_adam


WRONG_ANSWERS = {
    "ex-m91-stacked-adam": [
        _adam(bias=False),  # no bias correction
        _adam(eps_inside=True),  # eps under the square root
        _adam(shared=True),  # the first model's settings for all
        _adam(plain_v=True),  # v averages gradients, not their squares
        "not a function",
    ],
}
