"""FISTA's iterates against a textbook reference (Beck & Teboulle 2009 with O'Donoghue &
Candès's gradient restart), written here from per-task lists with no design products.

The fixed-step loop for quadratic datafits (``solvers/_fista_affine.py``) combines forward
points instead of evaluating the gradient at the extrapolated point; these tests pin that the
sequence of points is unchanged (to 1e-12) and that it equals the general loop's.
"""

import logging

import numpy as np
import pytest
from fista_oracle import textbook_fista

from multitask.linear._design import make_design, make_shared_design
from multitask.linear.datafits import Quadratic
from multitask.linear.penalties import L21, SparseGroupLasso
from multitask.linear.solvers import fista

P, T = 6, 4
STEPS = (1, 2, 3, 5, 8, 13, 21, 34, 55, 80)
#: the fixed step 1/L of the reference: without ``backtracking=False`` a reference L one
#: rounding below the datafit's bound would send fista to its general (backtracking) loop
AFFINE = dict(backtracking=False)


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("multitask").setLevel(logging.ERROR)  # tol=0 never converges
    yield
    logging.getLogger("multitask").setLevel(logging.NOTSET)


def _tasks(seed, shared):
    """Correlated features (so that momentum overshoots and restarts fire)."""
    rng = np.random.default_rng(seed)
    n = [40] * T if shared else [12 + 9 * t for t in range(T)]
    base = rng.standard_normal((max(n), P)) @ (np.eye(P) + 0.8 * rng.random((P, P)))
    Xs = [base] * T if shared else [base[:k] + 0.1 * rng.standard_normal((k, P)) for k in n]
    ys = [X[:, :3] @ rng.standard_normal(3) + 2.0 + 0.5 * rng.standard_normal(len(X)) for X in Xs]
    ws = [rng.uniform(0.5, 2.0, len(X)) for X in Xs]
    return Xs, ys, ([ws[0]] * T if shared else ws)  # a shared design has one row weighting


def _design(Xs, ys, ws, shared, weighted):
    if shared:
        return make_shared_design(Xs[0], np.column_stack(ys), ws[0] if weighted else None)
    task = np.concatenate([np.full(len(y), t) for t, y in enumerate(ys)])
    s = np.concatenate(ws) if weighted else None
    return make_design(np.vstack(Xs), np.concatenate(ys), task, T, s)


def _reference(Xs, ys, ws, weighted, center, prox, n_iter):
    """Textbook FISTA with gradient restart; returns (L, iterates, mapping norms, restarts)."""
    ds = [w / w.sum() if weighted else np.full(len(w), 1.0 / len(w)) for w in ws]
    if center:
        Xs = [X - d @ X for X, d in zip(Xs, ds, strict=True)]
        ys = [y - d @ y for y, d in zip(ys, ds, strict=True)]
    L = max(np.linalg.eigvalsh(X.T @ (d[:, None] * X))[-1] for X, d in zip(Xs, ds, strict=True))

    def grad(W):
        parts = zip(Xs, ys, ds, strict=True)
        return np.column_stack([X.T @ (d * (X @ W[:, t] - y)) for t, (X, y, d) in enumerate(parts)])

    xs, maps, restarts = textbook_fista(
        grad, lambda V: prox(V, 1.0 / L), L, np.zeros((P, T)), n_iter
    )
    scale = np.linalg.norm(grad(np.zeros((P, T))))
    return L, xs, np.array(maps) / scale, restarts


def _group_shrink_rows(V, t):
    norms = np.linalg.norm(V, axis=1, keepdims=True)
    return V * np.maximum(0.0, 1.0 - t / np.maximum(norms, 1e-300))


CASES = [
    # shared, weighted, fit_intercept, use_gram
    (False, False, True, True),
    (False, False, True, False),
    (False, True, True, True),
    (False, True, False, False),
    (True, False, True, True),
    (True, True, True, False),
]


@pytest.mark.parametrize(("shared", "weighted", "fit_intercept", "use_gram"), CASES)
def test_l21_iterates_equal_the_textbook_sequence(shared, weighted, fit_intercept, use_gram):
    Xs, ys, ws = _tasks(7, shared)
    alpha = 0.02
    L, ref, _, restarts = _reference(
        Xs, ys, ws, weighted, fit_intercept, lambda V, s: _group_shrink_rows(V, s * alpha), 80
    )
    assert restarts >= 1  # the restart branch is exercised
    df = Quadratic(_design(Xs, ys, ws, shared, weighted), use_gram=use_gram)
    for k in STEPS:
        res = fista(
            df, L21(alpha), fit_intercept=fit_intercept, tol=0.0, max_iter=k, lipschitz=L, **AFFINE
        )
        want = ref[k - 1]
        assert np.max(np.abs(res.W - want)) <= 1e-12 * np.max(np.abs(want)), k


@pytest.mark.parametrize("use_gram", [True, False])
def test_mapping_criterion_equals_the_reference(use_gram):
    """A penalty without a duality gap stops on ``L ||x+ - y|| / ||grad(0)||``."""
    Xs, ys, ws = _tasks(5, False)
    pen = SparseGroupLasso(0.02, 0.01)
    L, ref, maps, _ = _reference(Xs, ys, ws, False, True, pen.prox, 40)
    df = Quadratic(_design(Xs, ys, ws, False, False), use_gram=use_gram)
    for k in (1, 7, 40):
        res = fista(df, pen, tol=0.0, max_iter=k, lipschitz=L, **AFFINE)
        assert np.max(np.abs(res.W - ref[k - 1])) <= 1e-12 * np.max(np.abs(ref[k - 1]))
        assert res.stop_crit == pytest.approx(maps[k - 1], rel=1e-9)


@pytest.mark.parametrize(("use_gram", "restart", "gap_freq"), [(True, True, 10), (False, False, 3)])
def test_affine_loop_equals_the_general_loop(use_gram, restart, gap_freq, monkeypatch):
    """Proven Lipschitz bound, gap stopping: the fixed-step loop for quadratics and the
    general loop give the same points, iteration counts, gaps and objective histories."""
    Xs, ys, ws = _tasks(7, False)
    df = Quadratic(_design(Xs, ys, ws, False, True), use_gram=use_gram)
    opts = dict(restart=restart, gap_freq=gap_freq)
    fast = [fista(df, L21(0.01), tol=0.0, max_iter=k, **opts) for k in STEPS]
    converged = fista(df, L21(0.01), tol=1e-10, **opts)
    monkeypatch.setattr(Quadratic, "affine_gradient", False)
    slow = [fista(df, L21(0.01), tol=0.0, max_iter=k, **opts) for k in STEPS]
    for a, b in zip(fast, slow, strict=True):
        assert np.max(np.abs(a.W - b.W)) <= 1e-12 * np.max(np.abs(b.W))
        assert a.dual_gap == pytest.approx(b.dual_gap, rel=1e-6, abs=1e-13)
        assert np.allclose(a.history, b.history, rtol=1e-12, atol=0)
    ref = fista(df, L21(0.01), tol=1e-10, **opts)
    assert converged.n_iter == ref.n_iter
    assert converged.objective == pytest.approx(ref.objective, rel=1e-12)
