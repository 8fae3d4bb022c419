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

    Examples
    --------
    Two tasks of 30 rows each, the task id in column 0 of ``X``, with unrelated models.

    >>> import numpy as np
    >>> from multitask.linear import IndependentRidge
    >>> rng = np.random.default_rng(0)
    >>> task = np.repeat([0, 1], 30)
    >>> features = rng.standard_normal((60, 3))
    >>> W = np.array([[1.0, -1.0], [2.0, 0.5], [0.0, 1.0]])  # (n_features, n_tasks)
    >>> y = (features * W.T[task]).sum(axis=1) + 0.1 * rng.standard_normal(60)
    >>> X = np.column_stack([task, features])
    >>> est = IndependentRidge(alpha=1e-3, task_col=0).fit(X, y)
    >>> est.coef_.round(1)  # each task's own least-squares model, nearly
    array([[ 1. ,  2. ,  0. ],
           [-1. ,  0.5,  1. ]])
    >>> round(est.score(X, y), 2)
    1.0
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

    Examples
    --------
    Two tasks of 50 rows each, the task id in column 0 of ``X``; feature 0 pushes the
    label one way in task 0 and the other way in task 1.

    >>> import numpy as np
    >>> from multitask.linear import IndependentLogistic
    >>> rng = np.random.default_rng(0)
    >>> task = np.repeat([0, 1], 50)
    >>> features = rng.standard_normal((100, 2))
    >>> W = np.array([[2.0, -2.0], [2.0, 2.0]])  # (n_features, n_tasks)
    >>> signal = (features * W.T[task]).sum(axis=1) + 0.5 * rng.standard_normal(100)
    >>> y = np.where(signal > 0, "spam", "ham")
    >>> X = np.column_stack([task, features])
    >>> clf = IndependentLogistic(task_col=0).fit(X, y)
    >>> clf.classes_  # classes_[1] is the positive class
    array(['ham', 'spam'], dtype='<U4')
    >>> np.sign(clf.coef_).astype(int)  # (n_tasks, n_features)
    array([[ 1,  1],
           [-1,  1]])
    >>> round(clf.score(X, y), 2)  # accuracy
    0.95
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

    Examples
    --------
    The data of the :class:`IndependentRidge` example: two tasks whose models differ, so
    one pooled model fits them poorly.

    >>> import numpy as np
    >>> from multitask.linear import PooledRidge
    >>> rng = np.random.default_rng(0)
    >>> task = np.repeat([0, 1], 30)
    >>> features = rng.standard_normal((60, 3))
    >>> W = np.array([[1.0, -1.0], [2.0, 0.5], [0.0, 1.0]])  # (n_features, n_tasks)
    >>> y = (features * W.T[task]).sum(axis=1) + 0.1 * rng.standard_normal(60)
    >>> X = np.column_stack([task, features])
    >>> est = PooledRidge(alpha=1e-3, task_col=0).fit(X, y)
    >>> est.coef_.round(1)  # one model, repeated for every task
    array([[0.1, 1.5, 0.6],
           [0.1, 1.5, 0.6]])
    >>> round(est.score(X, y), 2)
    0.5
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
