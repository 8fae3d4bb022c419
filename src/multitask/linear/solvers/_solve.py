"""``solve``: pick the fastest correct solver for a datafit + penalty problem."""

from __future__ import annotations

import logging

import numpy as np

from ..datafits import Quadratic, gap_certifies
from .admm import admm, admm_applies, admm_pays
from .bcd import _KERNEL_KINDS, bcd
from .fista import fista

__all__ = ["choose_solver", "solve"]

logger = logging.getLogger(__name__)

#: private switch: False makes ``solver="auto"`` never choose ADMM (the solver before it,
#: for before/after measurements in one process)
_AUTO_ADMM = True
#: below this many features FISTA wins outright (and no numba kernel is compiled or loaded)
_SMALL_P = 64


def choose_solver(datafit, penalty, smooth=None, n_solves=1):
    """Name of the solver :func:`solve` uses, and whether to compute with Gram matrices.

    Rules (measured in ``benchmarks/linear_speed.py``):

    - smooth penalties, composite or non-row-separable penalties, or few features
      (< 64): ``"fista"``;
    - quadratic loss on a shared design with ``n_features <= n_samples`` and Gram work
      that pays off over the expected passes (``n_features <= 10 * n_tasks * n_solves``):
      on the Gram matrix, ``"bcd"`` for L1 / L21 (numba Gram kernel), else ``"fista"``;
      except a single L1 / L21 solve whose violating rows at zero are few enough that
      working sets on the data cost less than the Gram matrix (:func:`_sparse_start_pays`);
    - otherwise, row-separable penalties: working-set ``"bcd"``.

    Parameters
    ----------
    n_solves : int, default=1
        How many solves share the design (a path passes its length): Gram matrices are
        worth computing sooner.

    Returns
    -------
    (str, bool)
        Solver name and ``use_gram``.
    """
    design = datafit.design
    quadratic = isinstance(datafit, Quadratic)
    gram_ok = quadratic and design.gram_is_cheap
    separable = getattr(penalty, "row_separable", False)
    if smooth or getattr(penalty, "n_components", 1) != 1 or not separable:
        return "fista", gram_ok
    if design.n_features < _SMALL_P:
        return "fista", gram_ok
    if gram_ok and design.shared:
        kernel = type(penalty).__name__ in _KERNEL_KINDS
        gram_pays = design.n_features <= 10 * design.n_tasks * n_solves
        if gram_pays and not (kernel and n_solves == 1 and _sparse_start_pays(datafit, penalty)):
            return ("bcd" if kernel else "fista"), True
    if not design.shared and gram_ok:
        return "bcd", True
    return "bcd", False


def _sparse_start_pays(datafit, penalty):
    """True when working sets on the data beat the full Gram matrix for one solve.

    The rows violating the optimality conditions at ``W = 0`` (from the cached
    ``X^T D y``, no extra pass) estimate the working set ``k``. Costs in flops: the full
    Gram ``n p^2 / 2`` (BLAS syrk) against two gradient passes ``2 n p T`` plus the
    working set's Gram ``n k^2``. At L (20000, 1000, 100) and 0.1 alpha_max, ``k = 100``:
    the data route measured 0.34 s against 0.61 s on the Gram matrix.
    """
    design = datafit.design
    p, T = design.n_features, design.n_tasks
    grad0 = datafit.centered().gradient_at_zero()
    k = int(np.count_nonzero(np.any(penalty.prox(-grad0, 1.0) != 0, axis=1)))
    return 2 * p * T + k * k < 0.5 * p * p


def _admm_wanted(datafit, penalty, smooth, b0, fit_intercept, tol):
    """:func:`.admm.admm_applies`, no fixed non-zero intercept (``b0`` with
    ``fit_intercept=False``, which ADMM's Gram form leaves out), and for the squared loss
    with a norm penalty an ``alpha`` at which ADMM's duality gap can certify ``tol``
    (:func:`~multitask.linear.datafits.gap_certifies`; FISTA's mapping criterion below)."""
    fixed_b = not fit_intercept and b0 is not None and np.any(b0)
    if not (_AUTO_ADMM and admm_applies(datafit, penalty, smooth) and not fixed_b):
        return False
    if isinstance(datafit, Quadratic) and getattr(penalty, "n_components", 1) == 1:
        df = datafit.centered() if fit_intercept else datafit
        return gap_certifies(penalty, df.gradient_at_zero(), tol)
    return True


def solve(
    datafit,
    penalty,
    W0=None,
    b0=None,
    *,
    fit_intercept=True,
    smooth=None,
    tol=1e-8,
    max_iter=None,
    solver="auto",
    n_solves=1,
):
    """Solve ``datafit + smooth + penalty`` with the fastest correct solver.

    Parameters
    ----------
    datafit : Quadratic or Logistic
    penalty : Penalty
    W0, b0 : ndarray, optional
        Warm start (copied).
    fit_intercept : bool, default=True
    smooth : sequence of SmoothPenalty, optional
    tol : float, default=1e-8
        Relative duality gap (or relative prox-gradient mapping norm) at which to stop.
    max_iter : int, optional
        Solver default when None (10000 FISTA iterations, 100 BCD working sets).
    solver : {"auto", "fista", "bcd", "admm"}, default="auto"
        ``"auto"`` applies :func:`choose_solver`, then takes ``"admm"`` instead of
        ``"fista"`` for the trace norm and robust MTL where it pays
        (:func:`.admm.admm_pays`: squared loss up to 200 features or on badly
        conditioned Gram matrices; logistic loss on badly conditioned ones);
        ``"admm"`` forces it (squared or logistic loss, :func:`.admm.admm_applies`).
    n_solves : int, default=1
        Number of solves sharing this design (for the Gram decision).

    Returns
    -------
    SolverResult
    """
    if solver not in ("auto", "fista", "bcd", "admm"):
        raise ValueError(f"solver={solver!r} is not one of 'auto', 'fista', 'bcd', 'admm'.")
    name, use_gram = choose_solver(datafit, penalty, smooth, n_solves)
    wanted = name == "fista" and _admm_wanted(datafit, penalty, smooth, b0, fit_intercept, tol)
    if solver == "auto" and wanted and admm_pays(datafit, fit_intercept):
        name = "admm"
    if solver != "auto":
        name = solver
    if isinstance(datafit, Quadratic) and datafit.use_gram != use_gram and solver == "auto":
        datafit = Quadratic(datafit.design, use_gram=use_gram)
    kwargs = {} if max_iter is None else {"max_iter": max_iter}
    logger.debug("solve: %s (use_gram=%s) for %r", name, use_gram, penalty)
    if name == "admm":
        return admm(datafit, penalty, W0, b0, fit_intercept=fit_intercept, tol=tol, **kwargs)
    if name == "bcd":
        if smooth:
            raise ValueError("bcd does not take smooth penalties; use solver='fista'.")
        return bcd(datafit, penalty, W0, b0, fit_intercept=fit_intercept, tol=tol, **kwargs)
    return fista(
        datafit, penalty, W0, b0, fit_intercept=fit_intercept, smooth=smooth, tol=tol, **kwargs
    )
