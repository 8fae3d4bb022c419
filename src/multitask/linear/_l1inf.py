"""Multi-task lasso with an L1,inf penalty: ``alpha * sum_j max_t |W[j, t]|``.

References
----------
Turlach, Venables & Wright, "Simultaneous variable selection",
Technometrics 47(3), 2005, eq. (2). Quattoni, Carreras, Collins & Darrell, "An efficient
projection for l1,inf regularization", ICML 2009, eq. (1).
"""

from multitask.linear._base import (
    AlphaModel,
    MultiTaskClassifierMixin,
    MultiTaskRegressorMixin,
    fill_doc,
)

__all__ = ["L1InfClassifier", "L1InfRegressor"]


class _L1Inf(AlphaModel):
    def _make_penalty(self, data):
        from multitask.linear.penalties import L1Inf

        return L1Inf(self.alpha), None


@fill_doc
class L1InfRegressor(MultiTaskRegressorMixin, _L1Inf):
    """Squared loss + ``alpha * sum_j ||W[j, :]||_inf`` (joint feature selection).

    Parameters
    ----------
    alpha : float, default=0.1
        Strength of the L1,inf penalty (>= 0).
    %(common)s

    %(fitted)s

    References
    ----------
    Turlach, Venables & Wright, Technometrics 47(3), 2005, eq. (2);
    Quattoni, Carreras, Collins & Darrell, ICML 2009, eq. (1).

    Examples
    --------
    Three tasks of 20 rows each, the task id in column 0 of ``X``. Only features 0 and
    1 matter, in every task; feature 1 with weights of one size.

    >>> import numpy as np
    >>> from multitask.linear import L1InfRegressor
    >>> rng = np.random.default_rng(0)
    >>> task = np.repeat([0, 1, 2], 20)
    >>> features = rng.standard_normal((60, 5))
    >>> W = np.zeros((5, 3))  # (n_features, n_tasks)
    >>> W[0], W[1] = [1.0, 1.5, 2.0], [-1.0, -1.0, 1.0]
    >>> y = (features * W.T[task]).sum(axis=1) + 0.1 * rng.standard_normal(60)
    >>> X = np.column_stack([task, features])
    >>> est = L1InfRegressor(alpha=0.2, task_col=0).fit(X, y)
    >>> np.flatnonzero(est.coef_.any(axis=0))  # the features kept, by all tasks at once
    array([0, 1])
    >>> abs(est.coef_[:, 1]).round(2)  # the max norm ties the largest weights of a feature
    array([0.96, 0.96, 0.96])
    >>> round(est.score(X, y), 2)
    0.99
    """


@fill_doc
class L1InfClassifier(MultiTaskClassifierMixin, _L1Inf):
    """Logistic loss + ``alpha * sum_j ||W[j, :]||_inf`` (binary labels).

    Parameters
    ----------
    alpha : float, default=0.1
        Strength of the L1,inf penalty (>= 0).
    %(common)s

    %(fitted)s
    classes_ : ndarray of shape (2,)
        The two labels; ``classes_[1]`` is the positive class.

    References
    ----------
    Turlach, Venables & Wright, Technometrics 47(3), 2005, eq. (2);
    Quattoni, Carreras, Collins & Darrell, ICML 2009, eq. (1).

    Examples
    --------
    Three tasks of 30 rows each, the task id in column 0 of ``X``; the label depends on
    features 0 and 1 only.

    >>> import numpy as np
    >>> from multitask.linear import L1InfClassifier
    >>> rng = np.random.default_rng(0)
    >>> task = np.repeat([0, 1, 2], 30)
    >>> features = rng.standard_normal((90, 4))
    >>> signal = features[:, 0] - features[:, 1] + 0.3 * rng.standard_normal(90)
    >>> y = np.where(signal > 0, "yes", "no")
    >>> X = np.column_stack([task, features])
    >>> clf = L1InfClassifier(alpha=0.1, task_col=0).fit(X, y)
    >>> np.flatnonzero(clf.coef_.any(axis=0))  # the features kept, by all tasks at once
    array([0, 1])
    >>> round(clf.score(X, y), 2)  # accuracy
    0.96
    """
