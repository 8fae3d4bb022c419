"""Loss weightings: ``LossWeighting.forward(losses (n_tasks,)) -> scalar``.

Every class is also listed, by lower-case name, in :data:`WEIGHTINGS` (for the
command line and benchmarks). All but ``static`` are built as
``WEIGHTINGS[name](n_tasks)``; ``static`` takes the weights.
"""

from multitask.nn.weighting._base import LossWeighting
from multitask.nn.weighting.equal import EqualWeighting
from multitask.nn.weighting.static import StaticWeighting

WEIGHTINGS: dict[str, type[LossWeighting]] = {
    "equal": EqualWeighting,
    "static": StaticWeighting,
}

__all__ = [
    "WEIGHTINGS",
    "EqualWeighting",
    "LossWeighting",
    "StaticWeighting",
]
