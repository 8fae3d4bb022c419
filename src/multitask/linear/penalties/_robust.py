"""Robust multi-task learning: low-rank plus column-sparse (outlier task) components."""

from __future__ import annotations

import numpy as np

from ._base import Penalty, check_strength, group_shrink
from ._dirty import check_components
from ._trace import nuclear_subdiff_distance, svt


def _column_norms(S):
    return np.linalg.norm(S, axis=0)


def _column_group_distance(S, grad, beta):
    """Frobenius distance from ``-grad`` to ``beta * ∂ sum_t ||S[:, t]||_2``."""
    norms = _column_norms(S)
    safe = np.where(norms > 0, norms, 1.0)
    active = np.linalg.norm(grad + beta * S / safe, axis=0)
    inactive = np.maximum(np.linalg.norm(grad, axis=0) - beta, 0.0)
    return float(np.linalg.norm(np.where(norms > 0, active, inactive)))


class RobustMTL(Penalty):
    """``alpha * ||L||_* + beta * sum_t ||S[:, t]||_2`` on ``W = L + S``.

    ``L`` (component 0) is low rank and captures the tasks that share a subspace;
    ``S`` (component 1) is column-sparse (``||S^T||_{1,2}``: one group per task)
    and absorbs outlier tasks. The penalty acts on ``Wc`` of shape
    ``(2, n_features, n_tasks)``; the model weight is ``Wc.sum(axis=0)``.

    Parameters
    ----------
    alpha : float, default=1.0
        Strength of the trace norm of ``L``, ``>= 0``.
    beta : float, default=1.0
        Strength of the per-task group norm of ``S``, ``>= 0``.

    Notes
    -----
    ``W = 0`` is optimal iff ``alpha >= ||grad0||_2`` (spectral) and ``beta >=
    max_t ||grad0[:, t]||_2`` (:meth:`beta_max`); :meth:`alpha_max` is ``inf``
    when ``beta`` is below that. :meth:`subdiff_distance` is the max of the two
    components' Frobenius distances.

    References
    ----------
    Chen, J., Zhou, J. and Ye, J. "Integrating low-rank and group-sparse structures
    for robust multi-task learning." KDD, 2011, Sec. 3 (the RMTL formulation).
    """

    n_components = 2
    row_separable = False
    _param_names = ("alpha", "beta")

    def __init__(self, alpha: float = 1.0, beta: float = 1.0):
        self.alpha = check_strength(alpha, "alpha")
        self.beta = check_strength(beta, "beta")

    def value(self, Wc):
        """``alpha * ||Wc[0]||_* + beta * sum_t ||Wc[1][:, t]||_2``."""
        Wc = check_components(Wc)
        nuclear = float(np.sum(np.linalg.svd(Wc[0], compute_uv=False)))
        return self.alpha * nuclear + self.beta * float(np.sum(_column_norms(Wc[1])))

    def prox(self, Wc, step):
        """Separable prox: singular value thresholding on ``L``, column shrinkage on ``S``."""
        Wc = check_components(Wc)
        low_rank = svt(Wc[0], step * self.alpha)
        column_sparse = group_shrink(Wc[1], step * self.beta, axis=0)
        return np.stack([low_rank, column_sparse])

    def subdiff_distance(self, Wc, grad):
        """Max of both components' Frobenius distances."""
        Wc = check_components(Wc)
        grad = np.asarray(grad, dtype=float)
        grad_l, grad_s = grad if grad.ndim == 3 else (grad, grad)
        return max(
            nuclear_subdiff_distance(Wc[0], grad_l, self.alpha),
            _column_group_distance(Wc[1], grad_s, self.beta),
        )

    def beta_max(self, grad0):
        """``max_t ||grad0[:, t]||_2``: the smallest ``beta`` allowing ``W = 0``."""
        return float(np.max(_column_norms(np.asarray(grad0, dtype=float)), initial=0.0))

    def alpha_max(self, grad0):
        """``||grad0||_2`` (spectral) if ``beta >= beta_max(grad0)``, else ``inf``."""
        if self.beta < self.beta_max(grad0):
            return float("inf")
        return float(np.linalg.norm(grad0, ord=2)) if np.size(grad0) else 0.0
