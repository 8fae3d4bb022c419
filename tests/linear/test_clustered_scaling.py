"""clustered_mtl on badly scaled features: the Jacobi row metric (``precondition``).

Feature columns of scales 1e-2 .. 1e2 make the datafit's Hessian ill-conditioned by
about 1e8 in the identity and by a small factor in the Jacobi metric; the scalar step
``1 / L_df`` then stalls where the metric step reaches cvxpy's optimum.
"""

import numpy as np
import pytest
from cvx_oracle import solve_reference_clustered

from multitask.linear._design import make_design
from multitask.linear.datafits import Logistic, Quadratic
from multitask.linear.solvers import clustered_mtl
from multitask.linear.solvers._metric import jacobi_metric
from multitask.linear.solvers.clustered import _penalty_and_grad

T, P, N = 4, 5, 40
SCALES = np.logspace(-2, 2, P)


def _data(loss, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((2, P))
    Xs, ys = [], []
    for t in range(T):
        Z = rng.standard_normal((N, P))
        z = Z @ (centers[t % 2] + 0.1 * rng.standard_normal(P)) + 0.5 * rng.standard_normal(N)
        ys.append(np.where(z > 0, 1.0, -1.0) if loss == "logistic" else z + 1.0)
        Xs.append(Z * SCALES + rng.uniform(-1, 1, P) * SCALES)  # scaled, off-centre
    task = np.repeat(np.arange(T), N)
    design = make_design(np.vstack(Xs), np.concatenate(ys), task, T)
    df = Logistic(design) if loss == "logistic" else Quadratic(design)
    return Xs, ys, df


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_metric_reaches_the_cvxpy_optimum_where_the_scalar_step_stalls(loss):
    Xs, ys, df = _data(loss)
    rho1, rho2, k = 0.5, 0.2, 2
    _, _, _, ref = solve_reference_clustered(Xs, ys, rho1, rho2 / rho1, k, loss, True)
    # the metric takes 27 (squared) and 107 (logistic) iterations, the scalar step 3081
    # and 5235 (the same at seeds 1, 2: 32-222 against 2960-7989)
    opts = dict(fit_intercept=True, tol=1e-9, max_iter=1000)
    new = clustered_mtl(df, rho1, rho2, k, precondition=True, **opts)
    assert new.converged
    assert new.objective == pytest.approx(ref, rel=1e-6)
    assert clustered_mtl(df, rho1, rho2, k, **opts).n_iter == new.n_iter  # "auto" takes it
    old = clustered_mtl(df, rho1, rho2, k, precondition=False, **opts)
    assert not old.converged and old.stop_crit > 1e-9


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_row_metric_step_minimises_a_majorant(loss):
    """F(W - P g) <= F(W) - <g, P g> / 2 with the row metric: the step is that of a
    quadratic upper bound of the reduced objective (datafit + min over M)."""
    rng = np.random.default_rng(3)
    _, _, df = _data(loss, seed=1)
    df = df.centered() if loss == "squared" else df
    metric = jacobi_metric(df)
    eta, rho1, k = 0.4, 2.0, 2
    c, b = rho1 * eta * (1 + eta), np.zeros(T)
    for _ in range(5):
        W = rng.standard_normal((P, T)) / SCALES[:, None] * rng.uniform(0.1, 3)

        def F(V):
            return df.value(V, b) + _penalty_and_grad(V, c, eta, k, metric.scale)[0]

        _, gpen, step = _penalty_and_grad(W, c, eta, k, metric.scale)
        g = df.gradient(W, b)[0] + gpen
        Pg = step(g)
        decrease = 0.5 * float(np.sum(g * Pg))
        assert decrease > 0
        assert F(W - Pg) <= F(W) - decrease + 1e-9 * abs(F(W))


def test_bad_precondition_raises():
    _, _, df = _data("squared")
    with pytest.raises(ValueError, match="precondition"):
        clustered_mtl(df, 1.0, 1.0, 2, precondition="yes")
