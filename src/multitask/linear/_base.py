"""Base classes of the multi-task linear estimators.

Data model (DESIGN.md, "long format"): one row per (task, sample); the task id
is a column of ``X`` named by ``task_col`` (a column name for a DataFrame, an
integer position for an array); ``y`` is 1-D. ``task_col=None`` with 1-D ``y``
is a single task, ``task_col=None`` with 2-D ``Y`` of shape (n_samples,
n_tasks) is the shared design of :class:`sklearn.linear_model.MultiTaskLasso`.

Objective minimised by every convex estimator (``W`` of shape
(n_features, n_tasks), ``b`` of shape (n_tasks,))::

    squared : sum_t 1/(2 n_t) ||y_t - X_t w_t - b_t 1||^2 + penalty(W)
    logistic: sum_t 1/n_t sum_{i in t} log(1 + exp(-y_i (x_i . w_t + b_t)))
              + penalty(W)

with labels in {-1, +1} internally; with ``sample_weight``, ``1/n_t`` becomes
``s_i / sum_{j in t} s_j``. With a shared design and 2-D ``Y``, ``n_t`` is
``n_samples``, so the squared objective is exactly ``MultiTaskLasso``'s.

Prediction for a task never seen at fit time uses the mean of the task models,
``coef_.mean(0)`` and ``intercept_.mean()`` (``unseen_task="mean"``), or raises
(``unseen_task="error"``).
"""

import numbers
import warnings
from dataclasses import replace

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted, validate_data

from multitask.linear._centering import center_features, uncenter_intercept
from multitask.linear._validation import (
    FitData,
    check_bool,
    check_solver_params,
    check_strength,
    check_task_sizes,
    encode_binary,
    encode_tasks,
    split_task_column,
    validate_features,
)

__all__ = ["MultiTaskClassifierMixin", "MultiTaskLinearModel", "MultiTaskRegressorMixin"]


#: rows of a dense X scored at once: bounds the (rows, n_features) gather of their weights
_SCORE_BLOCK = 1 << 22


def row_scores(features, coef, codes):
    """``features[i] . coef[codes[i]]`` for every row, in memory proportional to the input.

    Sparse ``features``: one product per stored entry (``O(nnz)``). Dense: blocks of rows
    whose gathered weights hold at most ``_SCORE_BLOCK`` numbers, not one ``(n, p)`` copy.
    """
    n_rows = features.shape[0]
    if sp.issparse(features):
        csr = sp.csr_array(features)  # duplicate entries add up, as in the matrix's product
        row_of = np.repeat(np.arange(n_rows), np.diff(csr.indptr))
        products = csr.data * coef[codes[row_of], csr.indices]
        return np.bincount(row_of, weights=products, minlength=n_rows).astype(np.float64)
    features = np.asarray(features)
    step = max(1, _SCORE_BLOCK // max(1, features.shape[1]))
    scores = np.empty(n_rows)
    for start in range(0, n_rows, step):
        block = slice(start, start + step)
        scores[block] = np.einsum("ij,ij->i", features[block], coef[codes[block]])
    return scores


class MultiTaskLinearModel(BaseEstimator):
    """Shared fit / predict logic; a family only says which penalty it uses.

    A subclass sets ``_loss`` ("squared" or "logistic", done by the regressor
    and classifier mixins) and implements ``_make_penalty(data) -> (penalty,
    smooth)`` (``data`` a :class:`FitData`) where ``penalty`` is a prox-able penalty
    (or None) and ``smooth`` a list of smooth penalties (or None). A family
    whose problem is not ``datafit + penalty`` overrides ``_solve``.
    """

    _loss = "squared"
    # parameter names checked as strengths (>= 0) before any work
    _strengths = ("alpha",)
    # True for a family whose model is degenerate with a single task
    _needs_several_tasks = False

    # ----------------------------------------------------------------- fit
    def fit(self, X, y, sample_weight=None):
        """Fit the multi-task model.

        Parameters
        ----------
        X : DataFrame, ndarray or scipy sparse matrix of shape (n_samples, n_columns)
            Features, including the task column when ``task_col`` is set.
        y : array-like of shape (n_samples,) or (n_samples, n_tasks)
            Targets; 2-D only with ``task_col=None`` (shared design).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; within a task the loss is weighted by
            ``s_i / sum_{j in t} s_j``.

        Returns
        -------
        self : object
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        for name in self._strengths:
            check_strength(getattr(self, name), name)
        self._check_params()
        data = self._validate_fit(X, y, sample_weight)
        self._check_structure(data)
        result = self._fit_data(data)
        self._store_result(result, data)
        return self

    def _fit_data(self, data):
        """Build datafit and penalty for validated ``data``, solve, return the result.

        With ``fit_intercept``, dense features are centred per task first (same
        solution, well conditioned: :mod:`multitask.linear._centering`).
        """
        mu = None
        if self.fit_intercept:
            data, mu = center_features(data, self._loss)
        datafit = self._make_datafit(data)
        penalty, smooth = self._make_penalty(data)
        W0, b0 = self._warm_start_point(penalty, data.X.shape[1], data.n_tasks)
        if mu is not None and W0 is not None:
            b0 = b0 + np.einsum("jt,jt->t", mu, _model_weight(W0))
        result = self._solve(datafit, penalty, smooth, W0, b0)
        if mu is None:
            return result
        b = uncenter_intercept(result.intercept, _model_weight(np.asarray(result.W)), mu)
        return replace(result, intercept=b)

    def _check_params(self):
        check_solver_params(self.tol, self.max_iter)
        for name in ("fit_intercept", "warm_start"):
            check_bool(getattr(self, name), name)
        if self.unseen_task not in ("mean", "error"):
            raise ValueError(
                f"unseen_task={self.unseen_task!r}; use 'mean' (predict a new task "
                "with the mean model) or 'error'."
            )

    def _check_structure(self, data):
        """Family hook: check task structure (graph, tree, clusters) against data."""
        if self._needs_several_tasks and data.n_tasks < 2:
            raise ValueError(
                f"{type(self).__name__} couples several tasks but got a single task "
                "(task_col=None and 1-D y). Pass task_col naming the task column of X, "
                "or a 2-D y with one column per task."
            )

    def _validate_fit(self, X, y, sample_weight):
        features, task_values = split_task_column(X, self.task_col)
        if self.task_col is None:
            features = validate_data(
                self, X, accept_sparse=["csr", "csc"], dtype=np.float64, reset=True
            )
        else:
            validate_data(self, X, reset=True, skip_check_array=True)
            features = validate_features(features)
        y = self._validate_y(y, features.shape[0])
        if self.task_col is not None and y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()  # a one-column y (e.g. df[["y"]]) in long format: the targets
        sample_weight = _check_weights(sample_weight, features.shape[0])
        shared = y.ndim == 2
        if shared and self.task_col is not None:
            raise ValueError(
                f"y is 2-D of shape {y.shape} but task_col={self.task_col!r} is set; "
                "in long format y is 1-D (one row per task and sample)."
            )
        if shared:
            task_idx, tasks = None, np.arange(y.shape[1])
            check_task_sizes(np.zeros(len(y), np.intp), tasks[:1], sample_weight)
        else:
            if task_values is None:
                task_values = np.zeros(len(y), np.intp)
            task_idx, tasks = encode_tasks(task_values)
            check_task_sizes(task_idx, tasks, sample_weight)
        y = self._encode_targets(y, task_idx, tasks, sample_weight)
        return FitData(features, y, task_idx, tasks, sample_weight, shared)

    def _make_datafit(self, data):
        from multitask.linear import datafits
        from multitask.linear._design import make_design, make_shared_design

        if data.shared:
            design = make_shared_design(data.X, data.y, sample_weight=data.sample_weight)
        else:
            design = make_design(
                data.X, data.y, data.task_idx, data.n_tasks, sample_weight=data.sample_weight
            )
        cls = datafits.Quadratic if self._loss == "squared" else datafits.Logistic
        return cls(design)

    def _warm_start_point(self, penalty, n_features, n_tasks):
        if not (self.warm_start and hasattr(self, "coef_")):
            return None, None
        W0 = getattr(self, "_W_internal", None)
        shape = (n_features, n_tasks)
        if getattr(penalty, "n_components", 1) == 2:
            shape = (2, *shape)
        if W0 is None or W0.shape != shape:
            return None, None
        # without an intercept to fit, a given b0 is a fixed offset: the old one must not stay
        return W0.copy(), self.intercept_.copy() if self.fit_intercept else None

    def _solve(self, datafit, penalty, smooth, W0, b0):
        from multitask.linear.penalties import L1
        from multitask.linear.solvers import solve

        # a family with only smooth terms solves with the zero penalty L1(0)
        return solve(
            datafit,
            L1(0.0) if penalty is None else penalty,
            W0,
            b0,
            fit_intercept=self.fit_intercept,
            smooth=smooth,
            tol=self.tol,
            max_iter=self.max_iter,
        )

    def _store_result(self, result, data):
        W = np.asarray(result.W, dtype=np.float64)
        self._W_internal = W
        W_model = W.sum(0) if W.ndim == 3 else W
        self.coef_ = np.ascontiguousarray(W_model.T)
        # a refit that does not produce an attribute of an earlier fit drops it
        for name in ("coef_components_", "dual_gap_"):
            self.__dict__.pop(name, None)
        if W.ndim == 3:
            self.coef_components_ = np.ascontiguousarray(np.transpose(W, (0, 2, 1)))
        self.intercept_ = np.asarray(result.intercept, dtype=np.float64).reshape(-1)
        if not self.fit_intercept:
            self.intercept_ = np.zeros(data.n_tasks)
        self.tasks_ = data.tasks
        self.n_iter_ = int(result.n_iter)
        self.objective_ = float(result.objective)
        self.stop_crit_ = float(result.stop_crit)
        gap = getattr(result, "dual_gap", None)
        if gap is not None:
            self.dual_gap_ = float(gap)
        self._y_ndim = data.y.ndim
        if not getattr(result, "converged", True):
            warnings.warn(
                f"{type(self).__name__} did not converge in {self.n_iter_} iterations "
                f"(stopping criterion {self.stop_crit_:.2e} > tol={self.tol:g}); "
                "increase max_iter or tol, or standardise the feature columns (e.g. "
                "StandardScaler): features of very different scales slow the solver "
                "(docs/solvers.md, 'Badly scaled features').",
                ConvergenceWarning,
                stacklevel=3,
            )

    # ------------------------------------------------------------- predict
    def _decision_function(self, X):
        """Linear score ``x . w_t + b_t`` of each row under its task's model.

        Parameters
        ----------
        X : DataFrame, ndarray or scipy sparse matrix of shape (n_samples, n_columns)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_tasks)
            2-D for a model fitted on a shared design (2-D ``y``).
        """
        check_is_fitted(self)
        if self.task_col is None:
            task_values = None
            features = validate_data(
                self, X, accept_sparse=["csr", "csc"], dtype=np.float64, reset=False
            )
        else:
            validate_data(self, X, reset=False, skip_check_array=True)
            features, task_values = split_task_column(X, self.task_col)
            features = validate_features(features)
        if self._y_ndim == 2:
            return np.asarray(features @ self.coef_.T) + self.intercept_
        codes = np.zeros(features.shape[0], np.intp)
        if task_values is not None:
            codes = self._task_codes(task_values)
        coef = np.vstack([self.coef_, self.coef_.mean(0)])
        intercept = np.append(self.intercept_, self.intercept_.mean())
        return row_scores(features, coef, codes) + intercept[codes]

    def _task_codes(self, task_values):
        codes, _ = encode_tasks(task_values, self.tasks_)
        unseen = codes < 0
        if unseen.any() and self.unseen_task == "error":
            new = np.unique(np.asarray(task_values)[unseen])
            raise ValueError(
                f"task(s) {new[:5].tolist()} were not seen at fit time and "
                "unseen_task='error'; set unseen_task='mean' to predict them with the "
                "mean of the task models, or refit including them."
            )
        return codes  # -1 indexes the mean model, the last row

    def __sklearn_is_fitted__(self):
        # a fit that failed after validate_data set n_features_in_ is not fitted
        return hasattr(self, "coef_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        return tags


class AlphaModel(MultiTaskLinearModel):
    """A family with one strength ``alpha`` and the common parameters.

    scikit-learn reads the parameters from the ``__init__`` signature, which
    subclasses inherit; a family then only defines ``_make_penalty``.
    """

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


class AlphaBetaModel(MultiTaskLinearModel):
    """A family with two strengths ``alpha`` and ``beta`` and the common parameters."""

    _strengths = ("alpha", "beta")

    def __init__(
        self,
        alpha=0.1,
        *,
        beta=0.1,
        task_col=None,
        fit_intercept=True,
        tol=1e-8,
        max_iter=20000,
        warm_start=False,
        unseen_task="mean",
    ):
        self.alpha = alpha
        self.beta = beta
        self.task_col = task_col
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.unseen_task = unseen_task


def _model_weight(W):
    """Model weight ``W`` (n_features, n_tasks); composite components summed."""
    return W.sum(0) if W.ndim == 3 else W


def _check_weights(sample_weight, n_samples):
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Number):  # weighs every row alike (as in sklearn)
        sample_weight = np.full(n_samples, sample_weight, dtype=np.float64)
    sw = check_array(sample_weight, ensure_2d=False, dtype=np.float64, input_name="sample_weight")
    if sw.shape != (n_samples,):
        raise ValueError(
            f"sample_weight has shape {sw.shape}; expected ({n_samples},), one weight per row."
        )
    if (sw < 0).any():
        raise ValueError("sample_weight has negative entries; weights must be >= 0.")
    if not sw.any():
        raise ValueError("all sample weights are zero; at least two rows per task need weight > 0.")
    return sw


class MultiTaskRegressorMixin(RegressorMixin):
    """Squared loss; ``score`` is R^2 (averaged over tasks for 2-D ``y``)."""

    _loss = "squared"

    def _validate_y(self, y, n_samples):
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        if y.ndim > 2 or len(y) != n_samples:
            raise ValueError(
                f"y has shape {y.shape}; expected ({n_samples},) or ({n_samples}, n_tasks)."
            )
        return y

    def _encode_targets(self, y, task_idx, tasks, sample_weight=None):
        return y

    def predict(self, X):
        """Predict with each row's task model (mean model for an unseen task).

        Parameters
        ----------
        X : DataFrame, ndarray or scipy sparse matrix of shape (n_samples, n_columns)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_tasks)
        """
        return self._decision_function(X)


class MultiTaskClassifierMixin(ClassifierMixin):
    """Logistic loss on binary labels (any two labels; {-1, +1} inside)."""

    _loss = "logistic"

    def _validate_y(self, y, n_samples):
        y = np.asarray(y)
        if y.ndim > 2 or len(y) != n_samples:
            raise ValueError(
                f"y has shape {y.shape}; expected ({n_samples},) or ({n_samples}, n_tasks)."
            )
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        if y.dtype.kind in "fc":
            check_array(y, ensure_2d=False, input_name="y")
        return y

    def _encode_targets(self, y, task_idx, tasks, sample_weight=None):
        y_pm, self.classes_ = encode_binary(y, task_idx, tasks, sample_weight)
        return y_pm

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy; with a shared design (2-D ``y``) the mean over tasks of each task's.

        (sklearn's ``accuracy_score`` refuses 2-D labels other than 0/1, and on 0/1 gives the
        subset accuracy: every task right at once. The mean of per-task accuracies is what
        :class:`sklearn.base.RegressorMixin` does for R^2 with several outputs.)
        """
        from sklearn.metrics import accuracy_score

        y = np.asarray(y)
        if y.ndim != 2 or y.shape[1] == 1:
            return super().score(X, y, sample_weight=sample_weight)
        pred = np.asarray(self.predict(X))
        return float(
            np.mean(
                [
                    accuracy_score(y[:, t], pred[:, t], sample_weight=sample_weight)
                    for t in range(y.shape[1])
                ]
            )
        )

    def decision_function(self, X):
        """Linear score ``x . w_t + b_t`` of each row under its task's model.

        Parameters
        ----------
        X : DataFrame, ndarray or scipy sparse matrix of shape (n_samples, n_columns)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_tasks)
            Positive for ``classes_[1]``; 2-D for a shared design (2-D ``y``).
        """
        return self._decision_function(X)

    def predict(self, X):
        """Predict the class label of each row with its task model.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_tasks)
        """
        check_is_fitted(self)
        return self.classes_[(self.decision_function(X) > 0).astype(np.intp)]

    def predict_proba(self, X):
        """Class probabilities ``sigma(x . w_t + b_t)``.

        Returns
        -------
        proba : ndarray of shape (n_samples, 2) or (n_samples, n_tasks)
            Columns follow ``classes_``. For a shared design (2-D ``y``), the
            probability of ``classes_[1]`` for each task (scikit-learn's
            multi-output convention).
        """
        p = expit(self.decision_function(X))
        return p if p.ndim == 2 else np.stack([1.0 - p, p], axis=-1)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags


COMMON_PARAMS_DOC = """task_col : str, int or None, default=None
        Column of ``X`` holding the task id (a name for a DataFrame, an integer
        position for an array). None: a single task (1-D ``y``) or a shared
        design (2-D ``y`` of shape (n_samples, n_tasks)).
    fit_intercept : bool, default=True
        Fit one unpenalised intercept per task.
    tol : float, default=1e-8
        Solver tolerance (duality gap or KKT criterion, see ``docs/linear.md``);
        the default stops within 1e-6 relative of the optimum.
    max_iter : int, default=20000
        Maximum number of solver iterations.
    warm_start : bool, default=False
        Start from the previous solution when refitting with the same shapes.
    unseen_task : {"mean", "error"}, default="mean"
        Prediction for a task not seen at fit time: the mean of the task models
        (``coef_.mean(0)``, ``intercept_.mean()``), or raise ``ValueError``."""

FITTED_DOC = """Attributes
    ----------
    coef_ : ndarray of shape (n_tasks, n_features)
        One weight vector per task (``n_features`` excludes the task column).
    intercept_ : ndarray of shape (n_tasks,)
    tasks_ : ndarray of shape (n_tasks,)
        Task labels, in the order of the rows of ``coef_``.
    n_iter_ : int
        Solver iterations.
    objective_ : float
        Final objective value (see ``multitask.linear._base`` for its exact form).
    stop_crit_ : float
        Final value of the solver's stopping criterion.
    n_features_in_ : int
        Number of columns of ``X`` at fit time, task column included."""


def fill_doc(cls=None, /, **snippets: str):
    """Substitute ``%(common)s``, ``%(fitted)s`` and ``%(<key>)s`` of ``snippets`` in a class
    docstring; ``@fill_doc`` or ``@fill_doc(key=text)`` (a block shared by the regressor and
    the classifier of a family, written as ``COMMON_PARAMS_DOC`` is)."""

    def fill(cls):
        doc = cls.__doc__.replace("%(common)s", COMMON_PARAMS_DOC)
        doc = doc.replace("%(fitted)s", FITTED_DOC)
        for key, text in snippets.items():
            doc = doc.replace(f"%({key})s", text)
        cls.__doc__ = doc
        return cls

    return fill if cls is None else fill(cls)
