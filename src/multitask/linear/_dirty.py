"""Dirty model: ``W = S + B`` with ``alpha * ||S||_1 + beta * ||B||_1,inf``.

References
----------
Jalali, Ravikumar, Sanghavi & Ruan, "A dirty model for multi-task
learning", NIPS 2010, eq. (3).
"""

from multitask.linear._base import (
    AlphaBetaModel,
    MultiTaskClassifierMixin,
    MultiTaskRegressorMixin,
    fill_doc,
)

__all__ = ["DirtyModelClassifier", "DirtyModelRegressor"]


class _Dirty(AlphaBetaModel):
    def _make_penalty(self, data):
        from multitask.linear.penalties import Dirty

        return Dirty(self.alpha, self.beta), None


@fill_doc
class DirtyModelRegressor(MultiTaskRegressorMixin, _Dirty):
    """Squared loss on ``W = S + B`` + ``alpha ||S||_1 + beta ||B||_1,inf``.

    ``S`` captures task-specific features, ``B`` features shared by all tasks;
    ``coef_components_[0]`` is ``S.T`` and ``coef_components_[1]`` is ``B.T``.

    Parameters
    ----------
    alpha : float, default=0.1
        Strength of the element-wise L1 penalty on ``S`` (>= 0).
    beta : float, default=0.1
        Strength of the L1,inf penalty on ``B`` (>= 0).
    %(common)s

    %(fitted)s

    References
    ----------
    Jalali, Ravikumar, Sanghavi & Ruan, NIPS 2010, eq. (3).

    Examples
    --------
    Three tasks of 40 rows each, the task id in column 0 of ``X``. Features 0 and 1
    have the same weights in every task; feature 2 matters in task 0 only.

    >>> import numpy as np
    >>> from multitask.linear import DirtyModelRegressor
    >>> rng = np.random.default_rng(0)
    >>> task = np.repeat([0, 1, 2], 40)
    >>> features = rng.standard_normal((120, 5))
    >>> W = np.zeros((5, 3))  # (n_features, n_tasks)
    >>> W[0], W[1], W[2, 0] = 1.5, -1.0, 2.0
    >>> y = (features * W.T[task]).sum(axis=1) + 0.1 * rng.standard_normal(120)
    >>> X = np.column_stack([task, features])
    >>> est = DirtyModelRegressor(alpha=0.15, beta=0.25, task_col=0).fit(X, y)
    >>> S, B = est.coef_components_  # coef_ == S + B, each (n_tasks, n_features)
    >>> np.flatnonzero(B.any(axis=0))  # features shared by all tasks
    array([0, 1])
    >>> np.argwhere(S)  # (task, feature) pairs of the task-specific part
    array([[0, 2]])
    >>> round(est.score(X, y), 2)
    0.99
    """


@fill_doc
class DirtyModelClassifier(MultiTaskClassifierMixin, _Dirty):
    """Logistic loss on ``W = S + B`` + ``alpha ||S||_1 + beta ||B||_1,inf``.

    Parameters
    ----------
    alpha : float, default=0.1
        Strength of the element-wise L1 penalty on ``S`` (>= 0).
    beta : float, default=0.1
        Strength of the L1,inf penalty on ``B`` (>= 0).
    %(common)s

    %(fitted)s
    classes_ : ndarray of shape (2,)
        The two labels; ``classes_[1]`` is the positive class.

    References
    ----------
    Jalali, Ravikumar, Sanghavi & Ruan, NIPS 2010, eq. (3).

    Examples
    --------
    Three tasks of 60 rows each, the task id in column 0 of ``X``. The label depends on
    features 0 and 1 in every task, and on feature 2 in task 0 only.

    >>> import numpy as np
    >>> from multitask.linear import DirtyModelClassifier
    >>> rng = np.random.default_rng(0)
    >>> task = np.repeat([0, 1, 2], 60)
    >>> features = rng.standard_normal((180, 5))
    >>> W = np.zeros((5, 3))  # (n_features, n_tasks)
    >>> W[0], W[1], W[2, 0] = 2.0, -2.0, 3.0
    >>> y = ((features * W.T[task]).sum(axis=1) + 0.5 * rng.standard_normal(180) > 0).astype(int)
    >>> X = np.column_stack([task, features])
    >>> clf = DirtyModelClassifier(alpha=0.1, beta=0.1, task_col=0).fit(X, y)
    >>> S, B = clf.coef_components_  # coef_ == S + B, each (n_tasks, n_features)
    >>> np.flatnonzero(clf.coef_.any(axis=0))  # features 3 and 4 are dropped
    array([0, 1, 2])
    >>> np.argwhere(S)  # (task, feature) pairs of the task-specific part
    array([[0, 2]])
    >>> round(clf.score(X, y), 2)  # accuracy
    0.94
    """
