"""Small solvers over the task Gramian, in torch, on the Jacobian's device, without host sync.

Every problem here lives in ``n_tasks`` dimensions. They are solved exactly by enumerating the
``2**n_tasks`` candidate supports in one batched LU solve (the optimum's support is among them
and every candidate is feasible or masked out, so the best candidate is the optimum), which costs
about 0.4 ms (MGDA) to 1.5 ms (UPGrad, ten right-hand sides) at ten tasks on one CPU core and
doubles with every task; beyond ``max_exact`` tasks they fall back to a fixed number of
iterations of a first-order or active-set method. No ``.item()``, no Python
``if`` on tensor values: masks and ``torch.where`` decide.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import _host_qp

#: Relative ridge added to a trace-normalised Gramian to keep every sub-system definite: small
#: enough that gradient norms 1000x apart (eigenvalues 1e-6 of the trace) keep 1e-7 accuracy.
RIDGE = {torch.float64: 1e-13, torch.float32: 1e-6}


def solver_dtype(device: torch.device) -> torch.dtype:
    """float64 for the tiny ``(n_tasks, n_tasks)`` problems, except where a device lacks it."""
    return torch.float32 if device.type == "mps" else torch.float64


def gramian(jacobian: Tensor) -> Tensor:
    """Gramian ``J J^T`` of shape ``(n_tasks, n_tasks)`` in the solver dtype."""
    J = jacobian.detach()
    J = J.float() if J.dtype in (torch.float16, torch.bfloat16) else J  # float16 overflows
    return (J @ J.T).to(solver_dtype(J.device))


def to_device(host: Tensor, device: torch.device) -> Tensor:
    """Copy a small CPU tensor to ``device`` without stalling it (pinned, non-blocking on CUDA)."""
    if device.type == "cuda":
        return host.pin_memory().to(device, non_blocking=True)
    return host.to(device)


def to_solver(gramian: Tensor) -> Tensor:
    """A Gramian, detached, in the solver dtype."""
    return gramian.detach().to(solver_dtype(gramian.device))


def normalise(G: Tensor, ridge: float | None = None) -> Tensor:
    """``G / trace(G) + ridge * I`` (a zero Gramian gives ``ridge * I``; default: ``RIDGE``)."""
    ridge = RIDGE[G.dtype] if ridge is None else ridge
    trace = G.diagonal().sum()
    scale = torch.where(trace > 0, trace, torch.ones_like(trace))
    eye = torch.eye(G.shape[0], dtype=G.dtype, device=G.device)
    return G / scale + ridge * eye


def subset_masks(n_tasks: int, device: torch.device, dtype: torch.dtype, empty: bool) -> Tensor:
    """All subsets of ``range(n_tasks)`` as 0/1 rows, shape ``(2**n_tasks [- 1], n_tasks)``."""
    codes = torch.arange(0 if empty else 1, 2**n_tasks, device=device)
    bits = torch.arange(n_tasks, device=device)
    return ((codes[:, None] >> bits) & 1).to(dtype)


def masked_systems(G: Tensor, masks: Tensor) -> Tensor:
    """``diag(m) G diag(m) + diag(1 - m)`` for every mask: shape ``(n_masks, T, T)``."""
    return masks[:, :, None] * G * masks[:, None, :] + torch.diag_embed(1 - masks)


#: Largest ``n_tasks`` whose support masks are cached (``2**T * T**2`` numbers per entry).
_CACHE_MAX_TASKS = 12
_SUPPORTS: dict[tuple, tuple[Tensor, Tensor, Tensor]] = {}


def support_systems(G: Tensor, empty: bool) -> tuple[Tensor, Tensor]:
    """Every support's system ``diag(m) G diag(m) + diag(1 - m)`` and the masks ``m``.

    Shapes ``(K, T, T)`` and ``(K, T)``, ``K = 2**T [- 1]``. The masks, their outer products and
    the identity padding depend on ``T`` only, so they are built once per ``(T, dtype, device)``
    and the systems cost one fused ``addcmul`` (three broadcast products and an add otherwise).
    """
    T = G.shape[0]
    key = (T, G.dtype, G.device, empty)
    cached = _SUPPORTS.get(key)
    if cached is None:
        masks = subset_masks(T, G.device, G.dtype, empty)
        cached = (masks, masks[:, :, None] * masks[:, None, :], torch.diag_embed(1 - masks))
        if T <= _CACHE_MAX_TASKS:
            _SUPPORTS[key] = cached
    masks, outer, pad = cached
    return torch.addcmul(pad, outer, G), masks


def batched_solve(A: Tensor, B: Tensor) -> Tensor:
    """Solve SPD systems ``A X = B``, with no error check (so no host sync).

    LU with partial pivoting (``solve_ex``) rather than Cholesky: on the CPU, ``cholesky_ex``
    returns a column-major batch that ``cholesky_solve`` copies, and the pair costs 2-3x one
    ``solve_ex`` on 1024 systems of size 10 (the systems are definite and well scaled by
    :func:`normalise`, so pivoting loses no accuracy that matters here).
    """
    return torch.linalg.solve_ex(A, B)[0]


def _pick(x: Tensor, index: Tensor) -> Tensor:
    """``x[index]`` for a 0-d ``index`` tensor without a host read (``x[index]`` turns it into
    a Python int: ``.item()``, a synchronisation on CUDA, every call)."""
    return x.index_select(0, index.reshape(1))[0]


def use_host(G: Tensor, host: bool | None) -> bool:
    """Whether to solve on the host: ``host``, or by default whenever ``G`` is on the CPU."""
    return G.device.type == "cpu" if host is None else host


def min_norm_simplex(
    G: Tensor,
    max_exact: int = 10,
    n_iter: int = 12,
    *,
    host: bool | None = None,
    scale: Tensor | None = None,
) -> Tensor:
    """Weights ``a`` on the simplex minimising ``a^T G a`` (the MGDA min-norm point).

    On the CPU (``host=None``) or with ``host=True``: the exact active-set solve of
    :mod:`._host_qp` (falling back to what follows if it gives up). Otherwise exact by support
    enumeration for ``n_tasks <= max_exact`` and ``n_iter`` primal-dual active-set iterations
    beyond. ``G`` should be trace-normalised with a small ridge (:func:`normalise`), or scaled
    to a unit diagonal with ``scale`` the square roots of the original diagonal (the weights
    are then those of the original Gramian: :func:`._host_qp.min_norm_simplex`).
    """
    if use_host(G, host):
        d = None if scale is None else scale.detach().cpu().double().numpy()
        a = _host_qp.min_norm_simplex(G.detach().cpu().double().numpy(), d)
        if a is not None:
            return to_device(torch.from_numpy(a).to(G.dtype), G.device)
    T = G.shape[0]
    inv = None if scale is None else 1 / scale.to(G)
    if T > max_exact:
        return _simplex_active_set(G, n_iter, inv)
    systems, masks = support_systems(G, empty=False)  # (K, T, T), (K, T)
    rhs = masks if inv is None else masks * inv  # G_SS y = (1 / d)_S, x = y / d
    x = batched_solve(systems, rhs[:, :, None])[..., 0]  # (K, T)
    if inv is None:
        sign_ok = (x / x.sum(dim=1, keepdim=True) >= -1e-10).all(dim=1)
    else:  # the sign of x read on y = d x, whose entries are of one scale (a is not)
        sign_ok = (x >= -1e-10 * x.abs().amax(dim=1, keepdim=True)).all(dim=1)
        x = x * inv
    s = x.sum(dim=1)  # 1^T G_SS^{-1} 1 = 1 / (min norm on S)
    a = x / s[:, None]
    feasible = sign_ok & (s > 0)
    best = torch.where(feasible, s, torch.full_like(s, -torch.inf)).argmax()
    a = _pick(a, best).clamp(min=0)
    return a / a.sum()


def _simplex_active_set(G: Tensor, n_iter: int, inv: Tensor | None = None) -> Tensor:
    """Primal-dual active-set iterations for ``min a^T G a, a >= 0, 1^T a = 1``.

    Each iteration fixes ``a = 0`` on the active set ``{lam > a}`` and solves the KKT system on
    the free set ``F``: ``a_F = x / s`` with ``G_FF x = 1``, ``s = 1^T x`` (so
    ``a^T G a = 1 / s``), then sets the multipliers ``lam = G a - 1 / s`` off ``F``
    (Hintermüller, Ito & Kunisch 2002). A fixed number of iterations, no host sync; the best
    feasible iterate is returned, so a cycling sequence still ends on the best point it visited.
    ``inv``: ``1 / d`` when ``G`` is the unit-diagonal scaling of ``G0 = D^{1/2} G D^{1/2}``,
    whose weights are wanted (``G_FF y = (1 / d)_F``, ``x = y / d``, ``G0 a = d G (d a)``).
    """
    T = G.shape[0]
    d = None if inv is None else 1 / inv
    a = torch.full((T,), 1.0 / T, dtype=G.dtype, device=G.device)
    best = a
    best_value = a @ G @ a if d is None else (d * a) @ G @ (d * a)
    lam = torch.zeros_like(a)
    for _ in range(n_iter):
        free = (lam <= a).to(G.dtype)
        rhs = free if inv is None else free * inv
        x = batched_solve(masked_systems(G, free[None])[0], rhs[:, None])[:, 0]
        x = x if inv is None else x * inv
        s = x.sum()
        a = x / s
        Ga = G @ a if d is None else d * (G @ (d * a))
        lam = (1 - free) * (Ga - 1 / s)
        value = torch.where((a >= 0).all(), 1 / s, torch.inf)
        best = torch.where(value < best_value, a, best)
        best_value = torch.minimum(value, best_value)
    return best


def frank_wolfe(G: Tensor, n_iter: int) -> Tensor:
    """``n_iter`` steps of Frank-Wolfe with exact line search (Sener & Koltun 2018, Alg. 2)."""
    T = G.shape[0]
    alpha = torch.full((T,), 1.0 / T, dtype=G.dtype, device=G.device)
    eye = torch.eye(T, dtype=G.dtype, device=G.device)
    for _ in range(n_iter):
        Ga = G @ alpha
        t = Ga.argmin()
        e_t = _pick(eye, t)
        a, b, c = _pick(Ga, t), alpha @ Ga, _pick(G.diagonal(), t)
        denom = b + c - 2 * a
        ratio = (b - a) / torch.where(denom > 0, denom, torch.ones_like(denom))
        gamma = torch.where(c <= a, torch.ones_like(a), torch.where(b <= a, 0 * a, ratio))
        alpha = (1 - gamma) * alpha + gamma * e_t
    return alpha


def project_dual_cone(
    G: Tensor, max_exact: int = 10, n_iter: int = 12, *, host: bool | None = None
) -> Tensor:
    """Row ``i`` is ``argmin_{v >= e_i} v^T G v``: shape ``(n_tasks, n_tasks)``.

    ``J^T v_i`` is then the projection of the task gradient ``g_i`` onto the dual cone
    ``{x : J x >= 0}`` (Quinton & Rey 2024, Prop. 1). On the CPU (``host=None``) or with
    ``host=True``: exact active-set solves (:mod:`._host_qp`). Otherwise exact by enumeration for
    ``n_tasks <= max_exact`` and ``n_iter`` primal-dual active-set iterations (Hintermüller,
    Ito & Kunisch 2002) beyond, vectorised over the rows.
    """
    if use_host(G, host):
        V = _host_qp.project_dual_cone(G.detach().cpu().double().numpy())
        if V is not None:
            return to_device(torch.from_numpy(V).to(G.dtype), G.device)
    T = G.shape[0]
    eye = torch.eye(T, dtype=G.dtype, device=G.device)
    if T > max_exact:
        return _dual_cone_active_set(G, eye, n_iter)
    systems, masks = support_systems(G, empty=True)  # (K, T, T), (K, T): free sets F
    # Free set F not holding i: G_FF v_F = -G_{F,i}, v_i = 1, v = 0 elsewhere.
    X = batched_solve(systems, -masks[:, :, None] * G)  # (K, T, T): column i
    # X[k, i, i] = 0 (row i of the system is the identity, right-hand side 0), so candidate v
    # for row i, X[k, :, i] + e_i, is feasible iff column i of X is: a contiguous reduction.
    feasible = (masks == 0) & (X.amin(dim=1) >= -1e-10)  # (K, i)
    # v^T G v = G_ii + G_{i,F} x_F, since G_FF x_F = -G_{F,i} (no (K, T, T) triple product).
    objective = G.diagonal() + (X * G).sum(dim=1)
    objective = torch.where(feasible, objective, torch.full_like(objective, torch.inf))
    best = objective.argmin(dim=0)  # (T,)
    V = X[best, :, torch.arange(T, device=G.device)] + eye  # (T, T): row i is v_i
    return V.clamp(min=0)


def _dual_cone_active_set(G: Tensor, U: Tensor, n_iter: int) -> Tensor:
    """Primal-dual active-set iterations for ``min v^T G v, v >= u``, vectorised over rows.

    Returns, per row, the best feasible iterate ``max(v, u)`` seen (a safeguard against cycling).
    """
    v = U.clone()
    best, best_value = v, ((v @ G) * v).sum(dim=1)
    lam = v @ G  # multipliers G v (G symmetric)
    for _ in range(n_iter):
        active = ((lam - (v - U)) > 0).to(G.dtype)  # (R, T): v_k = u_k there
        free = 1 - active
        rhs = active * U - free * ((active * U) @ G)
        v = batched_solve(masked_systems(G, free), rhs[:, :, None])[..., 0]
        vG = v @ G
        lam = active * vG
        feasible = torch.maximum(v, U)
        value = ((feasible @ G) * feasible).sum(dim=1)
        better = (value < best_value)[:, None]
        best = torch.where(better, feasible, best)
        best_value = torch.minimum(value, best_value)
    return best


def cagrad_coefficients(
    G: Tensor, c: float, max_exact: int = 10, n_iter: int = 12, *, host: bool | None = None
) -> Tensor:
    """Coefficients ``u`` with ``d = J^T (1/T + u)`` the CAGrad direction (Liu et al. 2021, eq. 4).

    ``d`` maximises ``min_i g_i^T d`` over the ball ``||d - g_0|| <= c ||g_0||``. At the optimum
    ``u = sqrt(phi) w / ||J^T w||`` with ``w`` the dual solution on the simplex, so on the support
    ``S`` of ``w``: ``G_SS u_S = lambda 1 - b_S`` and ``u^T G u = phi`` (``b = G 1 / T``,
    ``phi = c^2 ||g_0||^2``), a quadratic in ``lambda``. Each support gives a point of the ball;
    the one with the largest ``min_i (b + G u)_i`` is the optimum. Beyond ``max_exact`` tasks,
    ``n_iter`` active-set iterations (:func:`_cagrad_active_set`). On the CPU (``host=None``)
    first an active set in numpy that stops when the support repeats and returns only a point
    that satisfies the KKT conditions (:func:`._host_qp.cagrad_coefficients`).
    """
    if use_host(G, host):
        u = _host_qp.cagrad_coefficients(G.detach().cpu().double().numpy(), c)
        if u is not None:
            return to_device(torch.from_numpy(u).to(G.dtype), G.device)
    T = G.shape[0]
    b = G.sum(dim=1) / T
    phi = c**2 * b.sum() / T
    if T > max_exact:
        return _cagrad_active_set(G, b, phi, n_iter)
    systems, masks = support_systems(G, empty=False)  # (K, T, T), (K, T)
    rhs = torch.stack([masks, masks * b], dim=2)  # (K, T, 2)
    sol = batched_solve(systems, rhs)
    p, q = sol[..., 0], sol[..., 1]  # (K, T)
    sp, sq, bq = p.sum(1), q.sum(1), q @ b
    disc = sq**2 - sp * (bq - phi)
    lam = (sq + disc.clamp(min=0).sqrt()) / torch.where(sp > 0, sp, torch.ones_like(sp))
    u = lam[:, None] * p - q  # (K, T)
    value = (b + u @ G).min(dim=1).values
    value = torch.where((disc >= 0) & (sp > 0), value, torch.full_like(value, -torch.inf))
    best = value.argmax()
    u_best = _pick(u, best)
    return torch.where(_pick(value, best) > -torch.inf, u_best, torch.zeros_like(u_best))


def _cagrad_active_set(G: Tensor, b: Tensor, phi: Tensor, n_iter: int) -> Tensor:
    """Active-set iterations on the support of the CAGrad dual; keeps the best ball point seen.

    Given a support ``F``, ``u`` follows in closed form as in :func:`cagrad_coefficients`; the
    next support keeps ``u_i > 0`` and adds tasks whose margin ``(b + G u)_i - lambda`` is
    negative. Exact once the support settles; near Pareto-stationary points (``d`` close to 0) it
    can stall on a slightly worse support.
    """
    T = G.shape[0]
    free = torch.ones(T, dtype=G.dtype, device=G.device)
    best = torch.zeros_like(free)
    best_value = b.min()  # u = 0: d = g0
    for _ in range(n_iter):
        sol = batched_solve(masked_systems(G, free[None])[0], torch.stack([free, free * b], 1))
        p, q = sol[:, 0], sol[:, 1]
        sp, sq, bq = p.sum(), q.sum(), q @ b
        disc = sq**2 - sp * (bq - phi)
        lam = (sq + disc.clamp(min=0).sqrt()) / torch.where(sp > 0, sp, torch.ones_like(sp))
        u = lam * p - q
        margin = b + G @ u
        value = torch.where((disc >= 0) & (sp > 0), margin.min(), -torch.inf)
        better = value > best_value
        best = torch.where(better, u, best)
        best_value = torch.where(better, value, best_value)
        free = ((u - (1 - free) * (margin - lam)) > 0).to(G.dtype)
    return best


def nash_weights(
    G: Tensor, init: Tensor, n_iter: int = 20, *, host: bool | None = None, max_iter: int = 0
) -> Tensor:
    """Solve ``G alpha = 1 / alpha``, ``alpha > 0`` (Navon et al. 2022, eq. 2 / Thm 5.1).

    ``alpha`` is the minimiser of the self-concordant ``phi(a) = a^T G a / 2 - sum_i log a_i``,
    found by ``n_iter`` damped Newton steps ``a <- a - Delta / (1 + lambda)`` (Nesterov 2004,
    §4.1.5: they stay in ``a > 0`` and converge quadratically once ``lambda < 1/4``). ``init`` is
    rescaled by the best scalar ``sqrt(T / init^T G init)`` first. On the CPU (``host=None``)
    the same steps run in numpy (:func:`._host_qp.nash_weights`); there, with ``max_iter``,
    they stop once converged, before ``n_iter`` or after (at most ``max_iter`` steps; NaN if
    not converged: no positive solution).
    """
    if use_host(G, host):
        alpha = _host_qp.nash_weights(
            G.detach().cpu().double().numpy(), init.cpu().double().numpy(), n_iter, max_iter
        )
        if alpha is not None:
            return to_device(torch.from_numpy(alpha).to(G.dtype), G.device)
    T = G.shape[0]
    alpha = init * (T / (init @ G @ init).clamp(min=1e-30)).sqrt()
    for _ in range(n_iter):
        grad = G @ alpha - 1 / alpha
        delta = torch.linalg.solve_ex(G + torch.diag(alpha.pow(-2)), grad)[0]
        decrement = (grad @ delta).clamp(min=0).sqrt()
        alpha = alpha - delta / (1 + decrement)
    return alpha


def sync_free(device: torch.device, method: str) -> bool:
    """Whether to avoid ``eigh`` / ``pinv`` (they synchronise CUDA with the host).

    ``method="auto"`` avoids them off the CPU only (on the CPU there is no device to stall, and
    LAPACK is faster and exact); ``"iterative"`` always, ``"eigh"`` never.
    """
    if method not in ("auto", "eigh", "iterative"):
        raise ValueError(f"method={method!r} must be 'auto', 'eigh' or 'iterative'")
    return method == "iterative" or (method == "auto" and device.type != "cpu")


#: Eigenvalues of a Gramian below ``SPECTRAL_CUT * n_tasks * u * lambda_max`` count as zero, ``u``
#: the unit roundoff of the arithmetic the Gramian was formed in (:func:`rounding`): float32's for
#: a float32 Jacobian, though it is solved in float64. Measured, the float32 Gramian of rank-one
#: Jacobians (2-10 tasks, 24 to 1e6 parameters) had spurious eigenvalues up to 5.7e-7 of
#: ``lambda_max`` (about 5 u); the cut sits 7 to 30 times above. With float64's ``u`` (the cut-off
#: of numpy's and torch's ``pinv``, times 16) float32 noise was inverted as signal: IMTL-G turned
#: the update of rescaled copies of one gradient against them.
SPECTRAL_CUT = 16
#: The sync-free paths (:func:`spectral_projector`) resolve eigenvalues down to this fraction
#: of the trace, whatever the dtype (their iteration count is set for it).
ITERATIVE_CUT = 1e-7


def finite_or_identity(G: Tensor) -> tuple[Tensor, Tensor]:
    """``(G, True)`` for a finite ``G``, ``(I, False)`` otherwise, without host sync.

    LAPACK's ``eigh`` (torch's, and ``pinv``'s through it) raises on a NaN or infinite matrix
    instead of returning NaN; a non-finite Jacobian (a step a gradient scaler will skip) must
    give non-finite weights like every other aggregator's, so the caller runs ``eigh`` on the
    identity and returns NaN where the flag is False.
    """
    finite = torch.isfinite(G).all()
    eye = torch.eye(G.shape[0], dtype=G.dtype, device=G.device)
    return torch.where(finite, G, eye), finite


def rounding(dtype: torch.dtype) -> float:
    """Unit roundoff of the arithmetic a Gramian of a ``dtype`` Jacobian is formed in (float16
    and bfloat16 Jacobians are multiplied in float32)."""
    return torch.finfo(torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype).eps


def spectral_cut(n_tasks: int, rounding: float) -> float:
    """The relative eigenvalue cut-off (of ``lambda_max``) for a Gramian of that rounding."""
    return SPECTRAL_CUT * n_tasks * rounding


def spectral_projector(G: Tensor, cut: float, n_iter: int = 32) -> Tensor:
    """Orthogonal projector onto the eigenvectors of ``G`` whose eigenvalue exceeds ``cut``.

    ``G`` is PSD with unit trace (eigenvalues in ``[0, 1]``). The matrix sign of ``G - cut I`` by
    matrix products only (no host sync): the quintic Newton-Schulz iteration
    ``X <- X (15 I - 10 X^2 + 3 X^4) / 8`` (Higham, "Functions of Matrices", SIAM 2008, Sec.
    5.3, the Pade family), which maps ``[-1, 1]`` into itself, grows an eigenvalue near zero by
    15/8 a step and converges to ``+-1`` quadratically near them; ``P = (I + sign) / 2``.
    From ``|x| = 1e-7`` (a null eigenvalue against ``ITERATIVE_CUT``) 32 steps reach ``+-1`` to
    rounding; eigenvalues within a factor of about two of ``cut`` end partly projected.
    """
    eye = torch.eye(G.shape[0], dtype=G.dtype, device=G.device)
    X = G - cut * eye
    for _ in range(n_iter):
        X2 = X @ X
        X = X @ (1.875 * eye - 1.25 * X2 + 0.375 * (X2 @ X2))
    P = 0.5 * (eye + X)
    return 0.5 * (P + P.T)


def deflated(G: Tensor, P: Tensor) -> Tensor:
    """``P G P + (I - P) / T``: ``G``'s kept eigenpairs, its dropped ones set to ``1 / T`` (a
    well-conditioned, positive definite stand-in that agrees with ``G`` on ``P``'s range)."""
    eye = torch.eye(G.shape[0], dtype=G.dtype, device=G.device)
    A = P @ G @ P + (eye - P) / G.shape[0]
    return 0.5 * (A + A.T)


def inv_sqrt_pd(G: Tensor, n_iter: int = 30) -> Tensor:
    """``G^{-1/2}`` for a positive definite ``G`` with eigenvalues in ``(0, 1]``, by matrix
    products only (no host sync).

    Coupled Newton-Schulz iterations ``T = (3I - Z Y) / 2, Y <- Y T, Z <- T Z`` from ``Y = G``,
    ``Z = I``: ``Y -> G^{1/2}``, ``Z -> G^{-1/2}`` (Higham, "Functions of Matrices", SIAM 2008,
    eq. 6.35). On an eigenvalue ``mu``, ``z y`` grows by 9/4 per step, then converges
    quadratically to 1: 30 steps resolve eigenvalues down to about 1e-8.
    """
    eye = torch.eye(G.shape[0], dtype=G.dtype, device=G.device)
    Y, Z = G, eye
    for _ in range(n_iter):
        Tm = 0.5 * (3 * eye - Z @ Y)
        Y, Z = Y @ Tm, Tm @ Z
    return 0.5 * (Z + Z.T)


def largest_eigenvalue_psd(S: Tensor, n_squarings: int = 20) -> Tensor:
    """Largest eigenvalue of a PSD matrix by repeated squaring (matrix products, no host sync).

    ``M = S^(2^k) / trace`` concentrates on the top eigenvectors, and ``trace(M S) / trace(M)`` is
    within ``1 / (e 2^k)`` (relative) of the largest eigenvalue, whatever the spectral gap.
    """
    M = S / S.diagonal().sum().clamp(min=1e-300)
    for _ in range(n_squarings):
        M = M @ M
        M = M / M.diagonal().sum().clamp(min=1e-300)
    return (M * S).sum() / M.diagonal().sum().clamp(min=1e-300)
