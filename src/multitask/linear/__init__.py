"""Classical multi-task learning: regularised linear models (numpy / scipy / scikit-learn).

Data are in long format: one row per (task, sample), the task id in the column
``task_col`` of ``X``, ``y`` 1-D (see ``docs/linear.md``). Every estimator
follows the scikit-learn contract and minimises, for ``W`` of shape
(n_features, n_tasks)::

    sum_t 1/(2 n_t) ||y_t - X_t w_t - b_t||^2 + penalty(W)       (regressors)
    sum_t 1/n_t sum_i log(1 + exp(-y_i (x_i . w_t + b_t))) + penalty(W)   (classifiers)

This package never imports torch.
"""

import importlib

#: public name -> private module; imported on first access (PEP 562), so that
#: ``from multitask.linear import GroupLassoRegressor`` loads one estimator family, not
#: the cross-validation machinery (sklearn.metrics, model_selection) of every family
_LAZY = {
    "ClusteredMTLClassifier": "_clustered",
    "ClusteredMTLRegressor": "_clustered",
    "DirtyModelClassifier": "_dirty",
    "DirtyModelRegressor": "_dirty",
    "GraphRegularizedClassifier": "_graph_regularized",
    "GraphRegularizedRegressor": "_graph_regularized",
    "GroupLassoClassifier": "_group_lasso",
    "GroupLassoClassifierCV": "_cv",
    "GroupLassoRegressor": "_group_lasso",
    "GroupLassoRegressorCV": "_cv",
    "IndependentLogistic": "_independent",
    "IndependentRidge": "_independent",
    "L1InfClassifier": "_l1inf",
    "L1InfClassifierCV": "_cv",
    "L1InfRegressor": "_l1inf",
    "L1InfRegressorCV": "_cv",
    "MeanRegularizedClassifier": "_mean_regularized",
    "MeanRegularizedRegressor": "_mean_regularized",
    "MultiTaskCV": "_cv",
    "PooledRidge": "_independent",
    "RobustMTLClassifier": "_robust",
    "RobustMTLRegressor": "_robust",
    "SparseGroupLassoClassifier": "_sparse_group",
    "SparseGroupLassoRegressor": "_sparse_group",
    "TaskSubsetWarning": "_task_structure",
    "TraceNormClassifier": "_trace_norm",
    "TraceNormClassifierCV": "_cv",
    "TraceNormRegressor": "_trace_norm",
    "TraceNormRegressorCV": "_cv",
    "TreeGroupLassoClassifier": "_tree_group",
    "TreeGroupLassoRegressor": "_tree_group",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'multitask.linear' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"multitask.linear.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
