"""Mean-regularised multi-task learning: every task model is pulled towards the mean model.

Penalty (smooth): ``alpha * sum_t ||w_t - w_mean||^2 + beta * ||W||_F^2``. With
``w_t = w_0 + v_t`` this is Evgeniou & Pontil's ``lambda_1/T sum_t ||v_t||^2 +
lambda_2 ||w_0||^2`` after minimising over ``w_0`` (see ``docs/linear.md``).

References
----------
Evgeniou & Pontil, "Regularized multi-task learning", KDD 2004,
eq. (4)-(5) and Lemma 2.1.
"""

from multitask.linear._base import (
    MultiTaskClassifierMixin,
    MultiTaskLinearModel,
    MultiTaskRegressorMixin,
    fill_doc,
)

__all__ = ["MeanRegularizedClassifier", "MeanRegularizedRegressor"]


class _MeanRegularized(MultiTaskLinearModel):
    _strengths = ("alpha", "beta")

    def __init__(
        self,
        alpha=1.0,
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
        from multitask.linear.penalties import MeanRegularized

        return None, [MeanRegularized(self.alpha, self.beta)]


@fill_doc
class MeanRegularizedRegressor(MultiTaskRegressorMixin, _MeanRegularized):
    """Squared loss + ``alpha sum_t ||w_t - mean_s w_s||^2 + beta ||W||_F^2``.

    Parameters
    ----------
    alpha : float, default=1.0
        Strength of the pull towards the mean model (>= 0).
    beta : float, default=0.01
        Ridge strength on all task models (>= 0).
    %(common)s

    %(fitted)s

    References
    ----------
    Evgeniou & Pontil, "Regularized multi-task learning", KDD 2004, eq. (4)-(5).

    Examples
    --------
    Three schools of 20 pupils, in long format: a DataFrame whose column ``"school"``
    holds the task id. The schools' models are close to one another.

    >>> import numpy as np
    >>> import pandas as pd
    >>> from multitask.linear import MeanRegularizedRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame(rng.standard_normal((60, 3)), columns=["x0", "x1", "x2"])
    >>> X["school"] = np.repeat(["a", "b", "c"], 20)
    >>> w = [1.0, -2.0, 0.5] + 0.1 * rng.standard_normal((3, 3))  # (n_tasks, n_features)
    >>> w_row = w[np.repeat([0, 1, 2], 20)]  # each row's task model
    >>> y = (X[["x0", "x1", "x2"]] * w_row).sum(axis=1) + 0.1 * rng.standard_normal(60)
    >>> est = MeanRegularizedRegressor(alpha=1.0, task_col="school").fit(X, y)
    >>> est.tasks_  # the order of the rows of coef_
    array(['a', 'b', 'c'], dtype=object)
    >>> est.coef_.shape
    (3, 3)

    A larger ``alpha`` pulls the task models closer to their mean:

    >>> loose = MeanRegularizedRegressor(alpha=0.1, task_col="school").fit(X, y)
    >>> [round(float(abs(m.coef_ - m.coef_.mean(axis=0)).max()), 2) for m in (loose, est)]
    [0.09, 0.03]

    A school not seen at fit time is predicted with the mean of the task models:

    >>> new = pd.DataFrame({"x0": [1.0], "x1": [0.0], "x2": [0.0], "school": ["d"]})
    >>> est.predict(new).round(2)
    array([0.94])
    """


@fill_doc
class MeanRegularizedClassifier(MultiTaskClassifierMixin, _MeanRegularized):
    """Logistic loss + ``alpha sum_t ||w_t - mean_s w_s||^2 + beta ||W||_F^2``.

    Parameters
    ----------
    alpha : float, default=1.0
        Strength of the pull towards the mean model (>= 0).
    beta : float, default=0.01
        Ridge strength on all task models (>= 0).
    %(common)s

    %(fitted)s
    classes_ : ndarray of shape (2,)
        The two labels; ``classes_[1]`` is the positive class.

    References
    ----------
    Evgeniou & Pontil, "Regularized multi-task learning", KDD 2004, eq. (4)-(5).

    Examples
    --------
    Three tasks of 40 rows each, the task id in column 0 of ``X``; the task models are
    scattered around a common one, and the labels are strings.

    >>> import numpy as np
    >>> from multitask.linear import MeanRegularizedClassifier
    >>> rng = np.random.default_rng(0)
    >>> task = np.repeat([0, 1, 2], 40)
    >>> features = rng.standard_normal((120, 3))
    >>> w = [2.0, -2.0, 1.0] + 0.5 * rng.standard_normal((3, 3))  # (n_tasks, n_features)
    >>> y = np.where((features * w[task]).sum(axis=1) > 0, "pass", "fail")
    >>> X = np.column_stack([task, features])
    >>> clf = MeanRegularizedClassifier(alpha=1.0, task_col=0).fit(X, y)
    >>> clf.classes_  # classes_[1] is the positive class
    array(['fail', 'pass'], dtype='<U4')
    >>> round(clf.score(X, y), 2)  # accuracy
    0.88

    A smaller ``alpha`` lets the task models spread further from their mean:

    >>> loose = MeanRegularizedClassifier(alpha=0.01, task_col=0).fit(X, y)
    >>> [round(float(abs(m.coef_ - m.coef_.mean(axis=0)).max()), 2) for m in (loose, clf)]
    [0.95, 0.06]
    """
