"""ADMM for the squared or logistic loss with the trace norm or robust MTL's penalty.

FISTA's scalar step is set by the stiffest direction of the whole problem, and the prox of
the trace norm has no closed form in a diagonal metric, so on badly scaled features (raw
School: per-task condition number 2.6e5) FISTA stalls on these penalties. ADMM with the
split ``W = Z`` solves the data term exactly, one ridge system per task
(:class:`._admm_ridge.RidgeSolver`), whatever its conditioning, and keeps the exact
singular value thresholding for ``Z``. For the logistic loss the data step is a few
batched Newton steps per task, intercept included (:mod:`._admm_logistic`).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from ..datafits import Logistic, Quadratic
from ._admm_certificate import dual_value, extrapolate
from ._admm_logistic import LogisticProblem, padded_size
from ._admm_ridge import RidgeSolver, condition_number, spectrum_ends
from ._result import SolverResult, check_penalty, gradient_scale, initial_point, model_weight

__all__ = ["admm", "admm_applies", "admm_pays", "logistic_condition_number"]

logger = logging.getLogger(__name__)

#: penalties ADMM solves (their prox is exact in the scalar metric of the split)
_PENALTIES = frozenset({"TraceNorm", "RobustMTL"})
#: residual balancing (Boyd et al. 2011, eq. (3.13)): rescale ``rho`` by ``_TAU`` when one
#: residual exceeds ``_MU`` times the other (measured on raw School: 2 and 1.5 take 40%
#: fewer iterations than Boyd's 10 and 2)
_MU, _TAU = 2.0, 1.5
#: iterates combined by the extrapolated dual point
_K = 5
#: ``"auto"`` takes ADMM up to this many features whatever the conditioning: on School
#: (p = 27) standardised it is faster than FISTA at every alpha and tol tried (trace norm
#: 3-5x, at 0.01 alpha_max and tol 1e-8 100 against 740 iterations; robust 1.4-2.7x), on
#: random well-conditioned problems (p = 5-300) within 30% of it either way
ALWAYS_P = 200
#: above :data:`ALWAYS_P` features (where the eigendecomposition's ``p^3`` per task may
#: not pay) ADMM is taken only above this condition number of the per-task Hessians
#: (School raw: 2.6e5, FISTA does not converge in 20,000 iterations)
KAPPA_ADMM = 1e4
#: the logistic data step (batched Newton on ``(p + 1) x (p + 1)`` systems) is taken up
#: to this many features
LOGISTIC_P = 64
#: and up to this many floats in its padded per-task layout (:mod:`._admm_logistic`)
LOGISTIC_FLOATS = 2e7
#: ``"auto"`` takes ADMM for the logistic loss above this condition number
#: (:func:`logistic_condition_number`). Measured (docs/solvers.md): random problems break
#: even near 2e2 (FISTA 1.5-3x faster below 10, ADMM 1.3-2.5x faster at 1.7e4, 4-7x at
#: 1.6e6); Landmine raw (7.4e4) and standardised (6.9e4, the intercept column) 1.2-1.4x
KAPPA_LOGISTIC = 1e3
#: inexact data steps (logistic): Newton until the step's gradient norm is at most this
#: times ``rho`` times the last primal residual (Boyd et al. 2011, Sec. 3.4.4)
_INEXACT = 0.1
_TINY = np.finfo(float).tiny


def admm_applies(datafit, penalty, smooth=None):
    """True when :func:`admm` can solve the problem: no smooth penalty, a trace-norm or
    robust-MTL penalty with positive strengths, and the squared loss with cheap Gram
    matrices or the logistic loss with at most :data:`LOGISTIC_P` features and a padded
    layout of at most :data:`LOGISTIC_FLOATS` floats (:mod:`._admm_logistic`)."""
    if smooth or not _datafit_applies(datafit):
        return False
    if type(penalty).__name__ not in _PENALTIES:
        return False
    strengths = [penalty.alpha, getattr(penalty, "beta", 1.0)]
    return all(s > 0 for s in strengths)


def _datafit_applies(datafit):
    if isinstance(datafit, Logistic):
        design = datafit.design
        return datafit.n_features <= LOGISTIC_P and padded_size(design) <= LOGISTIC_FLOATS
    return isinstance(datafit, Quadratic) and datafit.design.gram_is_cheap


def admm_pays(datafit, fit_intercept=True):
    """True when ADMM is expected to beat FISTA. Squared loss: at most :data:`ALWAYS_P`
    features, or Hessians conditioned worse than :data:`KAPPA_ADMM`. Logistic loss:
    FISTA's Hessian bounds (with the intercept column when fitted) conditioned worse than
    :data:`KAPPA_LOGISTIC`."""
    if isinstance(datafit, Logistic):
        return logistic_condition_number(datafit, fit_intercept) > KAPPA_LOGISTIC
    if datafit.n_features <= ALWAYS_P:
        return True
    return condition_number(_gram_datafit(datafit, fit_intercept)) > KAPPA_ADMM


def logistic_condition_number(datafit, fit_intercept=True):
    """Largest over smallest non-zero eigenvalue of the Gram matrices ``[X_t, 1]^T D_t
    [X_t, 1]`` (without the ``1`` column when no intercept is fitted), over all tasks: the
    conditioning FISTA sees, as it steps in ``(W, b)`` jointly."""
    cache = datafit.design.__dict__.setdefault("_admm_logistic_kappa", {})
    key = bool(fit_intercept)
    if key not in cache:  # cached on the design: a path asks once per alpha
        lam = np.linalg.eigvalsh(LogisticProblem(datafit, fit_intercept).hessian_bound())
        top, low = spectrum_ends(lam, rtol=1e-12)
        cache[key] = top / low if low is not None else 1.0
    return cache[key]


def _gram_datafit(datafit, fit_intercept):
    df = Quadratic(datafit.design, use_gram=True)
    return df.centered() if fit_intercept else df


def admm(
    datafit,
    penalty,
    W0=None,
    b0=None,
    *,
    fit_intercept=True,
    tol=1e-8,
    max_iter=10000,
    gap_freq=10,
    rho=None,
):
    """Minimise ``datafit(W, b) + penalty(W)`` by ADMM, stopping on the duality gap.

    Parameters
    ----------
    datafit : Quadratic or Logistic
        Squared loss (its Gram matrices are used) or logistic loss with few features
        (:func:`admm_applies`).
    penalty : TraceNorm or RobustMTL
        Robust MTL acts on the stacked components ``(2, n_features, n_tasks)``.
    W0 : ndarray of shape (n_features, n_tasks) or (2, n_features, n_tasks), optional
        Warm start (copied); zeros by default.
    b0 : ndarray of shape (n_tasks,), optional
        Must be zero (or None) when ``fit_intercept=False``; with ``fit_intercept=True``
        the intercept is profiled out (squared loss) or solved with ``W`` (logistic).
    fit_intercept : bool, default=True
    tol : float, default=1e-8
        Stop when the relative duality gap ``(P(Z) - D) / P(Z)`` is at most ``tol``;
        ``D`` is the best dual value seen (:mod:`._admm_certificate`), so the returned
        objective is within ``tol`` relative of the optimum. For robust MTL also the
        distance of ``-grad f`` to each component's subdifferential (bounded by
        ``||grad f(L + S) + rho U_i||``) relative to the gradient norm at zero, the
        meaning of FISTA's criterion there.
    max_iter : int, default=10000
    gap_freq : int, default=10
        Iterations between certificates (and ``rho`` updates).
    rho : float, optional
        Initial penalty parameter; by default ``sqrt(lambda_max lambda_min)`` of the
        Hessians (non-zero eigenvalues), the optimal ``rho`` of ADMM on a quadratic
        (Ghadimi et al. 2015), then balanced.

    Returns
    -------
    SolverResult
        ``W`` is ``Z`` (exactly low rank / column sparse); ``stop_crit`` the relative
        duality gap; ``dual_gap`` the absolute gap for the trace norm (None for robust
        MTL, as from FISTA, whose criterion there is the prox-gradient mapping).

    Notes
    -----
    With ``n`` components ``Z_i`` (1 for the trace norm; ``L`` and ``S`` for robust MTL)
    the split is ``A_i = Z_i``, ``f(sum_i A_i) + penalty(Z)``: the ``A`` step is one ridge
    solve per task, ``(H_t + rho / n I) w_t = c_t + rho / n sum_i a_i`` with
    ``a = Z - U``, then ``A_i = a_i + (W - sum_i a_i) / n``; the ``Z`` step is the
    penalty's prox at the step ``1 / rho`` (singular value thresholding, column
    shrinkage), separable in the components; ``U += A - Z``. Two blocks, so the classical
    convergence theory applies (Boyd et al. 2011, Sec. 3.2). ``rho`` is balanced every
    ``gap_freq`` iterations (eq. (3.13)).

    Logistic loss: the ``A`` step is per task ``min_{w, b} f_t(w, b) + rho / (2 n) ||w -
    v_t||^2`` (``b`` unpenalised), solved inexactly by damped Newton steps warm-started at
    the previous solution until the step's gradient norm is at most 0.1 ``rho`` times the
    last primal residual (Boyd et al. 2011, Sec. 3.4.4; errors summable as the residuals
    shrink linearly, Eckstein & Bertsekas 1992). The stopping rule does not trust the
    inexact steps: the primal value is taken at ``Z`` with its optimal intercepts, the
    dual point is made feasible from the iterate (:class:`._admm_logistic
    .LogisticProblem`), and robust MTL's bound uses the exact gradient at ``Z`` (``rho
    U_i`` lies in the subdifferential by the exact ``Z`` step, whatever the ``A`` step).

    References
    ----------
    Boyd, S., Parikh, N., Chu, E., Peleato, B. and Eckstein, J. "Distributed optimization
    and statistical learning via the alternating direction method of multipliers."
    Foundations and Trends in Machine Learning 3(1), 2011, Sec. 3.1 (scaled form, eq.
    (3.5)-(3.7)), Sec. 3.3 (stopping) and Sec. 3.4.1 (residual balancing, eq. (3.13)).
    Ghadimi, E., Teixeira, A., Shames, I. and Johansson, M. "Optimal parameter selection
    for the alternating direction method of multipliers (ADMM): quadratic problems."
    IEEE Trans. Automatic Control 60(3), 2015, Theorem 4 (``rho = sqrt(lambda_min
    lambda_max)``).
    Massias, M., Gramfort, A. and Salmon, J. "Celer: a fast solver for the Lasso with dual
    extrapolation." ICML 2018, Sec. 3 (extrapolated dual points).
    """
    check_penalty(penalty, ("value", "prox"))
    if not admm_applies(datafit, penalty):
        raise ValueError(
            f"admm solves the squared loss with cheap Gram matrices or the logistic loss with "
            f"at most {LOGISTIC_P} features, and a TraceNorm or RobustMTL penalty with "
            f"positive strengths, got {type(datafit).__name__} with "
            f"{datafit.n_features} features and {penalty!r}; use solver='fista'."
        )
    n_comp = getattr(penalty, "n_components", 1)
    Z, b = initial_point(datafit, penalty, W0, b0)
    if not fit_intercept and np.any(b):
        raise ValueError(
            "admm fits without intercept only at b = 0 (got a non-zero b0 with "
            "fit_intercept=False); pass fit_intercept=True or use solver='fista'."
        )
    if isinstance(datafit, Logistic):
        problem = LogisticProblem(datafit, fit_intercept)
    else:
        problem = _QuadraticProblem(_gram_datafit(datafit, fit_intercept))
    rho = problem.initial_rho() if rho is None else float(rho)
    grad, b_start = problem.primal(model_weight(Z))[1:]
    problem.warm_start(model_weight(Z), b_start)
    U = np.broadcast_to(-grad / rho, Z.shape).copy()  # the dual estimate -grad f / rho
    Z, U, info = _iterate(problem, penalty, Z, U, rho, n_comp, tol, max_iter, gap_freq)
    n_iter, crit, gap, history = info
    W = model_weight(Z)
    if fit_intercept:
        b = problem.intercept(W) if isinstance(datafit, Logistic) else datafit.intercept_optimal(W)
    objective = datafit.value(W, b) + penalty.value(Z)
    converged = crit <= tol
    if not converged:
        logger.warning("admm did not converge: stop_crit=%.3g > tol=%.3g", crit, tol)
    gap = float(gap) if n_comp == 1 else None  # as FISTA: a gap only for norm penalties
    return SolverResult(
        Z, b, n_iter, float(objective), float(crit), bool(converged), history, dual_gap=gap
    )


class _QuadraticProblem:
    """Data step and certificate of :func:`admm` for the squared loss (Gram form,
    intercept profiled): exact ridge solves (:class:`._admm_ridge.RidgeSolver`)."""

    def __init__(self, df):
        self.df = df
        self.ridge = RidgeSolver(df)

    def initial_rho(self):
        top, low = spectrum_ends(self.ridge.lam)
        return math.sqrt(top * low) if low is not None else 1.0

    def warm_start(self, W, b):
        """Nothing to do: the ridge solve is exact."""

    def solve(self, V, rho, inner_tol):
        return self.ridge.solve(V, rho)

    def primal(self, W):
        """``(f(W), grad f(W), b)``, the intercept profiled (``b = 0`` here)."""
        b, S = np.zeros(W.shape[1]), self.df.linear(W)
        return self.df.value_at(W, b, S), self.df.gradient_at(W, b, S)[0], b

    def dual(self, W, penalty):
        return dual_value(self.df, W, penalty)


def _iterate(problem, penalty, Z, U, rho, n_comp, tol, max_iter, gap_freq):
    """The ADMM loop; returns ``(Z, U, (n_iter, crit, gap, history))``."""
    grad0 = problem.primal(np.zeros(model_weight(Z).shape))[1]
    scale = gradient_scale(float(np.linalg.norm(grad0)), 0.0)
    best_dual, crit, gap = -np.inf, np.inf, np.inf
    history, recent = [], []
    r = np.inf  # primal residual, for the inexact data steps' accuracy
    it = 0
    for it in range(1, max_iter + 1):
        a = Z - U
        sum_a = model_weight(a)
        W = problem.solve(sum_a, rho / n_comp, _INEXACT * rho / n_comp * r)
        A = a + (W - sum_a) / n_comp if n_comp > 1 else W
        Z_old, Z = Z, penalty.prox(A + U, 1.0 / rho)
        U += A
        U -= Z
        r = math.sqrt(float(np.vdot(A - Z, A - Z)) if n_comp > 1 else _sq(W - Z))
        if it % gap_freq >= gap_freq - _K - 1 or gap_freq <= _K + 1:
            recent = [*recent, W][-(_K + 1) :]
        if it % gap_freq and it != max_iter:
            continue
        value, grad, _ = problem.primal(model_weight(Z))
        primal = value + penalty.value(Z)
        best_dual = max(best_dual, _best_dual(problem, penalty, W, recent))
        gap = max(primal - best_dual, 0.0)
        crit = gap / max(abs(primal), _TINY)
        if n_comp > 1:  # and the subgradient's distance, as FISTA's criterion there
            crit = max(crit, _subgradient_residual(grad, U, rho) / scale)
        history.append(primal)
        if crit <= tol:
            break
        s = rho * math.sqrt(_sq(Z - Z_old))
        factor = _TAU if r > _MU * s else (1.0 / _TAU if s > _MU * r else 1.0)
        if factor != 1.0:
            rho *= factor
            U /= factor
            recent = []  # the iteration map changed: no extrapolation across it
    logger.debug("admm: %d iterations, stop_crit=%.3g, rho=%.3g", it, crit, rho)
    return Z, U, (it, crit, gap, tuple(history))


def _sq(V):
    return float(np.vdot(V, V))


def _subgradient_residual(grad, U, rho):
    """``max_i ||grad f(sum Z) + rho U_i||``: ``rho U_i`` lies in the subdifferential of
    component ``i``'s penalty at ``Z_i`` (the ``Z`` step's optimality condition), so this
    bounds every component's distance of ``-grad`` to it (``subdiff_distance``)."""
    return max(math.sqrt(_sq(grad + rho * u)) for u in U)


def _best_dual(problem, penalty, W, recent):
    """Largest dual value of the data step's iterate and of the extrapolated one."""
    best = problem.dual(W, penalty)
    if len(recent) == _K + 1:
        W_ext = extrapolate(recent)
        if W_ext is not None and np.all(np.isfinite(W_ext)):
            best = max(best, problem.dual(W_ext, penalty))
    return best
