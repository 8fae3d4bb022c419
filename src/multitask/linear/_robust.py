"""Robust multi-task learning: ``W = L + S``, low-rank ``L`` plus outlier tasks ``S``.

References
----------
Chen, Zhou & Ye, "Integrating low-rank and group-sparse structures
for robust multi-task learning", KDD 2011, eq. (2) (MALSAR ``Least_RMTL``).
"""

from multitask.linear._base import (
    AlphaBetaModel,
    MultiTaskClassifierMixin,
    MultiTaskRegressorMixin,
    fill_doc,
)

__all__ = ["RobustMTLClassifier", "RobustMTLRegressor"]


class _Robust(AlphaBetaModel):
    def _make_penalty(self, data):
        from multitask.linear.penalties import RobustMTL

        return RobustMTL(self.alpha, self.beta), None


@fill_doc
class RobustMTLRegressor(MultiTaskRegressorMixin, _Robust):
    """Squared loss on ``W = L + S`` + ``alpha ||L||_* + beta sum_t ||S[:, t]||_2``.

    ``L`` is shared low-rank structure, ``S`` is non-zero only for outlier
    tasks; ``coef_components_[0]`` is ``L.T`` and ``coef_components_[1]`` is ``S.T``.

    Parameters
    ----------
    alpha : float, default=0.1
        Strength of the trace norm on ``L`` (>= 0).
    beta : float, default=0.1
        Strength of the column-group (per task) norm on ``S`` (>= 0).
    %(common)s

    %(fitted)s

    Notes
    -----
    Solved by ADMM (:func:`multitask.linear.solvers.admm`) under the same conditions as
    :class:`TraceNormRegressor`; it stops when the relative duality gap of the model
    weight's norm (the infimal convolution of both terms) and each component's
    subgradient distance, relative to the gradient norm at zero, are below ``tol``.

    References
    ----------
    Chen, Zhou & Ye, KDD 2011, eq. (2).
    """


@fill_doc
class RobustMTLClassifier(MultiTaskClassifierMixin, _Robust):
    """Logistic loss on ``W = L + S`` + ``alpha ||L||_* + beta sum_t ||S[:, t]||_2``.

    Parameters
    ----------
    alpha : float, default=0.1
        Strength of the trace norm on ``L`` (>= 0).
    beta : float, default=0.1
        Strength of the column-group (per task) norm on ``S`` (>= 0).
    %(common)s

    %(fitted)s
    classes_ : ndarray of shape (2,)
        The two labels; ``classes_[1]`` is the positive class.

    Notes
    -----
    Solved by ADMM with Newton data steps (:func:`multitask.linear.solvers.admm`) where
    the features (with the intercept column) are badly conditioned, under the same
    conditions as :class:`TraceNormClassifier`, with the same stopping rule as
    :class:`RobustMTLRegressor`; otherwise FISTA.

    References
    ----------
    Chen, Zhou & Ye, KDD 2011, eq. (2).
    """
