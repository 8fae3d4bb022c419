"""The fitted tabular model: preprocessing + target encoders + one of two predictors.

A model folder holds ``model.json`` (format, half, method, preprocessing,
targets, and for the linear half the coefficients) and, for the deep half,
``model.pt`` (the module's ``state_dict``, read back with
``torch.load(..., weights_only=True)``). Nothing is pickled.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
from scipy.special import expit

from multitask._atomic import atomic_path
from multitask.tabular._features import FeaturePreprocessor
from multitask.tabular._targets import TargetEncoder

__all__ = ["FORMAT", "TabularModel", "load_model", "write_json"]

FORMAT = "multitask.tabular"
VERSION = 1
MODEL_JSON = "model.json"


def _json_safe(value):
    """NaN and infinities as None (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def write_json(data: dict, path: str | os.PathLike) -> Path:
    """Write ``data`` as indented JSON through a temporary file and a rename."""
    path = Path(path)
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        json.dump(_json_safe(data), fh, indent=1, allow_nan=False)
    return path


class TabularModel:
    """Preprocessing, target encoders and a predictor, fitted by ``multitask fit``.

    Subclasses (deep, linear) implement ``_scores(frame) -> {target: ndarray}``
    (raw model outputs: a regression value, a binary logit of shape (n,), or
    multiclass logits of shape (n, C)) and the parts of ``save`` specific to
    them.

    Attributes
    ----------
    features : FeaturePreprocessor
    targets : list of TargetEncoder
    method : str
    config : dict
        Everything else needed to rebuild the predictor (JSON types only).
    """

    half = ""

    def text_columns(self) -> list[str]:
        """The columns to read as text from a CSV to predict (as at fit): the categorical
        features, whose level ``"1"`` would read as the number 1.0 in a file with no other
        text in that column."""
        return list(self.features.categorical)

    def __init__(self, features: FeaturePreprocessor, targets, method: str, config: dict):
        self.features = features
        self.targets = list(targets)
        self.method = method
        self.config = dict(config)

    @property
    def target_names(self) -> list[str]:
        return [t.name for t in self.targets]

    def _scores(self, frame) -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def outputs(self, frame) -> dict[str, dict[str, np.ndarray]]:
        """Per target: ``{"value"}`` (regression), ``{"code", "proba"}`` (classes), and
        ``"score"`` (the logit) for a binary target.

        Parameters
        ----------
        frame : pandas.DataFrame of shape (n_rows, n_columns)
            Holds every feature column (and the task column for the linear
            half); other columns are ignored.
        """
        scores = self._scores(frame)
        out = {}
        for enc in self.targets:
            s = np.asarray(scores[enc.name], dtype=np.float64)
            _check_finite_scores(s, enc.name)
            if enc.kind == "regression":
                out[enc.name] = {"value": s.reshape(len(frame)) * enc.scale + enc.mean}
            elif enc.kind == "binary":
                s = s.reshape(len(frame))
                p = expit(s)  # no overflow for large |s|
                out[enc.name] = {
                    "code": (s > 0).astype(np.int64),
                    "proba": np.stack([1 - p, p], 1),
                    "score": s,  # the logit: ranks as P(classes[1]) does, without ties at 1
                }
            else:
                z = np.exp(s - s.max(axis=1, keepdims=True))
                out[enc.name] = {
                    "code": s.argmax(axis=1),
                    "proba": z / z.sum(axis=1, keepdims=True),
                }
        return out

    def predict(self, frame):
        """Predictions, one row per input row, in the input order.

        Returns
        -------
        predictions : pandas.DataFrame
            Column ``<target>`` per target (values, or labels in the original
            label space), and for classification ``<target>_proba_<label>``
            per class.
        """
        import pandas as pd

        cols = {}
        for name, out in self.outputs(frame).items():
            enc = next(t for t in self.targets if t.name == name)
            if enc.kind == "regression":
                cols[name] = out["value"]
                continue
            cols[name] = enc.labels(out["code"])
            for j, label in enumerate(enc.classes):
                cols[f"{name}_proba_{label}"] = out["proba"][:, j]
        return pd.DataFrame(cols, index=pd.RangeIndex(len(frame)))

    def _header(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "half": self.half,
            "method": self.method,
            "features": self.features.to_dict(),
            "targets": [t.to_dict() for t in self.targets],
            "config": self.config,
        }

    def save(self, folder: str | os.PathLike) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def _check_finite_scores(scores: np.ndarray, name: str) -> None:
    """Raise on a row whose model output is not finite.

    Features within range (:meth:`FeaturePreprocessor.transform` checks that) can still be far
    enough outside the training rows to overflow the model (the deep half computes in float32);
    a NaN would otherwise be written as an empty prediction (or class 0) and make every metric
    of the target null.
    """
    bad = ~np.isfinite(scores.reshape(len(scores), -1)).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"the model's output for target {name!r} at row {row} is not finite "
            f"({bad.sum()} row(s) in all): that row's features lie too far outside the "
            "training rows' range for the model's arithmetic; check its values"
        )


def load_model(folder: str | os.PathLike) -> TabularModel:
    """Load a model folder written by ``multitask fit`` (no pickle involved).

    Raises
    ------
    ValueError
        The folder has no readable ``model.json`` of this format.
    """
    folder = Path(folder)
    path = folder / MODEL_JSON
    if not path.is_file():
        raise ValueError(
            f"{folder} holds no {MODEL_JSON}; give a folder written by `multitask fit`"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); fit the model again") from None
    if data.get("format") != FORMAT or data.get("version") != VERSION:
        raise ValueError(
            f"{path} is not a {FORMAT} model of version {VERSION} "
            f"(format={data.get('format')!r}, version={data.get('version')!r})"
        )
    try:
        features = FeaturePreprocessor.from_dict(data["features"])
        targets = [TargetEncoder.from_dict(t) for t in data["targets"]]
        if data["half"] == "deep":
            from multitask.tabular._deep import DeepTabularModel

            return DeepTabularModel.load(folder, features, targets, data)
        from multitask.tabular._linear import LinearTabularModel

        return LinearTabularModel.load(folder, features, targets, data)
    except (KeyError, TypeError, RuntimeError) as exc:
        raise ValueError(
            f"the model in {folder} is incomplete or corrupt ({type(exc).__name__}: {exc}); "
            "fit it again"
        ) from None
