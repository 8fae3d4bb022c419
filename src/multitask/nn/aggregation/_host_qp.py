"""Exact active-set solvers for the tiny task-space QPs, for Gramians that live on the CPU.

On a CPU tensor nothing synchronises with a device, so a data-dependent active-set loop (which
stops as soon as the KKT conditions hold) is allowed and costs tens of microseconds at ten
tasks, where enumerating all ``2**T`` supports in one batched solve costs milliseconds. Off the
CPU, :mod:`._solvers` keeps the sync-free enumeration. Both are exact.

The problems are non-negative QPs, ``min_z z^T G z / 2 + c^T z`` subject to ``z >= 0``, solved
by the Lawson-Hanson active-set method in its quadratic form (Bro & De Jong 1997): move the
variable with the most negative gradient into the free set, solve the free subsystem, and step
back to the boundary while the solution leaves the feasible set. Each step strictly lowers the
objective, so no free set repeats and the loop ends after finitely many steps.
"""

from __future__ import annotations

import math

import numpy as np

#: up to this many tasks MGDA's active-set iterations run on Python floats (:func:`nnqp_small`):
#: one small solve on lists costs less than the dozen numpy calls of an :func:`nnqp` iteration
#: (T = 5: 18 against 29 us alone, 44 against 119 us inside the benchmark's step, where numpy's
#: code is out of the caches; T = 6: 44 against 51 us). UPGrad's ``T`` problems stay batched
#: in :func:`nnqp` (78 against 54 us at T = 5 in Python floats).
PYTHON_MAX_TASKS = 5
#: Nash-MTL's tolerance on the utilities (``_nash_mtl.UTILITY_TOL``, defined here: that module
#: imports this one)
UTILITY_TOL = 1e-3


def nnqp(
    G: np.ndarray, C: np.ndarray, tol: float = 1e-12, max_iter: int | None = None
) -> np.ndarray | None:
    """Row ``r``: ``argmin_{z >= 0} z^T G z / 2 + C_r^T z``, for a positive definite ``G``.

    Primal-dual active-set iterations (Hintermüller, Ito & Kunisch 2002), all rows at once (one
    batched solve per iteration; two or three iterations usually settle), stopped when no
    active set changes; a row whose result breaks the KKT conditions (a cycle) is then solved
    by :func:`lawson_hanson`, which always terminates.

    Parameters
    ----------
    G : ndarray of shape (T, T)
    C : ndarray of shape (R, T)
    tol : float
        KKT tolerance, relative to ``max(1, max |C|)``.
    max_iter : int, optional
        Primal-dual iterations before the rows that still break the KKT conditions go to
        :func:`lawson_hanson` (default ``T + 3``).

    Returns
    -------
    Z : ndarray of shape (R, T), or None when a subsystem is numerically singular.
    """
    T = C.shape[1]
    eye = np.eye(T)
    free = C < 0  # from z = 0: the multipliers are C
    for _ in range(T + 3 if max_iter is None else max_iter):
        # the free block of G, the identity elsewhere (so z = 0 off the free set)
        systems = np.where(free[:, :, None] & free[:, None, :], G, eye)
        try:
            Z = np.linalg.solve(systems, np.where(free, -C, 0.0)[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            return None
        lam = Z @ G + C  # the gradient: the multipliers off the free set
        new = np.where(free, Z > 0, lam < 0)
        if new.tobytes() == free.tobytes():  # z > 0 on the free set, multipliers >= 0 off
            # it: the KKT conditions hold (bytes: a tenth of np.array_equal's cost at T = 5)
            return np.maximum(Z, 0.0)
        free, solved = new, free
    lam[solved] = 0.0  # unsettled: check the last iterate's KKT conditions within tol
    scale = tol * max(1.0, float(np.abs(C).max()))
    for r in np.flatnonzero((Z < -scale).any(axis=1) | (lam < -scale).any(axis=1)):
        z = lawson_hanson(G, C[r], tol)
        if z is None:
            return None
        Z[r] = z
    return np.maximum(Z, 0.0)


def lawson_hanson(G: np.ndarray, c: np.ndarray, tol: float = 1e-12) -> np.ndarray | None:
    """``argmin_{z >= 0} z^T G z / 2 + c^T z`` by the Lawson-Hanson active-set method.

    Returns None if a free subsystem is numerically singular or the loop does not settle
    within ``3 T + 10`` steps.

    References
    ----------
    Lawson & Hanson, "Solving Least Squares Problems", Prentice-Hall 1974, Ch. 23 (NNLS);
    Bro & De Jong, "A fast non-negativity-constrained least squares algorithm", J.
    Chemometrics 11, 1997 (the same iterations on ``G`` and ``c`` instead of the data).
    """
    T = G.shape[0]
    z = np.zeros(T)
    free = np.zeros(T, dtype=bool)
    scale = tol * max(1.0, float(np.abs(c).max()))
    for _ in range(3 * T + 10):
        w = -(G @ z + c)  # minus the gradient
        w[free] = -np.inf
        j = int(w.argmax())
        if free.all() or w[j] <= scale:
            return z
        free[j] = True
        while True:
            s = np.zeros(T)
            idx = np.flatnonzero(free)
            try:
                s[idx] = np.linalg.solve(G[np.ix_(idx, idx)], -c[idx])
            except np.linalg.LinAlgError:
                return None
            if (s[idx] > 0).all():
                z = s
                break
            bad = idx[s[idx] <= 0]
            alpha = np.min(z[bad] / (z[bad] - s[bad]))
            z = z + alpha * (s - z)
            free &= z > scale
            z[~free] = 0.0
            if not free.any():
                break
    return None


def normalise(G: np.ndarray, ridge: float) -> np.ndarray:
    """``G / trace(G) + ridge I`` (as :func:`._solvers.normalise`)."""
    trace = float(G.diagonal().sum())
    Gn = G / (trace if trace > 0 else 1.0)
    Gn.flat[:: G.shape[0] + 1] += ridge  # the same numbers as adding ridge * I, fewer calls
    return Gn


def min_norm_simplex(G: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray | None:
    """``argmin_{a in simplex} a^T G a`` for a trace-normalised Gramian with a small ridge.

    With ``x = argmin_{x >= 0} x^T G x / 2 - 1^T x``, ``a = x / 1^T x``: the KKT conditions of
    the two problems coincide up to that scaling. Up to :data:`PYTHON_MAX_TASKS` tasks by
    :func:`nnqp_small` (:func:`nnqp` if it gives up). None when :func:`nnqp` gives up.

    ``scale``: ``G`` is ``D^{-1/2} G0 D^{-1/2}`` (plus a ridge) for the Gramian ``G0`` whose
    weights are wanted, ``scale = diag(D)^{1/2}``; then ``y = D^{1/2} x`` solves the problem
    with ``c = -1 / scale`` (``y >= 0`` iff ``x >= 0``), and ``x = y / scale``.
    """
    T = G.shape[0]
    c = [-1.0] * T if scale is None else (-1.0 / scale).tolist()
    if T <= PYTHON_MAX_TASKS:
        z = nnqp_small(G.tolist(), c)
        if z is not None and scale is not None:
            z = [zi / si for zi, si in zip(z, scale.tolist(), strict=True)]
        total = None if z is None else sum(z)
        if total is not None and total > 0:
            return np.array(z) / total
    x = nnqp(G, np.array(c)[None, :])
    if x is not None and scale is not None:
        x = x / scale
    total = None if x is None else float(x.sum())
    if total is None or not total > 0:
        return None
    return x[0] / total


def min_norm_simplex_small(G: np.ndarray, ridge: float) -> np.ndarray | None:
    """:func:`min_norm_simplex` of a raw Gramian on its unit-diagonal scaling (``scale`` the
    square roots of its diagonal, a zero row 1, ``ridge`` added after scaling), all on Python
    floats: up to :data:`PYTHON_MAX_TASKS` tasks a numpy call costs more than the math. None
    when :func:`nnqp_small` gives up."""
    rows = G.tolist()
    T = len(rows)
    d = [math.sqrt(rows[i][i]) if rows[i][i] > 0 else 1.0 for i in range(T)]
    Gn = [[rows[i][j] / (d[i] * d[j]) for j in range(T)] for i in range(T)]
    for i in range(T):
        Gn[i][i] += ridge
    z = nnqp_small(Gn, [-1.0 / di for di in d])
    if z is None:
        return None
    x = [zi / di for zi, di in zip(z, d, strict=True)]
    total = sum(x)
    return np.array(x) / total if total > 0 else None


def project_dual_cone(G: np.ndarray) -> np.ndarray | None:
    """Row ``i``: ``argmin_{v >= e_i} v^T G v`` (Quinton & Rey 2024, Prop. 1).

    ``v = e_i + z`` with ``z = argmin_{z >= 0} z^T G z / 2 + G_i^T z``, all rows at once.
    None when :func:`nnqp` gives up. Two tasks: ``z`` has one free entry, ``v_0 = (1, z)`` with
    ``z = max(0, -G_01 / G_11)`` (and symmetrically), in Python floats.
    """
    if G.shape[0] == 2:
        g00, g01, g11 = float(G[0, 0]), float(G[0, 1]), float(G[1, 1])
        z0 = -g01 / g11 if g01 < 0 and g11 > 0 else 0.0
        z1 = -g01 / g00 if g01 < 0 and g00 > 0 else 0.0
        return np.array([[1.0, z0], [z1, 1.0]])
    Z = nnqp(G, G)
    return None if Z is None else np.eye(G.shape[0]) + Z


def nnqp_small(G: list[list[float]], c: list[float]) -> list[float] | None:
    """One row of :func:`nnqp` on Python floats: ``argmin_{z >= 0} z^T G z / 2 + c^T z``.

    The same primal-dual active-set iterations, each free subsystem solved by
    :func:`_solve_small`; None when they do not settle within ``T + 3`` iterations or a
    subsystem is singular (the caller then runs :func:`nnqp`, which can repair a cycle).
    """
    T = len(c)
    free = [ci < 0 for ci in c]
    for _ in range(T + 3):
        idx = [i for i in range(T) if free[i]]
        sub = _solve_small([[G[i][j] for j in idx] for i in idx], [-c[i] for i in idx])
        if sub is None:
            return None
        z = [0.0] * T
        for i, zi in zip(idx, sub, strict=True):
            z[i] = zi
        new = [
            z[j] > 0 if free[j] else c[j] + sum(G[j][i] * z[i] for i in idx) < 0 for j in range(T)
        ]
        if new == free:  # z > 0 on the free set, multipliers >= 0 off it: KKT
            return z
        free = new
    return None


def _solve_small(A: list[list[float]], b: list[float]) -> list[float] | None:
    """``A^{-1} b`` by Gaussian elimination with partial pivoting (as LAPACK's ``gesv``) on
    Python floats; None for an exactly singular ``A``. Overwrites ``A`` and ``b``."""
    x = _solve_many_small(A, [b])
    return None if x is None else x[0]


def _solve_many_small(A: list[list[float]], rhs: list[list[float]]) -> list[list[float]] | None:
    """``A^{-1} b`` for each ``b`` of ``rhs``, from ONE elimination of ``A`` (each right-hand
    side gets the operations :func:`_solve_small` would give it alone: the pivots depend on
    ``A`` only); None for an exactly singular ``A``. Overwrites ``A`` and ``rhs``."""
    n = len(A)
    for k in range(n):
        col = [abs(A[i][k]) for i in range(k, n)]
        p = k + col.index(max(col))
        if col[p - k] == 0.0:
            return None
        A[k], A[p] = A[p], A[k]
        for b in rhs:
            b[k], b[p] = b[p], b[k]
        row, pivot = A[k], A[k][k]
        for i in range(k + 1, n):
            other = A[i]
            f = other[k] / pivot
            if f:
                for j in range(k + 1, n):
                    other[j] -= f * row[j]
                for b in rhs:
                    b[i] -= f * b[k]
    out = []
    for b in rhs:
        x = [0.0] * n
        for k in range(n - 1, -1, -1):
            row, total = A[k], b[k]
            for j in range(k + 1, n):
                total -= row[j] * x[j]
            x[k] = total / row[k]
        out.append(x)
    return out


def normalise_small(G: list[list[float]], ridge: float) -> list[list[float]]:
    """:func:`normalise` on Python floats (the same operations, so the same numbers)."""
    T = len(G)
    trace = sum(G[i][i] for i in range(T))
    scale = trace if trace > 0 else 1.0
    Gn = [[v / scale for v in row] for row in G]
    for i in range(T):
        Gn[i][i] += ridge
    return Gn


def cagrad_coefficients_small(
    G: list[list[float]], c: float, tol: float = 1e-10
) -> list[float] | None:
    """:func:`cagrad_coefficients` on Python floats: the same support updates and KKT test,
    each support's two systems solved by one elimination (:func:`_solve_many_small`). Returns
    a list, or None where that function gives up (or a subsystem is exactly singular; the
    caller then runs it)."""
    T = len(G)
    b = [sum(row) / T for row in G]
    phi = c**2 * sum(b) / T
    free = [True] * T
    for _ in range(2 * T + 5):
        idx = [i for i in range(T) if free[i]]
        sub = [[G[i][j] for j in idx] for i in idx]
        solved = _solve_many_small(sub, [[1.0] * len(idx), [b[i] for i in idx]])
        if solved is None:
            return None
        p, q = solved
        sp, sq = sum(p), sum(q)
        bq = sum(qi * b[i] for qi, i in zip(q, idx, strict=True))
        disc = sq**2 - sp * (bq - phi)  # < 0: no point of the ball on this support
        if not sp > 0:
            return None
        lam = (sq + math.sqrt(max(disc, 0.0))) / sp
        u = [0.0] * T
        for i, pi, qi in zip(idx, p, q, strict=True):
            u[i] = lam * pi - qi
        margin = [b[i] + sum(G[i][j] * u[j] for j in idx) for i in range(T)]
        new = [u[i] > 0 if free[i] else margin[i] < lam for i in range(T)]
        if new == free:
            scale = tol * max(1.0, max(abs(v) for v in b))
            kkt = all(u[i] >= -scale if free[i] else margin[i] >= lam - scale for i in range(T))
            return u if kkt and disc >= 0 else None
        if not any(new):
            return None
        free = new
    return None


def nash_weights(
    G: np.ndarray, init: np.ndarray, n_iter: int, max_iter: int = 0, tol: float = 1e-9
) -> np.ndarray | None:
    """The damped Newton steps of :func:`._solvers.nash_weights`, in numpy (same iterates).

    With ``max_iter`` (> 0): the steps stop once the Newton decrement is below ``tol`` (the
    solution to rounding: the next step would move ``alpha`` by about ``tol**2`` relative), and
    go on past ``n_iter`` until then, at most ``max_iter`` in all; weights of NaN when that is
    not reached, when the utilities ``alpha_t (G alpha)_t`` are not all 1 there (to 1e-6), or
    when a Newton system turns singular on the way (no positive solution: the
    iterates run off to infinity along a positive combination of the gradients that is zero;
    the decrement tends to ``sqrt(T)``). Without it: exactly ``n_iter`` steps, None when a
    Newton system is numerically singular, and iterates that are not finite, silently, without
    a positive solution or with a non-finite ``G`` (the caller checks).
    """
    T = G.shape[0]
    with np.errstate(all="ignore"):
        alpha = init * np.sqrt(T / max(float(init @ G @ init), 1e-30))
        for _ in range(max(n_iter, max_iter)):
            grad = G @ alpha - 1 / alpha
            try:
                delta = np.linalg.solve(G + np.diag(alpha**-2), grad)
            except np.linalg.LinAlgError:
                return np.full_like(alpha, np.nan) if max_iter else None
            decrement = np.sqrt(max(float(grad @ delta), 0.0))
            if max_iter and decrement < tol:
                # a solution has every utility alpha_t (G alpha)_t = 1; iterates running off to
                # infinity (no solution) also end with a small decrement once rounding dominates
                # G alpha, but with utilities near 0
                ok = np.abs(alpha * (G @ alpha) - 1).max() < 1e-6
                return alpha if ok else np.full_like(alpha, np.nan)
            alpha = alpha - delta / (1 + decrement)
    return np.full_like(alpha, np.nan) if max_iter else alpha


def _matvec_small(G: list[list[float]], x: list[float]) -> list[float]:
    """``G x`` on Python floats (rows of ``G`` times ``x``, as numpy's ``G @ x``)."""
    return [sum(g * v for g, v in zip(row, x, strict=True)) for row in G]


def quadratic_small(G: list[list[float]], x: list[float]) -> float:
    """``x^T G x`` on Python floats, as numpy's ``(x @ G) @ x`` for a symmetric ``G``."""
    return sum(a * b for a, b in zip(_matvec_small(G, x), x, strict=True))


def nash_solve_small(
    G: list[list[float]], last: list[float], fresh: bool, n_iter: int, max_iter: int
) -> tuple[list[float], list[float]] | None:
    """Nash-MTL's step (``_nash_mtl._solve``) on Python floats: ``(alpha, new state)``.

    The same arithmetic: ``G`` over its trace, tasks with a zero gradient masked out (weight
    0, their equation decoupled), the cold start ``1 / sqrt(G_tt)`` or the last weights (with
    fixed counts, ``max_iter=0``, whichever starts lower), the Newton steps of
    :func:`nash_weights_small`, weights of 0 when they are not finite (no positive solution) or,
    with fixed counts, leave a utility ``alpha_t (G alpha)_t`` off 1 by more than
    :data:`UTILITY_TOL`, with the state kept. None when a step divides by zero or overflows, or
    ``G`` is not finite (the caller then runs the torch / numpy path, which lets those through
    as infinities and NaN).
    """
    T = len(G)
    if not all(math.isfinite(v) for row in G for v in row):
        return None
    trace = sum(G[i][i] for i in range(T))
    trace = trace if trace > 0 else 1.0
    active = [G[i][i] / trace > 0 for i in range(T)]
    m = [1.0 if a else 0.0 for a in active]
    Gn = [
        [m[i] * (G[i][j] / trace) * m[j] + (1.0 - m[i] if i == j else 0.0) for j in range(T)]
        for i in range(T)
    ]
    cold = [1 / math.sqrt(max(Gn[i][i], 1e-30)) if active[i] else 1.0 for i in range(T)]
    root = math.sqrt(trace)
    init = cold
    if not fresh:
        init = [a * root if a > 0 else c for a, c in zip(last, cold, strict=True)]
        if not max_iter:  # fixed counts: the cold start where it starts lower, as there
            if _start_value_small(Gn, cold, active) < _start_value_small(Gn, init, active):
                init = cold
    alpha = nash_weights_small(Gn, init, n_iter, max_iter)
    if alpha is None:
        return None
    if not all(math.isfinite(a) for a in alpha) or (
        not max_iter and not _utilities_within(Gn, alpha, active)
    ):
        return [0.0] * T, list(last)
    alpha = [mi * a / root for mi, a in zip(m, alpha, strict=True)]
    return alpha, [a if act else b for a, act, b in zip(alpha, active, last, strict=True)]


def _utilities_within(G: list[list[float]], alpha: list[float], active: list[bool]) -> bool:
    """Whether every active task's ``alpha_t (G alpha)_t`` is within ``UTILITY_TOL`` of 1."""
    Ga = _matvec_small(G, alpha)
    return all(
        abs(a * g - 1) <= UTILITY_TOL for a, g, act in zip(alpha, Ga, active, strict=True) if act
    )


def _start_value_small(G: list[list[float]], a: list[float], active: list[bool]) -> float:
    """``_nash_mtl._start_value`` on Python floats."""
    a = [x if act else 0.0 for x, act in zip(a, active, strict=True)]
    value = 0.5 * sum(active) * math.log(max(quadratic_small(G, a), 1e-30))
    return value - sum(math.log(x) for x, act in zip(a, active, strict=True) if act)


def nash_weights_small(
    G: list[list[float]], init: list[float], n_iter: int, max_iter: int = 0, tol: float = 1e-9
) -> list[float] | None:
    """:func:`nash_weights` on Python floats (the same steps; each Newton system solved by
    :func:`_solve_small`): a list, NaN where that returns NaN, None where it returns None or
    a step divides by zero or overflows (numpy lets those through as infinities)."""
    T = len(G)
    nan = [math.nan] * T
    try:
        scale = math.sqrt(T / max(quadratic_small(G, init), 1e-30))
        alpha = [a * scale for a in init]
        for _ in range(max(n_iter, max_iter)):
            Ga = _matvec_small(G, alpha)
            grad = [g - 1 / a for g, a in zip(Ga, alpha, strict=True)]
            system = [
                [G[i][j] + (1 / (alpha[i] * alpha[i]) if i == j else 0.0) for j in range(T)]
                for i in range(T)
            ]
            delta = _solve_small(system, list(grad))
            if delta is None:
                return nan if max_iter else None
            decrement = math.sqrt(max(sum(g * d for g, d in zip(grad, delta, strict=True)), 0.0))
            if max_iter and decrement < tol:
                ok = max(abs(a * g - 1) for a, g in zip(alpha, Ga, strict=True)) < 1e-6
                return alpha if ok else nan
            alpha = [a - d / (1 + decrement) for a, d in zip(alpha, delta, strict=True)]
    except (ZeroDivisionError, OverflowError):
        return None
    return nan if max_iter else alpha


def cagrad_coefficients(G: np.ndarray, c: float, tol: float = 1e-10) -> np.ndarray | None:
    """CAGrad's ``u`` (:func:`._solvers.cagrad_coefficients`) by an active set on the support.

    For a support ``S``: ``G_SS p = 1``, ``G_SS q = b_S``, ``u_S = lambda p - q`` with the root
    ``lambda`` of ``u^T G u = phi``. The support is updated (keep ``u_i > 0``, add tasks whose
    margin ``(b + G u)_i`` is below ``lambda``) until it repeats; the result is returned only if it
    satisfies the KKT conditions of the dual ``min_{w in simplex} b^T w + sqrt(phi) ||J^T w||``
    (``u >= 0`` on ``S``, margins ``>= lambda`` off ``S``), which are sufficient since that dual is
    convex. None otherwise (the caller then enumerates the supports).
    """
    T = G.shape[0]
    b = G.sum(axis=1) / T
    phi = c**2 * b.sum() / T
    free = np.ones(T, dtype=bool)
    for _ in range(2 * T + 5):
        idx = np.flatnonzero(free)
        try:
            sol = np.linalg.solve(G[np.ix_(idx, idx)], np.stack([np.ones(len(idx)), b[idx]], 1))
        except np.linalg.LinAlgError:
            return None
        p, q = sol[:, 0], sol[:, 1]
        sp, sq, bq = p.sum(), q.sum(), q @ b[idx]
        disc = sq**2 - sp * (bq - phi)  # < 0: no point of the ball on this support
        if not sp > 0:
            return None
        lam = (sq + np.sqrt(max(disc, 0.0))) / sp
        u = np.zeros(T)
        u[idx] = lam * p - q
        margin = b + G @ u
        new = np.where(free, u > 0, margin < lam)
        if (new == free).all():
            scale = tol * max(1.0, float(np.abs(b).max()))
            kkt = (u[free] >= -scale).all() and (margin[~free] >= lam - scale).all()
            return u if kkt and disc >= 0 else None
        if not new.any():
            return None
        free = new
    return None
