"""The frozen result every solver returns, and checks shared by the solvers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SolverResult"]


@dataclass(frozen=True)
class SolverResult:
    """Outcome of a solver run.

    Attributes
    ----------
    W : ndarray of shape (n_features, n_tasks), or (2, n_features, n_tasks)
        Solution; composite penalties (``n_components = 2``) return both components, whose
        sum is the model weight.
    intercept : ndarray of shape (n_tasks,)
        Zeros when ``fit_intercept=False``.
    n_iter : int
        Iterations (FISTA steps, or BCD epochs over the working sets).
    objective : float
        Datafit + smooth penalties + penalty at the solution.
    stop_crit : float
        Last stopping criterion: relative duality gap ``gap / primal`` where the gap is
        known, else the prox-gradient mapping norm relative to the gradient norm at zero.
    converged : bool
        ``stop_crit <= tol`` was reached within ``max_iter``.
    history : tuple of float
        Objective values: FISTA records every ``gap_freq``-th iteration (every iteration
        while backtracking is active), BCD every outer iteration.
    dual_gap : float or None
        Duality gap (absolute, >= 0) at the returned solution, where the datafit and
        penalty define one (quadratic loss with a norm penalty); None otherwise.
    """

    W: np.ndarray
    intercept: np.ndarray
    n_iter: int
    objective: float
    stop_crit: float
    converged: bool
    history: tuple = ()
    dual_gap: float | None = None


def final_gap(df, W, S, penalty) -> float | None:
    """Absolute duality gap at ``W`` (``S``: the datafit's linear state), or None."""
    if not hasattr(df, "gap_at"):
        return None
    gap = df.gap_at(W, S, penalty)
    return None if gap is None else max(float(gap[0]), 0.0)


def initial_point(datafit, penalty, W0, b0):
    """Copies of ``W0`` and ``b0`` with checked shapes (zeros when None)."""
    p, T = datafit.n_features, datafit.n_tasks
    n_comp = getattr(penalty, "n_components", 1)
    shape = (p, T) if n_comp == 1 else (n_comp, p, T)
    if W0 is None:
        W = np.zeros(shape)
    else:
        W = np.array(W0, dtype=float, copy=True)
        if W.shape != shape:
            raise ValueError(
                f"W0 has shape {W.shape}, expected {shape} for {n_comp} component(s) with "
                f"n_features={p}, n_tasks={T}; pass W0=None to start from zero."
            )
    b = np.zeros(T) if b0 is None else np.array(b0, dtype=float, copy=True)
    if b.shape != (T,):
        raise ValueError(f"b0 has shape {b.shape}, expected ({T},).")
    return W, b


def check_penalty(penalty, needs):
    """Raise a readable error if ``penalty`` lacks one of the methods in ``needs``."""
    missing = [name for name in needs if not hasattr(penalty, name)]
    if missing:
        raise TypeError(
            f"{type(penalty).__name__} lacks {missing}, which this solver needs; use a "
            "penalty from multitask.linear.penalties or choose another solver."
        )


def gradient_scale(g, gb):
    """Scale of a relative stopping criterion from the gradient norms at zero.

    Parameters
    ----------
    g : float
        Norm of the datafit gradient in ``W`` at zero.
    gb : float
        Norm of its gradient in the intercepts (0 when they are not solver variables).

    Returns
    -------
    float
        ``g``, except when it is negligible (at most ``sqrt(eps) * gb``, e.g. features
        constant within every task, centred to zero): then ``gb``, as only the intercepts
        move; 1.0 when both vanish (the start is optimal) instead of a division by zero.
    """
    if g > np.sqrt(np.finfo(float).eps) * gb and g > 0:
        return g
    return gb if gb > 0 else 1.0


def model_weight(X):
    """Model weight from the solver variable (sum over components if 3-D)."""
    return X if X.ndim == 2 else X.sum(axis=0)
