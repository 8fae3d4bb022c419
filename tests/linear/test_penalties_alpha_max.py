"""alpha_max: W = 0 is optimal just above it and not just below it."""

import numpy as np
import pytest
from test_penalties_prox import TREE_GROUPS, TREE_WEIGHTS

from multitask.linear import penalties as P

SINGLE = {
    "L1": lambda a: P.L1(a),
    "L21": lambda a: P.L21(a),
    "L1Inf": lambda a: P.L1Inf(a),
    "SparseGroupLasso": lambda a: P.SparseGroupLasso(a, 0.4),
    "TraceNorm": lambda a: P.TraceNorm(a),
    "TreeGroupLasso": lambda a: P.TreeGroupLasso(a, TREE_GROUPS, TREE_WEIGHTS),
}
REL = 1e-7


@pytest.mark.parametrize("name", SINGLE)
def test_alpha_max_is_the_zero_threshold(name):
    """min_W 1/2 ||W - V||^2 + penalty(W) has gradient grad0 = -V at W = 0: its solution,
    prox(V, 1), is 0 iff alpha >= alpha_max(grad0)."""
    rng = np.random.default_rng(20)
    grad0 = rng.standard_normal((6, 5))
    alpha_max = SINGLE[name](1.0).alpha_max(grad0)
    assert 0 < alpha_max < np.inf
    assert not np.any(SINGLE[name](alpha_max * (1 + REL)).prox(-grad0, 1.0))
    assert np.any(SINGLE[name](alpha_max * (1 - REL)).prox(-grad0, 1.0))


def test_alpha_max_closed_forms():
    g = np.array([[1.0, -3.0], [2.0, 2.0]])
    assert P.L1().alpha_max(g) == 3.0
    assert P.L21().alpha_max(g) == pytest.approx(np.sqrt(10))
    assert P.L1Inf().alpha_max(g) == 4.0
    assert P.TraceNorm().alpha_max(g) == pytest.approx(np.linalg.svd(g)[1][0])
    # soft-threshold at beta = 1.5: rows (0, -1.5) and (0.5, 0.5)
    assert P.SparseGroupLasso(1.0, 1.5).alpha_max(g) == pytest.approx(1.5)
    assert P.SparseGroupLasso(1.0, 3.0).alpha_max(g) == 0.0
    # one group holding both tasks: the tree norm is the l2 norm
    assert P.TreeGroupLasso(1.0, [[0, 1]]).alpha_max(g) == pytest.approx(np.sqrt(10))


def test_tree_alpha_max_is_inf_when_a_task_is_unpenalised():
    g = np.array([[1.0, 2.0, 0.5]])
    assert P.TreeGroupLasso(1.0, [[0], [0, 1]]).alpha_max(g) == np.inf
    assert P.TreeGroupLasso(1.0, [[0], [0, 1]]).alpha_max(g * [1, 1, 0]) < np.inf


@pytest.mark.parametrize("cls", [P.Dirty, P.RobustMTL])
def test_composite_alpha_max(cls):
    """W = 0 optimal for both components iff prox of (-grad0, -grad0) is 0."""
    rng = np.random.default_rng(21)
    grad0 = rng.standard_normal((6, 5))
    V = np.stack([-grad0, -grad0])
    beta_max = cls(1.0, 1.0).beta_max(grad0)
    beta = beta_max * (1 + REL)
    alpha_max = cls(1.0, beta).alpha_max(grad0)
    assert 0 < alpha_max < np.inf
    assert not np.any(cls(alpha_max * (1 + REL), beta).prox(V, 1.0))
    assert np.any(cls(alpha_max * (1 - REL), beta).prox(V, 1.0)[0])
    # beta too small: no alpha makes W = 0 optimal
    below = cls(1.0, beta_max * (1 - REL))
    assert below.alpha_max(grad0) == np.inf
    assert np.any(cls(1e6, beta_max * (1 - REL)).prox(V, 1.0)[1])


def test_l21_alpha_max_matches_sklearn_multitask_lasso():
    """With the squared datafit on a shared design, grad0 = -X^T (Y - mean Y) / n."""
    from sklearn.linear_model import MultiTaskLasso

    rng = np.random.default_rng(22)
    X = rng.standard_normal((30, 6))
    Y = X[:, :2] @ rng.standard_normal((2, 3)) + 0.1 * rng.standard_normal((30, 3))
    Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)
    alpha_max = P.L21().alpha_max(-Xc.T @ Yc / len(X))
    fit = MultiTaskLasso(alpha=alpha_max * (1 + 1e-6), tol=1e-12).fit(X, Y)
    assert not np.any(fit.coef_)
    fit = MultiTaskLasso(alpha=alpha_max * (1 - 1e-3), tol=1e-12).fit(X, Y)
    assert np.any(fit.coef_)


def test_smooth_penalties_have_no_alpha_max():
    assert not hasattr(P.Ridge(), "alpha_max")


@pytest.mark.parametrize("name", ["L1", "L21", "L1Inf", "TraceNorm", "TreeGroupLasso"])
def test_dual_norm_is_max_of_inner_product_over_unit_ball(name):
    """Omega^*(G) = max {<G, W> : Omega(W) <= 1}, by cvxpy with the penalty at alpha = 1."""
    import cvxpy as cp
    from cvx_oracle import cvx_penalty

    penalty = SINGLE[name](1.0)
    G = np.random.default_rng(23).standard_normal((4, 5))
    W = cp.Variable(G.shape)
    problem = cp.Problem(cp.Maximize(cp.sum(cp.multiply(G, W))), [cvx_penalty(penalty, W) <= 1])
    problem.solve(solver="CLARABEL")
    assert penalty.dual_norm(G) == pytest.approx(problem.value, rel=1e-6)
    assert SINGLE[name](3.0).dual_norm(G) == penalty.dual_norm(G)  # independent of alpha
