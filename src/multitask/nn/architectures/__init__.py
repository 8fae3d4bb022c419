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

# the survey's deep architectures (cross-stitch ... MTAN)
from multitask.nn.architectures.cross_stitch import CrossStitch  # noqa: E402
from multitask.nn.architectures.fully_adaptive import FullyAdaptiveSharing  # noqa: E402
from multitask.nn.architectures.joint_many_task import JointManyTask  # noqa: E402
from multitask.nn.architectures.low_supervision import LowSupervision  # noqa: E402
from multitask.nn.architectures.mmoe import MMoE  # noqa: E402
from multitask.nn.architectures.mtan import MTAN  # noqa: E402
from multitask.nn.architectures.ple import CGC, PLE  # noqa: E402
from multitask.nn.architectures.relationship import DeepRelationshipNetwork  # noqa: E402
from multitask.nn.architectures.sluice import Sluice  # noqa: E402
from multitask.nn.architectures.tensor_factorized import TensorFactorized  # noqa: E402

ARCHITECTURES["cross_stitch"] = CrossStitch
ARCHITECTURES["sluice"] = Sluice
ARCHITECTURES["relationship"] = DeepRelationshipNetwork
ARCHITECTURES["fully_adaptive"] = FullyAdaptiveSharing
ARCHITECTURES["low_supervision"] = LowSupervision
ARCHITECTURES["joint_many_task"] = JointManyTask
ARCHITECTURES["tensor_factorized"] = TensorFactorized
ARCHITECTURES["mmoe"] = MMoE
ARCHITECTURES["cgc"] = CGC
ARCHITECTURES["ple"] = PLE
ARCHITECTURES["mtan"] = MTAN
__all__ += [
    "CGC",
    "MTAN",
    "PLE",
    "CrossStitch",
    "DeepRelationshipNetwork",
    "FullyAdaptiveSharing",
    "JointManyTask",
    "LowSupervision",
    "MMoE",
    "Sluice",
    "TensorFactorized",
]
