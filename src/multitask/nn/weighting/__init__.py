"""Loss weightings: ``LossWeighting.forward(losses (n_tasks,)) -> scalar``.

Every class is also listed, by lower-case name, in :data:`WEIGHTINGS` (for the
command line and benchmarks). All but ``static`` are built as
``WEIGHTINGS[name](n_tasks)``; ``static`` takes the weights.
"""

from multitask.nn.weighting._base import LossWeighting
from multitask.nn.weighting.dbmtl import DBMTL
from multitask.nn.weighting.dwa import DWA
from multitask.nn.weighting.equal import EqualWeighting
from multitask.nn.weighting.famo import FAMO
from multitask.nn.weighting.gls import GLS
from multitask.nn.weighting.gradnorm import GradNorm
from multitask.nn.weighting.imtl_l import IMTLL
from multitask.nn.weighting.rlw import RLW
from multitask.nn.weighting.static import StaticWeighting
from multitask.nn.weighting.uncertainty import UncertaintyWeighting

WEIGHTINGS: dict[str, type[LossWeighting]] = {
    "equal": EqualWeighting,
    "static": StaticWeighting,
    "uncertainty": UncertaintyWeighting,
    "gradnorm": GradNorm,
    "dwa": DWA,
    "rlw": RLW,
    "gls": GLS,
    "imtl_l": IMTLL,
    "famo": FAMO,
    "dbmtl": DBMTL,
}

__all__ = [
    "DBMTL",
    "DWA",
    "FAMO",
    "GLS",
    "IMTLL",
    "RLW",
    "WEIGHTINGS",
    "EqualWeighting",
    "GradNorm",
    "LossWeighting",
    "StaticWeighting",
    "UncertaintyWeighting",
]
