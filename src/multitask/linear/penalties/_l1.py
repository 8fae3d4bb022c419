"""L1 penalty: an independent lasso per task."""

from __future__ import annotations

import numpy as np

from ._base import RowSeparablePenalty, check_strength, soft_threshold


class L1(RowSeparablePenalty):
    """Entrywise L1 penalty ``alpha * sum_{j,t} |W[j, t]|``.

    Tasks do not share anything: the problem splits into one lasso per task.

    Parameters
    ----------
    alpha : float, default=1.0
        Regularisation strength, ``>= 0``.

    References
    ----------
    Tibshirani, R. "Regression shrinkage and selection via the lasso." Journal of
    the Royal Statistical Society B, 1996, Sec. 2 (the lasso criterion).
    """

    #: soft-thresholding is entrywise: a step per entry is the prox in a diagonal metric
    entry_step = True

    def __init__(self, alpha: float = 1.0):
        self.alpha = check_strength(alpha, "alpha")

    def _value_rows(self, W):
        return self.alpha * np.sum(np.abs(W), axis=-1)

    def prox(self, W, step):
        """Soft-thresholding at ``step * alpha``; ``W`` of shape ``(n_features, n_tasks)``,
        ``step`` a float or an array broadcasting against it (per row or per entry)."""
        return soft_threshold(np.asarray(W, dtype=float), step * self.alpha)

    def _subdiff_distance_rows(self, W, grad):
        dist = np.where(
            W != 0,
            np.abs(grad + self.alpha * np.sign(W)),
            np.maximum(np.abs(grad) - self.alpha, 0.0),
        )
        return np.linalg.norm(dist, axis=-1)

    def alpha_max(self, grad0):
        """``max_{j,t} |grad0[j, t]|``."""
        return float(np.max(np.abs(grad0), initial=0.0))

    def dual_norm(self, G):
        """Dual norm ``Omega^*(G)`` of the unit-strength norm (the penalty is ``alpha * Omega``).

        Equal to :meth:`alpha_max` (``W = 0`` is optimal iff ``Omega^*(grad0) <= alpha``);
        used by solvers to build a feasible dual point for the duality gap.
        """
        return self.alpha_max(G)
