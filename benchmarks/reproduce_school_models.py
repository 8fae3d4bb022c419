"""The models of the School reproduction: names, grids and the around-pooled wrapper.

Split from ``reproduce_school.py`` (which runs the protocols and writes the tables).
``methods`` maps each method name to its estimator and hyper-parameter grids; grids
relative to ``alpha_max`` are resolved on the training data by ``resolve``;
``PooledOffset`` is the ``W = w_pool 1^T + V`` parametrisation; ``limit_edges`` lists the
grid edges that are a model's limit (never extended by the grid search).
"""

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

import multitask.linear as ml

POOLED = "pooled ridge"


class PooledOffset(RegressorMixin, BaseEstimator):
    """``estimator`` fitted on the residuals of a pooled ridge: ``W = w_pool 1^T + V``.

    ``alpha`` and ``warm_start`` are forwarded to ``estimator``; with ``warm_start`` the
    inner model is kept between fits, so that ``MultiTaskCV``'s path is warm-started.
    """

    def __init__(self, estimator, *, pooled_alpha=1.0, alpha=1.0, warm_start=False):
        self.estimator = estimator
        self.pooled_alpha = pooled_alpha
        self.alpha = alpha
        self.warm_start = warm_start

    @property
    def task_col(self):
        return self.estimator.task_col

    def fit(self, X, y, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("PooledOffset takes no sample_weight; pass None.")
        task_col = self.estimator.task_col
        self.pooled_ = ml.PooledRidge(
            alpha=self.pooled_alpha, task_col=task_col, fit_intercept=False
        ).fit(X, y)
        resid = np.asarray(y, float) - self.pooled_.predict(X)
        if not (self.warm_start and hasattr(self, "inner_")):
            self.inner_ = clone(self.estimator)
        self.inner_.set_params(alpha=self.alpha, warm_start=self.warm_start).fit(X, resid)
        return self

    def predict(self, X):
        check_is_fitted(self)
        return self.pooled_.predict(X) + self.inner_.predict(X)


def methods(grid="full"):
    """name -> (estimator, alphas, {second parameter: values}, around_pooled).

    A grid given as ``("l21" | "trace" | "l1" | "l1inf", factors)`` is relative: the
    factors multiply that penalty's ``alpha_max`` on the training data (the smallest
    strength at which ``W = 0``), so the strong edge of the grid is the zero model.
    """
    n = {"full": 7, "quick": 5, "tiny": 3}[grid]
    nb = {"full": 3, "quick": 2, "tiny": 2}[grid]
    rel = np.logspace(0, -3, n)
    specs = {
        POOLED: (ml.PooledRidge(), np.logspace(-8, 1, n + 3), {}, False),
        "independent ridge": (ml.IndependentRidge(), np.logspace(-4, 2, n), {}, False),
        "L21 (group lasso)": (ml.GroupLassoRegressor(), ("l21", rel), {}, False),
        "trace norm": (ml.TraceNormRegressor(), ("trace", rel), {}, False),
        "dirty (L1 + L1inf)": (
            ml.DirtyModelRegressor(),
            ("l1", np.logspace(0, -3, n - 2)),
            {"beta": ("l1inf", np.logspace(0, -2, nb + 1))},
            False,
        ),
        # smooth penalties: alpha -> infinity gives one model per cluster (all tasks for
        # mean-regularised) with a ridge of strength beta; beta reaches 0.1 > the pooled
        # ridge's choices (1e-8 .. 1e-2). Large alpha / small beta is slow for first-order
        # solvers (condition number ~ alpha / beta), so alpha stops at 1e3
        "mean-regularised": (
            ml.MeanRegularizedRegressor(),
            np.logspace(-2, 3, n - 1),
            {"beta": list(np.logspace(-5, -1, nb + 1))},
            False,
        ),
        "clustered (cMTL, k=3)": (
            ml.ClusteredMTLRegressor(n_clusters=3, max_iter=5000),
            np.logspace(-1, 3, n - 1),
            {"beta": list(np.logspace(-3, -1, nb + 1))},
            False,
        ),
    }
    clustered = "clustered (cMTL, k=3)"
    for name in ("L21 (group lasso)", "trace norm", "dirty (L1 + L1inf)", clustered):
        est, alphas, extra, _ = specs[name]
        specs[name + " around pooled"] = (est, alphas, extra, True)
    slow = ("mean-regularised", clustered, clustered + " around pooled")  # last in a seed
    return {k: specs[k] for k in sorted(specs, key=lambda k: slow.index(k) + 1 if k in slow else 0)}


def gradient_at_zero(X, y, task_col):
    """``G[:, t] = X_t^T y_t / n_t``, shape (n_features, n_tasks): the datafit gradient at 0."""
    features = X.drop(columns=task_col)
    task = X[task_col].to_numpy()
    return np.stack(
        [
            features[task == t].to_numpy(float).T @ y[task == t] / np.sum(task == t)
            for t in np.unique(task)
        ],
        axis=1,
    )


def resolve(grid, G):
    """An explicit list, or ``alpha_max * factors`` for a relative grid (see :func:`methods`)."""
    if not isinstance(grid, tuple):
        return np.asarray(grid, float)
    kind, factors = grid
    a_max = {
        "l21": lambda: np.linalg.norm(G, axis=1).max(),
        "trace": lambda: np.linalg.norm(G, 2),
        "l1": lambda: np.abs(G).max(),
        "l1inf": lambda: np.abs(G).sum(1).max(),
    }[kind]()
    return a_max * np.asarray(factors, float)


def build(spec, values, task_col, tol, pooled_alpha=None):
    """The estimator of ``spec`` with its second strengths set to ``values`` (a dict).

    ``alpha`` is left to the caller (a path, or one point). Around pooled, the model is
    wrapped in :class:`PooledOffset` with the given pooled ridge strength.
    """
    est, _, _, around_pooled = spec
    # the bias is a feature of W (MALSAR's and Evgeniou & Pontil's setting), so that the
    # task coupling also shrinks the intercepts; no separate unpenalised intercept
    est = clone(est).set_params(task_col=task_col, tol=tol, fit_intercept=False, **values)
    return PooledOffset(est, pooled_alpha=pooled_alpha) if around_pooled else est


def limit_edges(spec, around_pooled):
    """Grid edges that are the model's limit, never extended (see :func:`methods`).

    The high edge of a relative L21 / trace-norm grid is ``alpha_max``: ``W = 0``, or
    ``V = 0`` (pooled ridge itself) around pooled. The low edge of pooled ridge's grid
    (1e-8) is unregularised least squares, well posed with 28 features and >= 1,500 rows.
    The high edge of clustered MTL's ``alpha`` grid (1e3, with ``beta <= 0.1``:
    ``eta = beta / alpha <= 1e-4``) is its ``eta -> 0`` limit, the penalty
    ``beta * min_{0 <= gamma <= 1, sum gamma = k} sum_i sigma_i(W)^2 / gamma_i``: on
    School (10% split, seed 0, ``beta = 0.1``) ``W`` moves by 0.12% from ``alpha = 1e3``
    to 1e4 and < 0.02% from 1e4 to 1e5, with the same test nMSE to 4 digits.
    """
    est, alphas, _, _ = spec
    if isinstance(alphas, tuple) and alphas[0] in ("l21", "trace"):
        return {"alpha": "high"}
    if isinstance(est, ml.PooledRidge):
        return {"alpha": "low"}
    if isinstance(est, ml.ClusteredMTLRegressor):
        return {"alpha": "high"}
    return {}
