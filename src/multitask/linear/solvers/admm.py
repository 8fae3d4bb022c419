"""ADMM for the squared loss with the trace norm or robust MTL's low-rank + column penalty.

FISTA's scalar step is set by the stiffest direction of the whole problem, and the prox of
the trace norm has no closed form in a diagonal metric, so on badly scaled features (raw
School: per-task condition number 2.6e5) FISTA stalls on these penalties. ADMM with the
split ``W = Z`` solves the data term exactly, one ridge system per task
(:class:`._admm_ridge.RidgeSolver`), whatever its conditioning, and keeps the exact
singular value thresholding for ``Z``.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from ..datafits import Quadratic
from ._admm_certificate import dual_value, extrapolate
from ._admm_ridge import RidgeSolver, condition_number
from ._result import SolverResult, check_penalty, gradient_scale, initial_point, model_weight

__all__ = ["admm", "admm_applies", "admm_pays"]

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
_TINY = np.finfo(float).tiny


def admm_applies(datafit, penalty, smooth=None):
    """True when :func:`admm` can solve the problem: squared loss with cheap Gram
    matrices, no smooth penalty, a trace-norm or robust-MTL penalty with positive
    strengths."""
    if smooth or not isinstance(datafit, Quadratic) or not datafit.design.gram_is_cheap:
        return False
    if type(penalty).__name__ not in _PENALTIES:
        return False
    strengths = [penalty.alpha, getattr(penalty, "beta", 1.0)]
    return all(s > 0 for s in strengths)


def admm_pays(datafit, fit_intercept=True):
    """True when ADMM is expected to beat FISTA: at most :data:`ALWAYS_P` features, or
    Hessians conditioned worse than :data:`KAPPA_ADMM`."""
    if datafit.n_features <= ALWAYS_P:
        return True
    return condition_number(_gram_datafit(datafit, fit_intercept)) > KAPPA_ADMM


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
    datafit : Quadratic
        Squared loss; its Gram matrices are used (:func:`admm_applies`).
    penalty : TraceNorm or RobustMTL
        Robust MTL acts on the stacked components ``(2, n_features, n_tasks)``.
    W0 : ndarray of shape (n_features, n_tasks) or (2, n_features, n_tasks), optional
        Warm start (copied); zeros by default.
    b0 : ndarray of shape (n_tasks,), optional
        Intercept when ``fit_intercept=False`` (the intercept is profiled out otherwise).
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
            f"admm solves the squared loss with cheap Gram matrices and a TraceNorm or "
            f"RobustMTL penalty with positive strengths, got {type(datafit).__name__} and "
            f"{penalty!r}; use solver='fista'."
        )
    n_comp = getattr(penalty, "n_components", 1)
    Z, b = initial_point(datafit, penalty, W0, b0)
    if not fit_intercept and np.any(b):
        raise ValueError(
            "admm fits without intercept only at b = 0 (got a non-zero b0 with "
            "fit_intercept=False); pass fit_intercept=True or use solver='fista'."
        )
    df = _gram_datafit(datafit, fit_intercept)
    ridge = RidgeSolver(df)
    rho = _initial_rho(ridge) if rho is None else float(rho)
    grad = df.gradient_at(model_weight(Z), b, df.linear(model_weight(Z)))[0]
    U = np.broadcast_to(-grad / rho, Z.shape).copy()  # the dual estimate -grad f / rho
    Z, U, info = _iterate(df, penalty, ridge, Z, U, rho, n_comp, tol, max_iter, gap_freq)
    n_iter, crit, gap, history = info
    W = model_weight(Z)
    if fit_intercept:
        b = datafit.intercept_optimal(W)
    objective = datafit.value(W, b) + penalty.value(Z)
    converged = crit <= tol
    if not converged:
        logger.warning("admm did not converge: stop_crit=%.3g > tol=%.3g", crit, tol)
    gap = float(gap) if n_comp == 1 else None  # as FISTA: a gap only for norm penalties
    return SolverResult(
        Z, b, n_iter, float(objective), float(crit), bool(converged), history, dual_gap=gap
    )


def _initial_rho(ridge):
    lam = ridge.lam
    top = float(lam.max(initial=0.0))
    live = lam[lam > 1e-9 * top]
    return math.sqrt(top * float(live.min())) if live.size else 1.0


def _iterate(df, penalty, ridge, Z, U, rho, n_comp, tol, max_iter, gap_freq):
    """The ADMM loop; returns ``(Z, U, (n_iter, crit, gap, history))``."""
    scale = gradient_scale(float(np.linalg.norm(df.gradient_at_zero())), 0.0)
    best_dual, crit, gap = -np.inf, np.inf, np.inf
    history, recent = [], []
    it = 0
    for it in range(1, max_iter + 1):
        a = Z - U
        sum_a = model_weight(a)
        W = ridge.solve(sum_a, rho / n_comp)
        A = a + (W - sum_a) / n_comp if n_comp > 1 else W
        Z_old, Z = Z, penalty.prox(A + U, 1.0 / rho)
        U += A
        U -= Z
        if it % gap_freq >= gap_freq - _K - 1 or gap_freq <= _K + 1:
            recent = [*recent, W][-(_K + 1) :]
        if it % gap_freq and it != max_iter:
            continue
        primal, grad = _primal(df, penalty, Z)
        best_dual = max(best_dual, _best_dual(df, penalty, W, recent))
        gap = max(primal - best_dual, 0.0)
        crit = gap / max(abs(primal), _TINY)
        if n_comp > 1:  # and the subgradient's distance, as FISTA's criterion there
            crit = max(crit, _subgradient_residual(grad, U, rho) / scale)
        history.append(primal)
        if crit <= tol:
            break
        r = math.sqrt(float(np.vdot(A - Z, A - Z)) if n_comp > 1 else _sq(W - Z))
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


def _primal(df, penalty, Z):
    """``(P(Z), grad f(sum_i Z_i))``."""
    W = model_weight(Z)
    b, S = np.zeros(W.shape[1]), df.linear(W)
    return df.value_at(W, b, S) + penalty.value(Z), df.gradient_at(W, b, S)[0]


def _subgradient_residual(grad, U, rho):
    """``max_i ||grad f(sum Z) + rho U_i||``: ``rho U_i`` lies in the subdifferential of
    component ``i``'s penalty at ``Z_i`` (the ``Z`` step's optimality condition), so this
    bounds every component's distance of ``-grad`` to it (``subdiff_distance``)."""
    return max(math.sqrt(_sq(grad + rho * u)) for u in U)


def _best_dual(df, penalty, W, recent):
    """Largest dual value of the data step's iterate and of the extrapolated one."""
    best = dual_value(df, W, penalty)
    if len(recent) == _K + 1:
        W_ext = extrapolate(recent)
        if W_ext is not None and np.all(np.isfinite(W_ext)):
            best = max(best, dual_value(df, W_ext, penalty))
    return best
