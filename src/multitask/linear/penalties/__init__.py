"""Penalties of the classical half: value, prox, subdifferential distance, alpha_max.

Every penalty acts on ``W`` of shape ``(n_features, n_tasks)`` (composite
penalties with ``n_components = 2`` on ``(2, n_features, n_tasks)``) and is
stateless after construction. See ``docs/penalties.md``.
"""

from ._base import Penalty, RowSeparablePenalty, SmoothPenalty
from ._l1 import L1
from ._l21 import L21

__all__ = [
    "L1",
    "L21",
    "Penalty",
    "RowSeparablePenalty",
    "SmoothPenalty",
]
