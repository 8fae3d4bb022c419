"""subdiff_distance: zero at prox outputs, positive elsewhere, equal to a cvxpy distance."""

import numpy as np
import pytest
from cvx_oracle import cvx_subdiff_distance
from test_penalties_prox import NONSMOOTH, STEPS, random_weights

from multitask.linear import penalties as P

NORM_PENALTIES = ["L1", "L21", "L1Inf", "SparseGroupLasso", "TraceNorm", "TreeGroupLasso"]


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("name", NONSMOOTH)
def test_subdiff_distance_is_zero_at_prox_output(name, step):
    """Z = prox(W, s) satisfies -(Z - W)/s in ∂penalty(Z)."""
    penalty = NONSMOOTH[name]()
    W = random_weights(penalty, np.random.default_rng(10))
    Z = penalty.prox(W, step)
    assert penalty.subdiff_distance(Z, (Z - W) / step) < 1e-10


@pytest.mark.parametrize("name", NONSMOOTH)
def test_subdiff_distance_is_positive_away_from_optimum(name):
    penalty = NONSMOOTH[name]()
    rng = np.random.default_rng(11)
    W = random_weights(penalty, rng)
    Z = penalty.prox(W, 1.0)
    grad = (Z - W) / 1.0
    assert penalty.subdiff_distance(Z, grad + 0.1) > 1e-3
    assert penalty.subdiff_distance(Z + 0.05 * rng.standard_normal(Z.shape), grad) > 1e-3


@pytest.mark.parametrize("name", NORM_PENALTIES)
def test_subdiff_distance_matches_cvxpy(name):
    """Against min ||-grad - u|| over {u in ∂penalty(0) : <u, W> = penalty(W)}."""
    penalty = NONSMOOTH[name]()
    rng = np.random.default_rng(12)
    W = random_weights(penalty, rng)
    Z = penalty.prox(W, 1.0)  # rows with zeros, ties and shrunk entries
    for point, grad in [(Z, rng.standard_normal(W.shape)), (W, rng.standard_normal(W.shape))]:
        expected = cvx_subdiff_distance(penalty, point, grad)
        assert penalty.subdiff_distance(point, grad) == pytest.approx(expected, rel=1e-5)


def test_l1inf_subdiff_on_tied_row():
    """Row (2, -2, 1): ∂||.||_inf = conv{e_0, -e_1}; -g = (0.3, -0.7, 0) is inside for
    alpha = 1, and (0.3, -0.5, 0) is at distance 0.2 / sqrt(2) (projection onto the
    segment)."""
    penalty = P.L1Inf(1.0)
    W = np.array([[2.0, -2.0, 1.0]])
    assert penalty.subdiff_distance(W, -np.array([[0.3, -0.7, 0.0]])) < 1e-15
    assert penalty.subdiff_distance(W, -np.array([[0.3, -0.5, 0.0]])) == pytest.approx(
        0.2 / np.sqrt(2)
    )
    # a gradient on the non-maximal entry is never in the subdifferential
    assert penalty.subdiff_distance(W, -np.array([[0.3, -0.7, 0.4]])) == pytest.approx(0.4)


@pytest.mark.parametrize("name", ["Dirty", "RobustMTL"])
def test_composite_subdiff_distance_is_max_over_components(name):
    penalty = NONSMOOTH[name]()
    rng = np.random.default_rng(13)
    Wc = penalty.prox(random_weights(penalty, rng), 1.0)
    grad = rng.standard_normal(Wc.shape[1:])
    if name == "Dirty":
        parts = [P.L1(penalty.alpha), P.L1Inf(penalty.beta)]
        expected = max(p.subdiff_distance(w, grad) for p, w in zip(parts, Wc, strict=True))
    else:
        low_rank = P.TraceNorm(penalty.alpha).subdiff_distance(Wc[0], grad)
        # the per-task group norm is L21 on the transpose; Frobenius over the tasks
        rows = P.L21(penalty.beta)._subdiff_distance_rows(Wc[1].T, grad.T)
        expected = max(low_rank, float(np.linalg.norm(rows)))
    assert penalty.subdiff_distance(Wc, grad) == pytest.approx(expected, rel=1e-12)
    assert penalty.subdiff_distance(Wc, np.stack([grad, grad])) == pytest.approx(expected)


def test_row_separable_reports_max_over_rows():
    penalty = P.L21(1.0)
    W = np.array([[1.0, 0.0], [0.0, 0.0]])
    grad = np.array([[-1.0, 0.5], [3.0, 4.0]])  # row 0: distance 0.5; row 1: 5 - 1 = 4
    assert penalty.subdiff_distance(W, grad) == pytest.approx(4.0)


def test_tree_subdiff_with_a_task_in_no_group():
    """Task 3 is unpenalised: the optimality condition there is grad = 0."""
    penalty = P.TreeGroupLasso(0.7, [[0], [1], [0, 1], [2]])
    W = np.random.default_rng(14).standard_normal((5, 4))
    Z = penalty.prox(W, 1.0)
    np.testing.assert_array_equal(Z[:, 3], W[:, 3])
    assert penalty.subdiff_distance(Z, Z - W) < 1e-12
    grad = Z - W
    grad[2, 3] = 0.25
    assert penalty.subdiff_distance(Z, grad) == pytest.approx(0.25)
    assert penalty.subdiff_distance(Z, Z - W) == pytest.approx(
        cvx_subdiff_distance(penalty, Z, Z - W), abs=1e-7
    )
