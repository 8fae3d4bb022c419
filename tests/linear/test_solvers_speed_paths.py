"""The fast paths of the solvers give the same optimum as the plain ones.

Each speed-up of ``docs/solvers.md`` ("Speed") is checked against an independent route:
working sets on the data against the full-Gram solve and FISTA, the duality gap at zero
from cached products against the textbook formula on the residual, the gap and objective
that ``bcd`` reuses against a fresh evaluation, and the lazy public imports against the
names they promise.
"""

import subprocess
import sys

import numpy as np
import pytest

from multitask.linear._design import make_design, make_shared_design
from multitask.linear.datafits import Quadratic
from multitask.linear.penalties import L1, L21
from multitask.linear.solvers import alpha_max, bcd, choose_solver, fista, solve


def _tall(seed=0, n=2000, p=100, T=10, active=5):
    """n >> p, a few active rows: few rows violate at zero for large alpha."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    W = np.zeros((p, T))
    W[:active] = 3.0 * rng.standard_normal((active, T))
    Y = X @ W + 0.5 * rng.standard_normal((n, T)) + 1.0
    return X, Y


def _objective(df, penalty, W, b):
    return df.value(W, b) + penalty.value(W)


@pytest.mark.parametrize(("frac", "use_gram"), [(0.3, False), (0.001, True)])
def test_choose_solver_picks_data_working_sets_only_when_few_rows_violate(frac, use_gram):
    X, Y = _tall()
    df = Quadratic(make_shared_design(X, Y))
    alpha = frac * alpha_max(df, L21)
    assert choose_solver(df, L21(alpha)) == ("bcd", use_gram)
    # a path shares the design over many solves: the Gram matrix always pays there
    assert choose_solver(df, L21(alpha), n_solves=50) == ("bcd", True)


@pytest.mark.parametrize("penalty_cls", [L21, L1])
@pytest.mark.parametrize("frac", [0.3, 0.05, 0.001])
def test_data_working_sets_reach_the_full_gram_optimum(penalty_cls, frac):
    X, Y = _tall(seed=1)
    design = make_shared_design(X, Y)
    penalty = penalty_cls(frac * alpha_max(Quadratic(design), penalty_cls))
    ws = bcd(Quadratic(design, use_gram=False), penalty, tol=1e-12)
    full = bcd(Quadratic(design, use_gram=True), penalty, tol=1e-12)
    ref = fista(Quadratic(design, use_gram=True), penalty, tol=1e-12, max_iter=100000)
    assert ws.converged and full.converged
    df = Quadratic(design)
    best = min(_objective(df, penalty, r.W, r.intercept) for r in (ws, full, ref))
    for res in (ws, full):
        assert _objective(df, penalty, res.W, res.intercept) <= best * (1 + 1e-9)
    # screening by working sets never drops a row of the optimum's support
    support_ref = np.any(np.abs(ref.W) > 1e-6, axis=1)
    assert np.all(np.any(ws.W != 0, axis=1)[support_ref])


def test_weighted_and_sparse_designs_take_the_working_set_gram_too():
    import scipy.sparse as sp

    X, Y = _tall(seed=2, n=600, p=80, T=4)
    X[np.abs(X) < 1.0] = 0.0
    s = np.random.default_rng(2).uniform(0.5, 2.0, len(X))
    for Xd, weights in [(sp.csr_matrix(X), None), (X, s), (sp.csr_matrix(X), s)]:
        design = make_shared_design(Xd, Y, weights)
        penalty = L21(0.1 * alpha_max(Quadratic(design), L21))
        ws = bcd(Quadratic(design, use_gram=False), penalty, tol=1e-12)
        ref = fista(Quadratic(design, use_gram=True), penalty, tol=1e-12, max_iter=100000)
        assert ws.objective == pytest.approx(ref.objective, rel=1e-9)


def _textbook_l21_gap(X, Y, alpha, W):
    """Gap of the centred MultiTaskLasso problem at ``W`` from the residual (JMLR 2017)."""
    n = len(X)
    Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)
    R = Yc - Xc @ W
    primal = 0.5 / n * np.sum(R**2) + alpha * np.linalg.norm(W, axis=1).sum()
    scale = min(1.0, alpha / np.max(np.linalg.norm(Xc.T @ R / n, axis=1)))
    theta = scale * R
    dual = (np.sum(theta * Yc) - 0.5 * np.sum(theta**2)) / n
    return primal - dual, primal


@pytest.mark.parametrize("use_gram", [False, True])
def test_gap_at_zero_from_cached_products_is_the_textbook_gap(use_gram):
    X, Y = _tall(seed=3, n=300, p=40, T=3)
    df = Quadratic(make_shared_design(X, Y), use_gram=use_gram).centered()
    alpha = 0.2 * alpha_max(df, L21)
    zero = np.zeros((40, 3))
    (gap, primal, _), grad = df.gap_at(zero, df.linear(zero), L21(alpha), return_grad=True)
    ref_gap, ref_primal = _textbook_l21_gap(X, Y, alpha, zero)
    assert gap == pytest.approx(ref_gap, rel=1e-12)
    assert primal == pytest.approx(ref_primal, rel=1e-12)
    Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)
    np.testing.assert_allclose(grad, -Xc.T @ Yc / len(X), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(df.gradient_at_zero(), grad, rtol=1e-12, atol=1e-14)


def test_bcd_reports_the_gap_and_objective_at_its_solution():
    X, Y = _tall(seed=4, n=400, p=120, T=5)
    design = make_shared_design(X, Y)
    alpha = 0.1 * alpha_max(Quadratic(design), L21)
    res = bcd(Quadratic(design, use_gram=False), L21(alpha), tol=1e-4)
    ref_gap, ref_primal = _textbook_l21_gap(X, Y, alpha, res.W)
    assert res.dual_gap == pytest.approx(ref_gap, rel=1e-8, abs=1e-13)
    assert res.objective == pytest.approx(ref_primal, rel=1e-12)
    assert res.stop_crit == pytest.approx(ref_gap / ref_primal, rel=1e-8, abs=1e-13)


def test_equal_weight_is_the_common_row_weight_or_none():
    X, Y = _tall(seed=5, n=30, p=6, T=2)
    assert make_shared_design(X, Y).equal_weight == pytest.approx(1 / 30)
    assert make_shared_design(X, Y, np.arange(1.0, 31.0)).equal_weight is None
    task = np.repeat([0, 1, 2], 10)
    assert make_design(X, Y[:, 0], task, 3).equal_weight == pytest.approx(1 / 10)
    assert make_design(X, Y[:, 0], np.repeat([0, 1], [10, 20]), 2).equal_weight is None


def test_solve_auto_agrees_with_the_cvxpy_free_reference_on_a_tall_problem():
    X, Y = _tall(seed=6)
    df = Quadratic(make_shared_design(X, Y))
    for frac in (0.3, 0.001):
        penalty = L21(frac * alpha_max(df, L21))
        res = solve(df, penalty, tol=1e-10)
        ref = fista(Quadratic(df.design, use_gram=True), penalty, tol=1e-12, max_iter=100000)
        assert res.objective == pytest.approx(ref.objective, rel=1e-9)


LAZY = """
import sys
import multitask.linear as ml
assert "sklearn.base" not in sys.modules, "import multitask.linear loaded sklearn"
from multitask.linear import GroupLassoRegressor
assert "multitask.linear._cv" not in sys.modules
assert "sklearn.model_selection" not in sys.modules
import numpy as np
rng = np.random.default_rng(0)
GroupLassoRegressor(alpha=0.05).fit(rng.standard_normal((50, 8)), rng.standard_normal((50, 2)))
assert "numba" not in sys.modules, "a small fit loaded numba"
assert sorted(ml.__all__) == sorted(set(ml.__all__))
for name in ml.__all__:
    assert getattr(ml, name).__name__ == name
assert set(ml.__all__) <= set(dir(ml))
try:
    ml.NoSuchEstimator
except AttributeError as err:
    assert "NoSuchEstimator" in str(err)
else:
    raise AssertionError("missing name did not raise AttributeError")
"""


def test_public_names_import_lazily_and_small_fits_need_no_numba():
    subprocess.run([sys.executable, "-c", LAZY], check=True)
