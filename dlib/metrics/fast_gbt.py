"""sklearn's default ``GradientBoostingClassifier``, re-implemented to sort each feature once.

DCI's study setting fits sklearn's default GBT (log-loss, 100 stages, learning rate 0.1, depth-3
``friedman_mse`` regression trees on float32 features, best split over every feature) once per
factor; sklearn re-sorts every feature at every node, which makes DCI take minutes. This module
grows the same trees from features sorted once (kept sorted through the splits by stable
partitions), and follows sklearn step by step where the numbers depend on it: the splitter's
random feature order (its xorshift ``rand_r`` seeded per tree from ``random_state``, with the
same constant-feature bookkeeping, so ties break alike), the criterion's running sums (forward
or from the right end), the sample order of each node, the Newton leaf values (NumPy's pairwise
sum, re-implemented, as ``np.average`` computes the means) and the prior initialisation. With
the same ``random_state`` it
gives sklearn's model up to rounding in rare exact ties; the tests compare the two.

Needs numba (``pip install numba``); :data:`HAVE_NUMBA` says whether it is there.

Holds :class:`FastGradientBoosting`.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logit
from scipy.stats import gmean

try:
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - depends on the environment
    numba = None
    HAVE_NUMBA = False

__all__ = ["HAVE_NUMBA", "FastGradientBoosting"]

_EPS = float(np.finfo(np.float64).eps)
_FEATURE_THRESHOLD = 1e-7
_RAND_R_MAX = 2147483647


def _njit(fn):
    return numba.njit(cache=True, nogil=True)(fn) if HAVE_NUMBA else fn


@_njit
def _rand_r(state):
    """sklearn's ``our_rand_r``: xorshift on a uint32 state kept in ``state[0]``."""
    v = state[0]
    if v == 0:
        v = 1
    v ^= (v << 13) & 0xFFFFFFFF
    v ^= v >> 17
    v ^= (v << 5) & 0xFFFFFFFF
    state[0] = v
    return v % (_RAND_R_MAX + 1)


@_njit
def _grow(xt, rows, samples, buf, target, max_depth, state, feat, thr, left, right, imp):
    """Grow one regression tree on ``target`` like sklearn's depth-first builder.

    ``xt`` (D, n): the features, transposed for locality; ``rows`` (D, n): sample indices
    sorted by each feature (kept sorted per node);
    ``samples`` (n,): sklearn's sample order (sorted by the last feature tried, then
    partitioned). Fills the node arrays (``feat`` −1 for leaves), the unnormalised impurity
    decreases ``imp`` (D,), and returns the node count. Nodes are numbered as sklearn does.
    """
    d, n = rows.shape
    cap = feat.shape[0]
    features = np.arange(d)
    const_features = np.arange(d)
    st_start = np.zeros(cap, np.int64)
    st_end = np.zeros(cap, np.int64)
    st_parent = np.zeros(cap, np.int64)
    st_is_left = np.zeros(cap, np.int64)
    st_depth = np.zeros(cap, np.int64)
    st_const = np.zeros(cap, np.int64)
    st_imp = np.zeros(cap)
    node_imp = np.zeros(cap)
    node_n = np.zeros(cap)
    top = 1
    st_start[0], st_end[0], st_parent[0], st_depth[0] = 0, n, -1, 0
    st_imp[0] = np.inf
    count = 0
    while top > 0:
        top -= 1
        start, end = st_start[top], st_end[top]
        depth, n_known = st_depth[top], st_const[top]
        m = end - start
        s = 0.0
        sq = 0.0
        for p in range(start, end):  # Criterion.init, in the node's sample order
            t = target[samples[p]]
            s += t
            sq += t * t
        impurity = st_imp[top]
        if st_parent[top] < 0:
            impurity = sq / m - (s / m) * (s / m)
        node = count
        count += 1
        if st_parent[top] >= 0:
            if st_is_left[top]:
                left[st_parent[top]] = node
            else:
                right[st_parent[top]] = node
        node_imp[node] = impurity
        node_n[node] = m
        feat[node] = -1
        best_f = -1
        best_p = end
        best_proxy = -np.inf
        best_thr = 0.0
        n_total = n_known
        last_f = -1
        if depth < max_depth and m >= 2 and impurity > _EPS:
            f_i = d
            n_visited = 0
            n_found = 0
            n_drawn = 0
            while f_i > n_total and (n_visited < d or n_visited <= n_found + n_drawn):
                n_visited += 1
                f_j = n_drawn + _rand_r(state) % (f_i - n_found - n_drawn)
                if f_j < n_known:
                    features[n_drawn], features[f_j] = features[f_j], features[n_drawn]
                    n_drawn += 1
                    continue
                f_j += n_found
                f = features[f_j]
                last_f = f  # the splitter sorts the node's samples by each feature it tries
                if xt[f, rows[f, end - 1]] <= xt[f, rows[f, start]] + _FEATURE_THRESHOLD:
                    features[f_j], features[n_total] = features[n_total], features[f_j]
                    n_found += 1
                    n_total += 1
                    continue
                f_i -= 1
                features[f_i], features[f_j] = features[f_j], features[f_i]
                sl = 0.0
                pos = start
                for p in range(start + 1, end):
                    lo = xt[f, rows[f, p - 1]]
                    hi = xt[f, rows[f, p]]
                    if hi <= lo + _FEATURE_THRESHOLD:
                        continue
                    if p - pos <= end - p:  # Criterion.update: from the left ...
                        for q in range(pos, p):
                            sl += target[rows[f, q]]
                    else:  # ... or from the total, subtracting from the right end
                        sl = s
                        for q in range(end - 1, p - 1, -1):
                            sl -= target[rows[f, q]]
                    pos = p
                    nl = p - start
                    nr = end - p
                    diff = nr * sl - nl * (s - sl)
                    proxy = diff * diff / (nl * nr)
                    if proxy > best_proxy:
                        best_proxy = proxy
                        best_f = f
                        best_p = p
                        tv = np.float64(lo) / 2.0 + np.float64(hi) / 2.0
                        if tv == np.float64(hi) or np.isinf(tv) or np.isinf(-tv):
                            tv = np.float64(lo)
                        best_thr = tv
            if last_f >= 0:
                for p in range(start, end):
                    samples[p] = rows[last_f, p]
            for q in range(n_known):
                features[q] = const_features[q]
            for q in range(n_known, n_known + n_found):
                const_features[q] = features[q]
        if best_f < 0:
            continue
        # partition_samples_final: swap-based, in sklearn's order
        a = start
        b = end
        while a < b:
            if xt[best_f, samples[a]] <= best_thr:
                a += 1
            else:
                b -= 1
                samples[a], samples[b] = samples[b], samples[a]
        # children impurities: reset + update(best_p) + children_impurity
        if best_p - start <= end - best_p:
            sl = 0.0
            for q in range(start, best_p):
                sl += target[samples[q]]
        else:
            sl = s
            for q in range(end - 1, best_p - 1, -1):
                sl -= target[samples[q]]
        sql = 0.0
        for q in range(start, best_p):
            t = target[samples[q]]
            sql += t * t
        nl = best_p - start
        nr = end - best_p
        imp_l = sql / nl - (sl / nl) * (sl / nl)
        imp_r = (sq - sql) / nr - ((s - sl) / nr) * ((s - sl) / nr)
        # keep every feature's sorted rows partitioned alike (stable); children at the
        # maximal depth are leaves and never read them
        for f in range(d if depth + 1 < max_depth else 0):
            a = start
            c = 0
            for p in range(start, end):
                i = rows[f, p]
                if xt[best_f, i] <= best_thr:
                    rows[f, a] = i
                    a += 1
                else:
                    buf[c] = i
                    c += 1
            for q in range(c):
                rows[f, a + q] = buf[q]
        feat[node] = best_f
        thr[node] = best_thr
        # push right then left: the left child is built first
        st_start[top], st_end[top], st_parent[top], st_is_left[top] = best_p, end, node, 0
        st_depth[top], st_const[top], st_imp[top] = depth + 1, n_total, imp_r
        st_start[top + 1], st_end[top + 1] = start, best_p
        st_parent[top + 1], st_is_left[top + 1] = node, 1
        st_depth[top + 1], st_const[top + 1], st_imp[top + 1] = depth + 1, n_total, imp_l
        top += 2
    for node in range(count):  # Tree.compute_feature_importances(normalize=False)
        if feat[node] >= 0:
            lc, rc = left[node], right[node]
            imp[feat[node]] += (node_n[node] * node_imp[node] - node_n[lc] * node_imp[lc]
                                - node_n[rc] * node_imp[rc])
    for f in range(d):
        imp[f] /= n
    return count


@_njit
def _apply(x, feat, thr, left, right):
    """Leaf of every row of ``x`` in one tree."""
    out = np.empty(x.shape[0], np.int64)
    for i in range(x.shape[0]):
        node = 0
        while feat[node] >= 0:
            node = left[node] if x[i, feat[node]] <= thr[node] else right[node]
        out[i] = node
    return out


@_njit
def _block_sum(a, lo, n):
    """NumPy's sum of at most 128 float64 values: one by one below eight, else eight running
    sums combined pairwise, then the remainder one by one."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    end = n - (n % 8)
    while i < end:
        j = lo + i
        r0 += a[j]
        r1 += a[j + 1]
        r2 += a[j + 2]
        r3 += a[j + 3]
        r4 += a[j + 4]
        r5 += a[j + 5]
        r6 += a[j + 6]
        r7 += a[j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@_njit
def _pairwise_sum(a, lo, n):
    """NumPy's float64 ``sum`` of ``a[lo:lo + n]``, bit for bit: blocks of at most 128 values
    (:func:`_block_sum`), longer runs halved at a multiple of eight and the halves added. The
    recursion runs on an explicit stack (numba's on-disk cache mishandles recursive functions)."""
    if n <= 128:
        return _block_sum(a, lo, n)
    starts = np.empty(128, np.int64)
    sizes = np.empty(128, np.int64)
    split = np.zeros(128, np.bool_)
    sums = np.empty(128)
    top, done = 0, 0
    starts[0], sizes[0] = lo, n
    while top >= 0:
        start, size = starts[top], sizes[top]
        if size <= 128:
            sums[done] = _block_sum(a, start, size)
            done += 1
            top -= 1
        elif split[top]:  # both halves summed: left below right
            sums[done - 2] = sums[done - 2] + sums[done - 1]
            done -= 1
            top -= 1
        else:
            half = size // 2
            half -= half % 8
            split[top] = True
            starts[top + 1], sizes[top + 1], split[top + 1] = start + half, size - half, False
            starts[top + 2], sizes[top + 2], split[top + 2] = start, half, False
            top += 2
    return sums[0]


@_njit
def _newton_values(leaves, target, yi, cls, feat, count, factor, value):
    """sklearn's Newton step in every leaf: ``value = factor * mean(g) / mean(p (1 - p))`` over
    the leaf's rows in row order, with ``p = [y == cls] - g`` and ``g`` the negative gradient.
    The means are NumPy's (``np.average`` with unit weights: pairwise sum, then divide by the
    count), so the values equal sklearn's to the bit."""
    n = leaves.shape[0]
    grad = np.empty(n)
    hess = np.empty(n)
    for leaf in range(count):
        if feat[leaf] >= 0:
            continue
        m = 0
        for i in range(n):
            if leaves[i] == leaf:
                g = target[i]
                prob = (1.0 if yi[i] == cls else 0.0) - g
                grad[m] = g
                hess[m] = prob * (1 - prob)
                m += 1
        num = _pairwise_sum(grad, 0, m) / m * factor
        den = _pairwise_sum(hess, 0, m) / m
        value[leaf] = 0.0 if abs(den) < 1e-150 else num / den


@_njit
def _neg_gradient(raw, y, num_classes):
    """Negative gradient of sklearn's half binomial / multinomial loss, scalar libm ``exp`` as
    in its Cython loops (NumPy's vectorised exp may differ in the last bit)."""
    n, trees = raw.shape
    out = np.empty((n, trees))
    for i in range(n):
        if num_classes == 2:
            r = raw[i, 0]
            yt = 1.0 if y[i] == 1 else 0.0
            if r > -37:
                e = np.exp(-r)
                out[i, 0] = -(((1 - yt) - yt * e) / (1 + e))
            else:
                out[i, 0] = -(np.exp(r) - yt)
            continue
        mx = raw[i, 0]
        for k in range(1, trees):
            if mx < raw[i, k]:
                mx = raw[i, k]
        total = 0.0
        for k in range(trees):
            out[i, k] = np.exp(raw[i, k] - mx)
            total += out[i, k]
        for k in range(trees):
            out[i, k] = -(out[i, k] / total - (1.0 if y[i] == k else 0.0))
    return out


class FastGradientBoosting:
    """Drop-in for ``GradientBoostingClassifier(random_state=...)`` with default settings.

    ``fit`` / ``predict`` / ``feature_importances_`` / ``classes_`` as in sklearn.
    """

    _estimator_type = "classifier"

    def __init__(
        self,
        n_estimators: int = 100,
        learning_rate: float = 0.1,
        max_depth: int = 3,
        random_state: int | np.random.RandomState | None = None,
    ):
        if not HAVE_NUMBA:
            raise ImportError("model='fast_gbt' needs numba (pip install numba)")
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.random_state = random_state

    def fit(self, x: np.ndarray, y: np.ndarray) -> FastGradientBoosting:
        x = np.ascontiguousarray(x, dtype=np.float32)
        self.classes_, yi = np.unique(y, return_inverse=True)
        k = len(self.classes_)
        if k < 2:
            raise ValueError("need samples of at least 2 classes")
        rs = self.random_state
        if rs is None:
            rs = np.random.mtrand._rand
        elif not isinstance(rs, np.random.RandomState):
            rs = np.random.RandomState(rs)
        n, d = x.shape
        prior = np.clip(np.bincount(yi, minlength=k) / n, _EPS, 1 - _EPS)
        self._init = np.array([logit(prior[1])]) if k == 2 else np.log(prior / gmean(prior))
        trees = 1 if k == 2 else k
        cap = 2 ** (self.max_depth + 1) - 1
        self._trees = []
        raw = np.tile(self._init, (n, 1))
        order = np.ascontiguousarray(np.argsort(x, axis=0, kind="stable").T.astype(np.int64))
        xt = np.ascontiguousarray(x.T)
        rows = np.empty_like(order)
        samples = np.empty(n, np.int64)
        buf = np.empty(n, np.int64)
        importances = []
        factor = 1.0 if k == 2 else (k - 1) / k
        yi64 = yi.astype(np.int64)
        for _ in range(self.n_estimators):
            neg = _neg_gradient(raw, yi64, k)
            stage = []
            for c in range(trees):
                state = np.array([rs.randint(0, _RAND_R_MAX)], dtype=np.int64)
                feat = np.full(cap, -1, np.int64)
                thr = np.zeros(cap)
                left = np.zeros(cap, np.int64)
                right = np.zeros(cap, np.int64)
                imp = np.zeros(d)
                rows[:] = order
                samples[:] = np.arange(n)
                target = np.ascontiguousarray(neg[:, c])
                count = _grow(xt, rows, samples, buf, target, self.max_depth, state, feat, thr,
                              left, right, imp)
                if count > 1:
                    importances.append(imp)
                value = np.zeros(cap)
                leaves = _apply(x, feat, thr, left, right)
                _newton_values(leaves, target, yi64, 1 if k == 2 else c, feat, count, factor, value)
                raw[:, c] += self.learning_rate * value.take(leaves)
                stage.append((feat, thr, left, right, value))
            self._trees.append(stage)
        if importances:
            avg = np.mean(importances, axis=0, dtype=np.float64)
            self.feature_importances_ = avg / np.sum(avg)
        else:
            self.feature_importances_ = np.zeros(d)
        return self

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Raw scores ``(N, K)`` (``(N, 1)`` for two classes)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        raw = np.tile(self._init, (len(x), 1))
        for stage in self._trees:
            for c, (feat, thr, left, right, value) in enumerate(stage):
                raw[:, c] += self.learning_rate * value.take(_apply(x, feat, thr, left, right))
        return raw

    def predict(self, x: np.ndarray) -> np.ndarray:
        raw = self.decision_function(x)
        idx = (raw[:, 0] > 0).astype(int) if raw.shape[1] == 1 else np.argmax(raw, axis=1)
        return self.classes_[idx]
