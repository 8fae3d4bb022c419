"""The many-task path of FISTA (Chem97's shape: few features, thousands of tasks).

Above their size thresholds the fixed-step loop and the Gram products run the numba kernels
of ``linear/_task_kernels.py``. Oracles: a per-task ``einsum`` written here, textbook FISTA
with gradient restart (Beck & Teboulle 2009, O'Donoghue & Candès 2015) vectorised over tasks
with ``np.add.reduceat``, a duality gap computed here from per-task sums, and a fresh
interpreter that must not load numba for a fit below the thresholds.
"""

import logging
import subprocess
import sys

import numpy as np
import pytest
from fista_oracle import textbook_fista

from multitask.linear import _gram_products
from multitask.linear._design import make_design
from multitask.linear._task_kernels import extrapolate, pack_upper, packed_product, step_dots
from multitask.linear.datafits import Quadratic
from multitask.linear.penalties import L21
from multitask.linear.solvers import _fista_affine, fista

P, T = 4, 2100  # Gram stack 33,600 floats and iterates 8,400 entries: both kernels on


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("multitask").setLevel(logging.ERROR)  # tol=0 never converges
    yield
    logging.getLogger("multitask").setLevel(logging.NOTSET)


def _many_tasks(seed=0, n_t=6):
    """``n_t`` rows per task, all tasks with the centred Gram spectrum (4, 1, 0.25, 0.04)
    (condition number 100: momentum overshoots within the first tens of iterations, so the
    gradient restart fires), random task means and intercepts."""
    rng = np.random.default_rng(seed)
    counts = np.full(T, n_t)
    task = np.repeat(np.arange(T), n_t)
    Z = rng.standard_normal((T, n_t, P))
    Z -= Z.mean(axis=1, keepdims=True)
    Q = np.linalg.qr(Z)[0] * np.sqrt(n_t)  # centred orthonormal columns, scaled
    V = np.linalg.qr(rng.standard_normal((P, P)))[0]
    X = ((Q * np.array([2.0, 1.0, 0.5, 0.2])) @ V.T).reshape(-1, P)
    X += rng.standard_normal((T, P))[task]
    noise = 0.5 * rng.standard_normal(task.size) + rng.standard_normal(T)[task]
    y = X @ rng.standard_normal(P) + noise
    return X, y, task, counts


def test_thresholds_put_the_test_problem_on_the_kernel_path():
    assert P * P * T >= _gram_products._KERNEL_MIN
    assert P * T >= _fista_affine._KERNEL_MIN and T >= _fista_affine._MANY_TASKS * P
    assert T >= _gram_products._TASK_LAST * P


@pytest.mark.parametrize("p", [1, 3, 6])
def test_packed_product_equals_per_task_matvec(p):
    rng = np.random.default_rng(p)
    n = 1500  # more than one block of tasks
    A = rng.standard_normal((n, p, p))
    G = A @ A.transpose(0, 2, 1)  # symmetric, task-first
    M = np.ascontiguousarray(G.transpose(1, 2, 0))
    X, shift = rng.standard_normal((2, p, n))
    want = np.einsum("tij,jt->it", G, X)
    out = np.full((p, n), np.nan)
    packed_product(pack_upper(M), X, None, out)
    np.testing.assert_allclose(out, want, rtol=1e-13, atol=1e-13)
    packed_product(pack_upper(M), X, shift, out)
    np.testing.assert_allclose(out, want + shift, rtol=1e-13, atol=1e-13)


def test_step_dots_and_extrapolate_equal_numpy():
    rng = np.random.default_rng(3)
    x_new, x, d, u, u_prev = rng.standard_normal((5, 3, 700))
    d_new = np.empty_like(x)
    cross, sq = step_dots(x_new, x, d, d_new)
    np.testing.assert_array_equal(d_new, x_new - x)
    assert cross == pytest.approx(np.sum(d * (x_new - x)), rel=1e-12)
    assert sq == pytest.approx(np.sum((x_new - x) ** 2), rel=1e-12)
    out = np.empty_like(u)
    extrapolate(u, u_prev, 0.37, out)
    np.testing.assert_allclose(out, u + 0.37 * (u - u_prev), rtol=1e-14, atol=1e-15)


def test_gram_product_on_the_kernel_path_equals_per_task_sums():
    X, y, task, counts = _many_tasks(1)
    design = make_design(X, y, task, T)
    W = np.random.default_rng(2).standard_normal((P, T))
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    G = np.add.reduceat(X[:, :, None] * X[:, None, :], starts) / counts[:, None, None]
    want = np.einsum("tij,jt->it", G, W)
    np.testing.assert_allclose(Quadratic(design, use_gram=True).linear(W), want, rtol=1e-11)


def _textbook(X, y, task, counts, alpha, n_iter):
    """FISTA with gradient restart on the per-task centred data, vectorised over tasks."""
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    Xc = X - (np.add.reduceat(X, starts) / counts[:, None])[task]
    yc = y - (np.add.reduceat(y, starts) / counts)[task]
    G = np.add.reduceat(Xc[:, :, None] * Xc[:, None, :], starts) / counts[:, None, None]
    c = (np.add.reduceat(Xc * yc[:, None], starts) / counts[:, None]).T
    L = np.linalg.eigvalsh(G)[:, -1].max()

    def grad(W):
        return np.einsum("tij,jt->it", G, W) - c

    def prox(V):
        norms = np.linalg.norm(V, axis=1, keepdims=True)
        return V * np.maximum(0.0, 1.0 - alpha / L / np.maximum(norms, 1e-300))

    xs, _, restarts = textbook_fista(grad, prox, L, np.zeros(c.shape), n_iter)
    return L, xs, restarts


@pytest.mark.parametrize("use_gram", [True, False])
def test_many_task_iterates_equal_the_textbook_sequence(use_gram, monkeypatch):
    X, y, task, counts = _many_tasks(0)
    alpha = 0.02
    L, ref, restarts = _textbook(X, y, task, counts, alpha, 80)
    assert restarts >= 1  # the restart branch is exercised
    df = Quadratic(make_design(X, y, task, T), use_gram=use_gram)
    monkeypatch.setattr(sys.modules["multitask.linear.solvers.fista"], "_iterate", None)
    for k in (1, 2, 7, 30, 60, 80):  # the fixed-step affine loop only (no general loop)
        res = fista(df, L21(alpha), tol=0.0, max_iter=k, lipschitz=L, backtracking=False)
        want = ref[k - 1]
        assert np.max(np.abs(res.W - want)) <= 1e-12 * np.max(np.abs(want)), k


def _independent_gap(X, y, task, counts, alpha, W):
    """Duality gap of the centred L21 problem at ``W`` from per-task sums written here
    (dual point: the residual scaled into the dual ball, Ndiaye et al., JMLR 2017, eq. (7))."""
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    Xc = X - (np.add.reduceat(X, starts) / counts[:, None])[task]
    yc = y - (np.add.reduceat(y, starts) / counts)[task]
    r = yc - np.sum(Xc * W.T[task], axis=1)
    d = 1.0 / counts[task]
    grad = -(np.add.reduceat(Xc * (d * r)[:, None], starts)).T
    s = min(1.0, alpha / np.max(np.linalg.norm(grad, axis=1)))
    primal = 0.5 * np.sum(d * r * r) + alpha * np.sum(np.linalg.norm(W, axis=1))
    dual = s * np.sum(d * r * yc) - 0.5 * s * s * np.sum(d * r * r)
    return primal - dual, primal


@pytest.mark.parametrize("use_gram", [True, False])
def test_many_task_fit_stops_certified(use_gram):
    """Default gap stopping on the kernel path: the gap recomputed independently at the
    returned weights is within the tolerance (so the objective is within it of the optimum)."""
    X, y, task, counts = _many_tasks(4)
    alpha, tol = 0.01, 1e-6
    res = fista(Quadratic(make_design(X, y, task, T), use_gram=use_gram), L21(alpha), tol=tol)
    assert res.converged and res.n_iter > 20
    gap, primal = _independent_gap(X, y, task, counts, alpha, res.W)
    assert 0.0 <= gap <= tol * primal
    assert res.objective == pytest.approx(primal, rel=1e-12)


def test_f_ordered_warm_start_gives_the_same_iterates_and_c_kernels_only():
    """``W0 = coef_.T`` is F-ordered: same points as a C-ordered start, and the kernels run
    on C-ordered arrays only (no second compiled layout)."""
    X, y, task, _ = _many_tasks(5)
    df = Quadratic(make_design(X, y, task, T), use_gram=True)
    W0 = np.asfortranarray(np.random.default_rng(1).standard_normal((P, T)) * 0.1)
    a = fista(df, L21(0.01), W0=W0, tol=0.0, max_iter=15)
    b = fista(df, L21(0.01), W0=np.ascontiguousarray(W0), tol=0.0, max_iter=15)
    np.testing.assert_array_equal(a.W, b.W)
    for kernel in (step_dots, extrapolate, packed_product):
        assert all(getattr(a, "layout", "C") == "C" for sig in kernel.signatures for a in sig)


SMALL_FIT = """
import sys
import numpy as np
from multitask.linear._design import make_design, make_shared_design
from multitask.linear.datafits import Quadratic
from multitask.linear.penalties import L21
from multitask.linear.solvers import fista
rng = np.random.default_rng(0)
task = np.repeat(np.arange(300), 4)
X = rng.standard_normal((task.size, 5)); y = rng.standard_normal(task.size)
for use_gram in (True, False):
    fista(Quadratic(make_design(X, y, task, 300), use_gram=use_gram), L21(0.01), max_iter=50)
# large iterates (600 x 16) but few tasks per feature: the numpy loop
Xs = rng.standard_normal((100, 600)); Ys = rng.standard_normal((100, 16))
fista(Quadratic(make_shared_design(Xs, Ys), use_gram=False), L21(0.01), max_iter=20)
assert "numba" not in sys.modules, "a fit below the kernel thresholds loaded numba"
"""


def test_fit_below_the_thresholds_never_loads_numba():
    subprocess.run([sys.executable, "-c", SMALL_FIT], check=True)


@pytest.fixture(scope="module")
def chem97():
    """Chem97 (mlmRev): 31,022 students, 5 features, 2,410 schools as tasks (1 to 188 rows,
    162 schools with one row, whose centred Gram matrix is zero), rows sorted by school."""
    from multitask.datasets import load

    X, y, task = load("chem97").arrays()
    _, codes = np.unique(task, return_inverse=True)
    order = np.argsort(codes, kind="stable")
    X, y, codes = np.asarray(X, dtype=float)[order], np.asarray(y, dtype=float)[order], codes[order]
    return X, y, codes, np.bincount(codes)


def test_chem97_iterates_and_certified_stop(chem97):
    """On the real data: the first iterates equal the textbook sequence, and the default gap
    stopping returns weights whose independently computed relative gap is below ``tol``."""
    X, y, task, counts = chem97
    n_tasks = counts.size
    df = Quadratic(make_design(X, y, task, n_tasks), use_gram=True)
    alpha = 0.05 * np.max(np.linalg.norm(df.centered().gradient_at_zero(), axis=1))
    L, ref, _ = _textbook(X, y, task, counts, alpha, 40)
    for k in (1, 10, 40):
        res = fista(df, L21(alpha), tol=0.0, max_iter=k, lipschitz=L, backtracking=False)
        assert np.max(np.abs(res.W - ref[k - 1])) <= 1e-12 * np.max(np.abs(ref[k - 1])), k
    res = fista(df, L21(alpha), tol=1e-6)
    gap, primal = _independent_gap(X, y, task, counts, alpha, res.W)
    assert res.converged and 0.0 <= gap <= 1e-6 * primal
