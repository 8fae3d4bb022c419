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
    """
