"""The diagonal (Jacobi) metric of variable-metric FISTA: one entry per feature row.

FISTA's scalar step ``1 / L`` is set by the stiffest direction of the whole problem; with
raw features of very different scales (School: percentages of scale 30 beside one-hots of
standard deviation 0.07, per-task condition number 2.6e5) the flat directions then move
at a fraction of their own curvature and the solver stalls. The metric ``M = c M0`` with
``M0 = diag(m)`` (``m_j`` the largest diagonal entry of row ``j`` of the per-task Hessians,
the same for all tasks, plus one entry per task intercept when the intercept is a solver
variable) gives every feature row the step of its own curvature; ``c`` is the exact top
eigenvalue of the Hessian bound in that metric, so no backtracking is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

__all__ = ["RowMetric", "jacobi_metric"]

#: floor of the metric relative to its largest entry: a column that is zero (or constant
#: within every task, centred to rounding noise) gets a bounded step, not ``1 / 0``
_FLOOR = 1e-10
#: the metric is used when it divides the condition number (FISTA's iterations by about its
#: square root), or lengthens the longest step, by at least this much
GAIN = 4.0
#: eigenvalues below this fraction of the largest count as zero in a condition number
_ZERO_EIG = 1e-9
#: largest shared design solved by a dense eigendecomposition (Lanczos above, as in
#: :mod:`..datafits`)
_DENSE_EIG = 400


@dataclass(frozen=True)
class RowMetric:
    """``M = c diag(m, m_b)``: a row-diagonal metric majorising the problem's Hessian.

    Attributes
    ----------
    m : ndarray of shape (n_features, 1) or (n_features, n_tasks)
        Jacobi diagonal of the feature rows (positive), or of every entry (per task).
    m_b : ndarray of shape (n_tasks,) or None
        Entries of the task intercepts when they are solver variables.
    c : float
        ``lambda_max(M0^{-1/2} H M0^{-1/2})`` for the Hessian bound ``H`` (times the number
        of components): ``f(x + d) <= f(x) + <g, d> + c/2 ||d||_{M0}^2``.
    kappa, kappa_scalar : float
        Condition numbers of the datafit's Hessian bound (largest over smallest non-zero
        eigenvalue, over all tasks) in this metric and in the identity: FISTA's iteration
        count grows with their square root.
    step_gain : float
        ``L / (c min_j m_j)`` over the non-floored rows (and the intercepts): how much
        longer the longest step of the metric is than the scalar step ``1 / L``. The
        condition number misses a variable that is well conditioned but far from its
        optimum and slowed by the scalar step, such as the intercept beside features of
        scale 100 (Landmine times 100: both condition numbers 7e4, ``step_gain`` 2e4).
    """

    m: np.ndarray
    m_b: np.ndarray | None
    c: float
    kappa: float = 1.0
    kappa_scalar: float = 1.0
    step_gain: float = 1.0

    def pays(self, gain=None):
        """True when the metric divides the condition number, or lengthens the longest
        step, by at least ``gain`` (default :data:`GAIN`). Below, the iterates are close
        to the scalar ones and an iteration's extra passes (weighted dots, no numba
        kernels) are not repaid."""
        gain = GAIN if gain is None else gain
        return self.kappa * gain <= self.kappa_scalar or self.step_gain >= gain

    @property
    def scale(self):
        """``c m``, the shape of :attr:`m`: the inverse of each row's (entry's) step."""
        return self.c * self.m

    @property
    def scale_b(self):
        """``c m_b`` (the inverse of each intercept's step), or None."""
        return None if self.m_b is None else self.c * self.m_b


def jacobi_metric(datafit, smooth_lipschitz=0.0, n_comp=1, joint_b=False, per_task=False):
    """The Jacobi metric of ``datafit`` (+ smooth penalties), or None where it is not cheap.

    Parameters
    ----------
    datafit : Quadratic or Logistic
        Profiled (centred) or not; the Hessian bound of task ``t`` is
        ``curvature * X_t^T D_t X_t`` (of the centred rows when profiled), bordered by
        ``mu_t`` and 1 when the intercept is a solver variable (``joint_b``).
    smooth_lipschitz : float, default=0.0
        Sum of the smooth penalties' Lipschitz constants. Every smooth penalty of
        :mod:`..penalties` has the Hessian ``I_p (x) K`` (the same ``T x T`` matrix for
        every feature row), so ``smooth_lipschitz = lambda_max(K)`` is added to every
        ``m_j`` and ``max_j smooth_lipschitz / m_j <= 1`` to ``c``
        (``lambda_max(A + B) <= lambda_max(A) + lambda_max(B)``).
    n_comp : int, default=1
        Components of a composite penalty, whose variables all enter the model weight:
        the Hessian of the stacked variables is ``11^T (x) H``, so ``c`` is multiplied by it.
    joint_b : bool, default=False
    per_task : bool, default=False
        One entry per feature and task (``m_jt`` the diagonal of task ``t``'s Hessian)
        instead of the largest over tasks; for penalties whose prox takes a step per entry
        (``entry_step``). Per-task designs only: a shared design has one Hessian.

    Returns
    -------
    RowMetric or None
        None when the Gram matrices are not cheap to form (:attr:`gram_is_cheap`; or a
        shared design of more than 400 features whose datafit does not use them), or the
        design is all zero: solvers then keep the scalar step.

    References
    ----------
    Combettes, P. L. and Vũ, B. C. "Variable metric forward-backward splitting with
    applications to monotone inclusions in duality." Optimization 63(9), 2014, eq. (1.3)
    and Theorem 4.1 (the forward-backward step in a metric ``U``: ``x - U^{-1} grad``,
    then the prox in the norm of ``U^{-1}``; converges when ``U`` majorises the Hessian).
    Chouzenoux, E., Pesquet, J.-C. and Repetti, A. "Variable metric forward-backward
    algorithm for minimizing the sum of a differentiable function and a convex function."
    J. Optim. Theory Appl. 162, 2014, Assumption 3.1 (the majorant metric ``A(x)``).
    van der Sluis, A. "Condition numbers and equilibration of matrices." Numerische
    Mathematik 14, 1969, Theorem 4.1 (the Jacobi scaling is within a factor ``p`` of the
    best diagonal one).
    """
    design = getattr(datafit, "design", None)
    if design is None or not design.gram_is_cheap:
        return None
    big = design.shared and design.n_features > _DENSE_EIG
    if big and not getattr(datafit, "use_gram", False) and "gram" not in design.__dict__:
        return None  # the datafit's own bound took Lanczos on the data: no Gram to form
    per_task = bool(per_task) and not design.shared
    key = (datafit._curvature, datafit.profiled, bool(joint_b), float(smooth_lipschitz), per_task)
    cache = design.__dict__.setdefault("_jacobi_metric_cache", {})
    if key not in cache:
        cache[key] = _compute(datafit, float(smooth_lipschitz), joint_b, per_task)
    metric = cache[key]
    if metric is None or n_comp == 1:
        return metric
    return replace(metric, c=n_comp * metric.c)


def _compute(datafit, smooth_l, joint_b, per_task):
    design = datafit.design
    curv = datafit._curvature
    G = design.gram_centered if datafit.profiled else design.gram
    diag = np.diagonal(G, axis1=-2, axis2=-1)  # (p,) or (T, p)
    if diag.ndim == 1:
        diag = diag[None, :]
    m = curv * (diag if per_task else diag.max(axis=0, keepdims=True)) + smooth_l  # (T|1, p)
    top = float(m.max(initial=0.0))
    if not np.isfinite(top) or top <= 0:
        return None
    live = m > _FLOOR * top  # floored rows are zero (or rounding noise) in the data
    m = np.maximum(m, _FLOOR * top)
    m_b = np.full(design.n_tasks, curv) if joint_b else None
    H, s = _scaled(curv * G, m, design, curv if joint_b else None)
    B = H * s[..., :, None] * s[..., None, :]
    if H.ndim == 2 and H.shape[0] > _DENSE_EIG:
        c = _top_eigenvalue(B)
        kappa = kappa_scalar = 1.0  # not computed: a single large design is well served
    else:
        c = float(np.linalg.eigvalsh(B)[..., -1].max())
        # condition numbers without the floored rows, whose rounding noise would pass
        # for tiny curvatures once scaled by 1 / floor
        keep = live if not joint_b else np.concatenate([live, np.ones_like(live[:, :1])], 1)
        keep = keep[0] if H.ndim == 2 else keep
        mask = keep[..., :, None] & keep[..., None, :]
        kappa = _condition(np.linalg.eigvalsh(np.where(mask, B, 0.0)))
        kappa_scalar = _condition(np.linalg.eigvalsh(np.where(mask, H, 0.0)))
    c += float(np.max(smooth_l / m))
    L = float(np.max(np.linalg.eigvalsh(H)[..., -1])) + smooth_l
    smallest = min(float(m[live].min()), curv) if joint_b else float(m[live].min())
    gain = L / (c * smallest)
    return RowMetric(np.ascontiguousarray(m.T), m_b, c, kappa, kappa_scalar, gain)


def _scaled(H, m, design, border):
    """``(H, s)``: the Hessian bounds ``H_t`` (bordered by the intercept row
    ``border * [mu_t, 1]`` when given) and the scaling ``s = D_t^{-1/2}``, ``D_t = diag(m[t])``
    (``m`` of shape (n_tasks or 1, p))."""
    s = 1.0 / np.sqrt(m)
    if border is not None:
        mu = design.x_mean[:, :1] if design.shared else design.x_mean
        H = _bordered(H, border * mu, border, design.shared)
        s = np.concatenate([s, np.full((s.shape[0], 1), 1.0 / np.sqrt(border))], axis=1)
    return H, (s[0] if H.ndim == 2 else s)


def _top_eigenvalue(B):
    from scipy.sparse.linalg import eigsh  # lazy: heavy import

    top = eigsh(B, k=1, which="LA", tol=1e-8, return_eigenvectors=False)[0]
    return float(top) * (1 + 1e-8)


def _condition(eig):
    """Largest eigenvalue over the smallest non-zero one, over all tasks."""
    top = float(eig.max())
    live = eig[eig > _ZERO_EIG * top]
    return top / float(live.min()) if live.size else 1.0


def _bordered(H, col, corner, shared):
    """``[[H_t, col_t], [col_t^T, corner]]`` for every task (one matrix when shared)."""
    p = H.shape[-1]
    if shared:
        out = np.empty((p + 1, p + 1))
        out[:p, :p], out[:p, p], out[p, :p] = H, col[:, 0], col[:, 0]
    else:
        T = H.shape[0]
        out = np.empty((T, p + 1, p + 1))
        out[:, :p, :p], out[:, :p, p], out[:, p, :p] = H, col.T, col.T
    out[..., p, p] = corner
    return out
