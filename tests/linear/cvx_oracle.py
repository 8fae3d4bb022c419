"""cvxpy oracles for the penalties and the full objective of ``multitask.linear`` (tests only).

For every penalty, a function returning the equivalent cvxpy expression of a
``cp.Variable((n_features, n_tasks))`` (two variables for the composite
penalties), and :func:`solve_reference`, which solves the full objective of
the linear half with an interior-point method:

    squared : sum_t sum_{i in t} s_i / (2 S_t) (y_i - x_i . w_t - b_t)^2 + penalty(W)
    logistic: sum_t sum_{i in t} s_i / S_t log(1 + exp(-y_i (x_i . w_t + b_t))) + penalty(W)

with ``S_t = sum_{i in t} s_i`` (``s_i = 1``, ``S_t = n_t`` without sample weights).
"""

from __future__ import annotations

import warnings

import cvxpy as cp
import numpy as np

from multitask.linear import penalties as P
from multitask.linear.penalties import clustered

#: CLARABEL settings tried in turn: it stalls now and then at the tightest ones. Its
#: "almost solved" (cvxpy's optimal_inaccurate) is accepted only at the "reduced"
#: tolerances given here, never at its defaults (5e-5).
SOLVER_OPTS = [
    {"tol_gap_abs": 1e-11, "tol_gap_rel": 1e-11, "tol_feas": 1e-8, "reduced_tol_feas": 1e-7},
    {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-8, "reduced_tol_feas": 1e-7},
    {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9, "tol_feas": 1e-8, "reduced_tol_feas": 1e-7},
    # last resort, e.g. for an optimum of exactly 0 (no relative gap to speak of)
    {"tol_gap_abs": 1e-8, "tol_gap_rel": 1e-8, "tol_feas": 1e-8, "reduced_tol_feas": 1e-7},
]
_COMMON_OPTS = {
    "solver": "CLARABEL",
    "max_iter": 500,
    "tol_ktratio": 1e-8,
    "reduced_tol_gap_abs": 1e-9,
    "reduced_tol_gap_rel": 1e-9,
    "reduced_tol_ktratio": 1e-6,
}


def cvx_l1(pen, W):
    return pen.alpha * cp.sum(cp.abs(W))


def cvx_l21(pen, W):
    return pen.alpha * cp.sum(cp.norm(W, 2, axis=1))


def cvx_l1inf(pen, W):
    return pen.alpha * cp.sum(cp.max(cp.abs(W), axis=1))


def cvx_sparse_group(pen, W):
    return pen.alpha * cp.sum(cp.norm(W, 2, axis=1)) + pen.beta * cp.sum(cp.abs(W))


def cvx_trace(pen, W):
    return pen.alpha * cp.normNuc(W)


def cvx_tree(pen, W):
    terms = [
        w * cp.sum(cp.norm(W[:, list(g)], 2, axis=1))
        for g, w in zip(pen.groups, pen.weights, strict=True)
    ]
    return pen.alpha * cp.sum(cp.hstack(terms))


def cvx_dirty(pen, S, B):
    return pen.alpha * cp.sum(cp.abs(S)) + pen.beta * cp.sum(cp.max(cp.abs(B), axis=1))


def cvx_robust(pen, L, S):
    return pen.alpha * cp.normNuc(L) + pen.beta * cp.sum(cp.norm(S, 2, axis=0))


def cvx_ridge(pen, W):
    return pen.alpha * cp.sum_squares(W)


def cvx_mean_regularized(pen, W):
    n_tasks = W.shape[1]
    centring = np.eye(n_tasks) - np.ones((n_tasks, n_tasks)) / n_tasks
    return pen.alpha * cp.sum_squares(W @ centring) + pen.beta * cp.sum_squares(W)


def cvx_graph_regularized(pen, W):
    # ||W C||^2 with C C^T = L, the graph Laplacian (L = R R^T)
    lam, V = np.linalg.eigh(pen.laplacian_matrix().toarray())
    C = V * np.sqrt(np.clip(lam, 0.0, None))
    return pen.alpha * cp.sum_squares(W @ C) + pen.beta * cp.sum_squares(W)


CVX_PENALTIES = {
    P.L1: cvx_l1,
    P.L21: cvx_l21,
    P.L1Inf: cvx_l1inf,
    P.SparseGroupLasso: cvx_sparse_group,
    P.TraceNorm: cvx_trace,
    P.TreeGroupLasso: cvx_tree,
    P.Dirty: cvx_dirty,
    P.RobustMTL: cvx_robust,
    P.Ridge: cvx_ridge,
    P.MeanRegularized: cvx_mean_regularized,
    P.GraphRegularized: cvx_graph_regularized,
}


def cvx_penalty(penalty, *variables):
    """cvxpy expression of ``penalty`` at ``variables`` (one, or two for composites)."""
    try:
        build = CVX_PENALTIES[type(penalty)]
    except KeyError:
        raise TypeError(f"no cvxpy oracle for {type(penalty).__name__}") from None
    return build(penalty, *variables)


def cvx_value(penalty, W) -> float:
    """Value of the cvxpy expression of ``penalty`` at the array ``W`` (or ``(2, p, T)``)."""
    W = np.asarray(W, dtype=float)
    parts = [W] if getattr(penalty, "n_components", 1) == 1 else list(W)
    variables = []
    for part in parts:
        var = cp.Variable(part.shape)
        var.value = part
        variables.append(var)
    return float(cvx_penalty(penalty, *variables).value)


def _solve(problem):
    """Solve with CLARABEL at the tightest settings of ``SOLVER_OPTS`` that succeed."""
    for opts in SOLVER_OPTS:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "solution may be inaccurate"
                problem.solve(**_COMMON_OPTS, **opts)
        except cp.error.SolverError:
            continue
        if problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            return problem.value
    raise RuntimeError(f"cvxpy reference did not solve to optimality: {problem.status}")


def cvx_prox(penalty, V, step):
    """``argmin_Z 1/2 ||Z - V||_F^2 + step * penalty(Z)`` by cvxpy."""
    V = np.asarray(V, dtype=float)
    parts = [V] if penalty.n_components == 1 else list(V)
    Z = [cp.Variable(part.shape) for part in parts]
    fit = sum(0.5 * cp.sum_squares(z - part) for z, part in zip(Z, parts, strict=True))
    _solve(cp.Problem(cp.Minimize(fit + step * cvx_penalty(penalty, *Z))))
    return Z[0].value if penalty.n_components == 1 else np.stack([z.value for z in Z])


def _tree_sum(penalty, n_rows, n_tasks):
    """Sum of one variable per tree group, embedded in the task columns; and the variables."""
    parts, total = [], 0
    for group in penalty.groups:
        var = cp.Variable((n_rows, len(group)))
        embed = np.zeros((len(group), n_tasks))
        embed[np.arange(len(group)), list(group)] = 1.0
        parts.append(var)
        total = total + var @ embed
    return total, parts


def cvx_dual_ball(penalty, shape):
    """``(U, constraints)`` describing ``∂penalty(0)``, the scaled unit ball of the dual norm.

    Defined for the norm penalties ``L1``, ``L21``, ``L1Inf``, ``SparseGroupLasso``,
    ``TreeGroupLasso`` and ``TraceNorm``.
    """
    a = penalty.alpha
    if isinstance(penalty, P.L1):
        U = cp.Variable(shape)
        return U, [cp.abs(U) <= a]
    if isinstance(penalty, P.L21):
        U = cp.Variable(shape)
        return U, [cp.norm(U, 2, axis=1) <= a]
    if isinstance(penalty, P.L1Inf):
        U = cp.Variable(shape)
        return U, [cp.norm(U, 1, axis=1) <= a]
    if isinstance(penalty, P.SparseGroupLasso):
        G, B = cp.Variable(shape), cp.Variable(shape)
        return G + B, [cp.norm(G, 2, axis=1) <= a, cp.abs(B) <= penalty.beta]
    if isinstance(penalty, P.TreeGroupLasso):
        U, parts = _tree_sum(penalty, *shape)
        cons = [cp.norm(v, 2, axis=1) <= a * w for v, w in zip(parts, penalty.weights, strict=True)]
        return U, cons
    if isinstance(penalty, P.TraceNorm):
        U = cp.Variable(shape)
        return U, [cp.sigma_max(U) <= a]
    raise TypeError(f"no dual-ball oracle for {type(penalty).__name__}")


def cvx_prox_dual(penalty, V, step):
    """Prox by Moreau's identity ``prox(v) = v - proj_{step ∂penalty(0)}(v)``, with cvxpy.

    The projection's optimum is rarely at a cone apex, so interior-point methods
    are more accurate here than on the primal prox problem for group penalties.
    """
    V = np.asarray(V, dtype=float)
    U, cons = cvx_dual_ball(penalty, V.shape)
    _solve(cp.Problem(cp.Minimize(0.5 * cp.sum_squares(V / step - U)), cons))
    return V - step * U.value


def cvx_subdiff_distance(penalty, W, grad):
    """Distance from ``-grad`` to ``∂penalty(W) = {u in ∂penalty(0) : <u, W> = penalty(W)}``.

    Max over rows of the row distances for row-separable penalties, else Frobenius.
    """
    W = np.asarray(W, dtype=float)
    U, cons = cvx_dual_ball(penalty, W.shape)
    cons.append(cp.sum(cp.multiply(U, W)) == penalty.value(W))
    resid = -np.asarray(grad, dtype=float) - U
    if penalty.row_separable:
        dist = cp.max(cp.norm(resid, 2, axis=1))
    else:
        dist = cp.norm(resid, "fro")
    return float(_solve(cp.Problem(cp.Minimize(dist), cons)))


def polish_prox(penalty, V, step, Z0, zero_tol=1e-6):
    """Refine an approximate prox ``Z0`` by BFGS on the prox objective over its support.

    Entries with ``|Z0| <= zero_tol * max|Z0|`` are fixed at 0; on the remaining
    entries the prox objective is smooth for ``L1``, ``L21``, ``SparseGroupLasso`` and
    ``TreeGroupLasso``, so ``scipy.optimize.minimize`` reaches machine precision.
    """
    from scipy.optimize import minimize

    V = np.asarray(V, dtype=float)
    mask = np.abs(Z0) > zero_tol * np.max(np.abs(Z0))

    def full(z):
        Z = np.zeros_like(V)
        Z[mask] = z
        return Z

    def fun(z):
        Z = full(z)
        grad = Z - V + step * _smooth_penalty_grad(penalty, Z)
        return 0.5 * np.sum((Z - V) ** 2) + step * penalty.value(Z), grad[mask]

    res = minimize(fun, Z0[mask], jac=True, method="BFGS", options={"gtol": 1e-13})
    return full(res.x)


def _smooth_penalty_grad(penalty, Z):
    """Gradient of the penalty where it is differentiable (no zero group, no zero entry)."""

    def shrink_dir(block):
        norms = np.linalg.norm(block, axis=-1, keepdims=True)
        return block / np.where(norms > 0, norms, 1.0)

    if isinstance(penalty, P.L1):
        return penalty.alpha * np.sign(Z)
    if isinstance(penalty, P.L21):
        return penalty.alpha * shrink_dir(Z)
    if isinstance(penalty, P.SparseGroupLasso):
        return penalty.alpha * shrink_dir(Z) + penalty.beta * np.sign(Z)
    if isinstance(penalty, P.TreeGroupLasso):
        grad = np.zeros_like(Z)
        for group, weight in zip(penalty.groups, penalty.weights, strict=True):
            idx = list(group)
            grad[:, idx] += penalty.alpha * weight * shrink_dir(Z[:, idx])
        return grad
    raise TypeError(f"no smooth-on-support gradient for {type(penalty).__name__}")


def _task_weights(y_list, sample_weight):
    if sample_weight is None:
        return [np.full(len(y), 1.0 / len(y)) for y in y_list]
    return [np.asarray(s, dtype=float) / np.sum(s) for s in sample_weight]


def _labels(y, loss):
    y = np.asarray(y, dtype=float)
    if loss == "logistic":
        if not set(np.unique(y)) <= {-1.0, 0.0, 1.0}:
            raise ValueError("logistic labels must be in {0, 1} or {-1, +1}")
        return np.where(y > 0, 1.0, -1.0)
    return y


def _datafit_terms(X_list, y_list, W, b, loss, sample_weight):
    """cvxpy datafit of the contract; ``W`` (p, T) and ``b`` (T,) are expressions."""
    terms = []
    for t, (X, y, s) in enumerate(
        zip(X_list, y_list, _task_weights(y_list, sample_weight), strict=True)
    ):
        margin = X @ W[:, t] + b[t]
        y = _labels(y, loss)
        if loss == "squared":
            terms.append(0.5 * cp.sum(cp.multiply(s, cp.square(y - margin))))
        elif loss == "logistic":
            terms.append(cp.sum(cp.multiply(s, cp.logistic(-cp.multiply(y, margin)))))
        else:
            raise ValueError(f"loss must be 'squared' or 'logistic', got {loss!r}")
    return cp.sum(cp.hstack(terms))


def _penalty_list(penalty):
    """``penalty`` as a list: one penalty, None (no penalty) or a sequence (summed)."""
    if penalty is None:
        return []
    pens = list(penalty) if isinstance(penalty, (list, tuple)) else [penalty]
    if sum(getattr(p, "n_components", 1) == 2 for p in pens) > 1:
        raise ValueError("at most one composite (two-component) penalty")
    return pens


def _penalty_value(pens, W):
    """Sum of the penalties; composites see ``W`` (2, p, T), the others the sum over axis 0."""
    total_W = W if W.ndim == 2 else W.sum(axis=0)
    return sum(p.value(W if getattr(p, "n_components", 1) == 2 else total_W) for p in pens)


def objective(X_list, y_list, W, b, penalty, loss="squared", sample_weight=None) -> float:
    """The contract's objective at ``W`` (p, T) (or ``(2, p, T)``) and ``b`` (T,), in numpy.

    ``penalty`` is a penalty, None, or a list of penalties (e.g. a prox-able one plus
    smooth ones), summed.
    """
    W = np.asarray(W, dtype=float)
    total_W = W if W.ndim == 2 else W.sum(axis=0)
    total = 0.0
    weights = _task_weights(y_list, sample_weight)
    for t, (X, y, s) in enumerate(zip(X_list, y_list, weights, strict=True)):
        margin = np.asarray(X, dtype=float) @ total_W[:, t] + b[t]
        y = _labels(y, loss)
        if loss == "squared":
            total += 0.5 * np.sum(s * (y - margin) ** 2)
        else:
            total += np.sum(s * np.logaddexp(0.0, -y * margin))
    return float(total + _penalty_value(_penalty_list(penalty), W))


def solve_reference(
    X_list, y_list, penalty, loss="squared", fit_intercept=True, sample_weight=None
):
    """Solve the full objective of the linear half with cvxpy (CLARABEL, tight tolerances).

    Parameters
    ----------
    X_list : list of ndarray of shape (n_t, n_features)
    y_list : list of ndarray of shape (n_t,)
        Targets; for ``loss="logistic"`` in {0, 1} or {-1, +1}.
    penalty : penalty, None, or list of penalties of ``multitask.linear.penalties``
        Summed; a composite (``n_components = 2``) penalty sees both components, the
        others their sum ``W``.
    loss : {"squared", "logistic"}
    fit_intercept : bool
    sample_weight : list of ndarray of shape (n_t,), default=None

    Returns
    -------
    W : ndarray of shape (n_features, n_tasks), or (2, n_features, n_tasks) for composites
    b : ndarray of shape (n_tasks,)
    objective : float
        The objective evaluated in numpy at ``(W, b)`` (see :func:`objective`).
    """
    pens = _penalty_list(penalty)
    n_features, n_tasks = X_list[0].shape[1], len(X_list)
    n_components = max([getattr(p, "n_components", 1) for p in pens], default=1)
    parts = [cp.Variable((n_features, n_tasks)) for _ in range(n_components)]
    W = parts[0] if len(parts) == 1 else parts[0] + parts[1]
    b = cp.Variable(n_tasks) if fit_intercept else np.zeros(n_tasks)
    expr = _datafit_terms(X_list, y_list, W, b, loss, sample_weight)
    for p in pens:
        expr = expr + (cvx_penalty(p, *parts) if p.n_components == 2 else cvx_penalty(p, W))
    _solve(cp.Problem(cp.Minimize(expr)))
    W_val = parts[0].value if len(parts) == 1 else np.stack([p.value for p in parts])
    b_val = np.asarray(b.value if fit_intercept else b, dtype=float)
    return W_val, b_val, objective(X_list, y_list, W_val, b_val, pens, loss, sample_weight)


def solve_reference_clustered(
    X_list, y_list, alpha, eta, k, loss="squared", fit_intercept=True, sample_weight=None
):
    """Convex clustered MTL (Zhou, Chen & Ye 2011) with cvxpy's ``matrix_frac``.

    Minimises ``datafit(W) + alpha * eta (1 + eta) tr(W (eta I + M)^{-1} W^T)`` over
    ``W``, ``b`` and ``M`` with ``0 <= M <= I``, ``tr M = k``.

    Returns
    -------
    W : ndarray of shape (n_features, n_tasks)
    b : ndarray of shape (n_tasks,)
    M : ndarray of shape (n_tasks, n_tasks)
    objective : float
    """
    n_features, n_tasks = X_list[0].shape[1], len(X_list)
    W = cp.Variable((n_features, n_tasks))
    M = cp.Variable((n_tasks, n_tasks), symmetric=True)
    b = cp.Variable(n_tasks) if fit_intercept else np.zeros(n_tasks)
    eye = np.eye(n_tasks)
    penalty = alpha * eta * (1 + eta) * cp.matrix_frac(W.T, eta * eye + M)
    fit = _datafit_terms(X_list, y_list, W, b, loss, sample_weight)
    constraints = [M >> 0, eye - M >> 0, cp.trace(M) == k]
    _solve(cp.Problem(cp.Minimize(fit + penalty), constraints))
    W_val, M_val = W.value, (M.value + M.value.T) / 2
    b_val = np.asarray(b.value if fit_intercept else b, dtype=float)
    value = objective(X_list, y_list, W_val, b_val, None, loss, sample_weight)
    value += alpha * clustered.cmtl_value(W_val, M_val, eta)
    return W_val, b_val, M_val, value
