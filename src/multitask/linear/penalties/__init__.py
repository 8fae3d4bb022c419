"""Penalties of the classical half: value, prox, subdifferential distance, alpha_max.

Every penalty acts on ``W`` of shape ``(n_features, n_tasks)`` (composite
penalties with ``n_components = 2`` on ``(2, n_features, n_tasks)``) and is
stateless after construction. Smooth penalties (:class:`SmoothPenalty`) expose
``value``, ``gradient`` and ``lipschitz`` instead of a prox. The pieces of
clustered MTL are functions in :mod:`multitask.linear.penalties.clustered`.
See ``docs/penalties.md``.
"""

from . import clustered
from ._base import Penalty, RowSeparablePenalty, SmoothPenalty
from ._dirty import Dirty
from ._graph import (
    GraphRegularized,
    graph_matrix_from_adjacency,
    graph_matrix_from_edges,
    laplacian_from_adjacency,
    laplacian_from_edges,
)
from ._l1 import L1
from ._l1inf import L1Inf
from ._l21 import L21
from ._mean_regularized import MeanRegularized
from ._ridge import Ridge
from ._robust import RobustMTL
from ._sparse_group import SparseGroupLasso
from ._trace import TraceNorm
from ._tree import TreeGroupLasso

__all__ = [
    "L1",
    "L21",
    "Dirty",
    "GraphRegularized",
    "L1Inf",
    "MeanRegularized",
    "Penalty",
    "Ridge",
    "RobustMTL",
    "RowSeparablePenalty",
    "SmoothPenalty",
    "SparseGroupLasso",
    "TraceNorm",
    "TreeGroupLasso",
    "clustered",
    "graph_matrix_from_adjacency",
    "graph_matrix_from_edges",
    "laplacian_from_adjacency",
    "laplacian_from_edges",
]
