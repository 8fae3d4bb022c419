"""Multi-task architectures: ``forward(x) -> dict[task, Tensor]``.

Every class is also listed, by lower-case name, in :data:`ARCHITECTURES`.
To add one: one import line, one ``ARCHITECTURES[...] = ...`` line and one
``__all__.append(...)`` line below.
"""

from multitask.nn.architectures._base import MultiTaskModule
from multitask.nn.architectures.hard_sharing import HardSharing

ARCHITECTURES: dict[str, type[MultiTaskModule]] = {}
ARCHITECTURES["hard_sharing"] = HardSharing

__all__ = ["ARCHITECTURES", "HardSharing", "MultiTaskModule"]

from multitask.nn.architectures.soft_sharing import SoftSharing  # noqa: E402

ARCHITECTURES["soft_sharing"] = SoftSharing
__all__.append("SoftSharing")
