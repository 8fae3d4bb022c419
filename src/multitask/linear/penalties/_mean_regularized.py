"""Mean-regularised multi-task learning: task weights pulled towards their mean."""

from __future__ import annotations

import numpy as np

from ._base import SmoothPenalty, check_strength


class MeanRegularized(SmoothPenalty):
    """``alpha * sum_t ||w_t - w_mean||^2 + beta * ||W||_F^2`` (no factor 1/2).

    ``w_t = W[:, t]`` and ``w_mean = W.mean(axis=1)``. Equivalently ``alpha *
    ||W P||_F^2 + beta * ||W||_F^2`` with the centring matrix ``P = I - 11^T / T``.

    Parameters
    ----------
    alpha : float, default=1.0
        Strength of the pull towards the mean task, ``>= 0``.
    beta : float, default=0.0
        Ridge strength, ``>= 0``.

    Notes
    -----
    Evgeniou & Pontil (2004) write ``w_t = w_0 + v_t`` and penalise
    ``lambda_1 / T * sum_t ||v_t||^2 + lambda_2 * ||w_0||^2``. Minimising over
    ``w_0`` gives ``w_0 = lambda_1 / (lambda_1 + lambda_2) * w_mean`` and the value
    ``lambda_1 / T * sum_t ||w_t - w_mean||^2 + lambda_1 lambda_2 / (lambda_1 +
    lambda_2) * ||w_mean||^2``. Since ``||W||_F^2 = sum_t ||w_t - w_mean||^2 + T
    ||w_mean||^2``, this is the present penalty with

    ``alpha = lambda_1^2 / (T (lambda_1 + lambda_2))`` and
    ``beta = lambda_1 lambda_2 / (T (lambda_1 + lambda_2))``

    (:meth:`from_evgeniou_pontil`); conversely ``lambda_1 = T (alpha + beta)`` and
    ``lambda_2 = T (alpha + beta) beta / alpha``. The paper's loss is the hinge
    loss; here any datafit can be used.

    References
    ----------
    Evgeniou, T. and Pontil, M. "Regularized multi-task learning." KDD, 2004,
    Sec. 2 (w_t = w_0 + v_t and the equivalent problem in the w_t alone).
    """

    _param_names = ("alpha", "beta")

    def __init__(self, alpha: float = 1.0, beta: float = 0.0):
        self.alpha = check_strength(alpha, "alpha")
        self.beta = check_strength(beta, "beta")

    @classmethod
    def from_evgeniou_pontil(cls, lambda_1: float, lambda_2: float, n_tasks: int):
        """The penalty equal to the paper's ``lambda_1/T sum ||v_t||^2 + lambda_2 ||w_0||^2``."""
        lambda_1 = check_strength(lambda_1, "lambda_1")
        lambda_2 = check_strength(lambda_2, "lambda_2")
        if lambda_1 + lambda_2 == 0:
            return cls(0.0, 0.0)
        denom = n_tasks * (lambda_1 + lambda_2)
        return cls(lambda_1**2 / denom, lambda_1 * lambda_2 / denom)

    def value(self, W):
        """``alpha * sum_t ||w_t - w_mean||^2 + beta * ||W||_F^2``."""
        W = np.asarray(W, dtype=float)
        centred = W - W.mean(axis=1, keepdims=True)
        return self.alpha * float(np.sum(centred**2)) + self.beta * float(np.sum(W**2))

    def gradient(self, W):
        """``2 alpha (W - w_mean 1^T) + 2 beta W``."""
        W = np.asarray(W, dtype=float)
        return 2.0 * self.alpha * (W - W.mean(axis=1, keepdims=True)) + 2.0 * self.beta * W

    def lipschitz(self):
        """``2 alpha + 2 beta`` (the centring projection has norm 1)."""
        return 2.0 * (self.alpha + self.beta)
