"""Clustered multi-task learning, convex relaxation (MALSAR ``Least_CMTL``).

Problem, jointly in ``W`` (n_features, n_tasks) and ``M`` (n_tasks, n_tasks)::

    min  loss(W) + alpha * eta (1 + eta) tr(W (eta I + M)^-1 W^T)
    s.t. 0 <= M <= I, tr(M) = n_clusters,   eta = beta / alpha

Solved by FISTA on ``W`` alone, ``M`` being minimised in closed form from the SVD
of ``W`` at every step (:func:`multitask.linear.solvers.clustered_mtl`; on badly
scaled features the step takes one curvature per feature row, docs/solvers.md, "Badly
scaled features"); with
``warm_start=True`` (as in ``MultiTaskCV``'s path) each fit starts from the last ``W``.

References
----------
Zhou, Chen & Ye, "Clustered multi-task learning via alternating
structure optimization", NIPS 2011, eq. (9) (the convex relaxation cMTL).
"""

import warnings

import numpy as np

from multitask.linear._base import (
    MultiTaskClassifierMixin,
    MultiTaskLinearModel,
    MultiTaskRegressorMixin,
    fill_doc,
)
from multitask.linear._task_structure import TaskSubsetWarning

__all__ = ["ClusteredMTLClassifier", "ClusteredMTLRegressor"]


class _Clustered(MultiTaskLinearModel):
    _strengths = ("alpha", "beta")

    def __init__(
        self,
        alpha=1.0,
        *,
        beta=1.0,
        n_clusters=2,
        task_col=None,
        fit_intercept=True,
        tol=1e-8,
        max_iter=20000,
        warm_start=False,
        unseen_task="mean",
    ):
        self.alpha = alpha
        self.beta = beta
        self.n_clusters = n_clusters
        self.task_col = task_col
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.unseen_task = unseen_task

    def _make_penalty(self, data):
        return None, None

    def _check_structure(self, data):
        super()._check_structure(data)
        if self.alpha <= 0 or self.beta <= 0:
            raise ValueError(
                f"alpha={self.alpha!r} and beta={self.beta!r} must both be > 0 for "
                "clustered MTL (eta = beta / alpha)."
            )
        k = self.n_clusters
        # with task_col the tasks come from the rows, and a split holding out whole tasks
        # (GroupKFold) may leave fewer than n_clusters: k is then capped, with a warning
        capped = self.task_col is not None and isinstance(k, (int, np.integer)) and k >= 1
        if capped and k > data.n_tasks:
            warnings.warn(
                f"n_clusters={k!r} exceeds the {data.n_tasks} fitted tasks "
                f"{data.tasks[:10].tolist()}; fitting {data.n_tasks} clusters (one per task, "
                "as when a split holds out whole tasks).",
                TaskSubsetWarning,
                stacklevel=3,
            )
        elif not isinstance(k, (int, np.integer)) or not 1 <= k <= data.n_tasks:
            raise ValueError(
                f"n_clusters={k!r} must be an integer in [1, n_tasks={data.n_tasks}]; "
                "clustered MTL needs at least as many tasks as clusters (with one "
                "task, pass task_col naming the task column or a 2-D y)."
            )

    def _solve(self, datafit, penalty, smooth, W0, b0):
        from multitask.linear.solvers import clustered_mtl

        return clustered_mtl(
            datafit,
            self.alpha,
            self.beta,
            min(int(self.n_clusters), datafit.n_tasks),  # capped: _check_structure
            W0=W0,
            b0=b0,
            fit_intercept=self.fit_intercept,
            tol=self.tol,
            max_iter=self.max_iter,
        )

    def _store_result(self, result, data):
        super()._store_result(result, data)
        M = getattr(result, "M", None)
        if M is not None:
            self.task_relation_ = np.asarray(M)


@fill_doc
class ClusteredMTLRegressor(MultiTaskRegressorMixin, _Clustered):
    """Squared loss + convex clustered-MTL penalty (tasks grouped in ``n_clusters``).

    Parameters
    ----------
    alpha : float, default=1.0
        ``rho1`` of MALSAR: strength of the cluster structure (> 0).
    beta : float, default=1.0
        ``rho2`` of MALSAR: ridge-like strength, ``eta = beta / alpha`` (> 0).
    n_clusters : int, default=2
        Number of task clusters ``k`` (1 <= k <= n_tasks). With ``task_col``, a larger
        ``k`` (a split holding out whole tasks, e.g. ``GroupKFold``) is capped at the
        number of fitted tasks, with a ``UserWarning``; with ``task_col=None`` it raises.
    %(common)s

    %(fitted)s
    task_relation_ : ndarray of shape (n_tasks, n_tasks)
        The relaxed cluster matrix ``M`` at the solution.

    References
    ----------
    Zhou, Chen & Ye, NIPS 2011, eq. (9); MALSAR 1.1 manual, Sec. 3.8 (``Least_CMTL``).

    Examples
    --------
    Four tasks of 20 rows each, the task id in column 0 of ``X``: tasks 0 and 1 share
    one model, tasks 2 and 3 another.

    >>> import numpy as np
    >>> from multitask.linear import ClusteredMTLRegressor
    >>> rng = np.random.default_rng(0)
    >>> task = np.repeat([0, 1, 2, 3], 20)
    >>> features = rng.standard_normal((80, 4))
    >>> w_a, w_b = rng.standard_normal((2, 4))
    >>> W = np.column_stack([w_a, w_a, w_b, w_b])  # (n_features, n_tasks)
    >>> y = (features * W.T[task]).sum(axis=1) + 0.1 * rng.standard_normal(80)
    >>> X = np.column_stack([task, features])
    >>> est = ClusteredMTLRegressor(alpha=1.0, beta=0.1, n_clusters=2, task_col=0).fit(X, y)
    >>> est.coef_.shape
    (4, 4)
    >>> (est.task_relation_ > 0.25).astype(int)  # M is about 1/2 within a cluster, 0 across
    array([[1, 1, 0, 0],
           [1, 1, 0, 0],
           [0, 0, 1, 1],
           [0, 0, 1, 1]])
    >>> round(est.score(X, y), 2)
    0.97
    """


@fill_doc
class ClusteredMTLClassifier(MultiTaskClassifierMixin, _Clustered):
    """Logistic loss + convex clustered-MTL penalty (binary labels).

    Parameters
    ----------
    alpha : float, default=1.0
        ``rho1`` of MALSAR: strength of the cluster structure (> 0).
    beta : float, default=1.0
        ``rho2`` of MALSAR: ridge-like strength, ``eta = beta / alpha`` (> 0).
    n_clusters : int, default=2
        Number of task clusters ``k`` (1 <= k <= n_tasks). With ``task_col``, a larger
        ``k`` (a split holding out whole tasks, e.g. ``GroupKFold``) is capped at the
        number of fitted tasks, with a ``UserWarning``; with ``task_col=None`` it raises.
    %(common)s

    %(fitted)s
    classes_ : ndarray of shape (2,)
        The two labels; ``classes_[1]`` is the positive class.
    task_relation_ : ndarray of shape (n_tasks, n_tasks)
        The relaxed cluster matrix ``M`` at the solution.

    References
    ----------
    Zhou, Chen & Ye, NIPS 2011, eq. (9); MALSAR 1.1 manual, Sec. 3.8 (``Least_CMTL``).

    Examples
    --------
    Four tasks of 40 rows each, the task id in column 0 of ``X``: tasks 0 and 1 share
    one model, tasks 2 and 3 another.

    >>> import numpy as np
    >>> from multitask.linear import ClusteredMTLClassifier
    >>> rng = np.random.default_rng(0)
    >>> task = np.repeat([0, 1, 2, 3], 40)
    >>> features = rng.standard_normal((160, 4))
    >>> w_a, w_b = 2 * rng.standard_normal((2, 4))
    >>> W = np.column_stack([w_a, w_a, w_b, w_b])  # (n_features, n_tasks)
    >>> y = ((features * W.T[task]).sum(axis=1) > 0).astype(int)
    >>> X = np.column_stack([task, features])
    >>> clf = ClusteredMTLClassifier(alpha=0.1, beta=0.01, n_clusters=2, task_col=0).fit(X, y)
    >>> (clf.task_relation_ > 0.25).astype(int)  # M is about 1/2 within a cluster, 0 across
    array([[1, 1, 0, 0],
           [1, 1, 0, 0],
           [0, 0, 1, 1],
           [0, 0, 1, 1]])
    >>> round(clf.score(X, y), 2)  # accuracy
    0.99
    """
