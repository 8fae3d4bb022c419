"""L2,1 penalty: group lasso across tasks (joint feature selection)."""

from __future__ import annotations

import numpy as np

from ._base import RowSeparablePenalty, check_strength, group_shrink, row_thresholds


class L21(RowSeparablePenalty):
    """Row-group penalty ``alpha * sum_j ||W[j, :]||_2``.

    A feature is used by all tasks or by none: the rows of ``W`` are the groups.
    With the squared datafit on a shared design this is scikit-learn's
    ``MultiTaskLasso``.

    Parameters
    ----------
    alpha : float, default=1.0
        Regularisation strength, ``>= 0``.

    References
    ----------
    Obozinski, G., Taskar, B. and Jordan, M. I. "Joint covariate selection and joint
    subspace selection for multiple classification problems." Statistics and
    Computing, 2010, Sec. 2 (the l1/l2-regularised problem).
    Argyriou, A., Evgeniou, T. and Pontil, M. "Convex multi-task feature learning."
    Machine Learning, 2008, Sec. 2 (the (2,1)-norm regulariser).
    """

    def __init__(self, alpha: float = 1.0):
        self.alpha = check_strength(alpha, "alpha")

    def _value_rows(self, W):
        return self.alpha * _row_norms(W)

    def prox(self, W, step):
        """Row-wise group soft-thresholding ``w_j max(0, 1 - t / ||w_j||_2)``, ``t = step * alpha``.

        :func:`group_shrink` (exactly zero where ``||w_j|| <= t``) in six numpy calls and
        no ``errstate`` context: a FISTA iteration on thousands of small tasks costs a few
        such calls, so each one counts. The same with one threshold per row (a per-row
        ``step`` of shape ``(n_features, 1)``), all positive.
        """
        W = np.asarray(W, dtype=float)
        t = row_thresholds(step, self.alpha)  # one per row for a per-row step (p, 1)
        positive = t > 0 if isinstance(t, float) else t.size and t.min() > 0  # np.float64: float
        if not positive:
            return group_shrink(W, t, axis=-1)
        norms = _row_norms(W)
        return W * (1.0 - t / np.maximum(norms, t))[..., None]

    def _subdiff_distance_rows(self, W, grad):
        norms = np.linalg.norm(W, axis=-1)
        safe = np.where(norms > 0, norms, 1.0)[:, None]
        active = np.linalg.norm(grad + self.alpha * W / safe, axis=-1)
        inactive = np.maximum(np.linalg.norm(grad, axis=-1) - self.alpha, 0.0)
        return np.where(norms > 0, active, inactive)

    def alpha_max(self, grad0):
        """``max_j ||grad0[j, :]||_2``."""
        return float(np.max(_row_norms(np.asarray(grad0, dtype=float)), initial=0.0))

    def dual_norm(self, G):
        """Dual norm ``Omega^*(G)`` of the unit-strength norm (the penalty is ``alpha * Omega``).

        Equal to :meth:`alpha_max` (``W = 0`` is optimal iff ``Omega^*(grad0) <= alpha``);
        used by solvers to build a feasible dual point for the duality gap.
        """
        return self.alpha_max(G)


#: rows at least this long are summed by one BLAS dot each (``matmul`` of row stacks)
_LONG_ROW = 64


def _row_norms(W):
    """``||W[..., j, :]||_2`` in one pass, by the fastest route for the row length.

    Measured on (5, 2410): 6 us by ``matmul`` against 11 us for ``np.linalg.norm``'s
    square-and-sum and 12 us for ``einsum``; on short rows (1000, 10) ``einsum`` is
    fastest (15 us, against 22 and 38 us).
    """
    if W.ndim == 2 and W.shape[1] >= _LONG_ROW:
        return np.sqrt(np.matmul(W[:, None, :], W[:, :, None])[:, 0, 0])
    return np.sqrt(np.einsum("...j,...j->...", W, W))
