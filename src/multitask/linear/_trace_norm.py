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

    Examples
    --------
    A shared design (``task_col=None``, 2-D ``Y``: one column per task, every task
    observed on the same 50 rows) whose three task models are multiples of one vector.

    >>> import numpy as np
    >>> from multitask.linear import TraceNormRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((50, 6))
    >>> W = np.outer(rng.standard_normal(6), rng.uniform(1, 2, size=3))  # rank 1
    >>> Y = X @ W + 0.1 * rng.standard_normal((50, 3))
    >>> est = TraceNormRegressor(alpha=0.2).fit(X, Y)
    >>> est.coef_.shape  # (n_tasks, n_features)
    (3, 6)
    >>> int(np.linalg.matrix_rank(est.coef_, tol=1e-6))  # the tasks share one direction
    1
    >>> est.predict(X).shape  # (n_samples, n_tasks), as for a 2-D y
    (50, 3)
    >>> round(est.score(X, Y), 2)  # R^2, averaged over the tasks
    1.0
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

    Examples
    --------
    Three tasks of 40 rows each, the task id in column 0 of ``X``; the three task models
    are multiples of one vector.

    >>> import numpy as np
    >>> from multitask.linear import TraceNormClassifier
    >>> rng = np.random.default_rng(0)
    >>> task = np.repeat([0, 1, 2], 40)
    >>> features = rng.standard_normal((120, 5))
    >>> W = np.outer(rng.standard_normal(5), rng.uniform(1, 2, size=3))  # rank 1
    >>> y = ((features * W.T[task]).sum(axis=1) + 0.3 * rng.standard_normal(120) > 0).astype(int)
    >>> X = np.column_stack([task, features])
    >>> clf = TraceNormClassifier(alpha=0.2, task_col=0).fit(X, y)
    >>> clf.coef_.shape  # (n_tasks, n_features)
    (3, 5)
    >>> int(np.linalg.matrix_rank(clf.coef_, tol=1e-6))  # the tasks share one direction
    1
    >>> round(clf.score(X, y), 2)  # accuracy
    0.95
    """
