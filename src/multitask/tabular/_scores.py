"""Held-out metrics of one target from model outputs (original label space)."""

from __future__ import annotations

import math

import numpy as np

from multitask.tabular._targets import TargetEncoder

__all__ = ["score_target"]


def _safe(fn, *args) -> float:
    """``fn(*args)``, NaN when the metric is undefined (e.g. AUC with one class)."""
    try:
        value = float(fn(*args))
    except ValueError:
        return math.nan
    return value


def score_target(enc: TargetEncoder, y, out: dict) -> dict[str, float]:
    """Metrics of the labelled rows.

    Parameters
    ----------
    enc : TargetEncoder
    y : pandas.Series of shape (n_rows,)
        True targets, missing labels allowed (left out).
    out : dict
        ``{"value": (n_rows,)}`` for regression, ``{"code": (n_rows,), "proba":
        (n_rows, n_classes)}`` for classification, with ``"score": (n_rows,)`` (the
        logit) for a binary target (see ``TabularModel.outputs``).

    Returns
    -------
    scores : dict of str -> float
        ``mse, mae, explained_variance`` (regression); ``accuracy, auc, f1``
        (binary; AUC of the logit of ``classes[1]``, which ranks as its probability,
        F1 of ``classes[1]``,
        0 when it is neither labelled nor predicted); ``accuracy, f1``
        (multiclass; macro F1 over all the training classes, as
        ``sklearn.metrics.f1_score(average="macro", labels=..., zero_division=0.0)``).
        Empty when no row is labelled.
    """
    import pandas as pd

    from multitask import metrics

    labelled = ~pd.isna(y).to_numpy()
    if not labelled.any():
        return {}
    if enc.kind == "regression":
        yt = y.to_numpy(dtype=np.float64, na_value=np.nan)[labelled]
        yp = out["value"][labelled]
        return {
            "mse": metrics.mse(yt, yp),
            "mae": metrics.mae(yt, yp),
            "explained_variance": _safe(metrics.explained_variance, yt, yp),
        }
    codes = enc.encode(y[labelled], strict=False).astype(np.int64)  # -1: label unseen in training
    yp = out["code"][labelled]
    scores = {"accuracy": metrics.accuracy(codes, yp)}
    if enc.kind == "binary":
        known = codes >= 0
        # the logit, not expit of it: float64 expit is exactly 1 from a logit of about 37
        scores["auc"] = _safe(metrics.auc, codes[known], out["score"][labelled][known])
    if enc.kind == "binary":
        # F1 of classes[1]; every other label (an unseen one included) is a negative
        scores["f1"] = metrics.f1(codes == 1, yp == 1, pos_label=True)
    else:
        # macro over every training class, even one absent from these rows (it scores 0)
        labels = np.arange(len(enc.classes))
        scores["f1"] = metrics.f1(codes, yp, average="macro", labels=labels)
    return scores
