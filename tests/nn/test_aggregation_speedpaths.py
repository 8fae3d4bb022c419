"""The fast paths of GradDrop, MGDA and UPGrad against independent references.

GradDrop's kernel (sums of the positive and negative parts, a lerp margin, a clamp between the
two sums, scratch buffers reused between calls) against Chen et al. 2020, Alg. 1 written on the
vectors with the same documented draws; the host QPs' Python-float paths against cvxpy and
against the numpy active set they replace.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from aggregator_checks import graddrop_uniforms

from multitask.nn.aggregation import MGDA, GradDrop, UPGrad, _host_qp, _solvers
from multitask.nn.aggregation._rng import SeededBits

cp = pytest.importorskip("cvxpy")
torch.set_num_threads(1)


def _reference(J: np.ndarray, U: np.ndarray, leak: np.ndarray | None = None) -> np.ndarray:
    """Chen et al. 2020, eq. (1)-(2) and Alg. 1 with the leak, in float64, loop-free numpy."""
    mass = np.abs(J).sum(axis=0)
    P = 0.5 * (1 + J.sum(axis=0) / np.where(mass > 0, mass, 1))
    keep = ((P > U) & (J > 0)) | ((P < U) & (J < 0))
    leak = np.zeros(J.shape[0]) if leak is None else leak
    return ((leak[:, None] + (1 - leak[:, None]) * keep) * J).sum(axis=0)


# ------------------------------------------------------------------------------- GradDrop ---
def test_uniform_into_a_buffer_is_the_documented_stream():
    for dtype, np_dtype in ((torch.float32, np.float32), (torch.float64, np.float64)):
        for n in (1, 7, 1000):
            want = graddrop_uniforms(4, n, np_dtype)
            out = torch.full((n,), -1.0, dtype=dtype)
            got = SeededBits(4).uniform(n, dtype, out=out)
            assert got.data_ptr() == out.data_ptr()
            np.testing.assert_array_equal(got.double().numpy(), want)
            np.testing.assert_array_equal(SeededBits(4).uniform(n, dtype).double().numpy(), want)
            assert 0 <= want.min() and want.max() < 1


def test_small_side_is_not_lost_to_cancellation():
    """float32, per coordinate a positive gradient about 1000 times the other, negative one:
    where the negative side is drawn (P ~ 0.999), the output is that gradient itself, exactly.
    (``(t - m) / 2`` from the sum ``t`` and the mass ``m`` rounds it at ``ulp(1000)``.)"""
    g = torch.Generator().manual_seed(0)
    n = 50000
    big = (torch.rand(n, generator=g) + 1.0) * 1000
    small = -(torch.rand(n, generator=g) + 1.0)
    J = torch.stack([big, small])
    U = graddrop_uniforms(2, n, np.float32)
    out = GradDrop(seed=2)(J)
    expected = _reference(J.double().numpy(), U)
    picked_small = expected < 0
    assert 10 < picked_small.sum() < 200
    np.testing.assert_array_equal(out.numpy()[picked_small], small.numpy()[picked_small])
    np.testing.assert_array_equal(out.numpy()[~picked_small], big.numpy()[~picked_small])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scratch_reuse_across_shapes_and_returned_tensors_stay(dtype):
    """Calls with other shapes in between: every result is the paper's, and a result handed
    out earlier is not overwritten by a later call (the output is never a scratch buffer)."""
    g = torch.Generator().manual_seed(1)
    shapes = [(2, 300), (5, 1000), (3, 50), (5, 1000), (2, 300)]
    Js = [torch.randn(s, generator=g, dtype=dtype) for s in shapes]
    Js[1][:, :10] = 0  # all-zero coordinates give zero
    outs = [GradDrop(seed=7)(J) for J in Js]
    kept = [o.clone() for o in outs]
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    for J, out, copy in zip(Js, outs, kept, strict=True):
        U = graddrop_uniforms(7, J.shape[1], np_dtype)
        torch.testing.assert_close(out, copy, rtol=0, atol=0)
        expected = _reference(J.double().numpy(), U)
        np.testing.assert_allclose(out.double().numpy(), expected, atol=tol)


def test_leak_in_float32_and_narrow_dtypes():
    g = torch.Generator().manual_seed(3)
    J = torch.randn(4, 3000, generator=g)
    U = graddrop_uniforms(5, J.shape[1], np.float32)
    leak = np.array([0.0, 0.25, 0.5, 1.0])
    out = GradDrop(torch.tensor(leak, dtype=torch.float32), seed=5)(J)
    np.testing.assert_allclose(
        out.double().numpy(), _reference(J.double().numpy(), U, leak), atol=1e-5
    )
    for dtype in (torch.float16, torch.bfloat16):  # computed in float32, returned in dtype
        half = J.to(dtype)
        expected = GradDrop(seed=5)(half.float()).to(dtype)
        got = GradDrop(seed=5)(half)
        assert got.dtype == dtype
        torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_inference_mode_and_threads():
    g = torch.Generator().manual_seed(4)
    J = torch.randn(3, 4000, generator=g)
    U = graddrop_uniforms(6, J.shape[1], np.float32)
    expected = _reference(J.double().numpy(), U)
    with torch.inference_mode():
        np.testing.assert_allclose(GradDrop(seed=6)(J).double().numpy(), expected, atol=1e-6)
    results = {}

    def run(k):  # per-thread scratch: simultaneous calls do not share buffers
        results[k] = [GradDrop(seed=6)(J) for _ in range(20)]

    threads = [threading.Thread(target=run, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for outs in results.values():
        for out in outs:
            np.testing.assert_allclose(out.double().numpy(), expected, atol=1e-6)


# ---------------------------------------------------------------------- host QPs, Python ---
def _simplex_reference(G: np.ndarray) -> np.ndarray:
    a = cp.Variable(G.shape[0])
    cp.Problem(cp.Minimize(cp.quad_form(a, cp.psd_wrap(G))), [a >= 0, cp.sum(a) == 1]).solve(
        cp.CLARABEL
    )
    return a.value


def _gramians(T: int, count: int, seed: int):
    """Random Gramians, every third with two strongly conflicting tasks (a sparse support)."""
    rng = np.random.default_rng(seed)
    for k in range(count):
        A = rng.standard_normal((T, T + 2)) * rng.choice([1e-2, 1.0, 1e2], size=(T, 1))
        if k % 3 == 0:
            A[1] = -A[0] + 0.05 * A[1]
        yield _host_qp.normalise(A @ A.T, _solvers.RIDGE[torch.float64])


@pytest.mark.parametrize("T", [3, 4, 5])
def test_python_min_norm_point_matches_cvxpy_and_numpy(T):
    for G in _gramians(T, 12, T):
        a = _host_qp.min_norm_simplex(G)
        x = _host_qp.nnqp(G, -np.ones((1, T)))[0]
        np.testing.assert_allclose(a, x / x.sum(), atol=1e-10)
        _assert_min_norm_point(a, G)


def _assert_min_norm_point(a: np.ndarray, G: np.ndarray) -> None:
    """On the simplex, no higher than cvxpy's point, and the KKT conditions: ``(G a)_i >=
    a^T G a`` for every task, with equality on the support. (The weights themselves are
    ill-determined when the rows' norms differ by 1e4, so they are not compared.)"""
    want = _simplex_reference(G)
    value, grad = a @ G @ a, G @ a
    assert abs(a.sum() - 1) < 1e-12 and a.min() >= 0
    assert value <= want @ G @ want + 1e-9
    assert grad.min() >= value - 1e-10
    np.testing.assert_allclose(grad[a > 1e-9], value, atol=1e-10)


def test_python_solve_and_nnqp_small_edge_cases():
    rng = np.random.default_rng(0)
    for n in range(1, 7):
        A = rng.standard_normal((n, n))
        b = rng.standard_normal(n)
        x = _host_qp._solve_small(A.tolist(), b.tolist())
        np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-10, atol=1e-10)
    assert _host_qp._solve_small([[1.0, 2.0], [2.0, 4.0]], [1.0, 1.0]) is None
    assert _host_qp._solve_small([], []) == []
    G = [[2.0, 0.5], [0.5, 1.0]]
    assert _host_qp.nnqp_small(G, [1.0, 0.0]) == [0.0, 0.0]  # no descent: z = 0
    assert _host_qp.nnqp_small([[0.0, 0.0], [0.0, 0.0]], [-1.0, -1.0]) is None  # singular


def test_min_norm_point_falls_back_when_the_python_path_gives_up(monkeypatch):
    monkeypatch.setattr(_host_qp, "nnqp_small", lambda G, c: None)
    for G in _gramians(5, 4, 9):
        _assert_min_norm_point(_host_qp.min_norm_simplex(G), G)


def test_mgda_and_upgrad_weights_on_the_benchmark_shapes():
    """End to end at T = 5 and 2 (the Python-float paths) against the cvxpy min-norm point
    and the dual-cone projections (primal QPs)."""
    g = torch.Generator().manual_seed(5)
    for T in (2, 5):
        J = torch.randn(T, 400, generator=g, dtype=torch.float64)
        J[1] = -0.7 * J[0] + 0.3 * J[1]
        G = (J @ J.T).numpy()
        a = MGDA().weights(J).numpy()
        want = _simplex_reference(G / np.trace(G))
        np.testing.assert_allclose(a, want, atol=1e-5)
        Jn = J.numpy()
        projections = []
        for i in range(T):
            x = cp.Variable(Jn.shape[1])
            cp.Problem(cp.Minimize(cp.sum_squares(x - Jn[i])), [Jn @ x >= 0]).solve(cp.CLARABEL)
            projections.append(x.value)
        expected = np.mean(projections, axis=0)
        got = UPGrad()(J).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-5 * np.abs(expected).max())


# ------------------------------------------------------------------ CAGrad, Python floats ---
def _cagrad_dual(G: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """cvxpy's ``w = argmin_{w in simplex} b^T w + sqrt(phi) ||J^T w||`` (Liu et al. 2021,
    eq. 4, with ``b = G 1 / T``, ``phi = c^2 ||g0||^2``), and ``phi``."""
    T = G.shape[0]
    b, L = G.sum(axis=1) / T, np.linalg.cholesky(G)
    phi = c**2 * b.sum() / T
    w = cp.Variable(T)
    objective = b @ w + np.sqrt(phi) * cp.norm(L.T @ w)
    cp.Problem(cp.Minimize(objective), [w >= 0, cp.sum(w) == 1]).solve(cp.CLARABEL)
    return w.value, phi


@pytest.mark.parametrize("T", [2, 3, 4, 5])
def test_python_cagrad_matches_numpy_and_cvxpy(T):
    """The Python-float active set gives the numpy one's ``u`` (the same supports, each solve
    to rounding), and ``u / sum(u)`` attains cvxpy's optimum of the dual."""
    for G in _gramians(T, 12, 40 + T):
        for c in (0.1, 0.5, 2.0):
            u = _host_qp.cagrad_coefficients_small(G.tolist(), c)
            want = _host_qp.cagrad_coefficients(G, c)
            assert u is not None and want is not None
            np.testing.assert_allclose(u, want, rtol=1e-9, atol=1e-12)
            w_ref, phi = _cagrad_dual(G, c)
            b = G.sum(axis=1) / T

            def dual(w, b=b, phi=phi, G=G):
                return b @ w + np.sqrt(phi) * np.sqrt(w @ G @ w)

            w = np.array(u) / sum(u)
            assert dual(w) <= dual(w_ref) + 1e-8 * max(1.0, abs(dual(w_ref)))


def test_python_normalise_is_numpys():
    for G in _gramians(4, 3, 7):
        raw = G * 37.5
        np.testing.assert_array_equal(
            _host_qp.normalise_small(raw.tolist(), 1e-6), _host_qp.normalise(raw, 1e-6)
        )
    zero = [[0.0, 0.0], [0.0, 0.0]]
    assert _host_qp.normalise_small(zero, 1e-6) == [[1e-6, 0.0], [0.0, 1e-6]]


def test_cagrad_host_weights_fall_back_to_numpy(monkeypatch):
    """When the Python-float active set gives up, CAGrad's host weights come from numpy's."""
    from multitask.nn.aggregation import CAGrad

    J = torch.randn(4, 300, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    G = (J @ J.T).numpy()
    fast = CAGrad().host_weights(G)
    monkeypatch.setattr(_host_qp, "cagrad_coefficients_small", lambda G, c: None)
    slow = CAGrad().host_weights(G)
    np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-12)
    calls = []
    monkeypatch.setattr(_host_qp, "cagrad_coefficients", lambda G, c: calls.append(1))
    assert CAGrad().host_weights(G) is None and calls == [1]  # both gave up: None


# --------------------------------------------------------------- Nash-MTL, Python floats ---
def _nash_gramians(T: int, seed: int):
    """A sequence of Gramians a run could see: random, two conflicting tasks, a task with a
    zero gradient (no stake), and rescaled ones."""
    rng = np.random.default_rng(seed)
    for k in range(8):
        J = rng.standard_normal((T, 40)) * 10.0 ** rng.integers(-3, 3)
        if k % 4 == 1:
            J[1] = -0.8 * J[0] + 0.3 * J[1]
        if k % 4 == 2:
            J[T - 1] = 0.0
        yield J @ J.T


@pytest.mark.parametrize("max_norm", [0.0, 1.0])
@pytest.mark.parametrize("update_every", [1, 2])
@pytest.mark.parametrize("T", [2, 3, 5])
def test_python_nash_matches_the_torch_path_step_by_step(T, update_every, max_norm):
    """``host_weights`` (Python floats) against ``gramian_weights`` (torch, numpy Newton):
    the same weights, the same state and call count after every call, fresh and warm."""
    from multitask.nn.aggregation import NashMTL

    host, torch_path = (NashMTL(update_every=update_every, max_norm=max_norm) for _ in range(2))
    for G in _nash_gramians(T, 10 * T + update_every):
        w = host.host_weights(G)
        want = torch_path.gramian_weights(torch.from_numpy(G)).numpy()
        assert w is not None
        np.testing.assert_allclose(w, want, rtol=1e-9, atol=1e-12 * np.abs(want).max())
        np.testing.assert_allclose(host.alpha.numpy(), torch_path.alpha.numpy(), rtol=1e-9)
        assert host.alpha.dtype == torch_path.alpha.dtype == torch.float64
        assert host.step == torch_path.step
        if max_norm > 0:
            assert np.sqrt(w @ G @ w) <= max_norm * (1 + 1e-12)
    assert host.step == 8


def test_python_nash_with_no_positive_solution_and_bad_input():
    """Two opposite gradients (Pareto-stationary: no positive solution): weights 0 and the
    state kept, as the torch path does. A non-finite Gramian, or more tasks than the Python
    path takes: None, with nothing changed (the torch path then runs)."""
    from multitask.nn.aggregation import NashMTL

    g = np.arange(1.0, 6.0)
    J = np.stack([g, -g])
    host, torch_path = NashMTL(), NashMTL()
    # a solvable step first, so that there is a state to keep
    torch_path.gramian_weights(torch.eye(2, dtype=torch.float64))
    host.host_weights(np.eye(2))
    w, want = host.host_weights(J @ J.T), torch_path.gramian_weights(torch.from_numpy(J @ J.T))
    np.testing.assert_array_equal(w, want.numpy())
    assert (w == 0).all()
    np.testing.assert_allclose(host.alpha.numpy(), torch_path.alpha.numpy(), rtol=1e-12)
    state, step = host.alpha.clone(), host.step
    assert host.host_weights(np.array([[1.0, np.nan], [np.nan, 1.0]])) is None
    assert host.host_weights(np.eye(6)) is None
    assert host.step == step and torch.equal(host.alpha, state)


def test_python_nash_newton_matches_numpy():
    rng = np.random.default_rng(3)
    for T in (2, 3, 4, 5):
        for _ in range(10):
            A = rng.standard_normal((T, T + 3))
            G = A @ A.T / np.trace(A @ A.T)
            init = rng.uniform(0.5, 2.0, T)
            for n_iter, max_iter in ((40, 200), (8, 0)):
                want = _host_qp.nash_weights(G, init, n_iter, max_iter)
                got = _host_qp.nash_weights_small(G.tolist(), init.tolist(), n_iter, max_iter)
                np.testing.assert_allclose(got, want, rtol=1e-9)
    assert _host_qp.nash_weights_small([[1.0, 0.0], [0.0, 1.0]], [0.0, 1.0], 5) is None  # 1 / 0


def test_nash_weights_on_the_cpu_take_the_python_path(monkeypatch):
    from multitask.nn.aggregation import NashMTL

    J = torch.randn(3, 50, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    calls = []
    real = _host_qp.nash_solve_small
    monkeypatch.setattr(_host_qp, "nash_solve_small", lambda *a: calls.append(1) or real(*a))
    w = NashMTL().weights(J)
    want = NashMTL().gramian_weights(J @ J.T)
    assert calls == [1]
    torch.testing.assert_close(w, want, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose((w * (J @ J.T @ w)).numpy(), 1.0, rtol=1e-6)  # G a = 1 / a


@pytest.mark.parametrize("fresh", [True, False])
def test_python_nash_step_equals_the_torch_step_before_convergence(fresh):
    """Two Newton steps only (``max_iter=0``), where the start matters: the Python step
    starts where the torch one does (cold, or the last weights times ``sqrt(trace)``)."""
    from multitask.nn.aggregation._nash_mtl import _solve

    rng = np.random.default_rng(4)
    for T in (2, 3, 5):
        A = rng.standard_normal((T, T + 2))
        G = A @ A.T
        last = rng.uniform(0.1, 3.0, T).tolist()
        alpha, state = _host_qp.nash_solve_small(G.tolist(), last, fresh, 2, 0)
        want = _solve(
            torch.from_numpy(G),
            torch.tensor(last, dtype=torch.float64),
            fresh=fresh,
            n_iter=2,
            max_iter=0,
        ).numpy()
        np.testing.assert_allclose(alpha, want[0], rtol=1e-10)
        np.testing.assert_allclose(state, want[1], rtol=1e-10)


def test_one_elimination_solves_each_right_hand_side_as_alone():
    """``_solve_many_small``: every right-hand side gets bitwise the result of its own
    ``_solve_small`` (the pivots depend on ``A`` only), and both match numpy's solve."""
    rng = np.random.default_rng(4)
    for n in range(1, 6):
        for _ in range(50):
            A = rng.standard_normal((n, n)) * 10.0 ** rng.integers(-4, 5, size=(n, 1))
            B = rng.standard_normal((2, n))
            together = _host_qp._solve_many_small(A.tolist(), B.tolist())
            alone = [_host_qp._solve_small(A.tolist(), b) for b in B.tolist()]
            assert together == alone
            np.testing.assert_allclose(together, np.linalg.solve(A, B.T).T, rtol=1e-7, atol=1e-9)
    assert _host_qp._solve_many_small([[0.0, 0.0], [1.0, 2.0]], [[1.0, 1.0]]) is None
