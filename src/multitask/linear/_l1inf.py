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
    """
