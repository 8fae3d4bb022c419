"""clustered_mtl against cvxpy's matrix_frac formulation and the penalty engineer's pieces."""

import numpy as np
import pytest
from cvx_oracle import solve_reference_clustered

from multitask.linear._design import make_design
from multitask.linear.datafits import Logistic, Quadratic
from multitask.linear.penalties import clustered as C
from multitask.linear.solvers import clustered_mtl
from multitask.linear.solvers.clustered import _CMTL

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


def test_value_and_gradients_match_the_penalty_pieces():
    rng = np.random.default_rng(1)
    _, _, design = _data(rng, "squared")
    df = Quadratic(design)
    eta, rho1 = 0.4, 0.7
    prob = _CMTL(df, rho1, eta, joint_b=False)
    W = rng.standard_normal((P, T))
    M = C.project_cluster_constraint(rng.standard_normal((T, T)), 2)
    b = np.zeros(T)
    S = df.linear(W)
    expected = df.value(W) + rho1 * C.cmtl_value(W, M, eta)
    assert prob.value(W, M, b, S) == pytest.approx(expected, rel=1e-12)
    gW, gM, _ = prob.gradient(W, M, b, S)
    np.testing.assert_allclose(gW, df.gradient(W)[0] + rho1 * C.cmtl_grad_W(W, M, eta), atol=1e-12)
    np.testing.assert_allclose(gM, rho1 * C.cmtl_grad_M(W, M, eta), atol=1e-12)


def test_bad_strengths_raise():
    rng = np.random.default_rng(2)
    _, _, design = _data(rng, "squared")
    with pytest.raises(ValueError, match="rho1"):
        clustered_mtl(Quadratic(design), 0.0, 1.0, 2)
    with pytest.raises(ValueError, match="clusters"):
        clustered_mtl(Quadratic(design), 1.0, 1.0, T + 1)
