"""Aggregators against their papers' formulas, computed independently here (numpy/scipy/cvxpy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from aggregator_checks import (
    assert_finite_and_shaped,
    assert_non_conflicting,
    assert_permutation_invariant,
    assert_scales,
    assert_weights_consistent,
    graddrop_uniforms,
    jacobian_cases,
)

from multitask.nn.aggregation import (
    AGGREGATORS,
    IMTLG,
    MGDA,
    AlignedMTL,
    CAGrad,
    GradDrop,
    GradVac,
    Mean,
    NashMTL,
    PCGrad,
    Sum,
    UPGrad,
)

cp = pytest.importorskip("cvxpy")
torch.set_num_threads(1)

TASKS = (2, 3, 10)
CASES = [(T, name) for T in TASKS for name in jacobian_cases(T)]
# the hand-made rows of the issue (orthogonal, conflicting, identical, rescaled) and random ones
HAND_MADE = ("orthogonal", "conflicting", "identical", "rescaled", "random")
# full-rank ones, for the closed forms that invert J's Gramian (IMTL-G's D U^T, Aligned-MTL's
# s_min): their rank-one cases (identical, rescaled) have tests of their own below
FULL_RANK = ("orthogonal", "conflicting", "random")


def _J(T, name):
    return jacobian_cases(T)[name]


def _close(actual, expected, tol=1e-5):
    expected = torch.as_tensor(np.asarray(expected), dtype=actual.dtype)
    scale = max(1.0, float(expected.abs().max()))
    torch.testing.assert_close(actual, expected, atol=tol * scale, rtol=0)


# ---------------------------------------------------------------- references (independent) ---
def min_norm_point(J):
    """MGDA: argmin ||J^T a||^2 over the simplex, by cvxpy; returns J^T a."""
    Jn = J.numpy()
    a = cp.Variable(Jn.shape[0])
    cp.Problem(cp.Minimize(cp.sum_squares(Jn.T @ a)), [a >= 0, cp.sum(a) == 1]).solve(cp.CLARABEL)
    return Jn.T @ a.value


def dual_cone_projection(J, i):
    """UPGrad's pi_J(g_i) = argmin ||x - g_i||^2 s.t. J x >= 0 (the primal definition)."""
    Jn = J.numpy()
    x = cp.Variable(Jn.shape[1])
    cp.Problem(cp.Minimize(cp.sum_squares(x - Jn[i])), [Jn @ x >= 0]).solve(cp.CLARABEL)
    return x.value


def cagrad_direction(J, c):
    """CAGrad primal: max_d min_i g_i^T d s.t. ||d - g0|| <= c ||g0|| (Liu et al. 2021, eq. 2)."""
    Jn = J.numpy()
    g0 = Jn.mean(axis=0)
    d, t = cp.Variable(Jn.shape[1]), cp.Variable()
    cons = [Jn @ d >= t, cp.norm(d - g0) <= c * np.linalg.norm(g0)]
    tight = {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10}
    cp.Problem(cp.Maximize(t), cons).solve(cp.CLARABEL, **tight)
    return d.value


def pcgrad_reference(J, orders):
    """Yu et al. 2020, Alg. 1 on the vectors, with the given visiting orders."""
    Jn = J.numpy()
    out = np.zeros(Jn.shape[1])
    for i, order in enumerate(orders):
        g = Jn[i].copy()
        for j in order:
            if j != i and g @ Jn[j] < 0:
                g -= (g @ Jn[j]) / (Jn[j] @ Jn[j]) * Jn[j]
        out += g
    return out


def gradvac_reference(J, orders, phi_hat, beta, eps=1e-8):
    """Wang et al. 2021, Alg. 1 on the vectors; updates ``phi_hat`` in place."""
    Jn = J.numpy()
    out = np.zeros(Jn.shape[1])
    for i, order in enumerate(orders):
        g = Jn[i].copy()
        for j in order:
            nj = np.linalg.norm(Jn[j])
            phi = g @ Jn[j] / (np.linalg.norm(g) * nj + eps)
            hat = phi_hat[i, j]
            if phi < hat:
                num = hat * np.sqrt(1 - phi**2) - phi * np.sqrt(1 - hat**2)
                g = g + np.linalg.norm(g) * num / (nj * np.sqrt(1 - hat**2) + eps) * Jn[j]
            phi_hat[i, j] = (1 - beta) * hat + beta * phi
        out += g
    return out


# ------------------------------------------------------------------------------ properties ---
LINEAR = ["mean", "sum", "mgda", "cagrad", "nash_mtl", "imtl_g", "aligned_mtl", "upgrad"]


@pytest.mark.parametrize("name", sorted(AGGREGATORS))
@pytest.mark.parametrize(("T", "case"), CASES)
def test_finite_output_of_right_shape(name, T, case):
    assert_finite_and_shaped(AGGREGATORS[name], _J(T, case))
    assert_finite_and_shaped(AGGREGATORS[name], _J(T, case).float())


@pytest.mark.parametrize("name", LINEAR)
@pytest.mark.parametrize("T", TASKS)
def test_permutation_invariance(name, T):
    for case in ("orthogonal", "conflicting", "random"):
        assert_permutation_invariant(AGGREGATORS[name], _J(T, case), atol=1e-6)


@pytest.mark.parametrize("name", ["mgda", "upgrad"])
@pytest.mark.parametrize(("T", "case"), CASES)
def test_no_conflict(name, T, case):
    assert_non_conflicting(AGGREGATORS[name], _J(T, case), eps=1e-7)


@pytest.mark.parametrize(
    ("name", "degree"),
    [(n, 1) for n in ["mean", "sum", "mgda", "cagrad", "imtl_g", "aligned_mtl", "upgrad"]]
    + [("pcgrad", 1), ("graddrop", 1), ("nash_mtl", 0)],
)
@pytest.mark.parametrize("T", TASKS)
def test_scale_behaviour(name, degree, T):
    assert_scales(AGGREGATORS[name], _J(T, "random"), degree, atol=1e-6)


@pytest.mark.parametrize("name", [*LINEAR, "pcgrad", "gradvac"])
def test_weights_give_the_output(name):
    assert_weights_consistent(AGGREGATORS[name], _J(3, "conflicting"))


@pytest.mark.parametrize("name", sorted(AGGREGATORS))
def test_single_task_and_zero_jacobians(name):
    g = _J(2, "random")[:1]
    d = assert_finite_and_shaped(AGGREGATORS[name], g)
    assert float(g[0] @ d) > 0  # one task: a descent direction for it
    for T in (3, 12):
        zero = torch.zeros(T, 7, dtype=torch.float64)
        _close(assert_finite_and_shaped(AGGREGATORS[name], zero), np.zeros(7), 0)


@pytest.mark.parametrize("name", [*LINEAR, "pcgrad", "gradvac"])
def test_weights_from_the_gramian_alone(name):
    J = _J(10, "conflicting")
    agg = AGGREGATORS[name]()
    assert agg.uses_gramian
    torch.testing.assert_close(agg.gramian_weights(J @ J.T), AGGREGATORS[name]().weights(J))
    # Gramian of a different Jacobian with the same inner products: same weights
    Q, _ = torch.linalg.qr(torch.randn(24, 24, dtype=J.dtype, generator=torch.Generator()))
    torch.testing.assert_close(AGGREGATORS[name]().weights(J @ Q), AGGREGATORS[name]().weights(J))


def test_graddrop_needs_the_jacobian():
    assert not GradDrop.uses_gramian
    with pytest.raises(NotImplementedError, match="needs the Jacobian"):
        GradDrop().gramian_weights(torch.eye(2))


def test_graddrop_is_not_linear():
    assert not GradDrop.linear
    with pytest.raises(NotImplementedError, match="GradDrop"):
        GradDrop().weights(_J(2, "random"))


# --------------------------------------------------------------------- Mean, Sum, MGDA ---
@pytest.mark.parametrize(("T", "case"), CASES)
def test_mean_and_sum(T, case):
    J = _J(T, case)
    _close(Mean()(J), J.numpy().mean(axis=0), 1e-12)
    _close(Sum()(J), J.numpy().sum(axis=0), 1e-12)


@pytest.mark.parametrize(("T", "case"), CASES)
def test_mgda_is_the_min_norm_point(T, case):
    _close(MGDA()(_J(T, case)), min_norm_point(_J(T, case)), 1e-5)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_enumeration_cache_serves_every_task_count_and_dtype(dtype, device_path):
    """The cached support masks are keyed by (T, dtype, device): alternate T and dtypes."""
    from multitask.nn.aggregation import _solvers

    for T in (3, 10, 3, 10):
        J = _J(T, "conflicting")
        G = _solvers.normalise((J @ J.T).to(dtype))
        a = _solvers.min_norm_simplex(G, max_exact=10, host=False).to(J.dtype)
        _close(a @ J, min_norm_point(J), 1e-5 if dtype == torch.float64 else 1e-3)


@pytest.fixture
def device_path(monkeypatch):
    """Force the sync-free torch solvers (enumeration / fixed active set) on the CPU."""
    from multitask.nn.aggregation import _solvers

    monkeypatch.setattr(_solvers, "use_host", lambda G, host: bool(host))


@pytest.mark.parametrize(("T", "case"), CASES)
def test_mgda_device_path_is_the_min_norm_point(T, case, device_path):
    _close(MGDA()(_J(T, case)), min_norm_point(_J(T, case)), 1e-5)


def test_mgda_enumeration_and_active_set_agree_at_ten_tasks(device_path):
    J = _J(10, "random")
    _close(MGDA(max_exact=10)(J), MGDA(max_exact=9)(J).numpy(), 1e-7)


@pytest.mark.parametrize("case", ["conflicting", "random", "rescaled"])
def test_mgda_two_task_closed_form(case):
    g1, g2 = _J(2, case).numpy()
    gamma = np.clip((g2 - g1) @ g2 / ((g1 - g2) @ (g1 - g2)), 0, 1)  # Sener & Koltun, Alg. 1
    _close(MGDA()(_J(2, case)), gamma * g1 + (1 - gamma) * g2, 1e-10)


@pytest.mark.parametrize("case", ["conflicting", "random", "orthogonal", "rescaled"])
def test_mgda_active_set_beyond_max_exact(case, device_path):
    J = _J(10, case)
    _close(MGDA(max_exact=4)(J), min_norm_point(J), 1e-5)


@pytest.mark.parametrize("case", ["conflicting", "random"])
def test_mgda_frank_wolfe_objective_converges(case):
    J = _J(3, case)
    best = np.sum(min_norm_point(J) ** 2)
    gaps = [float(MGDA(solver="frank-wolfe", n_iter=k)(J).norm() ** 2) - best for k in (30, 600)]
    assert -1e-9 <= gaps[1] < gaps[0] / 5  # Frank-Wolfe: O(1/k) in the objective


@pytest.mark.parametrize("norm", ["l2", "loss", "loss+"])
def test_mgda_normalisations(norm):
    J = _J(3, "conflicting")
    losses = torch.tensor([0.5, 2.0, 1.5], dtype=J.dtype)
    scale = {"l2": J.norm(dim=1), "loss": losses, "loss+": losses * J.norm(dim=1)}[norm]
    Jn = J / scale[:, None]
    a = np.linalg.lstsq(Jn.numpy().T, min_norm_point(Jn), rcond=None)[0]
    _close(MGDA(norm)(J, losses), a @ J.numpy(), 1e-5)  # weights of the scaled problem, raw rows
    if norm != "l2":
        with pytest.raises(ValueError, match="needs the task losses"):
            MGDA(norm)(J)


def test_mgda_rejects_unknown_options():
    with pytest.raises(ValueError, match="normalization"):
        MGDA("max")
    with pytest.raises(ValueError, match="solver"):
        MGDA(solver="qp")


# --------------------------------------------------------------------------------- UPGrad ---
@pytest.mark.parametrize(("T", "case"), [(T, c) for T in TASKS for c in HAND_MADE])
def test_upgrad_averages_dual_cone_projections(T, case):
    J = _J(T, case)
    expected = np.mean([dual_cone_projection(J, i) for i in range(T)], axis=0)
    _close(UPGrad()(J), expected, 2e-5)


@pytest.mark.parametrize("T", [3, 10])
def test_upgrad_torchjd_ridge_matches_the_regularised_dual(T):
    """With reg_eps=1e-4, v_i = argmin_{v >= e_i} v^T (G/tr G + 1e-4 I) v (Prop. 1)."""
    J = _J(T, "conflicting").numpy()
    G = J @ J.T
    G = G / np.trace(G) + 1e-4 * np.eye(T)
    v = cp.Variable((T, T))
    obj = sum(cp.quad_form(v[i], cp.psd_wrap(G)) for i in range(T))
    cp.Problem(cp.Minimize(obj), [v >= np.eye(T)]).solve(cp.CLARABEL)
    _close(UPGrad(reg_eps=1e-4).weights(torch.from_numpy(J)), v.value.mean(axis=0), 1e-5)


@pytest.mark.parametrize(
    ("T", "case"), [(T, c) for T in TASKS for c in ("orthogonal", "conflicting", "random")]
)
def test_upgrad_device_path_averages_dual_cone_projections(T, case, device_path):
    J = _J(T, case)
    expected = np.mean([dual_cone_projection(J, i) for i in range(T)], axis=0)
    _close(UPGrad()(J), expected, 2e-5)


def test_upgrad_active_set_path_matches_enumeration(device_path):
    J = _J(10, "conflicting")[:7]
    _close(UPGrad(max_exact=3)(J), UPGrad(max_exact=8)(J).numpy(), 1e-9)


# --------------------------------------------------------------------------------- CAGrad ---
@pytest.mark.parametrize(("T", "case"), CASES)
@pytest.mark.parametrize("c", [0.2, 0.5, 0.9])
def test_cagrad_solves_the_primal(T, case, c):
    J = _J(T, case)
    _close(CAGrad(c)(J), cagrad_direction(J, c), 2e-5)


def test_cagrad_options():
    J = _J(3, "conflicting")
    _close(CAGrad(0.0)(J), J.numpy().mean(axis=0), 1e-10)
    _close(CAGrad(0.5, rescale="c2")(J), CAGrad(0.5)(J).numpy() / 1.25, 1e-12)
    _close(CAGrad(0.5, rescale="c")(J), CAGrad(0.5)(J).numpy() / 1.5, 1e-12)
    _close(CAGrad(0.5, max_exact=2)(J), cagrad_direction(J, 0.5), 2e-5)  # active-set path
    J10 = _J(10, "random")
    _close(CAGrad(0.5, max_exact=4)(J10), CAGrad(0.5)(J10).numpy(), 1e-9)
    with pytest.raises(ValueError, match="c must be a finite number >= 0"):
        CAGrad(-1.0)


# ------------------------------------------------------------------------------- Nash-MTL ---
def nash_reference(J):
    """Solve G a = 1/a (Navon et al. 2022, Thm 5.1) with scipy's root finder."""
    from scipy.optimize import root

    G = (J @ J.T).numpy()
    sol = root(lambda a: G @ a - 1 / a, 1 / np.sqrt(np.diag(G)), method="lm", tol=1e-15)
    assert (sol.x > 0).all() and np.abs(G @ sol.x - 1 / sol.x).max() < 1e-10
    return sol.x


@pytest.mark.parametrize(("T", "case"), [(T, c) for T in TASKS for c in HAND_MADE])
def test_nash_mtl_solves_the_bargaining_equation(T, case):
    J = _J(T, case)
    _close(NashMTL().weights(J), nash_reference(J), 1e-6)


def test_nash_mtl_is_stateful_with_update_frequency():
    J1, J2 = _J(3, "random"), _J(3, "conflicting")
    nash = NashMTL(update_every=2, n_iter_warm=20)  # J1 -> J2 is an abrupt change
    _close(nash.weights(J1), nash_reference(J1), 1e-6)
    _close(nash.weights(J2), nash_reference(J1), 1e-6)  # reused on the off step
    _close(nash.weights(J2), nash_reference(J2), 1e-6)  # warm-started update
    state = nash.state_dict()
    nash.reset()
    assert nash.step == 0 and nash.alpha.numel() == 0
    other = NashMTL(update_every=2, n_iter_warm=20)
    other.load_state_dict(state)
    assert other.step == 3
    _close(other.weights(J1), nash_reference(J2), 1e-6)
    slow = NashMTL()  # default warm iterations: enough for a slowly changing Jacobian
    for step in range(5):
        Js = J1 + 0.05 * step * J2
        _close(slow.weights(Js), nash_reference(Js), 1e-6)
    clipped = NashMTL(max_norm=0.1)(J1)
    assert abs(float(clipped.norm()) - 0.1) < 1e-9


@pytest.mark.parametrize("path", ["host", "device"])
def test_nash_mtl_a_task_with_a_zero_gradient(path, request):
    """A task with no labelled sample has a zero gradient: G alpha = 1/alpha has no solution
    with it (its weight ran off to 1e21 and, stored as the warm start, starved the others at
    the next steps for about 15 steps; repeated, float32 overflowed into a NaN update). It gets
    weight 0, the others those of the problem without it (oracle: scipy's root), every step."""
    if path == "device":
        request.getfixturevalue("device_path")
    J = _J(3, "random")
    J0 = torch.cat([J[:1], torch.zeros_like(J[:1]), J[1:]])
    want = nash_reference(J)
    nash = NashMTL()
    for dtype in (torch.float64, torch.float32, torch.float32):
        w = nash.weights(J0.to(dtype)).double()
        assert float(w[1]) == 0.0
        _close(w[[0, 2, 3]], want, 1e-6 if dtype is torch.float64 else 1e-4)
    J4 = torch.cat([J[:1], J[:1] + J[1:2], J[1:]])  # the task has a gradient again
    _close(nash.weights(J4), nash_reference(J4), 1e-6)


def test_nash_mtl_pareto_stationary_gives_no_direction():
    """Gradients with a positive combination equal to zero (three in a plane, 120 degrees
    apart; five of rank 2 spanning it) have no positive solution: zero weights, as documented
    (the iterates ran off to 1e8 and came back finite), and the state keeps the last weights."""
    three = torch.tensor([[1.0, 0, 0], [-0.5, 0.8, 0], [-0.5, -0.8, 0]], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    plane = torch.randn(2, 20, generator=g, dtype=torch.float64)
    angles = torch.tensor([0.0, 1.3, 2.5, 3.7, 5.0], dtype=torch.float64)
    five = torch.stack([angles.cos(), angles.sin()], 1) @ plane
    for J in (three, five):
        nash = NashMTL()
        assert nash.weights(J).abs().max() == 0
        good = J + 2 * J.norm(dim=1).max() * J[0] / J[0].norm()  # u_0 now ascends for all
        nash = NashMTL()
        _close(nash.weights(good), nash_reference(good), 1e-6)
        kept = nash.alpha.clone()
        assert nash.weights(J).abs().max() == 0 and torch.equal(nash.alpha, kept)


# --------------------------------------------------------------------------------- IMTL-G ---
def imtlg_reference(J):
    """The paper's closed form: a_{2:T} = g_1 U^T (D U^T)^{-1}, a_1 = 1 - sum (Liu et al. 2021)."""
    g = J.numpy()
    u = g / np.linalg.norm(g, axis=1, keepdims=True)
    D, U = g[0] - g[1:], u[0] - u[1:]
    rest = g[0] @ U.T @ np.linalg.inv(D @ U.T)
    return np.concatenate([[1 - rest.sum()], rest])


@pytest.mark.parametrize(("T", "case"), [(T, c) for T in TASKS for c in FULL_RANK])
def test_imtlg_closed_form(T, case):
    J = _J(T, case)
    _close(IMTLG().weights(J), imtlg_reference(J), 1e-7)
    d = IMTLG()(J)
    projections = J @ d / J.norm(dim=1)
    _close(projections, np.full(T, float(projections[0])), 1e-8)  # impartial: equal projections


@pytest.mark.parametrize("method", ["eigh", "iterative"])
@pytest.mark.parametrize("ratio", [1e-2, 1e-4, 1e-7])
def test_imtlg_small_gradient_keeps_equal_projections(method, ratio):
    """A task whose gradient is ``ratio`` times the others' still gets d . u_t equal to theirs:
    on the Gramian its eigenvalue (about ratio^2 of the trace) fell under the pseudo-inverse's
    cut-off (at 3e-4 with "iterative", 1e-8 with eigh) and the task was dropped. Oracle: the
    paper's closed form, whose inverse exists here."""
    g = torch.Generator().manual_seed(0)
    J = torch.randn(3, 20, generator=g, dtype=torch.float64) * torch.tensor([[ratio], [1], [1]])
    w = IMTLG(method=method).weights(J)
    _close(w, imtlg_reference(J), 1e-9)
    projections = J @ (w @ J) / J.norm(dim=1)
    _close(projections / projections[0], np.ones(3), 1e-6)


@pytest.mark.parametrize("method", ["eigh", "iterative"])
def test_imtlg_zero_gradient_task(method):
    """A task with a zero gradient (no labelled sample in the batch) gets weight 0 and the
    others are balanced among themselves, as IMTL-G on those tasks alone."""
    J = _J(3, "random")
    J0 = torch.cat([torch.zeros(1, J.shape[1], dtype=J.dtype), J])
    w = IMTLG(method=method).weights(J0)
    assert float(w[0]) == 0.0
    _close(w[1:], imtlg_reference(J), 1e-6)


def test_imtlg_dependent_gradients_direction_ignores_loss_scale():
    """Linearly dependent gradients (the paper's inverse does not exist, and equal projections
    may not: here d . u_t is equal in the least-squares sense): the direction of d does not
    depend on how each task's loss is scaled, as for independent gradients; rescaled copies of
    one gradient give that direction; two opposite gradients give no direction."""
    J = _J(3, "random")
    J = torch.cat([J, (J[0] + J[1])[None]])  # rank 3, four tasks
    d = IMTLG()(J)
    for scales in ([1.0, 1.0, 1.0, 10.0], [0.1, 3.0, 1.0, 1.0]):
        ds = IMTLG()(torch.tensor(scales, dtype=J.dtype)[:, None] * J)
        _close(ds / ds.norm(), d / d.norm(), 1e-9)
    rescaled = _J(3, "rescaled")
    d = IMTLG()(rescaled)
    _close(d / d.norm(), rescaled[0] / rescaled[0].norm(), 1e-12)
    opposite = torch.stack([J[0], -2 * J[0]])
    assert IMTLG()(opposite).abs().max() == 0


# ----------------------------------------------------------------------------- Aligned-MTL ---
@pytest.mark.parametrize(("T", "case"), [(T, c) for T in TASKS for c in FULL_RANK])
def test_aligned_mtl_via_svd(T, case):
    """J = U S W^T; the aligned gradients are s_min U W^T rows (Senushkin et al. 2023, eq. 10)."""
    J = _J(T, case)
    U, S, Wt = np.linalg.svd(J.numpy(), full_matrices=False)
    aligned = S.min() * U @ Wt  # (T, n_params): orthogonal rows of equal norm
    _close(AlignedMTL()(J), aligned.mean(axis=0), 1e-7)
    np.testing.assert_allclose(aligned @ aligned.T, S.min() ** 2 * np.eye(T), atol=1e-8)


def test_aligned_mtl_drops_null_directions():
    J = _J(3, "rescaled")  # rank one: the aligned gradient is the projection on that direction
    U, S, Wt = np.linalg.svd(J.numpy(), full_matrices=False)
    expected = S[0] * np.outer(U[:, 0], Wt[0]).mean(axis=0)
    _close(AlignedMTL()(J), expected, 1e-7)
    _close(AlignedMTL()(torch.zeros(3, 5, dtype=torch.float64)), np.zeros(5), 0)


# --------------------------------------------------------------------------- PCGrad, GradVac ---
def _orders(seed, T, steps):
    torch.manual_seed(seed)
    return [[torch.randperm(T).tolist() for _ in range(T)] for _ in range(steps)]


@pytest.mark.parametrize(("T", "case"), CASES)
def test_pcgrad_algorithm_1(T, case):
    J = _J(T, case)
    pc = PCGrad(seed=7)
    for orders in _orders(7, T, 3):  # the generator keeps going across steps
        _close(pc(J), pcgrad_reference(J, orders), 1e-9)
    natural = [list(range(T))] * T
    _close(PCGrad(deterministic=True)(J), pcgrad_reference(J, natural), 1e-9)
    pc.reset()
    _close(pc(J), pcgrad_reference(J, _orders(7, T, 1)[0]), 1e-9)


def test_pcgrad_and_gradvac_beyond_the_python_loop_follow_algorithm_1():
    """Above ``PYTHON_LOOP_MAX_TASKS`` the host loop steps aside (None) and the torch path runs
    the same draws: both methods still follow their Alg. 1 on the vectors."""
    from multitask.nn.aggregation import _gramian

    T = _gramian.PYTHON_LOOP_MAX_TASKS + 6
    J = torch.randn(T, 40, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    G = (J @ J.T).numpy()
    assert PCGrad().host_weights(G) is None and GradVac().host_weights(G) is None
    _close(PCGrad(seed=7)(J), pcgrad_reference(J, _orders(7, T, 1)[0]), 1e-9)
    torch.manual_seed(3)
    orders = []
    for i in range(T):
        others = [j for j in range(T) if j != i]
        orders.append([others[k] for k in torch.randperm(T - 1).tolist()])
    phi_hat = np.zeros((T, T))
    _close(GradVac(beta=0.3, seed=3)(J), gradvac_reference(J, orders, phi_hat, 0.3), 1e-8)


@pytest.mark.parametrize(("T", "case"), [(T, c) for T in TASKS for c in HAND_MADE])
def test_gradvac_algorithm_1_over_steps(T, case):
    J = _J(T, case)
    beta = 0.3
    gv = GradVac(beta=beta, seed=3)
    torch.manual_seed(3)
    phi_hat = np.zeros((T, T))
    for step in range(4):
        Js = J * (1 + 0.1 * step)  # the targets carry over steps
        orders = []
        for i in range(T):
            others = [j for j in range(T) if j != i]
            orders.append([others[k] for k in torch.randperm(T - 1).tolist()])
        _close(gv(Js), gradvac_reference(Js, orders, phi_hat, beta), 1e-8)
    np.testing.assert_allclose(gv.targets.numpy(), phi_hat, atol=1e-9)
    state = gv.state_dict()
    gv.reset()
    assert gv.targets.numel() == 0
    fresh = GradVac(beta=beta, seed=3)
    fresh.load_state_dict(state)
    np.testing.assert_allclose(fresh.targets.numpy(), phi_hat, atol=1e-12)


def test_gradvac_first_step_with_zero_targets_removes_conflicts_for_two_tasks():
    J = _J(2, "conflicting")
    d = GradVac()(J)  # phi_hat = 0: same as PCGrad for two tasks
    _close(d, PCGrad()(J).numpy(), 1e-7)


# ------------------------------------------------------------------------------- GradDrop ---
def _graddrop_reference(J, U, leak=None):
    """Chen et al. 2020, Alg. 1: the sign purity mask, written on the vectors."""
    mass = np.abs(J).sum(axis=0)
    P = 0.5 * (1 + J.sum(axis=0) / np.where(mass > 0, mass, 1))
    keep = ((P > U) & (J > 0)) | ((P < U) & (J < 0))
    leak = np.zeros(J.shape[0]) if leak is None else leak
    return ((leak[:, None] + (1 - leak[:, None]) * keep) * J).sum(axis=0)


@pytest.mark.parametrize(("T", "case"), CASES)
def test_graddrop_sign_purity_mask(T, case):
    J = _J(T, case).numpy()
    U = graddrop_uniforms(5, J.shape[1], np.float64)
    mass = np.abs(J).sum(axis=0)
    P = 0.5 * (1 + J.sum(axis=0) / np.where(mass > 0, mass, 1))
    keep = ((P > U) & (J > 0)) | ((P < U) & (J < 0))
    _close(GradDrop(seed=5)(torch.from_numpy(J)), (keep * J).sum(axis=0), 1e-12)
    leak = np.linspace(0, 1, T)
    expected = ((leak[:, None] + (1 - leak[:, None]) * keep) * J).sum(axis=0)
    _close(GradDrop(torch.from_numpy(leak), seed=5)(torch.from_numpy(J)), expected, 1e-12)


def test_graddrop_float32_draws_and_steps():
    """float32: the 24-bit draws; the stream goes on over steps, and reset restarts it."""
    J = torch.randn(3, 5000, generator=torch.Generator().manual_seed(1))
    J[:, :100] = 0  # all-zero coordinates give zero
    J[:, 100:200] = J[:, 100:200].abs()  # all-positive coordinates pass whole
    gd = GradDrop(seed=9)
    U = graddrop_uniforms(9, 2 * J.shape[1], np.float32)  # the 32-bit halves run on
    for step in range(2):
        expected = _graddrop_reference(J.double().numpy(), U[step * 5000 : (step + 1) * 5000])
        _close(gd(J).double(), expected, 1e-6)
    gd.reset()
    _close(gd(J).double(), _graddrop_reference(J.double().numpy(), U[:5000]), 1e-6)


# ------------------------------------------------------------------- no host sync on CUDA ---
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", sorted(AGGREGATORS))
@pytest.mark.parametrize("T", [2, 5, 10])
def test_no_host_sync_on_cuda(name, T):
    J = _J(T, "conflicting").float().cuda()
    agg = AGGREGATORS[name]().cuda()
    expected = AGGREGATORS[name]()(J.cpu().double()).float()
    agg(J)  # first call: lazy state and generators are created
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        d = agg(J)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    if name not in ("pcgrad", "gradvac", "graddrop", "nash_mtl"):  # stateful / random
        torch.testing.assert_close(d.cpu(), expected, atol=1e-3, rtol=1e-3)


# ------------------------------------------- sync-free paths of IMTL-G and Aligned-MTL ---
@pytest.mark.parametrize(("T", "case"), CASES)
@pytest.mark.parametrize(
    "make",
    [
        lambda m: IMTLG(method=m),
        lambda m: AlignedMTL(method=m),
        lambda m: AlignedMTL("mean", method=m),
    ],
    ids=["imtl_g", "aligned_min", "aligned_mean"],
)
def test_iterative_path_matches_eigh(T, case, make):
    """The CUDA default (no pinv / eigh: a matrix sign projector, Newton-Schulz, Cholesky), run
    on the CPU. Rank-deficient Gramians (identical, rescaled rows) included: the projector drops
    their null space sharply (the iterated-Tikhonov pseudo-inverse it replaced was 4e-3 off)."""
    J = _J(T, case)
    tol = 1e-8 if case == "ill_conditioned" else 1e-10  # eigenvalues down to 1e-6 of the trace
    _close(make("iterative")(J), make("eigh")(J).numpy(), tol)


@pytest.mark.parametrize("T", TASKS)
@pytest.mark.parametrize("case", ["identical", "rescaled"])
@pytest.mark.parametrize("method", ["eigh", "iterative"])
@pytest.mark.parametrize(
    "make",
    [IMTLG, AlignedMTL, lambda method: AlignedMTL("mean", method=method)],
    ids=["imtl_g", "aligned_min", "aligned_mean"],
)
def test_float32_rank_deficient_gramian_matches_float64(T, case, method, make):
    """A float32 Jacobian's Gramian carries float32 rounding even when solved in float64: its
    spurious eigenvalues (1e-9 to 6e-7 of the largest, measured) must be cut, not inverted.
    With float64's cut-off IMTL-G turned the update of 10 rescaled copies of one gradient
    against them, and Aligned-MTL returned 1e-8 of the update, or NaN. Oracle: the same
    aggregator on the float64 Jacobian (eigh)."""
    J = _J(T, case)
    agg = make(method=method) if isinstance(make, type) else make(method)
    expected = (make(method="eigh") if isinstance(make, type) else make("eigh"))(J)
    got = agg(J.float()).double()
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6 * float(expected.abs().max()))
    assert float(got @ J[0]) > 0  # along the (common) gradient, never against it


def test_spectral_projector_against_eigh():
    """The sync-free projector onto eigenvalues above the cut, against eigh's eigenvectors."""
    from multitask.nn.aggregation import _solvers

    g = torch.Generator().manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    lam = torch.tensor([0.6, 0.3, 0.1, 1e-5, 2e-8, 0.0], dtype=torch.float64)
    G = (Q * lam) @ Q.T
    P = _solvers.spectral_projector(G, 1e-7)
    kept = Q[:, :4]
    torch.testing.assert_close(P, kept @ kept.T, rtol=0, atol=1e-12)


def test_method_validation():
    with pytest.raises(ValueError, match="method"):
        IMTLG(method="svd")
    with pytest.raises(ValueError, match="median"):
        AlignedMTL("median", method="iterative")


@pytest.mark.parametrize("name", ["pcgrad", "gradvac", "graddrop", "nash_mtl"])
def test_checkpoint_resumes_the_random_stream_and_state(name):
    J = _J(5, "conflicting")
    agg = AGGREGATORS[name]()
    agg(J)
    state = agg.state_dict()
    expected = agg(J)
    resumed = AGGREGATORS[name]()
    resumed.load_state_dict(state)
    torch.testing.assert_close(resumed(J), expected)
    agg.reset()
    torch.testing.assert_close(agg(J), AGGREGATORS[name]()(J))  # reset = fresh


# ------------------------------------------------------------------- host active-set QPs ---
def _nnqp_reference(G, c):
    z = cp.Variable(len(c))
    cp.Problem(cp.Minimize(0.5 * cp.quad_form(z, cp.psd_wrap(G)) + c @ z), [z >= 0]).solve(
        cp.CLARABEL
    )
    return z.value


@pytest.mark.parametrize("T", [2, 3, 6, 10, 14])
def test_host_nnqp_and_lawson_hanson_match_cvxpy(T):
    from multitask.nn.aggregation import _host_qp

    rng = np.random.default_rng(T)
    A = rng.standard_normal((T, 2 * T))
    G = A @ A.T / T + 1e-3 * np.eye(T)
    C = rng.standard_normal((5, T))
    Z = _host_qp.nnqp(G, C)
    for c, z in zip(C, Z, strict=True):
        want = _nnqp_reference(G, c)
        np.testing.assert_allclose(z, want, atol=1e-6 * max(1.0, np.abs(want).max()))
        np.testing.assert_allclose(
            _host_qp.lawson_hanson(G, c), want, atol=1e-6 * max(1.0, np.abs(want).max())
        )
        assert (z >= 0).all()


def test_host_nnqp_repairs_unsettled_rows_with_lawson_hanson(monkeypatch):
    """Primal-dual iterations cut after one step: the rows off their KKT conditions are
    solved again by Lawson-Hanson, so the result is still exact."""
    from multitask.nn.aggregation import _host_qp

    rng = np.random.default_rng(0)
    A = rng.standard_normal((8, 8))
    G = A @ A.T + 1e-2 * np.eye(8)
    C = rng.standard_normal((4, 8)) * 3
    want = np.stack([_nnqp_reference(G, c) for c in C])
    calls = []
    real = _host_qp.lawson_hanson
    monkeypatch.setattr(_host_qp, "lawson_hanson", lambda *a: calls.append(1) or real(*a))
    np.testing.assert_allclose(_host_qp.nnqp(G, C, max_iter=1), want, atol=1e-6)
    assert calls, "one primal-dual step should not have settled every row"


@pytest.mark.parametrize("T", [2, 3, 10])
def test_host_and_device_paths_agree_on_hard_cases(T, monkeypatch):
    """MGDA, UPGrad, CAGrad (numpy active sets), Nash-MTL (numpy Newton), PCGrad and GradVac
    (Python loops), IMTL-G and Aligned-MTL (numpy eigh) on the CPU against the torch code."""
    from multitask.nn.aggregation import _solvers

    for case in ("conflicting", "ill_conditioned", "identical", "rescaled", "random"):
        J = _J(T, case)
        # MGDA("l2") on rank-one rows: every simplex point is a min-norm point of the
        # normalised gradients, and the two solvers may pick different ones
        l2 = () if case in ("identical", "rescaled") else (lambda: MGDA("l2"),)
        makers = (
            MGDA,
            *l2,
            UPGrad,
            CAGrad,
            NashMTL,
            lambda: CAGrad(0.9),
            PCGrad,
            GradVac,
            IMTLG,
            AlignedMTL,
            lambda: AlignedMTL("median"),
            lambda: AlignedMTL("mean"),
        )

        def twice(agg, J=J):  # stateful ones (GradVac's targets) branch the second time
            agg(J)
            return agg(J)

        host = [twice(make()) for make in makers]
        monkeypatch.setattr(_solvers, "use_host", lambda G, host: bool(host))
        device = [twice(make()) for make in makers]
        monkeypatch.undo()
        for a, b in zip(host, device, strict=True):
            _close(a, b.numpy(), 1e-6)


@pytest.mark.parametrize("T", [3, 10])
def test_host_solvers_settle_on_ordinary_cases(T):
    """The host active sets are what runs on the CPU: they must not give up on plain cases."""
    from multitask.nn.aggregation import _host_qp, _solvers

    for case in ("conflicting", "random", "orthogonal"):
        J = _J(T, case)
        G = _solvers.normalise(_solvers.gramian(J)).numpy()
        assert _host_qp.min_norm_simplex(G) is not None
        assert _host_qp.project_dual_cone(G) is not None
        assert _host_qp.cagrad_coefficients(G, 0.5) is not None


# ------------------------------------------------------------------------ host Gramian ---
@pytest.mark.parametrize("T", [1, 2, 5, 10, 20])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_host_gramian_matches_float64_products(T, dtype):
    """The GEMVs over the upper triangle (one GEMM beyond ``GEMV_MAX_TASKS``) give the
    Gramian, symmetric, in float64."""
    from multitask.nn.aggregation import _gramian

    J = torch.randn(T, 3001, generator=torch.Generator().manual_seed(T)).to(dtype)
    Jd = J.double().numpy()
    G = _gramian.host_gramian(J)
    assert G.dtype == np.float64 and G.shape == (T, T)
    assert (G == G.T).all()
    tol = {torch.float32: 1e-5, torch.float64: 1e-12, torch.bfloat16: 1e-2}[dtype]
    np.testing.assert_allclose(G, Jd @ Jd.T, rtol=tol, atol=tol * 3001)
    strided = torch.randn(3001, T, generator=torch.Generator().manual_seed(0)).to(dtype).T
    Js = strided.double().numpy()  # a non-contiguous Jacobian
    np.testing.assert_allclose(_gramian.host_gramian(strided), Js @ Js.T, rtol=tol, atol=tol * 3001)


def test_two_task_closed_forms_match_eigh():
    """IMTL-G's and Aligned-MTL's 2-task closed forms (Python floats) against numpy's eigh on
    random Gramians with norms up to 1000x apart."""
    from multitask.nn.aggregation import _aligned_mtl, _imtl_g

    rng = np.random.default_rng(0)
    used = 0
    for _ in range(300):
        A = rng.standard_normal((2, 5)) * rng.uniform(0.01, 10, (2, 1))
        G, w = A @ A.T, rng.uniform(0, 1, 2)
        lam, V = np.linalg.eigh(G)
        for scale, s in (("min", lam[0]), ("mean", lam.mean()), ("median", lam[0])):
            got = _aligned_mtl._two_tasks(G, scale, w)
            if got is not None:
                used += 1
                want = np.sqrt(s) * (V @ (lam**-0.5 * (V.T @ w)))
                np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12 * np.abs(want).max())
        n = np.sqrt(np.diag(G))
        v = np.linalg.solve(G, n)  # the paper's G a = lambda n, where G is invertible
        np.testing.assert_allclose(_imtl_g._two_tasks(G, n), v / v.sum(), rtol=1e-10, atol=1e-12)
    assert used > 600  # the closed forms, not the eigh fallback, ran
    # rank one: parallel rows of norms 1 and 3 get a = (3, 1) / 4 (d bisects u_0 = u_1, as the
    # pseudo-inverse of the cosine matrix gives); opposite rows have no impartial direction
    for sign, want in ((1, [0.75, 0.25]), (-1, [0.0, 0.0])):
        G = np.array([[1.0, 3.0 * sign], [3.0 * sign, 9.0]])
        np.testing.assert_allclose(_imtl_g._two_tasks(G, np.array([1.0, 3.0])), want, atol=1e-15)


@pytest.mark.parametrize(
    "make", [lambda: CAGrad(c=float("nan")), lambda: NashMTL(max_norm=float("nan"))]
)
def test_nan_hyperparameters_are_refused(make):
    """NaN passed checks written as ``x < 0`` (every comparison with NaN is False)."""
    with pytest.raises(ValueError, match="must be"):
        make()
