"""Sparse group lasso across tasks: ``alpha * ||W||_2,1 + beta * ||W||_1``.

References
----------
Simon, Friedman, Hastie & Tibshirani, "A sparse-group lasso",
J. Computational and Graphical Statistics 22(2), 2013, eq. (1), with one group per
feature row across tasks (MALSAR ``Least_SparseTrace``'s sibling ``Least_L21`` + L1).
"""

from multitask.linear._base import (
    MultiTaskClassifierMixin,
    MultiTaskLinearModel,
    MultiTaskRegressorMixin,
    fill_doc,
)

__all__ = ["SparseGroupLassoClassifier", "SparseGroupLassoRegressor"]


class _SparseGroup(MultiTaskLinearModel):
    _strengths = ("alpha", "beta")

    def __init__(
        self,
        alpha=0.1,
        *,
        beta=0.01,
        task_col=None,
        fit_intercept=True,
        tol=1e-8,
        max_iter=20000,
        warm_start=False,
        unseen_task="mean",
    ):
        self.alpha = alpha
        self.beta = beta
        self.task_col = task_col
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.unseen_task = unseen_task

    def _make_penalty(self, data):
        from multitask.linear.penalties import SparseGroupLasso

        return SparseGroupLasso(self.alpha, self.beta), None


@fill_doc
class SparseGroupLassoRegressor(MultiTaskRegressorMixin, _SparseGroup):
    """Squared loss + ``alpha * sum_j ||W[j, :]||_2 + beta * sum_jt |W[j, t]|``.

    Parameters
    ----------
    alpha : float, default=0.1
        Strength of the L2,1 (group) term (>= 0).
    beta : float, default=0.01
        Strength of the L1 (element-wise) term (>= 0).
    %(common)s

    %(fitted)s

    References
    ----------
    Simon, Friedman, Hastie & Tibshirani, J. Comput. Graph. Stat. 22(2), 2013, eq. (1).

    Examples
    --------
    Three tasks of 30 rows each, the task id in column 0 of ``X``. Feature 0 matters in
    every task, feature 1 in task 0 only.

    >>> import numpy as np
    >>> from multitask.linear import SparseGroupLassoRegressor
    >>> rng = np.random.default_rng(0)
    >>> task = np.repeat([0, 1, 2], 30)
    >>> features = rng.standard_normal((90, 5))
    >>> W = np.zeros((5, 3))  # (n_features, n_tasks)
    >>> W[0], W[1, 0] = [1.0, 1.5, 2.0], 2.0
    >>> y = (features * W.T[task]).sum(axis=1) + 0.1 * rng.standard_normal(90)
    >>> X = np.column_stack([task, features])
    >>> est = SparseGroupLassoRegressor(alpha=0.1, beta=0.2, task_col=0).fit(X, y)
    >>> (est.coef_ != 0).astype(int)  # whole features out (L2,1), single weights out (L1)
    array([[1, 1, 0, 0, 0],
           [1, 0, 0, 0, 0],
           [1, 0, 0, 0, 0]])
    >>> round(est.score(X, y), 2)
    0.96
    """


@fill_doc
class SparseGroupLassoClassifier(MultiTaskClassifierMixin, _SparseGroup):
    """Logistic loss + ``alpha * ||W||_2,1 + beta * ||W||_1`` (binary labels).

    Parameters
    ----------
    alpha : float, default=0.1
        Strength of the L2,1 (group) term (>= 0).
    beta : float, default=0.01
        Strength of the L1 (element-wise) term (>= 0).
    %(common)s

    %(fitted)s
    classes_ : ndarray of shape (2,)
        The two labels; ``classes_[1]`` is the positive class.

    References
    ----------
    Simon, Friedman, Hastie & Tibshirani, J. Comput. Graph. Stat. 22(2), 2013, eq. (1).

    Examples
    --------
    Three tasks of 30 rows each, the task id in column 0 of ``X``; the label depends on
    features 0 and 1 only.

    >>> import numpy as np
    >>> from multitask.linear import SparseGroupLassoClassifier
    >>> rng = np.random.default_rng(0)
    >>> task = np.repeat([0, 1, 2], 30)
    >>> features = rng.standard_normal((90, 4))
    >>> signal = features[:, 0] - features[:, 1] + 0.3 * rng.standard_normal(90)
    >>> y = (signal > 0).astype(int)
    >>> X = np.column_stack([task, features])
    >>> clf = SparseGroupLassoClassifier(alpha=0.05, beta=0.02, task_col=0).fit(X, y)
    >>> np.flatnonzero(clf.coef_.any(axis=0))  # the features kept
    array([0, 1])
    >>> round(clf.score(X, y), 2)  # accuracy
    0.94
    """
