"""Multi-task learning on a user's own table (``multitask fit`` / ``multitask predict``).

- :func:`read_table` / :func:`write_table`: CSV or Parquet, with clear errors.
- :class:`FeaturePreprocessor`: standardise numerics (median imputation plus a
  missing indicator), one-hot categoricals (unknown levels -> zeros), fitted
  on the training rows only and saved as JSON.
- :class:`TargetEncoder`: task kind per target (inferred, overridable),
  labels, missing-label masks.
- :func:`fit_table` with :class:`FitOptions`: the wide layout (several
  targets, a deep architecture and a balancer) or the long layout (a task
  column, a :mod:`multitask.linear` estimator); :func:`load_model` reads the
  folder back with no pickle.

Importing this package imports neither torch nor the linear estimators; they
load when a model of their half is fitted or loaded.
"""

from multitask.tabular._deep import ARCHITECTURE_NAMES, DeepTabularModel
from multitask.tabular._features import FeaturePreprocessor
from multitask.tabular._fit import FitOptions, FitResult, fit_table
from multitask.tabular._io import read_table, staged_dir, write_table
from multitask.tabular._linear import LINEAR_METHODS, LinearTabularModel
from multitask.tabular._model import TabularModel, load_model
from multitask.tabular._targets import TargetEncoder

__all__ = [
    "ARCHITECTURE_NAMES",
    "LINEAR_METHODS",
    "DeepTabularModel",
    "FeaturePreprocessor",
    "FitOptions",
    "FitResult",
    "LinearTabularModel",
    "TabularModel",
    "TargetEncoder",
    "fit_table",
    "load_model",
    "read_table",
    "staged_dir",
    "write_table",
]
