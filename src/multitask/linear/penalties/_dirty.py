"""Dirty model: elementwise-sparse plus row-sparse components."""

from __future__ import annotations

import numpy as np

from ._base import Penalty, check_strength
from ._l1 import L1
from ._l1inf import L1Inf


def check_components(Wc, n_components: int = 2) -> np.ndarray:
    """Return ``Wc`` as a float array of shape ``(n_components, n_features, n_tasks)``."""
    Wc = np.asarray(Wc, dtype=float)
    if Wc.ndim != 3 or Wc.shape[0] != n_components:
        raise ValueError(
            f"a composite penalty acts on an array of shape ({n_components}, n_features, "
            f"n_tasks), got shape {Wc.shape}; the model weight is the sum over axis 0"
        )
    return Wc


class Dirty(Penalty):
    """``alpha * ||S||_1 + beta * ||B||_{1,inf}`` on ``W = S + B``.

    ``S`` (component 0) holds task-specific entries, ``B`` (component 1) features
    shared across tasks. The penalty acts on ``Wc`` of shape
    ``(2, n_features, n_tasks)``; the model weight is ``Wc.sum(axis=0)``.

    Parameters
    ----------
    alpha : float, default=1.0
        Strength of the entrywise L1 term on ``S``, ``>= 0``.
    beta : float, default=1.0
        Strength of the L1,inf term on ``B``, ``>= 0``.

    Notes
    -----
    ``W = 0`` is optimal iff ``alpha >= max|grad0|`` and ``beta >=
    max_j ||grad0[j]||_1`` (:meth:`beta_max`), since the datafit gradient is the
    same for both components. :meth:`alpha_max` is therefore ``max|grad0|`` when
    ``beta >= beta_max(grad0)`` and ``inf`` otherwise. :meth:`subdiff_distance` is
    the max over both components of their row-wise distances.

    References
    ----------
    Jalali, A., Ravikumar, P., Sanghavi, S. and Ruan, C. "A dirty model for
    multi-task learning." NIPS, 2010, Sec. 2 (the dirty-model estimator).
    """

    n_components = 2
    row_separable = False
    #: both components' proxes take a per-row step (n_features, 1)
    row_step = True
    _param_names = ("alpha", "beta")

    def __init__(self, alpha: float = 1.0, beta: float = 1.0):
        self.alpha = check_strength(alpha, "alpha")
        self.beta = check_strength(beta, "beta")

    def _parts(self):
        return L1(self.alpha), L1Inf(self.beta)

    def value(self, Wc):
        """``alpha * ||Wc[0]||_1 + beta * ||Wc[1]||_{1,inf}``."""
        Wc = check_components(Wc)
        sparse, shared = self._parts()
        return sparse.value(Wc[0]) + shared.value(Wc[1])

    def prox(self, Wc, step):
        """Separable prox: soft-thresholding on ``Wc[0]``, L1,inf prox on ``Wc[1]``."""
        Wc = check_components(Wc)
        sparse, shared = self._parts()
        return np.stack([sparse.prox(Wc[0], step), shared.prox(Wc[1], step)])

    def subdiff_distance(self, Wc, grad):
        """Max of both components' distances; ``grad`` has shape ``(n_features, n_tasks)``."""
        Wc = check_components(Wc)
        grad = np.asarray(grad, dtype=float)
        if grad.ndim == 3:  # one gradient per component (they are equal for W = S + B)
            grad_s, grad_b = grad
        else:
            grad_s = grad_b = grad
        sparse, shared = self._parts()
        return max(sparse.subdiff_distance(Wc[0], grad_s), shared.subdiff_distance(Wc[1], grad_b))

    def beta_max(self, grad0):
        """``max_j ||grad0[j]||_1``: the smallest ``beta`` allowing ``W = 0``."""
        return L1Inf().alpha_max(grad0)

    def alpha_max(self, grad0):
        """``max|grad0|`` if ``beta >= beta_max(grad0)``, else ``inf``."""
        if self.beta < self.beta_max(grad0):
            return float("inf")
        return L1().alpha_max(grad0)
