"""Per-task metrics, their aggregation over tasks, and ``delta_m``.

Every per-task metric takes ``(y_true, y_pred)`` as 1-D arrays of one task and
returns a float. For classification, ``accuracy`` and ``f1`` take predicted
labels, ``auc`` takes scores (probabilities or decision values). ``f1`` is the
binary F1 of the label 1 unless the caller asks for a macro average (it never
guesses from the labels present).

Aggregation over tasks follows the conventions of the literature:

- ``"mean"``: the plain mean over tasks (every task counts the same; the usual
  convention for AUC on Landmine and for deep MTL tables);
- ``"weighted"``: weighted by the number of test samples of each task (the
  convention of MALSAR-era papers for nMSE and aMSE on School, e.g. Chen, Zhou &
  Ye, KDD 2011; Gong, Ye & Zhang, KDD 2012).

``delta_m`` is the average relative change of a multi-task model over
single-task baselines (Maninis, Radosavovic & Kokkinos, CVPR 2019, eq. 5;
Navon et al., ICML 2022, Sec. 6), with the sign flipped for lower-is-better
metrics, so that positive means better. ``delta_m_per_task`` is LibMTL's
variant, averaging within each task first.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "HIGHER_IS_BETTER",
    "METRICS",
    "accuracy",
    "aggregate",
    "amse",
    "auc",
    "delta_m",
    "delta_m_per_task",
    "explained_variance",
    "f1",
    "mae",
    "mse",
    "nmse",
    "per_task",
    "rmse",
]


def _pair(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    yt = np.asarray(y_true).ravel()
    yp = np.asarray(y_pred).ravel()
    if yt.shape != yp.shape:
        raise ValueError(f"y_true has {yt.size} values but y_pred has {yp.size}; they must match")
    if yt.size == 0:
        raise ValueError("cannot compute a metric on 0 samples")
    return yt, yp


def mse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean squared error."""
    yt, yp = _pair(y_true, y_pred)
    return float(np.mean((yt.astype(float) - yp) ** 2))


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error."""
    return float(np.sqrt(mse(y_true, y_pred)))


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error."""
    yt, yp = _pair(y_true, y_pred)
    return float(np.mean(np.abs(yt.astype(float) - yp)))


def _variance(y: np.ndarray) -> float:
    var = float(np.var(y.astype(float)))
    if var == 0.0:
        raise ValueError("the target is constant, so a variance-normalised metric is undefined")
    return var


def nmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Normalised MSE: the MSE divided by the (population) variance of ``y_true``."""
    yt, yp = _pair(y_true, y_pred)
    return mse(yt, yp) / _variance(yt)


def amse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Averaged MSE: the MSE divided by the mean squared target, ``||y||^2 / n``.

    The "aMSE" of Chen, Zhou & Ye (KDD 2011) and Gong, Ye & Zhang (KDD 2012).
    """
    yt, yp = _pair(y_true, y_pred)
    scale = float(np.mean(yt.astype(float) ** 2))
    if scale == 0.0:
        raise ValueError("the target is all zeros, so aMSE is undefined")
    return mse(yt, yp) / scale


def explained_variance(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Explained variance ``1 - MSE / Var(y)``, as a fraction (multiply by 100 for %).

    This is the School metric of Bakker & Heskes (JMLR 2003), Evgeniou & Pontil
    (KDD 2004) and Argyriou, Evgeniou & Pontil (2008): one minus the test MSE
    over the variance of the test targets. Note that scikit-learn's
    ``explained_variance_score`` differs (it uses the variance of the residual).
    """
    return 1.0 - nmse(y_true, y_pred)


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of predicted labels equal to the true labels."""
    yt, yp = _pair(y_true, y_pred)
    return float(np.mean(yt == yp))


def auc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Area under the ROC curve of a binary task (scores: higher means positive)."""
    from sklearn.metrics import roc_auc_score

    yt, ys = _pair(y_true, y_score)
    found = np.unique(yt).size
    if found < 2:
        raise ValueError("AUC needs both classes in y_true; this task has only one")
    if found > 2:
        raise ValueError(f"AUC is defined for two classes; y_true has {found}")
    return float(roc_auc_score(yt, ys))


def f1(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    average: str = "binary",
    pos_label: Hashable = 1,
    labels: ArrayLike | None = None,
) -> float:
    """F1 score, as ``sklearn.metrics.f1_score(..., zero_division=0.0)``.

    The caller says what it means; nothing is guessed from the labels that
    happen to occur in a task's rows (a held-out split of a multiclass task may
    show two classes only, and an all-negative binary task has no positive).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.
    average : {"binary", "macro"}, default="binary"
        ``"binary"``: the F1 of the class ``pos_label``. ``"macro"``: the
        unweighted mean of the per-class F1 over ``labels``.
    pos_label : label, default=1
        The positive class of a binary F1 (ignored for ``"macro"``).
    labels : array-like, optional
        The classes a macro F1 averages over; pass all the classes of the task
        (e.g. ``range(n_classes)``), so that a class absent from both
        ``y_true`` and ``y_pred`` counts as 0. Default: the labels present.

    Returns
    -------
    float
        0.0 where precision and recall are both undefined, e.g. no positive in
        ``y_true`` or ``y_pred`` (sklearn's ``zero_division=0.0``): a binary
        task with no positive and no predicted positive scores 0, not 1.
    """
    import warnings

    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import f1_score

    yt, yp = _pair(y_true, y_pred)
    if average not in ("binary", "macro"):
        raise ValueError(f"average must be 'binary' or 'macro', got {average!r}")
    labels = None if labels is None or average == "binary" else np.asarray(labels).ravel()
    with warnings.catch_warnings():  # the 0 of an undefined F1 is documented above
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        # sklearn raises for a binary F1 of more than two classes
        value = f1_score(
            yt, yp, average=average, pos_label=pos_label, labels=labels, zero_division=0.0
        )
    return float(value)


MetricFn = Callable[[ArrayLike, ArrayLike], float]

#: Name table of the per-task metrics.
METRICS: dict[str, MetricFn] = {
    "mse": mse,
    "rmse": rmse,
    "mae": mae,
    "nmse": nmse,
    "amse": amse,
    "explained_variance": explained_variance,
    "accuracy": accuracy,
    "auc": auc,
    "f1": f1,
}

#: Direction of each metric, used by ``delta_m``.
HIGHER_IS_BETTER: dict[str, bool] = {
    "mse": False,
    "rmse": False,
    "mae": False,
    "nmse": False,
    "amse": False,
    "explained_variance": True,
    "accuracy": True,
    "auc": True,
    "f1": True,
}


def _metric(metric: str | MetricFn) -> MetricFn:
    if callable(metric):
        return metric
    try:
        return METRICS[metric]
    except KeyError:
        raise ValueError(f"unknown metric {metric!r}; valid names: {sorted(METRICS)}") from None


def per_task(
    metric: str | MetricFn, y_true: ArrayLike, y_pred: ArrayLike, tasks: ArrayLike
) -> dict[Hashable, float]:
    """Evaluate ``metric`` separately on the rows of each task.

    Parameters
    ----------
    metric : str or callable
        A name of :data:`METRICS` or a function ``(y_true, y_pred) -> float``.
    y_true, y_pred : array-like of shape (n_samples,)
    tasks : array-like of shape (n_samples,)
        The task id of each row (long format).

    Returns
    -------
    dict
        Task id -> metric value, in sorted task order.
    """
    fn = _metric(metric)
    yt, yp = _pair(y_true, y_pred)
    tk = np.asarray(tasks).ravel()
    if tk.shape != yt.shape:
        raise ValueError(f"tasks has {tk.size} values but y_true has {yt.size}")
    order = np.argsort(tk, kind="stable")
    uniq, starts = np.unique(tk[order], return_index=True)
    bounds = [*starts[1:], tk.size]
    out: dict[Hashable, float] = {}
    for task, lo, hi in zip(uniq, starts, bounds, strict=True):
        rows = order[lo:hi]
        key = task.item() if isinstance(task, np.generic) else task
        out[key] = fn(yt[rows], yp[rows])
    return out


def aggregate(
    metric: str | MetricFn,
    y_true: ArrayLike,
    y_pred: ArrayLike,
    tasks: ArrayLike,
    *,
    how: str = "mean",
) -> float:
    """Aggregate a per-task metric over tasks.

    Parameters
    ----------
    how : {"mean", "weighted"}
        ``"mean"``: plain mean over tasks. ``"weighted"``: weighted by each
        task's number of rows (MALSAR-era nMSE / aMSE on School).
    """
    values = per_task(metric, y_true, y_pred, tasks)
    vals = np.fromiter(values.values(), float, len(values))
    if how == "mean":
        return float(vals.mean())
    if how == "weighted":
        _, counts = np.unique(np.asarray(tasks).ravel(), return_counts=True)
        return float(np.average(vals, weights=counts))
    raise ValueError(f"how must be 'mean' or 'weighted', got {how!r}")


Key = tuple[Hashable, str]


def _relative_changes(
    mtl: Mapping[Key, float], stl: Mapping[Key, float], higher_is_better: Mapping[str, bool] | None
) -> dict[Key, float]:
    directions = {**HIGHER_IS_BETTER, **(higher_is_better or {})}
    missing = set(mtl) ^ set(stl)
    if missing:
        raise ValueError(f"multi-task and single-task results differ in keys: {sorted(missing)}")
    if not mtl:
        raise ValueError("delta_m needs at least one (task, metric) value")
    out = {}
    for key, value in mtl.items():
        metric = key[1]
        if metric not in directions:
            raise ValueError(f"direction of metric {metric!r} unknown; pass higher_is_better")
        base = stl[key]
        if base == 0:
            raise ValueError(f"single-task value of {key} is 0: relative change undefined")
        sign = 1.0 if directions[metric] else -1.0
        out[key] = sign * (value - base) / abs(base)
    return out


def delta_m(
    mtl: Mapping[Key, float],
    stl: Mapping[Key, float],
    higher_is_better: Mapping[str, bool] | None = None,
) -> float:
    """Mean relative improvement of a multi-task model over single-task baselines.

    ``delta_m = 1/K sum_k (-1)^{l_k} (M_{m,k} - M_{b,k}) / M_{b,k}`` over all
    K (task, metric) pairs, where ``l_k = 1`` when lower is better (Maninis et
    al., CVPR 2019, eq. 5; Navon et al., ICML 2022). Positive is better.

    Parameters
    ----------
    mtl, stl : mapping (task, metric) -> float
        Results of the multi-task model and of the single-task baselines, with
        the same keys.
    higher_is_better : mapping metric -> bool, optional
        Directions of metrics not in :data:`HIGHER_IS_BETTER`.

    Returns
    -------
    float
        The relative change as a fraction (multiply by 100 for %).

    References
    ----------
    K.-K. Maninis, I. Radosavovic, I. Kokkinos. Attentive single-tasking of
    multiple tasks. CVPR 2019, eq. (5).
    """
    return float(np.mean(list(_relative_changes(mtl, stl, higher_is_better).values())))


def delta_m_per_task(
    mtl: Mapping[Key, float],
    stl: Mapping[Key, float],
    higher_is_better: Mapping[str, bool] | None = None,
) -> float:
    """LibMTL's ``delta_m``: average the relative changes within each task, then over tasks.

    Equals :func:`delta_m` when every task has the same number of metrics.
    """
    changes = _relative_changes(mtl, stl, higher_is_better)
    by_task: dict[Hashable, list[float]] = {}
    for (task, _), value in changes.items():
        by_task.setdefault(task, []).append(value)
    return float(np.mean([np.mean(v) for v in by_task.values()]))
