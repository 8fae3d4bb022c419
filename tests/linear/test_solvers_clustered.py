"""clustered_mtl against cvxpy's matrix_frac formulation and the penalty engineer's pieces."""

import numpy as np
import pytest
from cvx_oracle import solve_reference_clustered

from multitask.linear._design import make_design
from multitask.linear.datafits import Logistic, Quadratic
from multitask.linear.penalties import clustered as C
from multitask.linear.solvers import clustered_mtl
from multitask.linear.solvers.clustered import _penalty_and_grad, optimal_gamma

T, P = 4, 5


def _data(rng, loss):
    Xs, ys = [], []
    centers = rng.standard_normal((2, P))
    for t in range(T):
        X = rng.standard_normal((30, P))
        z = X @ (centers[t % 2] + 0.1 * rng.standard_normal(P)) + 0.3 * rng.standard_normal(30)
        ys.append(np.where(z > 0, 1.0, -1.0) if loss == "logistic" else z + 1.0)
        Xs.append(X)
    task = np.concatenate([np.full(30, t) for t in range(T)])
    design = make_design(np.vstack(Xs), np.concatenate(ys), task, T)
    return Xs, ys, design


@pytest.mark.parametrize(
    ("loss", "fit_intercept"), [("squared", True), ("squared", False), ("logistic", True)]
)
def test_clustered_mtl_reaches_the_cvxpy_optimum(loss, fit_intercept):
    rng = np.random.default_rng(0)
    Xs, ys, design = _data(rng, loss)
    rho1, rho2, k = 0.5, 0.2, 2
    _, _, _, ref = solve_reference_clustered(Xs, ys, rho1, rho2 / rho1, k, loss, fit_intercept)
    df = Logistic(design) if loss == "logistic" else Quadratic(design)
    res = clustered_mtl(df, rho1, rho2, k, fit_intercept=fit_intercept, tol=1e-9)
    assert res.objective == pytest.approx(ref, rel=1e-6)
    eig = np.linalg.eigvalsh(res.M)
    assert eig.min() >= -1e-10 and eig.max() <= 1 + 1e-10
    assert np.trace(res.M) == pytest.approx(k)


def test_reduced_penalty_is_the_minimum_over_M_and_its_gradient_is_exact():
    """Value = min over M (the penalty engineer's closed form), gradient = finite differences."""
    rng = np.random.default_rng(1)
    eta, c, k = 0.4, 0.7 * 0.4 * 1.4, 2
    W = rng.standard_normal((P, T))
    value, grad, _ = _penalty_and_grad(W, c, eta, k, 1.0)
    M = C.cmtl_optimal_M(W, eta, k)
    assert value == pytest.approx(0.7 * C.cmtl_value(W, M, eta), rel=1e-10)
    # any other feasible M gives a larger value (M is the minimiser)
    for _ in range(5):
        M_other = C.project_cluster_constraint(rng.standard_normal((T, T)), k)
        assert 0.7 * C.cmtl_value(W, M_other, eta) >= value - 1e-12
    # Danskin: the gradient is that of the joint function at the optimal M
    np.testing.assert_allclose(grad, 0.7 * C.cmtl_grad_W(W, M, eta), atol=1e-9)
    E = rng.standard_normal(W.shape)
    h = 1e-6
    up, down = (_penalty_and_grad(W + s * h * E, c, eta, k, 1.0)[0] for s in (1, -1))
    assert (up - down) / (2 * h) == pytest.approx(float(np.sum(grad * E)), rel=1e-6)


@pytest.mark.parametrize("eta", [1e-3, 0.4])
def test_metric_step_minimises_a_majorant(eta):
    """F(W - P g) <= F(W) - <g, P g> / 2: the step map is that of a quadratic upper bound."""
    rng = np.random.default_rng(5)
    _, _, design = _data(rng, "squared")
    df = Quadratic(design)
    rho1, k = 2.0, 2
    c, L_df = rho1 * eta * (1 + eta), df.lipschitz()
    for _ in range(5):
        W = rng.standard_normal((P, T)) * rng.uniform(0.1, 3)

        def F(V):
            return df.value(V) + _penalty_and_grad(V, c, eta, k, L_df)[0]

        _, gpen, step = _penalty_and_grad(W, c, eta, k, L_df)
        g = df.gradient(W)[0] + gpen
        Pg = step(g)
        assert F(W - Pg) <= F(W) - 0.5 * float(np.sum(g * Pg)) + 1e-9 * abs(F(W))
        # the metric is no larger than the global bound: steps are at least 1 / L
        assert float(np.sum(g * Pg)) >= float(np.sum(g * g)) / (L_df + 2 * c / eta) - 1e-12


@pytest.mark.parametrize("k", [1, 2, 3.5])
def test_optimal_gamma_matches_bisection_water_filling(k):
    rng = np.random.default_rng(3)
    sigma, eta = np.abs(rng.standard_normal(6)) * 3, 0.3
    gamma = optimal_gamma(sigma, eta, k)
    assert gamma.sum() == pytest.approx(k, abs=1e-10)
    assert gamma.min() >= 0 and gamma.max() <= 1
    # KKT of min sum s^2 / (eta + g): s_i / (eta + g_i) is equal on the free coordinates
    free = (gamma > 1e-12) & (gamma < 1 - 1e-12)
    ratios = sigma[free] / (eta + gamma[free])
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-10)
    assert np.all(sigma[gamma <= 1e-12] / eta <= ratios[0] + 1e-10)
    assert np.all(sigma[gamma >= 1 - 1e-12] / (eta + 1) >= ratios[0] - 1e-10)


def test_optimal_gamma_with_fewer_directions_than_clusters():
    np.testing.assert_array_equal(optimal_gamma(np.array([2.0, 0.0, 1.0]), 0.1, 2), [1, 0, 1])


def test_warm_start_at_the_solution_stops_at_once():
    rng = np.random.default_rng(4)
    _, _, design = _data(rng, "squared")
    res = clustered_mtl(Quadratic(design), 0.5, 0.2, 2, tol=1e-10)
    again = clustered_mtl(Quadratic(design), 0.5, 0.2, 2, W0=res.W, tol=1e-9)
    assert again.n_iter == 1 and again.converged
    assert again.objective == pytest.approx(res.objective, rel=1e-12)


def test_bad_strengths_raise():
    rng = np.random.default_rng(2)
    _, _, design = _data(rng, "squared")
    with pytest.raises(ValueError, match="rho1"):
        clustered_mtl(Quadratic(design), 0.0, 1.0, 2)
    with pytest.raises(ValueError, match="clusters"):
        clustered_mtl(Quadratic(design), 1.0, 1.0, T + 1)
