"""Low-rank multi-task learning: a trace-norm (nuclear-norm) penalty on ``W``.

References
----------
Pong, Tseng, Ji & Ye, "Trace norm regularization: reformulations,
algorithms, and multi-task learning", SIAM J. Optimization 20(6), 2010, eq. (1).
Argyriou, Evgeniou & Pontil, Machine Learning 73, 2008, Theorem 1 (equivalence with
convex multi-task feature learning).
"""

from multitask.linear._base import (
    MultiTaskClassifierMixin,
    MultiTaskLinearModel,
    MultiTaskRegressorMixin,
    fill_doc,
)

__all__ = ["TraceNormClassifier", "TraceNormRegressor"]


class _TraceNorm(MultiTaskLinearModel):
    def __init__(
        self,
        alpha=0.1,
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
        from multitask.linear.penalties import TraceNorm

        return TraceNorm(self.alpha), None


@fill_doc
class TraceNormRegressor(MultiTaskRegressorMixin, _TraceNorm):
    """Squared loss + ``alpha * ||W||_*`` (sum of singular values): a shared low-rank subspace.

    Parameters
    ----------
    alpha : float, default=0.1
        Strength of the trace-norm penalty (>= 0).
    %(common)s

    %(fitted)s

    References
    ----------
    Pong, Tseng, Ji & Ye, SIAM J. Optimization 20(6), 2010, eq. (1).
    """


@fill_doc
class TraceNormClassifier(MultiTaskClassifierMixin, _TraceNorm):
    """Logistic loss + ``alpha * ||W||_*`` (binary labels).

    Parameters
    ----------
    alpha : float, default=0.1
        Strength of the trace-norm penalty (>= 0).
    %(common)s

    %(fitted)s
    classes_ : ndarray of shape (2,)
        The two labels; ``classes_[1]`` is the positive class.

    References
    ----------
    Pong, Tseng, Ji & Ye, SIAM J. Optimization 20(6), 2010, eq. (1).
    """
