"""L1,inf penalty: joint sparsity through the largest coefficient of each feature."""

from __future__ import annotations

import numpy as np

from ._base import RowSeparablePenalty, check_strength, row_thresholds
from ._projections import l1_ball_threshold, simplex_threshold

#: entries within this relative distance of a row's max |w| count as ties
TIE_RTOL = 1e-9


class L1Inf(RowSeparablePenalty):
    """Row-max penalty ``alpha * sum_j max_t |W[j, t]|``.

    Like :class:`L21` it selects features jointly, but once a feature is in, the
    tasks pay nothing for using it up to the largest coefficient, which favours
    rows of equal magnitudes.

    Parameters
    ----------
    alpha : float, default=1.0
        Regularisation strength, ``>= 0``.

    Notes
    -----
    The prox follows from Moreau's decomposition, ``prox(v) = v -
    proj_{step*alpha B_1}(v)`` per row, and the l1-ball projection is the
    sort-based one of Duchi et al. (2008); written out, ``prox(v) = sign(v) *
    min(|v|, tau)`` with ``tau`` the projection's threshold, so tied maxima are
    exactly equal. In :meth:`subdiff_distance` entries within ``TIE_RTOL``
    (relative) of the row maximum count as maximal.

    References
    ----------
    Turlach, B. A., Venables, W. N. and Wright, S. J. "Simultaneous variable
    selection." Technometrics, 2005, Sec. 2.
    Quattoni, A., Carreras, X., Collins, M. and Darrell, T. "An efficient projection
    for l1,inf regularization." ICML, 2009, Sec. 2.
    Duchi, J., Shalev-Shwartz, S., Singer, Y. and Chandra, T. "Efficient projections
    onto the l1-ball for learning in high dimensions." ICML, 2008, Sec. 3-4
    (sort-based projection onto the simplex and the l1 ball).
    """

    def __init__(self, alpha: float = 1.0):
        self.alpha = check_strength(alpha, "alpha")

    def _value_rows(self, W):
        return self.alpha * np.max(np.abs(W), axis=-1, initial=0.0)

    def prox(self, W, step):
        """Row-wise ``v - proj_{step*alpha B_1}(v)``; ``W`` of shape ``(n_features, n_tasks)``."""
        W = np.atleast_2d(np.asarray(W, dtype=float))
        tau = l1_ball_threshold(W, row_thresholds(step, self.alpha))
        return np.sign(W) * np.minimum(np.abs(W), tau[:, None])

    def _subdiff_distance_rows(self, W, grad):
        # W[j] = 0: distance from -g to alpha * B_1 is |g| clipped at the projection threshold
        tau = l1_ball_threshold(grad, self.alpha)
        at_zero = np.linalg.norm(np.minimum(np.abs(grad), tau[:, None]), axis=-1)
        # W[j] != 0: the subdifferential is alpha * conv{sign(w_t) e_t : |w_t| maximal},
        # so -g must vanish off the maxima and, signed, lie on the alpha-simplex on them.
        absW = np.abs(W)
        top = np.max(absW, axis=-1, keepdims=True)
        tied = (absW >= top * (1.0 - TIE_RTOL)) & (top > 0)
        z = -grad * np.sign(W)
        # entries off the maxima are pushed below any possible simplex shift
        low = np.min(np.where(tied, z, np.inf), axis=-1, keepdims=True) - self.alpha - 1.0
        low = np.where(np.isfinite(low), low, 0.0)
        z_on = np.where(tied, z, low)
        theta = simplex_threshold(z_on, self.alpha) if self.alpha > 0 else None
        if theta is None:
            resid_on = z
        else:
            resid_on = z - np.maximum(z - theta[:, None], 0.0)
        resid = np.where(tied, resid_on, grad)
        return np.where(top[:, 0] > 0, np.linalg.norm(resid, axis=-1), at_zero)

    def alpha_max(self, grad0):
        """``max_j ||grad0[j, :]||_1``."""
        return float(np.max(np.sum(np.abs(grad0), axis=-1), initial=0.0))

    def dual_norm(self, G):
        """Dual norm ``Omega^*(G)`` of the unit-strength norm (the penalty is ``alpha * Omega``).

        Equal to :meth:`alpha_max` (``W = 0`` is optimal iff ``Omega^*(grad0) <= alpha``);
        used by solvers to build a feasible dual point for the duality gap.
        """
        return self.alpha_max(G)
