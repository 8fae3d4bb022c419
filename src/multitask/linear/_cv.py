"""Cross-validated choice of ``alpha`` on a warm-started path.

Folds are stratified per task (and per task and class for classifiers), so
every task appears in every training fold; each fold fits the whole path of
``alpha`` values from the largest down, each fit warm-started at the previous
solution; folds run in parallel through joblib.

References
----------
Friedman, Hastie & Tibshirani, "Regularization paths for generalized linear
models via coordinate descent", J. Statistical Software 33(1), 2010, Sec. 2.5
(warm-started path from ``alpha_max`` down, ``eps = 1e-3``).
"""

import numbers
import warnings

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from multitask.linear._base import MultiTaskLinearModel
from multitask.linear._group_lasso import GroupLassoClassifier, GroupLassoRegressor
from multitask.linear._l1inf import L1InfClassifier, L1InfRegressor
from multitask.linear._task_structure import TaskSubsetWarning, reported_absent
from multitask.linear._trace_norm import TraceNormClassifier, TraceNormRegressor
from multitask.linear._validation import check_strength, split_task_column, task_label

__all__ = [
    "GroupLassoClassifierCV",
    "GroupLassoRegressorCV",
    "L1InfClassifierCV",
    "L1InfRegressorCV",
    "MultiTaskCV",
    "TraceNormClassifierCV",
    "TraceNormRegressorCV",
    "alpha_grid",
]


def alpha_grid(estimator, X, y, sample_weight=None, *, n_alphas=20, eps=1e-3):
    """Decreasing grid ``alpha_max * logspace(0, log10(eps), n_alphas)``.

    ``alpha_max`` is the smallest ``alpha`` for which ``W = 0`` is optimal,
    from the penalty's ``alpha_max`` at the datafit gradient at ``W = 0`` with
    the optimal intercepts. Falls back to ``logspace(1, -4, n_alphas)`` for a
    family whose penalty defines no ``alpha_max`` (smooth penalties).

    Returns
    -------
    alphas : ndarray of shape (n_alphas,)
    """
    est = clone(estimator).set_params(alpha=1.0)
    data = est._validate_fit(X, y, sample_weight)
    penalty, _ = est._make_penalty(data)
    try:
        datafit = est._make_datafit(data)
        b0 = _null_intercepts(data, est._loss) if est.fit_intercept else np.zeros(data.n_tasks)
        W0 = np.zeros((data.X.shape[1], data.n_tasks))
        grad0 = datafit.gradient(W0, b0)[0]
        a_max = float(penalty.alpha_max(grad0))
    except (AttributeError, NotImplementedError):
        return np.logspace(1, -4, n_alphas)
    if not np.isfinite(a_max) or a_max <= 0:
        a_max = 1.0
    return a_max * np.logspace(0, np.log10(eps), n_alphas)


def _null_intercepts(data, loss):
    """Optimal intercept of each task when ``W = 0`` (weighted mean / logit)."""
    y = data.y if data.y.ndim == 2 else data.y[:, None]
    n = y.shape[0]
    sw = np.ones(n) if data.sample_weight is None else data.sample_weight
    if data.shared:
        target = y if loss == "squared" else (y > 0).astype(float)
        m = sw @ target / sw.sum()
    else:
        t = data.task_idx
        target = y[:, 0] if loss == "squared" else (y[:, 0] > 0).astype(float)
        m = np.bincount(t, sw * target, data.n_tasks) / np.bincount(t, sw, data.n_tasks)
    if loss == "squared":
        return m
    m = np.clip(m, 1e-12, 1 - 1e-12)
    return np.log(m / (1 - m))


def _folds(estimator, X, y, cv, random_state, groups=None, sample_weight=None):
    """Splits stratified by task (and by class for classifiers).

    A splitter gets ``groups`` (default: the task column, so ``GroupKFold`` holds out
    whole tasks; the default goes only to a splitter that consumes groups, by scikit-learn's
    metadata routing, or one without routing information: ``KFold`` warned that it ignores
    them). Integer folds are checked to leave every task enough rows to fit.
    """
    _, task_values = split_task_column(X, getattr(estimator, "task_col", None))
    if hasattr(cv, "split"):
        if groups is None and _consumes_groups(cv):
            groups = task_values
        return list(cv.split(X, y, groups))
    if not isinstance(cv, (int, np.integer)):
        return list(cv)  # an iterable of (train, test) index arrays
    folds = _stratified_folds(estimator, y, cv, random_state, task_values)
    _check_training_folds(estimator, y, folds, task_values, sample_weight, cv)
    return folds


def _consumes_groups(cv) -> bool:
    """Whether a splitter uses ``groups`` (True for one without routing information)."""
    if not hasattr(cv, "get_metadata_routing"):
        return True
    from sklearn.utils.metadata_routing import get_routing_for_object

    return bool(get_routing_for_object(cv).consumes("split", ["groups"]))


def _stratified_folds(estimator, y, cv, random_state, task_values):
    y_arr = np.asarray(y)
    if y_arr.ndim == 2 and y_arr.shape[1] == 1:
        y_arr = y_arr.ravel()
    if task_values is None and y_arr.ndim == 2:
        if not is_classifier(estimator):
            return list(KFold(cv, shuffle=True, random_state=random_state).split(y_arr))
        # a shared design: stratified on the task whose rarer class is rarest, so that every
        # training fold keeps both of its classes (a plain KFold lost them, and the fold fit
        # failed where a fit on all rows worked)
        rarest = [np.unique(col, return_counts=True)[1].min() for col in y_arr.T]
        labels = np.unique(y_arr[:, int(np.argmin(rarest))], return_inverse=True)[1]
        folds = StratifiedKFold(cv, shuffle=True, random_state=random_state)
        with warnings.catch_warnings():  # fewer rows of a class than folds: checked next
            warnings.filterwarnings("ignore", "The least populated class", UserWarning)
            return list(folds.split(y_arr, labels))
    strata = np.zeros(len(y_arr), np.intp) if task_values is None else task_values
    _, strata = np.unique(strata, return_inverse=True)
    if is_classifier(estimator):
        _, labels = np.unique(y_arr, return_inverse=True)
        strata = (labels.max() + 1) * strata + labels
    return list(StratifiedKFold(cv, shuffle=True, random_state=random_state).split(y_arr, strata))


def _check_training_folds(estimator, y, folds, task_values, sample_weight, cv):
    """Raise before any fit if a training fold leaves a task too few rows (or one class)."""
    if task_values is None and np.ndim(y) == 2 and np.shape(y)[1] > 1:
        # shared design: every task sees every row; a classifier's needs both classes
        if is_classifier(estimator):
            _check_shared_classes(np.asarray(y), folds, sample_weight, cv)
        return
    tasks = np.zeros(len(y), np.intp) if task_values is None else task_values
    labels, tasks = np.unique(tasks, return_inverse=True)
    classes = np.unique(np.asarray(y).ravel(), return_inverse=True)[1]
    keep = np.ones(len(tasks), bool) if sample_weight is None else sample_weight > 0
    for train, _ in folds:
        rows = np.zeros(len(tasks), bool)
        rows[train] = True
        rows &= keep
        counts = np.bincount(tasks[rows], minlength=len(labels))
        short = np.flatnonzero(counts < 2)
        one_class = np.zeros(0, np.intp)
        if is_classifier(estimator):
            pairs = np.unique(tasks[rows] * 2 + (classes[rows] > 0))
            one_class = np.flatnonzero(np.bincount(pairs // 2, minlength=len(labels)) < 2)
        bad = np.union1d(short, one_class)
        if bad.size:
            t = bad[0]
            what = "fewer than 2 rows" if t in short else "a single class"
            raise ValueError(
                f"with cv={cv}, a training fold keeps {what} of task "
                f"{task_label(labels[t])!r} ({int(np.sum(tasks == t))} rows in all), too "
                "little to fit it; use fewer folds, drop "
                "or merge the small task, or pass a splitter as cv."
            )


def _check_shared_classes(Y, folds, sample_weight, cv) -> None:
    """Raise before any fit if a training fold keeps one class of a task (a column of ``Y``)."""
    keep = np.ones(len(Y), bool) if sample_weight is None else np.asarray(sample_weight) > 0
    for train, _ in folds:
        rows = np.asarray(train)[keep[train]]
        one_class = ~(Y[rows] != Y[rows[:1]]).any(axis=0)  # every row's label the first's
        if one_class.any():
            t = int(np.argmax(one_class))
            raise ValueError(
                f"with cv={cv}, a training fold keeps a single class of task {t} "
                f"({int(np.sum(Y[:, t] != Y[rows[0], t]))} rows of the other class in all), "
                "too little to fit it; use fewer folds or pass a splitter as cv."
            )


def _as_indexable(X):
    """DataFrame and CSR/CSC stay; other sparse formats become CSR; the rest an ndarray."""
    if hasattr(X, "iloc"):
        return X
    if sp.issparse(X):
        return X if X.format in ("csr", "csc") else X.tocsr()
    return np.asarray(X)


def _take(X, idx):
    return X.iloc[idx] if hasattr(X, "iloc") else X[idx]


def _fold_path(estimator, X, y, sample_weight, train, test, alphas, scoring, absent=()):
    """Scores of the warm-started path on one fold, shape (n_alphas,).

    ``absent``: labels of the task structure absent from the whole data, warned about
    before the folds; the fold warns only about the other labels its tasks lack.
    """
    est = clone(estimator).set_params(warm_start=True)
    scorer = check_scoring(est, scoring=scoring)
    sw = None if sample_weight is None else sample_weight[train]
    # the held-out rows are scored with their weights, as the fit weighs the training rows
    weighted = {} if sample_weight is None else {"sample_weight": sample_weight[test]}
    X_tr, y_tr, X_te, y_te = _take(X, train), _take(y, train), _take(X, test), _take(y, test)
    scores = np.empty(len(alphas))
    for i, alpha in enumerate(alphas):
        with warnings.catch_warnings(), reported_absent(absent):
            if i > 0:  # the fold's tasks, so a structure's restriction, are the first fit's
                warnings.simplefilter("ignore", TaskSubsetWarning)
            est.set_params(alpha=alpha).fit(X_tr, y_tr, sample_weight=sw)
        scores[i] = scorer(est, X_te, y_te, **weighted)
    return scores


def _check_grid(alphas, n_alphas, eps):
    """Raise before any work if the grid (given or automatic) is ill-defined."""
    if alphas is not None:
        if isinstance(alphas, (str, bytes)) or np.ndim(alphas) != 1:
            raise ValueError(
                f"alphas={alphas!r} is not allowed; pass a 1-D sequence of values "
                "(alphas=[0.1] for one), or alphas=None for the automatic grid."
            )
        if np.size(alphas) == 0:
            raise ValueError("alphas is empty; pass at least one value, or alphas=None.")
        try:
            values = np.asarray(alphas, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"alphas={alphas!r} must hold numbers >= 0.") from None
        if not np.all(np.isfinite(values)):
            raise ValueError(f"alphas={alphas!r} must hold finite numbers >= 0.")
        return
    if not isinstance(n_alphas, (int, np.integer)) or isinstance(n_alphas, bool) or n_alphas < 1:
        raise ValueError(f"n_alphas={n_alphas!r} is not allowed; it must be an integer >= 1.")
    if not isinstance(eps, (int, float, np.integer, np.floating)) or not 0 < eps <= 1:
        raise ValueError(
            f"eps={eps!r} is not allowed; eps = alpha_min / alpha_max must be in (0, 1]."
        )


def _check_cv(cv):
    """Raise before any work unless ``cv`` is an int >= 2, a splitter or an iterable of
    (train, test) splits (a string has ``split`` and is iterable, and was taken for both)."""
    if isinstance(cv, (str, bytes)) or isinstance(cv, (bool, np.bool_)):
        raise TypeError(
            f"cv={cv!r} is not allowed; pass an int (the number of folds, e.g. cv=5), a "
            "splitter such as GroupKFold(), or an iterable of (train, test) index arrays."
        )
    if isinstance(cv, (numbers.Integral, np.integer)):
        if cv < 2:
            raise ValueError(f"cv={cv!r} is not allowed; an int cv must be >= 2 folds.")
    elif not hasattr(cv, "split") and not hasattr(cv, "__iter__"):
        raise TypeError(
            f"cv={cv!r} is not allowed; pass an int >= 2, a splitter with a split method, "
            "or an iterable of (train, test) index arrays."
        )


def _check_before_folds(estimator, X, y, sample_weight, alphas):
    """The estimator's own checks of parameters and data, once, before any fold work.

    Returns
    -------
    absent : list
        The labels of the task structure (graph, tree) absent from the whole data, warned
        about here once: no split holds them out, so the folds and the refit do not repeat
        the warning.
    """
    if not isinstance(estimator, MultiTaskLinearModel):
        return []  # another estimator with an alpha: its own fit checks
    alpha = 1.0 if alphas is None else float(np.max(alphas))
    est = clone(estimator).set_params(alpha=max(alpha, 0.0))
    for name in est._strengths:
        check_strength(getattr(est, name), name)
    est._check_params()
    data = est._validate_fit(X, y, sample_weight)
    est._check_structure(data)
    with reported_absent() as absent:
        est._make_penalty(data)  # the structure matched to every task of the data
    return absent


def search_alpha(
    estimator,
    X,
    y,
    sample_weight,
    *,
    alphas,
    n_alphas,
    eps,
    cv,
    scoring,
    n_jobs,
    random_state,
    groups=None,
    return_absent=False,
):
    """Run the cross-validated path; return ``(alphas, scores (n_folds, n_alphas))``.

    A label of the task structure absent from the whole data is warned about once, before
    the folds; a fold warns only about the labels its split held out. With
    ``return_absent``, also return the absent labels (for a refit on the whole data, which
    would warn about them again).
    """
    y = np.asarray(y)
    _check_grid(alphas, n_alphas, eps)
    _check_cv(cv)
    absent = _check_before_folds(estimator, X, y, sample_weight, alphas)
    if alphas is None:
        with reported_absent(absent):
            alphas = alpha_grid(estimator, X, y, sample_weight, n_alphas=n_alphas, eps=eps)
    alphas = np.sort(np.asarray(alphas, dtype=float))[::-1]
    if (alphas < 0).any():
        raise ValueError(f"alphas must be >= 0; got min {alphas.min()!r}.")
    sw = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
    folds = _folds(estimator, X, y, cv, random_state, groups, sw)
    scores = Parallel(n_jobs=n_jobs)(
        delayed(_fold_path)(estimator, X, y, sw, tr, te, alphas, scoring, absent)
        for tr, te in folds
    )
    return (alphas, np.asarray(scores), absent) if return_absent else (alphas, np.asarray(scores))


def _base_has(method):
    """``available_if`` condition: the wrapped estimator has ``method``."""
    return lambda self: hasattr(self._base_estimator(), method)


class _CVMixin:
    """Fit / predict of a CV estimator; subclasses provide ``_base_estimator()``."""

    def fit(self, X, y, sample_weight=None, groups=None):
        """Choose ``alpha`` by cross-validation on the path, then refit on all data.

        Parameters
        ----------
        X : DataFrame, ndarray or scipy sparse matrix of shape (n_samples, n_columns)
        y : array-like of shape (n_samples,) or (n_samples, n_tasks)
        sample_weight : array-like of shape (n_samples,), default=None
        groups : array-like of shape (n_samples,), default=None
            Group labels passed to a splitter ``cv`` (e.g. ``GroupKFold``); None: the
            task column, so a group splitter holds out whole tasks.

        Returns
        -------
        self : object
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        X, y = _as_indexable(X), np.asarray(y)
        if isinstance(sample_weight, numbers.Number):  # one weight for every row
            sample_weight = np.full(len(y), float(sample_weight))
        elif sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=float)
        base = self._base_estimator()
        self.alphas_, self.cv_scores_, absent = search_alpha(
            base,
            X,
            y,
            sample_weight,
            alphas=self.alphas,
            n_alphas=self.n_alphas,
            eps=self.eps,
            cv=self.cv,
            scoring=self.scoring,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
            groups=groups,
            return_absent=True,
        )
        mean = self.cv_scores_.mean(0)
        self.alpha_ = float(self.alphas_[int(np.nanargmax(mean))])
        est = clone(base).set_params(alpha=self.alpha_)
        with reported_absent(absent):  # warned about before the folds
            est.fit(X, y, sample_weight=sample_weight)
        self.best_estimator_ = est
        for name in (
            "coef_",
            "intercept_",
            "tasks_",
            "n_iter_",
            "n_features_in_",
            "classes_",
            "feature_names_in_",
        ):
            if hasattr(est, name):
                setattr(self, name, getattr(est, name))
            else:  # an attribute of an earlier fit (a DataFrame's names) must not stay
                self.__dict__.pop(name, None)
        return self

    def predict(self, X):
        """Predict with the refitted best estimator."""
        check_is_fitted(self)
        return self.best_estimator_.predict(X)

    @available_if(_base_has("decision_function"))
    def decision_function(self, X):
        """Decision function of the refitted best estimator (classifiers only)."""
        check_is_fitted(self)
        return self.best_estimator_.decision_function(X)

    @available_if(_base_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities of the refitted best estimator (classifiers only)."""
        check_is_fitted(self)
        return self.best_estimator_.predict_proba(X)

    def score(self, X, y, sample_weight=None):
        """Score of the refitted best estimator (R^2 or accuracy)."""
        check_is_fitted(self)
        return self.best_estimator_.score(X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        base_tags = self._base_estimator().__sklearn_tags__()
        tags.estimator_type = base_tags.estimator_type
        tags.classifier_tags = base_tags.classifier_tags
        tags.regressor_tags = base_tags.regressor_tags
        tags.target_tags = base_tags.target_tags
        tags.input_tags = base_tags.input_tags
        return tags


class MultiTaskCV(_CVMixin, MetaEstimatorMixin, BaseEstimator):
    """Choose ``alpha`` of any multi-task estimator by cross-validation on a path.

    Parameters
    ----------
    estimator : estimator of :mod:`multitask.linear` with an ``alpha`` parameter
    alphas : array-like of shape (n_alphas,) or None, default=None
        Candidate values; None: ``alpha_max * logspace(0, log10(eps), n_alphas)``.
    n_alphas : int, default=20
    eps : float, default=1e-3
        ``alpha_min / alpha_max`` of the automatic grid.
    cv : int or cross-validation splitter, default=5
        An int gives folds stratified per task (and per class for classifiers);
        a splitter (e.g. ``GroupKFold``) is used as given, with ``fit``'s
        ``groups`` (default: the task column, so whole tasks are held out).
    scoring : str, callable or None, default=None
        Scorer; None uses the estimator's ``score`` (R^2 / accuracy).
    n_jobs : int or None, default=None
        Folds run in parallel through joblib.
    random_state : int or None, default=0
        Seed of the fold shuffling.

    Attributes
    ----------
    alpha_ : float
        Chosen ``alpha`` (best mean validation score).
    alphas_ : ndarray of shape (n_alphas,)
        The path, decreasing.
    cv_scores_ : ndarray of shape (n_folds, n_alphas)
    best_estimator_ : estimator
        Refitted on all data with ``alpha_``.
    coef_, intercept_, tasks_ : copied from ``best_estimator_``.

    References
    ----------
    Friedman, Hastie & Tibshirani, J. Statistical Software 33(1), 2010, Sec. 2.5.

    Examples
    --------
    ``alpha`` of a :class:`SparseGroupLassoRegressor` chosen from a given grid, its
    other parameters (here ``beta``) kept. Three tasks of 20 rows each, the task id in
    column 0 of ``X``.

    >>> import numpy as np
    >>> from multitask.linear import MultiTaskCV, SparseGroupLassoRegressor
    >>> rng = np.random.default_rng(0)
    >>> task = np.repeat([0, 1, 2], 20)
    >>> features = rng.standard_normal((60, 5))
    >>> W = np.zeros((5, 3))  # (n_features, n_tasks)
    >>> W[:2] = rng.uniform(1, 2, size=(2, 3))
    >>> y = (features * W.T[task]).sum(axis=1) + 0.5 * rng.standard_normal(60)
    >>> X = np.column_stack([task, features])
    >>> base = SparseGroupLassoRegressor(beta=0.01, task_col=0)
    >>> cv = MultiTaskCV(base, alphas=[1.0, 0.3, 0.1, 0.03, 0.01], cv=3).fit(X, y)
    >>> cv.alphas_  # the path, decreasing
    array([1.  , 0.3 , 0.1 , 0.03, 0.01])
    >>> cv.cv_scores_.shape  # (n_folds, n_alphas): R^2 on each held-out fold
    (3, 5)
    >>> cv.alpha_, cv.best_estimator_.beta  # refitted on all rows with the best alpha
    (0.1, 0.01)
    >>> round(cv.score(X, y), 2)
    0.97
    """

    def __init__(
        self,
        estimator,
        *,
        alphas=None,
        n_alphas=20,
        eps=1e-3,
        cv=5,
        scoring=None,
        n_jobs=None,
        random_state=0,
    ):
        self.estimator = estimator
        self.alphas = alphas
        self.n_alphas = n_alphas
        self.eps = eps
        self.cv = cv
        self.scoring = scoring
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _base_estimator(self):
        return self.estimator


class _FamilyCV(_CVMixin, BaseEstimator):
    _estimator_class = None

    def __init__(
        self,
        *,
        alphas=None,
        n_alphas=20,
        eps=1e-3,
        cv=5,
        scoring=None,
        n_jobs=None,
        random_state=0,
        task_col=None,
        fit_intercept=True,
        tol=1e-8,
        max_iter=20000,
        unseen_task="mean",
    ):
        self.alphas = alphas
        self.n_alphas = n_alphas
        self.eps = eps
        self.cv = cv
        self.scoring = scoring
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.task_col = task_col
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.unseen_task = unseen_task

    def _base_estimator(self):
        return self._estimator_class(
            task_col=self.task_col,
            fit_intercept=self.fit_intercept,
            tol=self.tol,
            max_iter=self.max_iter,
            unseen_task=self.unseen_task,
        )


_CV_DOC = """{base} with ``alpha`` chosen by cross-validation on a warm-started path.

    Parameters are those of :class:`MultiTaskCV` (``alphas``, ``n_alphas``,
    ``eps``, ``cv``, ``scoring``, ``n_jobs``, ``random_state``) plus
    ``task_col``, ``fit_intercept``, ``tol``, ``max_iter`` and ``unseen_task``
    of :class:`{base}`. Fitted attributes: ``alpha_``, ``alphas_``,
    ``cv_scores_`` (n_folds, n_alphas), ``best_estimator_``, ``coef_``,
    ``intercept_``, ``tasks_``.

    Examples
    --------
{examples}
    """

# the Examples of the regressors' and the classifiers' docstrings; NAME and SCORE are
# filled in per class (their outputs differ only in the refitted estimator's score)
_CV_REGRESSOR_EXAMPLES = """\
    Three tasks of 20 rows each, the task id in column 0 of ``X``; only features 0 and 1
    matter. Each of the 3 folds keeps every task in its training part.

    >>> import numpy as np
    >>> from multitask.linear import NAME
    >>> rng = np.random.default_rng(0)
    >>> task = np.repeat([0, 1, 2], 20)
    >>> features = rng.standard_normal((60, 5))
    >>> W = np.zeros((5, 3))  # (n_features, n_tasks)
    >>> W[:2] = rng.uniform(1, 2, size=(2, 3))
    >>> y = (features * W.T[task]).sum(axis=1) + 0.5 * rng.standard_normal(60)
    >>> X = np.column_stack([task, features])
    >>> cv = NAME(alphas=[1.0, 0.3, 0.1, 0.03], cv=3, task_col=0).fit(X, y)
    >>> cv.cv_scores_.shape  # (n_folds, n_alphas): R^2 on each held-out fold
    (3, 4)
    >>> cv.alpha_  # the best mean score; best_estimator_ is refitted with it on all rows
    0.1
    >>> round(cv.score(X, y), 2)
    SCORE"""

_CV_CLASSIFIER_EXAMPLES = """\
    Three tasks of 30 rows each, the task id in column 0 of ``X``; the label depends on
    features 0 and 1 only. The folds are stratified by task and class; the score is
    the log-likelihood (accuracy on 90 rows ties too often to choose by).

    >>> import numpy as np
    >>> from multitask.linear import NAME
    >>> rng = np.random.default_rng(0)
    >>> task = np.repeat([0, 1, 2], 30)
    >>> features = rng.standard_normal((90, 4))
    >>> signal = features[:, 0] - features[:, 1] + rng.standard_normal(90)
    >>> y = np.where(signal > 0, "yes", "no")
    >>> X = np.column_stack([task, features])
    >>> grid = [0.3, 0.1, 0.03, 0.01]
    >>> cv = NAME(alphas=grid, cv=3, scoring="neg_log_loss", task_col=0).fit(X, y)
    >>> cv.cv_scores_.shape  # (n_folds, n_alphas)
    (3, 4)
    >>> cv.alpha_  # the best mean score; best_estimator_ is refitted with it on all rows
    0.1
    >>> round(cv.score(X, y), 2)  # accuracy of the refitted estimator
    SCORE"""


def _make_cv(base, name, examples, score):
    cls = type(name, (_FamilyCV,), {"_estimator_class": base, "__module__": __name__})
    examples = examples.replace("NAME", name).replace("SCORE", score)
    cls.__doc__ = _CV_DOC.format(base=base.__name__, examples=examples)
    cls.__qualname__ = name
    return cls


_REG, _CLF = _CV_REGRESSOR_EXAMPLES, _CV_CLASSIFIER_EXAMPLES
GroupLassoRegressorCV = _make_cv(GroupLassoRegressor, "GroupLassoRegressorCV", _REG, "0.97")
GroupLassoClassifierCV = _make_cv(GroupLassoClassifier, "GroupLassoClassifierCV", _CLF, "0.86")
L1InfRegressorCV = _make_cv(L1InfRegressor, "L1InfRegressorCV", _REG, "0.97")
L1InfClassifierCV = _make_cv(L1InfClassifier, "L1InfClassifierCV", _CLF, "0.88")
TraceNormRegressorCV = _make_cv(TraceNormRegressor, "TraceNormRegressorCV", _REG, "0.97")
TraceNormClassifierCV = _make_cv(TraceNormClassifier, "TraceNormClassifierCV", _CLF, "0.84")
