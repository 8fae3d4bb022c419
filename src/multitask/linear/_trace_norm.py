"""Low-rank multi-task learning: a trace-norm (nuclear-norm) penalty on ``W``.

References
----------
Pong, Tseng, Ji & Ye, "Trace norm regularization: reformulations,
algorithms, and multi-task learning", SIAM J. Optimization 20(6), 2010, eq. (1).
Argyriou, Evgeniou & Pontil, Machine Learning 73, 2008, Theorem 1 (equivalence with
convex multi-task feature learning).
"""

from multitask.linear._base import (
    AlphaModel,
    MultiTaskClassifierMixin,
    MultiTaskRegressorMixin,
    fill_doc,
)

__all__ = ["TraceNormClassifier", "TraceNormRegressor"]


class _TraceNorm(AlphaModel):
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

    Notes
    -----
    Solved by ADMM (:func:`multitask.linear.solvers.admm`: one exact ridge solve per task
    and singular value thresholding) wherever its Gram matrices are cheap and there are
    at most 200 features (above, where the per-task Hessians are badly conditioned), so
    raw features of very different scales need no standardising for the solver's sake;
    it stops on the relative duality gap (``dual_gap_``). Otherwise FISTA.

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

    Notes
    -----
    Solved by ADMM (:func:`multitask.linear.solvers.admm`: a few batched Newton steps per
    task on the logistic loss plus a ridge term, intercept included, and singular value
    thresholding) where there are at most 64 features and the Gram matrices
    ``[X_t, 1]^T D_t [X_t, 1]`` have a condition number above 1e3 (badly scaled
    features, or features far from centred beside the intercept), so such features need
    no standardising for the solver's sake; it stops on the relative duality gap of the
    logistic dual (``dual_gap_``). Otherwise FISTA.

    References
    ----------
    Pong, Tseng, Ji & Ye, SIAM J. Optimization 20(6), 2010, eq. (1).
    """
