"""Gradient aggregators: ``(n_tasks, n_params)`` Jacobian -> ``(n_params,)`` update direction.

Every aggregator is a :class:`GradientAggregator`; linear ones also give ``weights(J)``.
``AGGREGATORS`` maps the lower-case names used by the CLI and the benchmarks to the classes.
"""

from ._aligned_mtl import AlignedMTL
from ._base import GradientAggregator
from ._cagrad import CAGrad
from ._graddrop import GradDrop
from ._gradvac import GradVac
from ._imtl_g import IMTLG
from ._mean import Mean
from ._mgda import MGDA
from ._nash_mtl import NashMTL
from ._pcgrad import PCGrad
from ._sum import Sum
from ._upgrad import UPGrad

AGGREGATORS: dict[str, type[GradientAggregator]] = {
    "mean": Mean,
    "sum": Sum,
    "mgda": MGDA,
    "pcgrad": PCGrad,
    "gradvac": GradVac,
    "cagrad": CAGrad,
    "nash_mtl": NashMTL,
    "imtl_g": IMTLG,
    "aligned_mtl": AlignedMTL,
    "upgrad": UPGrad,
    "graddrop": GradDrop,
}

__all__ = [
    "AGGREGATORS",
    "IMTLG",
    "MGDA",
    "AlignedMTL",
    "CAGrad",
    "GradDrop",
    "GradVac",
    "GradientAggregator",
    "Mean",
    "NashMTL",
    "PCGrad",
    "Sum",
    "UPGrad",
]
