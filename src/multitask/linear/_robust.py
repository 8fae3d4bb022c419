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

    Examples
    --------
    Five tasks of 30 rows each, the task id in column 0 of ``X``: the models of tasks 0
    to 3 are multiples of one vector, task 4 is an outlier.

    >>> import numpy as np
    >>> from multitask.linear import RobustMTLRegressor
    >>> rng = np.random.default_rng(0)
    >>> task = np.repeat([0, 1, 2, 3, 4], 30)
    >>> features = rng.standard_normal((150, 6))
    >>> W = np.zeros((6, 5))  # (n_features, n_tasks)
    >>> W[:, :4] = np.outer([1.0, -1.0, 0.5, 2.0, 0.0, 1.0], [1.0, 1.2, 1.4, 1.6])
    >>> W[:, 4] = [-2.0, 0.0, 2.0, 0.0, 2.0, -1.0]
    >>> y = (features * W.T[task]).sum(axis=1) + 0.1 * rng.standard_normal(150)
    >>> X = np.column_stack([task, features])
    >>> est = RobustMTLRegressor(alpha=0.2, beta=0.15, task_col=0).fit(X, y)
    >>> L, S = est.coef_components_  # coef_ == L + S, each (n_tasks, n_features)
    >>> int(np.linalg.matrix_rank(L, tol=1e-6))  # the shared low-rank part
    1
    >>> np.flatnonzero(S.any(axis=1))  # the outlier tasks
    array([4])
    >>> round(est.score(X, y), 2)
    1.0
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

    Examples
    --------
    Four tasks of 40 rows each, the task id in column 0 of ``X``, whose models are
    multiples of one vector (one of them of the opposite sign); no outlier task.

    >>> import numpy as np
    >>> from multitask.linear import RobustMTLClassifier
    >>> rng = np.random.default_rng(0)
    >>> task = np.repeat([0, 1, 2, 3], 40)
    >>> features = rng.standard_normal((160, 4))
    >>> W = 2 * np.outer(rng.standard_normal(4), [1.0, 1.5, 2.0, -2.0])  # (n_features, n_tasks)
    >>> y = ((features * W.T[task]).sum(axis=1) + 0.5 * rng.standard_normal(160) > 0).astype(int)
    >>> X = np.column_stack([task, features])
    >>> clf = RobustMTLClassifier(alpha=0.1, beta=0.1, task_col=0).fit(X, y)
    >>> L, S = clf.coef_components_  # coef_ == L + S, each (n_tasks, n_features)
    >>> int(np.linalg.matrix_rank(L, tol=1e-6)), bool(S.any())  # rank-1 L, no outlier in S
    (1, False)
    """
