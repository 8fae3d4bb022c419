"""Single-task baselines: one ridge / logistic model per task, no coupling.

References
----------
Hoerl & Kennard, "Ridge regression: biased estimation for nonorthogonal
problems", Technometrics 12(1), 1970, eq. (2.1) -- solved once per task.
"""

from dataclasses import replace

import numpy as np
import scipy.sparse as sp

from multitask.linear._base import (
    MultiTaskClassifierMixin,
    MultiTaskLinearModel,
    MultiTaskRegressorMixin,
    fill_doc,
)
from multitask.linear._validation import FitData

__all__ = ["IndependentLogistic", "IndependentRidge", "PooledRidge"]


class _Independent(MultiTaskLinearModel):
    def __init__(
        self,
        alpha=0.01,
        *,
        task_col=None,
        fit_intercept=True,
        tol=1e-8,
        max_iter=20000,
        warm_start=False,
        unseen_task="mean",
    ):
        self.alpha = alpha
        self.task_col = task_col
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.unseen_task = unseen_task

    def _make_penalty(self, data):
        from multitask.linear.penalties import Ridge

        return None, [Ridge(self.alpha)]


@fill_doc
class IndependentRidge(MultiTaskRegressorMixin, _Independent):
    """One ridge regression per task: ``1/(2 n_t)||y_t - X_t w_t - b_t||^2 + alpha ||w_t||^2``.

    Parameters
    ----------
    alpha : float, default=0.01
        Ridge strength (>= 0), same for every task.
    %(common)s

    %(fitted)s

    References
    ----------
    Hoerl & Kennard, Technometrics 12(1), 1970, eq. (2.1).
    """


@fill_doc
class IndependentLogistic(MultiTaskClassifierMixin, _Independent):
    """One L2-regularised logistic regression per task: logistic loss + ``alpha ||w_t||^2``.

    Parameters
    ----------
    alpha : float, default=0.01
        Ridge strength (>= 0), same for every task.
    %(common)s

    %(fitted)s
    classes_ : ndarray of shape (2,)
        The two labels; ``classes_[1]`` is the positive class.

    References
    ----------
    Hoerl & Kennard, Technometrics 12(1), 1970, eq. (2.1).
    """


@fill_doc
class PooledRidge(MultiTaskRegressorMixin, _Independent):
    """One ridge model for all tasks (the pooled baseline of the School table).

    Minimises ``1/(2 n) ||y - X w - b||^2 + alpha ||w||^2`` over all rows,
    ignoring the task id; ``coef_`` repeats the single model for every task.

    Parameters
    ----------
    alpha : float, default=0.01
        Ridge strength (>= 0).
    %(common)s

    %(fitted)s

    References
    ----------
    Bakker & Heskes, "Task clustering and gating for Bayesian multitask
    learning", JMLR 4, 2003, Sec. 5 (the pooled baseline on School).
    """

    def _fit_data(self, data):
        n_tasks = data.n_tasks
        X, y, sw = data.X, data.y, data.sample_weight
        if data.shared:
            X = sp.vstack([X] * n_tasks) if sp.issparse(X) else np.vstack([X] * n_tasks)
            y = data.y.T.ravel()
            sw = None if sw is None else np.tile(sw, n_tasks)
        pooled = FitData(X, y, np.zeros(len(y), np.intp), data.tasks[:1], sw, False)
        result = super()._fit_data(pooled)
        W = np.repeat(np.asarray(result.W), n_tasks, axis=1)
        b = np.repeat(np.asarray(result.intercept).reshape(-1), n_tasks)
        return replace(result, W=W, intercept=b)

    def _warm_start_point(self, penalty, n_features, n_tasks):
        return None, None
