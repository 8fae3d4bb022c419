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
    """
