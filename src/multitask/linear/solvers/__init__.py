"""Solvers of the classical half: FISTA, working-set BCD, clustered MTL, paths.

Every solver takes a datafit (:mod:`multitask.linear.datafits`) and a penalty
(:mod:`multitask.linear.penalties`) and returns a frozen :class:`SolverResult`.
See ``docs/solvers.md``.
"""

from ._result import SolverResult
from .bcd import bcd
from .fista import fista

__all__ = ["SolverResult", "bcd", "fista"]
