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
    """
