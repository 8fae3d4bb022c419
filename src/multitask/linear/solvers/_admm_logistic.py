"""The logistic loss in ADMM: inexact Newton data steps and a true duality-gap certificate.

Every task's rows are laid out in one zero-padded block, ``Xp`` of shape
``(n_tasks, n_max, q)`` (``q = n_features + 1`` with the intercept column), with row weights
``dp`` (zero on the padding) and labels ``yp``, so that margins, gradients and Hessians of
all tasks are batched products (no loop over tasks). ADMM's data step is then, per task,

    min_{w, b} sum_i d_i log(1 + exp(-y_i (x_i . w + b))) + rho / 2 ||w - v||^2,

strongly convex in ``w``, solved by damped Newton steps warm-started at the previous
solution, to an accuracy tied to the outer residuals (inexact minimisation).

The dual of ``sum_i d_i log(1 + exp(-y_i m_i)) + h(W)`` (``h`` a norm of strength ``alpha``)
is ``D(u) = sum_i d_i H(u_i)``, ``H`` the binary entropy, over ``u`` in ``[0, 1]^n`` with
``h^*(X^T D (y u)) <= 1`` (the dual norm relative to the strengths) and, with intercepts,
``sum_{i in t} d_i y_i u_i = 0`` in every task. The point ``u = sigmoid(-y m)`` of any
``(W, b)``, balanced between the classes of each task (one class's ``u`` scaled down) and
rescaled into the dual ball, is feasible, so ``D(u)`` is a lower bound of the optimum
whatever the accuracy of the Newton steps.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, xlogy

from ..datafits import newton_intercept
from ._admm_certificate import relative_dual_norm
from ._admm_ridge import spectrum_ends

__all__ = ["LogisticProblem", "padded_size"]

#: Newton steps per data step at most (a warm start needs one or two)
_MAX_NEWTON = 8
#: Armijo's sufficient decrease, and the step halvings tried
_ARMIJO, _HALVINGS = 1e-4, 30
#: Newton steps for an intercept, and their stop on the intercept gradient
_B_STEPS, _B_TOL = 50, 1e-13


def padded_size(design):
    """Floats in the padded layout: ``n_tasks * n_max * (n_features + 1)``."""
    if design.shared:
        n_max = design.n_samples
    else:
        n_max = int(np.bincount(design.task_idx, minlength=design.n_tasks).max(initial=0))
    return design.n_tasks * n_max * (design.n_features + 1)


def _pad(design, fit_intercept):
    """``(Xp, yp, dp)``: the padded layout of the design (module docstring)."""
    X = design.X.toarray() if sp.issparse(design.X) else np.asarray(design.X, dtype=float)
    T, n = design.n_tasks, design.n_samples
    if fit_intercept:
        X = np.column_stack([X, np.ones(n)])
    if design.shared:
        Xp = np.ascontiguousarray(np.broadcast_to(X, (T, *X.shape)))
        return Xp, np.ascontiguousarray(design.y.T), np.tile(design.weights, (T, 1))
    task = design.task_idx
    counts = np.bincount(task, minlength=T)
    order = np.argsort(task, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(n) - starts[task[order]]
    Xp = np.zeros((T, int(counts.max(initial=0)), X.shape[1]))
    yp, dp = np.ones(Xp.shape[:2]), np.zeros(Xp.shape[:2])
    Xp[task[order], pos] = X[order]
    yp[task[order], pos] = design.y[order]
    dp[task[order], pos] = design.weights[order]
    return Xp, yp, dp


class LogisticProblem:
    """Data step and certificate of :func:`.admm` for the logistic loss.

    Parameters
    ----------
    datafit : Logistic
    fit_intercept : bool
        Intercepts are unpenalised variables of every task's Newton system; without them
        ``b = 0``.

    References
    ----------
    Boyd, S. et al. "Distributed optimization and statistical learning via the alternating
    direction method of multipliers." Foundations and Trends in Machine Learning 3(1),
    2011, Sec. 3.4.4 (inexact minimisation) and Sec. 8.2.1 (logistic data steps).
    Eckstein, J. and Bertsekas, D. P. "On the Douglas-Rachford splitting method and the
    proximal point algorithm for maximal monotone operators." Mathematical Programming
    55, 1992, Theorem 8 (convergence with summable errors in the steps).
    """

    def __init__(self, datafit, fit_intercept):
        self.Xp, self.yp, self.dp = _pad(datafit.design, fit_intercept)
        self.XpT = self.Xp.transpose(0, 2, 1)
        self.p = datafit.n_features
        self.fit_intercept = bool(fit_intercept)
        self.wq = np.zeros((datafit.n_tasks, self.Xp.shape[2]))  # warm start (T, q)

    # ------------------------------------------------------------ batched pieces
    def _margins(self, wq):
        return np.matmul(self.Xp, wq[:, :, None])[:, :, 0]

    def _rmatvec(self, R):
        return np.matmul(self.XpT, R[:, :, None])[:, :, 0]

    def _hessian(self, c):
        return np.matmul(self.XpT, self.Xp * c[:, :, None])

    def _losses(self, wq, V, rho, z=None):
        """Every task's data-step objective, shape (n_tasks,) (``z``: the signed margins
        ``y m`` of ``wq`` when known)."""
        z = self.yp * self._margins(wq) if z is None else z
        loss = np.sum(self.dp * np.logaddexp(0.0, -z), axis=1)
        diff = wq[:, : self.p] - V.T
        return loss + 0.5 * rho * np.einsum("tj,tj->t", diff, diff)

    # ------------------------------------------------------------------ data step
    def hessian_bound(self):
        """``X_t^T D_t X_t / 4`` (intercept column included), shape (n_tasks, q, q): the
        logistic Hessian's bound, whose conditioning FISTA sees."""
        return self._hessian(0.25 * self.dp)

    def initial_rho(self):
        """``sqrt(lambda_max lambda_min)`` of the Hessians at zero (intercept profiled),
        the optimal ``rho`` for a quadratic (Ghadimi et al. 2015)."""
        H = self.hessian_bound()
        Hw = H[:, : self.p, : self.p]
        if self.fit_intercept:
            h = H[:, : self.p, self.p]
            hb = np.maximum(H[:, self.p, self.p], np.finfo(float).tiny)
            Hw = Hw - h[:, :, None] * h[:, None, :] / hb[:, None, None]
        top, low = spectrum_ends(np.linalg.eigvalsh(Hw))
        return float(np.sqrt(top * low)) if low is not None else 1.0

    def warm_start(self, W, b):
        self.wq[:, : self.p] = W.T
        if self.fit_intercept:
            self.wq[:, self.p] = b

    def solve(self, V, rho, inner_tol):
        """Newton steps on every task's data step until its gradient norm is at most
        ``inner_tol`` (at least one step), shape (n_features, n_tasks)."""
        wq, p = self.wq, self.p
        for k in range(_MAX_NEWTON):
            z = self.yp * self._margins(wq)
            u = expit(-z)
            g = self._rmatvec(-self.dp * self.yp * u)
            g[:, :p] += rho * (wq[:, :p] - V.T)
            if k and np.sqrt(np.max(np.einsum("tj,tj->t", g, g))) <= inner_tol:
                break
            H = self._hessian(self.dp * u * (1.0 - u))
            idx = np.arange(p)
            H[:, idx, idx] += rho
            if self.fit_intercept:  # a task of one class has no curvature in b
                H[:, p, p] += 1e-12 * (1.0 + H[:, p, p])
            step = np.linalg.solve(H, g[:, :, None])[:, :, 0]
            # a trust radius, as newton_intercept's: where the margins saturate the curvature
            # in b is ~0 and the step ~1e11; no halving of it decreased the objective, so the
            # task never moved again and ADMM settled at a point that is not the optimum
            size = np.linalg.norm(step, axis=1)
            radius = 1.0 + np.linalg.norm(wq, axis=1)
            step *= np.minimum(1.0, radius / np.maximum(size, np.finfo(float).tiny))[:, None]
            wq = self._line_search(wq, step, g, V, rho, self._losses(wq, V, rho, z))
        self.wq = wq
        return np.ascontiguousarray(wq[:, :p].T)

    def _line_search(self, wq, step, g, V, rho, f0):
        """Per-task Armijo backtracking along the Newton direction ``-step`` from the
        objective values ``f0`` at ``wq``."""
        slope = np.einsum("tj,tj->t", g, step)
        s = np.ones(len(wq))
        for _ in range(_HALVINGS):
            new = wq - s[:, None] * step
            bad = self._losses(new, V, rho) > f0 - _ARMIJO * s * slope + 1e-15 * np.abs(f0)
            if not bad.any():
                return new
            s = np.where(bad, 0.5 * s, s)
        return np.where(bad[:, None], wq, new)

    # --------------------------------------------------------------- certificate
    def intercept(self, W):
        """Optimal intercepts for fixed ``W`` (zeros without intercept), shape (n_tasks,):
        safeguarded Newton per task (:func:`..datafits.newton_intercept`) from the data
        step's intercepts."""
        if not self.fit_intercept:
            return np.zeros(W.shape[1])
        m0 = self._margins(np.vstack([W, np.zeros(W.shape[1])]).T)

        def derivatives(b):
            z = self.yp * (m0 + b[:, None])
            u = expit(-z)
            return -np.sum(self.dp * self.yp * u, axis=1), np.sum(self.dp * u * expit(z), axis=1)

        b = self.wq[:, self.p].copy()  # the data step's intercepts: close to optimal
        return newton_intercept(derivatives, b, _B_STEPS, _B_TOL)

    def _wq(self, W, b):
        return np.vstack([W, b]).T if self.fit_intercept else np.ascontiguousarray(W.T)

    def primal(self, W):
        """``(f(W, b), grad_W f(W, b), b)`` at the optimal intercepts ``b`` of ``W``."""
        b = self.intercept(W)
        z = self.yp * self._margins(self._wq(W, b))
        value = float(np.sum(self.dp * np.logaddexp(0.0, -z)))
        grad = self._rmatvec(-self.dp * self.yp * expit(-z))[:, : self.p].T
        return value, grad, b

    def dual(self, W, penalty):
        """Dual value ``sum_i d_i H(u_i)`` of the feasible point made from ``W``."""
        b = self.intercept(W)
        z = self.yp * self._margins(self._wq(W, b))
        u, v = expit(-z), expit(z)  # u and 1 - u, each to full relative precision
        if self.fit_intercept:
            u, v = self._balance(u, v)
        G = self._rmatvec(-self.dp * self.yp * u)[:, : self.p].T
        ratio = relative_dual_norm(penalty, G)
        if ratio > 1.0:
            s = 1.0 / ratio
            u, v = s * u, (1.0 - s) + s * v
        entropy = -(xlogy(u, u) + xlogy(v, v))
        return float(np.sum(self.dp * entropy))

    def _balance(self, u, v):
        """Scale one class's ``u`` per task so that ``sum_i d_i y_i u_i = 0``."""
        pos = self.yp > 0
        mass_pos = np.sum(np.where(pos, self.dp * u, 0.0), axis=1)
        mass_neg = np.sum(np.where(pos, 0.0, self.dp * u), axis=1)
        a_pos = np.where(mass_pos > mass_neg, mass_neg / np.maximum(mass_pos, 1e-300), 1.0)
        a_neg = np.where(mass_neg > mass_pos, mass_pos / np.maximum(mass_neg, 1e-300), 1.0)
        a = np.where(pos, a_pos[:, None], a_neg[:, None])
        return a * u, (1.0 - a) + a * v
