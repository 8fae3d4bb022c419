"""The duality-gap certificate of :func:`.admm`: dual points from the data step's iterates.

For the squared loss ``f(W) = sum_t 1/2 w_t^T H_t w_t - c_t^T w_t + k_t`` and a norm
penalty ``h`` of the model weight, any ``W`` gives the dual point ``theta = s r(W)`` (its
residual, rescaled into the dual ball: ``s = min(1, 1 / h^*(grad f(W)))``, ``h^*`` the
dual norm of the penalty *relative to its strengths*), whose dual value is
``s <r, y> - s^2 F(W)``. Every such value is a lower bound of the optimum, so the gap
``P(Z) - max(dual values seen)`` bounds the suboptimality of the primal iterate ``Z``.

For robust MTL the penalty of the model weight is the infimal convolution
``h(W) = min_{L + S = W} alpha ||L||_* + beta sum_t ||S[:, t]||``, a norm whose dual norm is
``max(||G||_2 / alpha, max_t ||G[:, t]|| / beta)`` (the dual ball of an infimal convolution
of norms is the intersection of their dual balls; Rockafellar, Convex Analysis, 1970,
Theorem 16.4), and ``P(L, S) >= f(L + S) + h(L + S)``.

The residual of the data step converges only at ADMM's linear rate while the rescaling
loses a first-order term in the dual infeasibility; the extrapolated point of the last
``K + 1`` data-step iterates (Anderson / vector extrapolation: the affine combination whose
differences' combination is smallest) is a much better dual point once the iteration is
asymptotically linear (Massias, Gramfort & Salmon, ICML 2018, Sec. 3 and eq. (9)). The
residual is affine in ``W``, so the extrapolated residual is the residual of the
extrapolated ``W``.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..datafits import dual_norm

__all__ = ["dual_value", "extrapolate", "relative_dual_norm"]


def relative_dual_norm(penalty, G):
    """``h^*(G)``: the dual norm of ``G`` relative to the penalty's strengths.

    ``||G||_2 / alpha`` for the trace norm; ``max(||G||_2 / alpha, max_t ||G[:, t]|| /
    beta)`` for robust MTL (a zero strength gives ``inf`` unless that part of ``G`` is 0).
    """
    if getattr(penalty, "n_components", 1) == 2:
        spectral = float(np.linalg.norm(G, ord=2)) if G.size else 0.0
        column = float(np.max(np.linalg.norm(G, axis=0), initial=0.0))
        return max(_ratio(spectral, penalty.alpha), _ratio(column, penalty.beta))
    return _ratio(dual_norm(penalty, G), penalty.alpha)


def _ratio(norm, strength):
    if norm == 0.0:
        return 0.0
    return norm / strength if strength > 0 else np.inf


def dual_value(datafit, W, penalty):
    """Dual value of the rescaled residual of ``W`` (a lower bound of the optimum).

    Parameters
    ----------
    datafit : Quadratic
        Profiled or without intercept, computing with Gram matrices.
    W : ndarray of shape (n_features, n_tasks)
    penalty : TraceNorm or RobustMTL

    Returns
    -------
    float
        ``s <r, y>_D - s^2 F(W)``, ``s = min(1, 1 / h^*(grad f(W)))``.
    """
    F, ry, grad = datafit.gram_parts(W, datafit.linear(W))
    ratio = relative_dual_norm(penalty, grad)
    s = 1.0 if ratio <= 1.0 else 1.0 / ratio
    return s * ry - s * s * F


def extrapolate(points):
    """Vector extrapolation of a sequence of iterates, or None when degenerate.

    Parameters
    ----------
    points : list of ndarray, K + 1 of them, same shape

    Returns
    -------
    ndarray or None
        ``sum_i c_i points[i + 1]`` with ``c = z / sum(z)``, ``(R^T R) z = 1``, ``R`` the
        matrix of the ``K`` successive differences (Massias et al. 2018, eq. (9)).
    """
    R = np.stack([(b - a).ravel() for a, b in itertools.pairwise(points)], axis=1)
    A = R.T @ R
    K = A.shape[0]
    scale = float(np.trace(A))
    if not np.isfinite(scale) or scale <= 0.0:
        return None
    try:
        z = np.linalg.solve(A + 1e-14 * scale * np.eye(K), np.ones(K))
    except np.linalg.LinAlgError:
        return None
    total = float(z.sum())
    if not np.isfinite(total) or total == 0.0:
        return None
    c = z / total
    return np.tensordot(c, np.stack(points[1:]), axes=1)
