"""Per-task centring of dense features before a fit with intercepts.

With one unpenalised intercept per task the objective is unchanged when every task's
features are shifted by a constant vector ``mu_t`` (``x.w_t + b_t = (x - mu_t).w_t +
b'_t`` with ``b'_t = b_t + mu_t.w_t``), and the penalties act on ``W`` only. Fitting
on centred features is what keeps the problem well conditioned when the features have
a large mean: uncentred, the logistic loss couples ``w_t`` and ``b_t`` through
``mu_t`` (Hessian condition number of order ``||mu_t||^2 / var``), so FISTA needed
more than 20,000 iterations at a mean of 100, and the squared loss's centred Gram
matrix ``G_t - mu_t mu_t^T`` lost the digits of ``||mu_t||^2`` to cancellation.

Sparse features are not centred (that would densify them); the profiled intercept of
the squared loss handles them exactly, in the Gram form up to that cancellation.

References
----------
Hastie, Tibshirani & Friedman, "The Elements of Statistical Learning", 2nd ed.,
Springer 2009, Sec. 3.4.1 (centring the inputs separates the unpenalised intercept,
eq. (3.41)).
"""

from dataclasses import replace

import numpy as np
import scipy.sparse as sp

__all__ = ["center_features", "uncenter_intercept"]


#: the squared loss on a shared design is centred only when a feature's mean square
#: exceeds its variance this many times (Gram cancellation would cost 4+ digits)
_DOMINANT_MEAN = 1e4


def center_features(data, loss):
    """Dense features minus their (weighted) mean within each task.

    Parameters
    ----------
    data : FitData
    loss : {"squared", "logistic"}
        The squared loss on a shared design profiles its intercept exactly, so its
        features are centred (a copy of ``X``) only when a mean dominates the spread.

    Returns
    -------
    data : FitData
        With centred ``X`` (a new array), or ``data`` itself when nothing is centred.
    mu : ndarray of shape (n_features, n_tasks) or None
        Mean subtracted from each task's rows; None when nothing was centred.
    """
    X = data.X
    if sp.issparse(X):
        return data, None
    n = X.shape[0]
    w = np.ones(n) if data.sample_weight is None else data.sample_weight
    if data.shared:
        if loss == "squared" and not _mean_dominates(X):
            return data, None
        mean = (w @ X) / w.sum()
        mu = np.repeat(mean[:, None], data.n_tasks, axis=1)
        return replace(data, X=X - mean), mu
    rows = sp.csr_matrix((w, (data.task_idx, np.arange(n))), shape=(data.n_tasks, n))
    totals = np.bincount(data.task_idx, weights=w, minlength=data.n_tasks)
    means = np.asarray(rows @ X) / totals[:, None]  # (n_tasks, n_features)
    return replace(data, X=X - means[data.task_idx]), np.ascontiguousarray(means.T)


def _mean_dominates(X):
    """True when some column has ``mean^2 > _DOMINANT_MEAN * variance``.

    An order of magnitude is enough, so at most about 256 evenly spaced rows are read.
    """
    rows = X[:: max(1, X.shape[0] // 256)]
    mean = rows.mean(axis=0)
    var = rows.var(axis=0)
    return bool(np.any(mean * mean > _DOMINANT_MEAN * var))


def uncenter_intercept(intercept, W, mu):
    """Intercepts of the original features from those of the centred ones.

    Parameters
    ----------
    intercept : ndarray of shape (n_tasks,)
        ``b'_t`` fitted on centred features.
    W : ndarray of shape (n_features, n_tasks)
        Model weights (components summed).
    mu : ndarray of shape (n_features, n_tasks)

    Returns
    -------
    ndarray of shape (n_tasks,)
        ``b_t = b'_t - mu_t . w_t``.
    """
    return np.asarray(intercept, dtype=float).reshape(-1) - np.einsum("jt,jt->t", mu, W)
