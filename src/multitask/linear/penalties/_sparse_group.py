"""Sparse-group lasso across tasks: L2,1 plus L1."""

from __future__ import annotations

import numpy as np

from ._base import (
    RowSeparablePenalty,
    check_strength,
    group_shrink,
    row_thresholds,
    soft_threshold,
)


class SparseGroupLasso(RowSeparablePenalty):
    """``alpha * sum_j ||W[j, :]||_2 + beta * sum_{j,t} |W[j, t]|``.

    Selects features jointly (the rows are the groups) and, inside a selected
    feature, sets some tasks' coefficients to zero.

    Parameters
    ----------
    alpha : float, default=1.0
        Strength of the row-group (L2,1) term, ``>= 0``.
    beta : float, default=0.0
        Strength of the entrywise L1 term, ``>= 0``.

    Notes
    -----
    ``prox = group_shrink(soft_threshold(v, step*beta), step*alpha)`` per row
    (Friedman et al. 2010; Simon et al. 2013, Sec. 3). :meth:`alpha_max` is the
    smallest ``alpha`` for which ``W = 0`` is optimal at this ``beta``,
    ``max_j ||S_beta(grad0[j])||_2`` (0 when ``beta`` alone zeroes everything).

    References
    ----------
    Simon, N., Friedman, J., Hastie, T. and Tibshirani, R. "A sparse-group lasso."
    Journal of Computational and Graphical Statistics, 2013, Sec. 2 (criterion)
    and Sec. 3 (the prox as soft-thresholding then group shrinkage).
    Friedman, J., Hastie, T. and Tibshirani, R. "A note on the group lasso and a
    sparse group lasso." arXiv:1001.0736, 2010.
    """

    _param_names = ("alpha", "beta")

    def __init__(self, alpha: float = 1.0, beta: float = 0.0):
        self.alpha = check_strength(alpha, "alpha")
        self.beta = check_strength(beta, "beta")

    def _value_rows(self, W):
        return self.alpha * np.linalg.norm(W, axis=-1) + self.beta * np.sum(np.abs(W), axis=-1)

    def prox(self, W, step):
        """Soft-threshold at ``step * beta`` then group-shrink each row at ``step * alpha``."""
        V = soft_threshold(np.asarray(W, dtype=float), step * self.beta)
        return group_shrink(V, row_thresholds(step, self.alpha), axis=-1)

    def _subdiff_distance_rows(self, W, grad):
        norms = np.linalg.norm(W, axis=-1)
        safe = np.where(norms > 0, norms, 1.0)[:, None]
        # nonzero row: the group part is the fixed alpha * w / ||w||, the L1 part per entry
        shifted = grad + self.alpha * W / safe
        entry = np.where(
            W != 0,
            np.abs(shifted + self.beta * np.sign(W)),
            np.maximum(np.abs(shifted) - self.beta, 0.0),
        )
        active = np.linalg.norm(entry, axis=-1)
        # zero row: distance from -g to alpha * B_2 + beta * B_inf
        inactive = np.maximum(
            np.linalg.norm(soft_threshold(grad, self.beta), axis=-1) - self.alpha, 0.0
        )
        return np.where(norms > 0, active, inactive)

    def alpha_max(self, grad0):
        """``max_j ||soft_threshold(grad0[j], beta)||_2`` (smallest alpha at this beta)."""
        shrunk = soft_threshold(np.asarray(grad0, dtype=float), self.beta)
        return float(np.max(np.linalg.norm(shrunk, axis=-1), initial=0.0))
