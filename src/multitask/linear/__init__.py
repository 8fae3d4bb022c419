"""Classical multi-task learning: regularised linear models (numpy / scipy / scikit-learn).

Data are in long format: one row per (task, sample), the task id in the column
``task_col`` of ``X``, ``y`` 1-D (see ``docs/linear.md``). Every estimator
follows the scikit-learn contract and minimises, for ``W`` of shape
(n_features, n_tasks)::

    sum_t 1/(2 n_t) ||y_t - X_t w_t - b_t||^2 + penalty(W)       (regressors)
    sum_t 1/n_t sum_i log(1 + exp(-y_i (x_i . w_t + b_t))) + penalty(W)   (classifiers)

This package never imports torch.
"""

from multitask.linear._clustered import ClusteredMTLClassifier, ClusteredMTLRegressor
from multitask.linear._cv import (
    GroupLassoClassifierCV,
    GroupLassoRegressorCV,
    L1InfClassifierCV,
    L1InfRegressorCV,
    MultiTaskCV,
    TraceNormClassifierCV,
    TraceNormRegressorCV,
)
from multitask.linear._dirty import DirtyModelClassifier, DirtyModelRegressor
from multitask.linear._graph_regularized import (
    GraphRegularizedClassifier,
    GraphRegularizedRegressor,
)
from multitask.linear._group_lasso import GroupLassoClassifier, GroupLassoRegressor
from multitask.linear._independent import IndependentLogistic, IndependentRidge, PooledRidge
from multitask.linear._l1inf import L1InfClassifier, L1InfRegressor
from multitask.linear._mean_regularized import (
    MeanRegularizedClassifier,
    MeanRegularizedRegressor,
)
from multitask.linear._robust import RobustMTLClassifier, RobustMTLRegressor
from multitask.linear._sparse_group import (
    SparseGroupLassoClassifier,
    SparseGroupLassoRegressor,
)
from multitask.linear._trace_norm import TraceNormClassifier, TraceNormRegressor
from multitask.linear._tree_group import TreeGroupLassoClassifier, TreeGroupLassoRegressor

__all__ = [
    "ClusteredMTLClassifier",
    "ClusteredMTLRegressor",
    "DirtyModelClassifier",
    "DirtyModelRegressor",
    "GraphRegularizedClassifier",
    "GraphRegularizedRegressor",
    "GroupLassoClassifier",
    "GroupLassoClassifierCV",
    "GroupLassoRegressor",
    "GroupLassoRegressorCV",
    "IndependentLogistic",
    "IndependentRidge",
    "L1InfClassifier",
    "L1InfClassifierCV",
    "L1InfRegressor",
    "L1InfRegressorCV",
    "MeanRegularizedClassifier",
    "MeanRegularizedRegressor",
    "MultiTaskCV",
    "PooledRidge",
    "RobustMTLClassifier",
    "RobustMTLRegressor",
    "SparseGroupLassoClassifier",
    "SparseGroupLassoRegressor",
    "TraceNormClassifier",
    "TraceNormClassifierCV",
    "TraceNormRegressor",
    "TraceNormRegressorCV",
    "TreeGroupLassoClassifier",
    "TreeGroupLassoRegressor",
]
