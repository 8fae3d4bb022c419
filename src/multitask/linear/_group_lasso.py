"""Multi-task group lasso: an L2,1 penalty on the rows of ``W``.

References
----------
Obozinski, Taskar & Jordan, "Joint covariate selection and joint subspace
selection for multiple classification problems", Statistics and Computing 20,
2010, eq. (2). Argyriou, Evgeniou & Pontil, "Convex multi-task feature
learning", Machine Learning 73, 2008, eq. (2.2) with the L2,1 norm.
"""

from multitask.linear._base import (
    AlphaModel,
    MultiTaskClassifierMixin,
    MultiTaskRegressorMixin,
    fill_doc,
)

__all__ = ["GroupLassoClassifier", "GroupLassoRegressor"]


class _GroupLasso(AlphaModel):
    def _make_penalty(self, data):
        from multitask.linear.penalties import L21

        return L21(self.alpha), None


@fill_doc
class GroupLassoRegressor(MultiTaskRegressorMixin, _GroupLasso):
    """Multi-task lasso: squared loss + ``alpha * sum_j ||W[j, :]||_2``.

    Features are selected jointly for all tasks. With ``task_col=None`` and a
    2-D ``y`` this is exactly :class:`sklearn.linear_model.MultiTaskLasso`.

    Parameters
    ----------
    alpha : float, default=0.1
        Strength of the L2,1 penalty (>= 0).
    %(common)s

    %(fitted)s

    References
    ----------
    Obozinski, Taskar & Jordan, Statistics and Computing 20, 2010, eq. (2).

    Examples
    --------
    Three tasks of 20 rows each, in long format: the task id is column 0 of ``X``
    (``task_col=0``). Only features 0 and 1 matter, in every task.

    >>> import numpy as np
    >>> from multitask.linear import GroupLassoRegressor
    >>> rng = np.random.default_rng(0)
    >>> task = np.repeat([0, 1, 2], 20)
    >>> features = rng.standard_normal((60, 5))
    >>> W = np.zeros((5, 3))  # (n_features, n_tasks)
    >>> W[:2] = rng.uniform(1, 2, size=(2, 3))
    >>> y = (features * W.T[task]).sum(axis=1) + 0.1 * rng.standard_normal(60)
    >>> X = np.column_stack([task, features])
    >>> est = GroupLassoRegressor(alpha=0.2, task_col=0).fit(X, y)
    >>> est.coef_.shape  # (n_tasks, n_features), task column excluded
    (3, 5)
    >>> np.flatnonzero(est.coef_.any(axis=0))  # the features kept, by all tasks at once
    array([0, 1])
    >>> round(est.score(X, y), 2)  # R^2, each row predicted by its task's model
    0.99
    """


@fill_doc
class GroupLassoClassifier(MultiTaskClassifierMixin, _GroupLasso):
    """Multi-task L2,1-regularised logistic regression (binary labels).

    Parameters
    ----------
    alpha : float, default=0.1
        Strength of the L2,1 penalty (>= 0).
    %(common)s

    %(fitted)s
    classes_ : ndarray of shape (2,)
        The two labels; ``classes_[1]`` is the positive class.

    References
    ----------
    Obozinski, Taskar & Jordan, Statistics and Computing 20, 2010, eq. (2).

    Examples
    --------
    Three tasks of 30 rows each, the task id in column 0 of ``X``; any two labels
    will do. The label depends on features 0 and 1 only.

    >>> import numpy as np
    >>> from multitask.linear import GroupLassoClassifier
    >>> rng = np.random.default_rng(0)
    >>> task = np.repeat([0, 1, 2], 30)
    >>> features = rng.standard_normal((90, 4))
    >>> signal = features[:, 0] - features[:, 1] + 0.3 * rng.standard_normal(90)
    >>> y = np.where(signal > 0, "yes", "no")
    >>> X = np.column_stack([task, features])
    >>> clf = GroupLassoClassifier(alpha=0.1, task_col=0).fit(X, y)
    >>> clf.classes_  # classes_[1] is the positive class
    array(['no', 'yes'], dtype='<U3')
    >>> np.flatnonzero(clf.coef_.any(axis=0))  # the features kept, by all tasks at once
    array([0, 1])
    >>> round(clf.score(X, y), 2)  # accuracy
    0.96
    """
