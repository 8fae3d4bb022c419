"""FISTA with backtracking and adaptive (gradient) restart for datafit + penalty problems."""

from __future__ import annotations

import logging
import math

import numpy as np

from ..datafits import gap_certifies
from ._fista_affine import iterate_affine, uses_kernels
from ._metric import jacobi_metric
from ._result import (
    SolverResult,
    check_penalty,
    final_gap,
    gradient_scale,
    initial_point,
    model_weight,
)

__all__ = ["fista"]

logger = logging.getLogger(__name__)

#: gain the metric must promise (:meth:`._metric.RowMetric.pays`) where the scalar loop runs
#: the numba kernels of many small tasks: there a metric iteration costs 1.4x (Chem97, Gram
#: mode: 122 against 88 us), and Chem97, whose metric divides the condition number by 4.6
#: and lengthens the longest step 35x, saved only 10-34% of its iterations
_KERNEL_GAIN = 40.0


class _Smooth:
    """Datafit plus smooth penalties, seen as one smooth function of ``(X, b)``.

    ``X`` is the solver variable (``W``, or the stacked components of a composite penalty);
    ``S`` is the datafit's linear state of the model weight, carried along so that the
    extrapolated point costs no extra product.
    """

    def __init__(self, datafit, smooth, n_comp, joint_b):
        self.datafit = datafit
        self.smooth = tuple(smooth or ())
        self.n_comp = n_comp
        self.joint_b = joint_b

    def lipschitz(self):
        L = self.datafit.lipschitz(fit_intercept=self.joint_b)
        L += sum(s.lipschitz() for s in self.smooth)
        return self.n_comp * L

    def state(self, X):
        return self.datafit.linear(model_weight(X))

    def value(self, X, b, S):
        W = model_weight(X)
        return self.datafit.value_at(W, b, S) + sum(s.value(W) for s in self.smooth)

    def gradient(self, X, b, S):
        W = model_weight(X)
        gW, gb = self.datafit.gradient_at(W, b, S)
        for s in self.smooth:
            gW = gW + s.gradient(W)
        if self.n_comp > 1:
            gW = np.broadcast_to(gW, X.shape)
        return gW, gb


def fista(
    datafit,
    penalty,
    W0=None,
    b0=None,
    *,
    fit_intercept=True,
    smooth=None,
    tol=1e-8,
    max_iter=10000,
    gap_freq=10,
    restart=True,
    backtracking=True,
    lipschitz=None,
    precondition="auto",
    warn=True,
):
    """Minimise ``datafit(W, b) + sum(smooth) + penalty(W)`` by accelerated proximal gradient.

    Parameters
    ----------
    datafit : Quadratic or Logistic
    penalty : Penalty
        Needs ``value`` and ``prox``; composite penalties (``n_components = 2``) act on
        stacked components whose sum is the model weight.
    W0 : ndarray of shape (n_features, n_tasks) or (2, n_features, n_tasks), optional
        Starting point (copied, never modified); zeros by default.
    b0 : ndarray of shape (n_tasks,), optional
        Starting intercept.
    fit_intercept : bool, default=True
        Fit an unpenalised intercept per task. For the quadratic loss it is profiled out
        exactly (centred data); otherwise it is a FISTA variable with the identity prox.
    smooth : sequence of SmoothPenalty, optional
        Differentiable penalties folded into the datafit.
    tol : float, default=1e-8
        Stop when the relative duality gap ``gap / primal`` (quadratic loss with a norm
        penalty whose ``alpha`` is large enough for the gap to certify ``tol``:
        :func:`~multitask.linear.datafits.gap_certifies`, not at ``alpha = 0``) or the
        prox-gradient mapping norm relative to the datafit gradient norm at zero falls
        below ``tol``.
    max_iter : int, default=10000
    gap_freq : int, default=10
        Iterations between duality-gap evaluations.
    restart : bool, default=True
        Adaptive gradient restart of the momentum.
    backtracking : bool, default=True
        Double the step's Lipschitz estimate whenever the sufficient-decrease test fails.
        The test runs only when starting below the datafit's proven bound (``lipschitz``).
    lipschitz : float, optional
        Initial Lipschitz estimate; by default the proven bound
        ``datafit.lipschitz() + sum(smooth.lipschitz())`` (times ``n_components``).
        Given, the scalar step is used (no metric).
    precondition : {"auto", True, False}, default="auto"
        Variable-metric FISTA in the Jacobi metric of :func:`._metric.jacobi_metric` (one
        step per feature row, or per entry for L1, and per task intercept). Possible where
        the penalty's prox takes a per-row step (``penalty.row_step``: the row-separable
        penalties and the dirty model) and the Gram matrices are cheap. ``"auto"`` uses it
        there when it pays (:meth:`._metric.RowMetric.pays`: badly scaled features),
        True wherever possible, False never (the scalar step ``1 / L``). The stopping
        criterion has the same meaning in all: the duality gap, or the prox-gradient
        mapping ``M (y - x+)`` in the original coordinates.
    warn : bool, default=True
        Log a WARNING when ``max_iter`` ends the run before ``tol``. False for an inner
        solve whose budget is routine (BCD's working sets): the outer solver decides
        convergence, and the message goes to DEBUG.

    Returns
    -------
    SolverResult

    Notes
    -----
    In the metric ``M = c diag(m)`` an iteration is Beck & Teboulle's in the coordinates
    ``M^{1/2} W``: the forward step ``y - M^{-1} grad f(y)``, the prox in the norm of ``M``
    (for a row-separable penalty, the row prox at the step ``1 / (c m_j)``), and the same
    momentum; the restart test is the inner product in ``M``.

    A datafit with an affine gradient (the squared loss) and no smooth penalty, one
    component and a fixed step runs :func:`._fista_affine.iterate_affine`: the same
    iterates with one product per iteration and fewer array passes.

    References
    ----------
    Beck, A. and Teboulle, M. "A fast iterative shrinkage-thresholding algorithm for linear
    inverse problems." SIAM J. Imaging Sciences 2(1), 2009, FISTA with backtracking
    (Section 4, eq. (4.1) and the step-size rule of Section 3).
    O'Donoghue, B. and Candès, E. "Adaptive restart for accelerated gradient schemes."
    Foundations of Computational Mathematics 15, 2015, gradient restart scheme (Section 3.2).
    Combettes, P. L. and Vũ, B. C. "Variable metric forward-backward splitting with
    applications to monotone inclusions in duality." Optimization 63(9), 2014, eq. (1.3)
    (the forward-backward step in a metric).
    """
    check_penalty(penalty, ("value", "prox"))
    n_comp = getattr(penalty, "n_components", 1)
    X, b = initial_point(datafit, penalty, W0, b0)
    profile = fit_intercept and hasattr(datafit, "centered")
    df = datafit.centered() if profile else datafit
    joint_b = fit_intercept and not profile
    if not fit_intercept:
        b = b if b0 is not None else np.zeros(datafit.n_tasks)
    problem = _Smooth(df, smooth, n_comp, joint_b)
    scale, grad0 = _gradient_scale(problem, X, b)
    use_gap = not problem.smooth and n_comp == 1 and not joint_b and hasattr(df, "gap_at")
    use_gap = use_gap and df.gap_at(X, problem.state(X), penalty) is not None
    # alpha = 0 (or tiny): the rescaled dual point is useless, stop on the mapping instead
    use_gap = use_gap and gap_certifies(penalty, grad0, tol)
    if precondition not in ("auto", True, False):
        raise ValueError(f"precondition={precondition!r} is not one of 'auto', True, False.")
    affine = _fixed_step_affine(problem, backtracking, lipschitz)
    kernels = affine and uses_kernels(X.shape)
    metric = _metric(problem, penalty, precondition if lipschitz is None else False, kernels)
    opts = dict(tol=tol, max_iter=max_iter, gap_freq=gap_freq, restart=restart)
    opts.update(backtracking=backtracking, use_gap=use_gap, scale=scale, L0=lipschitz)
    if affine:
        L = problem.lipschitz() if lipschitz is None else float(lipschitz)
        del opts["backtracking"], opts["L0"]
        if metric is not None:
            L, opts["metric"] = metric.c, metric.m
        X, b, info = iterate_affine(df, penalty, X, b, L=L, **opts)
    else:
        X, b, info = _iterate(problem, penalty, X, b, metric=metric, **opts)
    if profile:
        b = datafit.intercept_optimal(model_weight(X))
    W = model_weight(X)
    objective = datafit.value(W, b) + sum(s.value(W) for s in problem.smooth) + penalty.value(X)
    n_iter, crit, history = info
    converged = crit <= tol
    if not converged:
        log = logger.warning if warn else logger.debug
        log("fista did not converge: stop_crit=%.3g > tol=%.3g", crit, tol)
    gap = final_gap(df, W, problem.state(X), penalty) if use_gap else None
    return SolverResult(
        X, b, n_iter, float(objective), float(crit), bool(converged), history, dual_gap=gap
    )


def _metric(problem, penalty, wanted, kernels=False):
    """The Jacobi :class:`~._metric.RowMetric` of the problem, or None (scalar step);
    ``wanted`` is ``precondition`` ("auto": only where it pays, by :data:`_KERNEL_GAIN`
    where the scalar loop would run the numba kernels, ``kernels``)."""
    if not wanted or not getattr(penalty, "row_step", False):
        return None
    smooth_l = sum(s.lipschitz() for s in problem.smooth)
    per_task = getattr(penalty, "entry_step", False)
    metric = jacobi_metric(problem.datafit, smooth_l, problem.n_comp, problem.joint_b, per_task)
    if metric is None:
        return None
    if wanted == "auto" and not metric.pays(_KERNEL_GAIN if kernels else None):
        return None
    return metric


def _fixed_step_affine(problem, backtracking, L0):
    """True when :func:`iterate_affine` applies: an affine-gradient datafit alone (no smooth
    penalty, one component, no joint intercept) at a step that needs no backtracking."""
    if not getattr(problem.datafit, "affine_gradient", False):
        return False
    if problem.smooth or problem.n_comp != 1 or problem.joint_b:
        return False
    return not (backtracking and L0 is not None and L0 < problem.lipschitz())


def _restart(x, x_new, y, b, b_new, by, joint_b, m=1.0, mb=1.0):
    """Gradient restart test ``<y - x+, x+ - x>_M > 0`` (O'Donoghue & Candès, Sec. 3.2),
    in the metric ``diag(m, mb)`` (the sign does not depend on its factor ``c``)."""
    inner = _wdot(y - x_new, x_new - x, m)
    if joint_b:
        inner += _wdot(by - b_new, b_new - b, mb)
    return inner > 0


def _wdot(u, v, w):
    """``<u, w v>`` for a weight ``w``: a float, or an array broadcasting against ``v``."""
    if isinstance(w, float):
        return w * float(np.vdot(u, v))
    return float(np.vdot(u, w * v))


def _sufficient_decrease(problem, x_new, b_new, S_new, fy, gy, gby, dx, db, L, sq):
    """Beck & Teboulle's test ``F(x+) <= Q_L(x+, y)`` (eq. (2.5) with the step 1/L)."""
    f_new = problem.value(x_new, b_new, S_new)
    model = fy + float(np.vdot(gy, dx) + np.vdot(gby, db)) + 0.5 * L * sq
    return f_new <= model + 1e-12 * abs(fy)


def _gradient_scale(problem, X, b):
    """Norm of the datafit gradient at zero (the problem scale for the mapping criterion),
    and that gradient."""
    zero = np.zeros_like(X)
    g, gb = problem.gradient(zero, b, problem.state(zero))
    gb = float(np.linalg.norm(gb)) if problem.joint_b else 0.0
    return gradient_scale(float(np.linalg.norm(g)), gb), g


def _iterate(
    problem,
    penalty,
    x,
    b,
    *,
    tol,
    max_iter,
    gap_freq,
    restart,
    backtracking,
    use_gap,
    scale,
    L0,
    metric=None,
):
    """The FISTA loop; returns ``(x, b, (n_iter, stop_crit, history))``.

    Starting from the proven Lipschitz bound, the sufficient-decrease test cannot fail, so
    it (and the per-iteration objective it needs) is skipped; the objective is then
    recorded at every ``gap_freq``-th iteration only. With a ``metric`` (a
    :class:`~._metric.RowMetric`) the step of row ``j`` is ``1 / (L m_j)`` with ``L``
    starting at ``metric.c``; without, ``m = 1`` and ``L`` is the Lipschitz constant.
    """
    joint_b = problem.joint_b
    m, mb = 1.0, 1.0
    if metric is not None:
        m = metric.m
        mb = 1.0 if metric.m_b is None else metric.m_b
    bound = problem.lipschitz() if metric is None else metric.c
    L = bound if L0 is None else float(L0)
    check = backtracking and L < bound
    Sx = problem.state(x)
    y, by, Sy = x, b, Sx
    t = 1.0
    history = []
    crit = np.inf
    it = 0
    for it in range(1, max_iter + 1):
        gy, gby = problem.gradient(y, by, Sy)
        fy = problem.value(y, by, Sy) if check else None
        while True:
            Lm = L * m
            x_new = penalty.prox(y - gy / Lm, 1.0 / Lm)
            b_new = by - gby / (L * mb) if joint_b else by
            S_new = problem.state(x_new)
            if not check and use_gap:
                break  # neither the test nor the mapping criterion needs the step
            dx = x_new - y
            db = b_new - by
            sq = _wdot(dx, dx, m) + (_wdot(db, db, mb) if joint_b else 0.0)
            if not check or _sufficient_decrease(
                problem, x_new, b_new, S_new, fy, gy, gby, dx, db, L, sq
            ):
                break
            L *= 2.0
        at_check = it % gap_freq == 0 or it == 1
        if check or at_check:
            history.append(problem.value(x_new, b_new, S_new) + penalty.value(x_new))
        if use_gap and at_check:
            gap = problem.datafit.gap_at(model_weight(x_new), S_new, penalty)
            if gap is not None:
                crit = max(gap[0], 0.0) / max(abs(gap[1]), np.finfo(float).tiny)
        elif not use_gap:
            crit = _mapping_norm(L, sq, dx, db, m, mb, joint_b) / scale
            if crit <= tol and metric is not None:
                crit = _subgradient_norm(problem, x_new, b_new, S_new, gy, gby, dx, db, L, m, mb)
                crit /= scale
        if crit <= tol:
            x, b = x_new, b_new
            break
        if restart and _restart(x, x_new, y, b, b_new, by, joint_b, m, mb):
            t = 1.0
        t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        beta = (t - 1.0) / t_new
        y = x_new + beta * (x_new - x)
        Sy = (1.0 + beta) * S_new - beta * Sx
        by = b_new + beta * (b_new - b) if joint_b else b_new
        x, b, Sx, t = x_new, b_new, S_new, t_new
    logger.debug("fista: %d iterations, stop_crit=%.3g, L=%.3g", it, crit, L)
    return x, b, (it, crit, tuple(history))


def _subgradient_norm(problem, x_new, b_new, S_new, gy, gby, dx, db, L, m, mb):
    """Norm of the subgradient ``grad f(x+) - grad f(y) + M (y - x+)`` of the objective at
    ``x+`` (the prox step's optimality condition): in a metric the mapping norm alone
    bounds the distance of 0 to the subdifferential only up to the metric's spread, so the
    stop is confirmed with this one (one gradient, only when the mapping norm passes)."""
    g, gb = problem.gradient(x_new, b_new, S_new)
    r = g - gy - (L * m) * dx  # dx = x+ - y
    out = float(np.vdot(r, r))
    if problem.joint_b:
        rb = gb - gby - (L * mb) * db
        out += float(np.vdot(rb, rb))
    return math.sqrt(out)


def _mapping_norm(L, sq, dx, db, m, mb, joint_b):
    """Norm of the prox-gradient mapping ``L M0 (y - x+)`` in the original coordinates
    (``L sqrt(sq)`` for the scalar step, ``M0 = I``)."""
    if isinstance(m, float) and isinstance(mb, float):
        return L * math.sqrt(sq)
    out = float(np.vdot(m * dx, m * dx))
    if joint_b:
        out += float(np.vdot(mb * db, mb * db))
    return L * math.sqrt(out)
