"""Proximal operators against cvxpy / scipy brute force, and their properties."""

import numpy as np
import pytest
from cvx_oracle import cvx_prox, cvx_prox_dual, cvx_value, polish_prox

from multitask.linear import penalties as P

#: a three-level tree over 5 tasks: leaves, two inner nodes, the root
TREE_GROUPS = [[0], [1], [2], [3], [4], [0, 1], [2, 3, 4], [0, 1, 2, 3, 4]]
TREE_WEIGHTS = [1.0, 0.6, 0.8, 1.3, 0.9, 0.7, 0.4, 0.5]

NONSMOOTH = {
    "L1": lambda: P.L1(0.6),
    "L21": lambda: P.L21(0.9),
    "L1Inf": lambda: P.L1Inf(1.1),
    "SparseGroupLasso": lambda: P.SparseGroupLasso(0.7, 0.3),
    "TraceNorm": lambda: P.TraceNorm(0.8),
    "TreeGroupLasso": lambda: P.TreeGroupLasso(0.6, TREE_GROUPS, TREE_WEIGHTS),
    "Dirty": lambda: P.Dirty(0.5, 1.2),
    "RobustMTL": lambda: P.RobustMTL(0.7, 0.9),
}
SMOOTH = {
    "Ridge": lambda: P.Ridge(0.4),
    "MeanRegularized": lambda: P.MeanRegularized(0.8, 0.3),
    "GraphRegularized": lambda: P.GraphRegularized(
        P.graph_matrix_from_edges([[0, 1], [1, 2], [3, 4]], 5, [1.0, 0.5, 2.0]), 0.7, 0.2
    ),
}
STEPS = [0.3, 1.0, 2.5]


def random_weights(penalty, rng, n_features=6, n_tasks=5):
    shape = (n_features, n_tasks)
    if penalty.n_components == 2:
        shape = (2, *shape)
    return rng.standard_normal(shape) * 1.5


def reference_prox(penalty, V, step):
    """Brute force: cvxpy on the prox problem; for the group penalties, whose primal
    optimum sits at cone apexes where interior-point methods lose digits, cvxpy on
    the Moreau dual followed by BFGS on the prox objective over the support."""
    if isinstance(penalty, (P.SparseGroupLasso, P.TreeGroupLasso)):
        return polish_prox(penalty, V, step, cvx_prox_dual(penalty, V, step))
    return cvx_prox(penalty, V, step)


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("name", NONSMOOTH)
def test_prox_matches_brute_force(name, step):
    penalty = NONSMOOTH[name]()
    V = random_weights(penalty, np.random.default_rng(list(NONSMOOTH).index(name)))
    Z = penalty.prox(V, step)
    ref = reference_prox(penalty, V, step)
    assert Z.shape == V.shape
    assert np.linalg.norm(Z - ref) <= 1e-6 * max(np.linalg.norm(ref), 1e-3)

    # and the prox objective at Z is not above the brute-force one
    def obj(X):
        return 0.5 * np.sum((X - V) ** 2) + step * penalty.value(X)

    assert obj(Z) <= obj(ref) + 1e-10


@pytest.mark.parametrize("name", NONSMOOTH)
def test_prox_is_nonzero_and_sparse_where_expected(name):
    """Guard against trivial passes: the test inputs give a prox that is neither V nor 0."""
    penalty = NONSMOOTH[name]()
    V = random_weights(penalty, np.random.default_rng(0))
    Z = penalty.prox(V, 1.0)
    assert np.any(Z != 0) and not np.allclose(Z, V)


@pytest.mark.parametrize("name", NONSMOOTH)
def test_prox_does_not_mutate_input(name):
    penalty = NONSMOOTH[name]()
    V = random_weights(penalty, np.random.default_rng(1))
    V_copy = V.copy()
    Z = penalty.prox(V, 0.7)
    assert np.array_equal(V, V_copy)
    assert not np.shares_memory(Z, V)


@pytest.mark.parametrize("name", NONSMOOTH)
def test_prox_is_nonexpansive(name):
    penalty = NONSMOOTH[name]()
    rng = np.random.default_rng(2)
    for _ in range(20):
        A, B = random_weights(penalty, rng), random_weights(penalty, rng)
        step = rng.uniform(0.1, 3.0)
        gap = np.linalg.norm(penalty.prox(A, step) - penalty.prox(B, step))
        assert gap <= np.linalg.norm(A - B) * (1 + 1e-12)


@pytest.mark.parametrize("name", NONSMOOTH)
def test_prox_of_scaled_penalty(name):
    """prox of (c * penalty) at step s equals prox of penalty at step c * s."""
    penalty = NONSMOOTH[name]()
    scale = 2.7
    params = {"alpha": penalty.alpha * scale}
    if hasattr(penalty, "beta"):
        params["beta"] = penalty.beta * scale
    if isinstance(penalty, P.TreeGroupLasso):
        params.update(groups=penalty.groups, weights=penalty.weights)
    scaled = type(penalty)(**params)
    V = random_weights(penalty, np.random.default_rng(3))
    np.testing.assert_allclose(scaled.prox(V, 0.4), penalty.prox(V, 0.4 * scale), atol=1e-12)
    assert scaled.value(V) == pytest.approx(scale * penalty.value(V), rel=1e-12)


@pytest.mark.parametrize("name", NONSMOOTH)
def test_prox_at_zero_step_is_identity(name):
    penalty = NONSMOOTH[name]()
    V = random_weights(penalty, np.random.default_rng(4))
    np.testing.assert_allclose(penalty.prox(V, 0.0), V, atol=1e-12)


@pytest.mark.parametrize("name", [n for n in NONSMOOTH if NONSMOOTH[n]().row_separable])
def test_prox_row_and_value_row_match_full(name):
    penalty = NONSMOOTH[name]()
    V = random_weights(penalty, np.random.default_rng(5))
    Z = penalty.prox(V, 0.9)
    for j in range(V.shape[0]):
        np.testing.assert_allclose(penalty.prox_row(V[j], 0.9), Z[j], atol=1e-14)
    total = sum(penalty.value_row(V[j]) for j in range(V.shape[0]))
    assert total == pytest.approx(penalty.value(V), rel=1e-12)


@pytest.mark.parametrize("name", [*NONSMOOTH, *SMOOTH])
def test_value_matches_cvxpy_atom(name):
    penalty = {**NONSMOOTH, **SMOOTH}[name]()
    V = random_weights(penalty, np.random.default_rng(6))
    assert penalty.value(V) == pytest.approx(cvx_value(penalty, V), rel=1e-12)


def test_values_match_closed_forms():
    W = np.array([[3.0, -4.0], [0.0, 0.0], [1.0, -1.0]])
    assert P.L1(2.0).value(W) == pytest.approx(2 * 9)
    assert P.L21(2.0).value(W) == pytest.approx(2 * (5 + np.sqrt(2)))
    assert P.L1Inf(2.0).value(W) == pytest.approx(2 * (4 + 1))
    assert P.SparseGroupLasso(2.0, 0.5).value(W) == pytest.approx(2 * (5 + np.sqrt(2)) + 4.5)
    s = np.linalg.svd(W, compute_uv=False)
    assert P.TraceNorm(3.0).value(W) == pytest.approx(3 * s.sum())
    tree = P.TreeGroupLasso(1.0, [[0], [1], [0, 1]], [1.0, 2.0, 0.5])
    assert tree.value(W) == pytest.approx((3 + 8 + 2.5) + (1 + 2 + 0.5 * np.sqrt(2)))


def test_trace_norm_prox_thresholds_singular_values():
    rng = np.random.default_rng(7)
    V = rng.standard_normal((7, 4))
    step, alpha = 1.0, 1.3
    Z = P.TraceNorm(alpha).prox(V, step)
    s_in = np.linalg.svd(V, compute_uv=False)
    s_out = np.linalg.svd(Z, compute_uv=False)
    np.testing.assert_allclose(s_out, np.maximum(s_in - step * alpha, 0.0), atol=1e-12)
    assert np.sum(s_out > 1e-12) < np.sum(s_in > 1e-12)  # the threshold removed a direction


def test_l1inf_prox_equals_moreau_with_sorted_projection():
    """prox(v) = v - proj_{r B_1}(v), with the projection checked by its optimality:
    the projection is the point of the ball closest to v, found by cvxpy."""
    import cvxpy as cp

    rng = np.random.default_rng(8)
    v = rng.standard_normal(6) * 2
    radius = 1.7
    x = cp.Variable(6)
    cp.Problem(cp.Minimize(cp.sum_squares(x - v)), [cp.norm(x, 1) <= radius]).solve(
        solver="CLARABEL"
    )
    np.testing.assert_allclose(P.L1Inf(radius).prox_row(v, 1.0), v - x.value, atol=1e-7)


def test_l1inf_prox_ties_are_exact():
    Z = P.L1Inf(1.0).prox(np.array([[3.0, -2.5, 0.1, 2.9]]), 1.0)
    top = np.max(np.abs(Z))
    assert np.sum(np.abs(Z) == top) == 3  # clipped entries are exactly equal


def test_tree_prox_three_level_brute_force_random_weights():
    rng = np.random.default_rng(9)
    groups = [[0], [1], [2], [3], [0, 1], [2, 3], [0, 1, 2, 3]]
    for _ in range(3):
        penalty = P.TreeGroupLasso(rng.uniform(0.3, 1.0), groups, rng.uniform(0.2, 1.5, 7))
        V = rng.standard_normal((5, 4)) * 2
        ref = reference_prox(penalty, V, 0.8)
        np.testing.assert_allclose(penalty.prox(V, 0.8), ref, atol=1e-6 * np.linalg.norm(ref))


def test_tree_prox_order_matters():
    """Root-first composition is not the prox: the test above would catch a wrong order."""
    penalty = P.TreeGroupLasso(1.0, [[0], [1], [0, 1]], [1.0, 1.0, 1.0])
    v = np.array([[2.0, 0.5]])
    leaves_first = penalty.prox(v, 0.6)
    root_first = P.TreeGroupLasso(1.0, [[0, 1]]).prox(v, 0.6)
    root_first = P.TreeGroupLasso(1.0, [[0], [1]]).prox(root_first, 0.6)
    assert not np.allclose(leaves_first, root_first)
    np.testing.assert_allclose(leaves_first, reference_prox(penalty, v, 0.6), atol=1e-7)


def test_tree_prox_ignores_group_order_and_merges_duplicates():
    rng = np.random.default_rng(10)
    V = rng.standard_normal((4, 4)) * 2
    groups, weights = [[0], [1], [2, 3], [0, 1, 2, 3]], [0.5, 0.7, 0.4, 0.6]
    reference = P.TreeGroupLasso(1.0, groups, weights).prox(V, 0.8)
    shuffled = P.TreeGroupLasso(1.0, groups[::-1], weights[::-1]).prox(V, 0.8)
    np.testing.assert_allclose(shuffled, reference, atol=1e-14)
    # the same group twice acts as one group with the summed weight
    doubled = P.TreeGroupLasso(1.0, [*groups, [2, 3]], [*weights[:2], 0.1, 0.6, 0.3])
    np.testing.assert_allclose(doubled.prox(V, 0.8), reference, atol=1e-14)
    assert doubled.value(V) == pytest.approx(P.TreeGroupLasso(1.0, groups, weights).value(V))


def test_l1inf_prox_rows_inside_the_ball_and_zero_rows():
    V = np.array([[0.0, 0.0, 0.0], [0.2, -0.3, 0.1], [2.0, -1.0, 0.5]])
    Z = P.L1Inf(1.0).prox(V, 1.0)
    assert not np.any(Z[:2])  # ||v||_1 <= 1: the whole row is absorbed by the ball
    # row 3: projection onto the unit l1 ball is (1, 0, 0), so the prox is (1, -1, 0.5)
    np.testing.assert_allclose(Z[2], [1.0, -1.0, 0.5], atol=1e-15)
