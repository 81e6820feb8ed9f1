"""Wrong answers for the self-check of the OAT chapter (chapters/30_oat)."""


def _rule(kl_at_checks, start, check_every, min_steps, tol, floor, *, relative=True,
          use_min=True, reset=True):
    k_max = kl_at_checks.shape[1]
    n, last, prev, starts = 1, start, 0.0, [start]
    for i, row in enumerate(kl_at_checks):
        taken = start + (i + 1) * check_every
        now = float(row[n - 1])
        limit = tol * max(prev, floor) if relative else tol
        ok = now - prev <= limit and (taken - last >= min_steps or not use_min)
        if ok and n < k_max:
            n, last = n + 1, taken
            starts.append(taken)
            prev = 0.0 if reset else now  # the new dimension carried nothing yet
        else:
            prev = now
    return starts


WRONG_ANSWERS = {
    "ex-m30-switch": [
        # ignores the minimum time a dimension must be trained
        lambda kl, start, check_every, min_steps, tol, floor: _rule(
            kl, start, check_every, min_steps, tol, floor, use_min=False),
        # an absolute tolerance in nats instead of a relative one
        lambda kl, start, check_every, min_steps, tol, floor: _rule(
            kl, start, check_every, min_steps, tol, floor, relative=False),
        # after a switch, keeps comparing with the previous dimension's KL
        lambda kl, start, check_every, min_steps, tol, floor: _rule(
            kl, start, check_every, min_steps, tol, floor, reset=False),
        # forgets the first dimension (switched on when OAT starts)
        lambda kl, start, check_every, min_steps, tol, floor: _rule(
            kl, start, check_every, min_steps, tol, floor)[1:],
        # the number of switches instead of their steps
        lambda kl, start, check_every, min_steps, tol, floor: len(_rule(
            kl, start, check_every, min_steps, tol, floor)),
        "switch on when the KL stops growing",  # not a function
    ],
}
