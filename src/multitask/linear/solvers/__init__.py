"""Solvers of the classical half: FISTA, working-set BCD, ADMM, clustered MTL, paths.

Every solver takes a datafit (:mod:`multitask.linear.datafits`) and a penalty
(:mod:`multitask.linear.penalties`) and returns a frozen :class:`SolverResult`.
See ``docs/solvers.md``.
"""

from ._result import SolverResult
from ._solve import choose_solver, solve
from .admm import admm
from .bcd import bcd
from .clustered import ClusteredResult, clustered_mtl
from .fista import fista
from .path import PathResult, alpha_max, regularization_path

__all__ = [
    "ClusteredResult",
    "PathResult",
    "SolverResult",
    "admm",
    "alpha_max",
    "bcd",
    "choose_solver",
    "clustered_mtl",
    "fista",
    "regularization_path",
    "solve",
]
