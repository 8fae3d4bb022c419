"""The cvxpy reference solver is exact: closed forms, scikit-learn, and KKT conditions."""

import numpy as np
import pytest
from cvx_oracle import objective, solve_reference
from test_penalties_prox import NONSMOOTH

from multitask.linear import penalties as P


def make_tasks(rng, n_tasks=3, n_features=4, sizes=(12, 15, 9)):
    w = rng.standard_normal(n_features)
    X_list = [rng.standard_normal((n, n_features)) for n in sizes[:n_tasks]]
    y_list = [X @ (w + 0.5 * rng.standard_normal(n_features)) + 1.0 for X in X_list]
    return X_list, y_list


def ridge_closed_form(X, y, s, alpha, fit_intercept):
    """argmin sum_i s_i / (2 S) (y_i - x_i w - b)^2 + alpha ||w||^2."""
    s = s / s.sum()
    if fit_intercept:
        x_mean, y_mean = s @ X, s @ y
        X, y = X - x_mean, y - y_mean
    w = np.linalg.solve(X.T @ (s[:, None] * X) + 2 * alpha * np.eye(X.shape[1]), X.T @ (s * y))
    b = y_mean - x_mean @ w if fit_intercept else 0.0
    return w, b


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_ridge_matches_closed_form(fit_intercept, weighted):
    rng = np.random.default_rng(50)
    X_list, y_list = make_tasks(rng)
    weights = [rng.uniform(0.2, 3.0, len(y)) for y in y_list] if weighted else None
    alpha = 0.3
    W, b, obj = solve_reference(
        X_list, y_list, P.Ridge(alpha), fit_intercept=fit_intercept, sample_weight=weights
    )
    for t, (X, y) in enumerate(zip(X_list, y_list, strict=True)):
        s = weights[t] if weighted else np.ones(len(y))
        w_ref, b_ref = ridge_closed_form(X, y, s, alpha, fit_intercept)
        np.testing.assert_allclose(W[:, t], w_ref, rtol=1e-7, atol=1e-9)
        assert b[t] == pytest.approx(b_ref, rel=1e-7, abs=1e-9)
    W_ref = np.stack(
        [
            ridge_closed_form(
                X, y, np.ones(len(y)) if not weighted else weights[t], alpha, fit_intercept
            )[0]
            for t, (X, y) in enumerate(zip(X_list, y_list, strict=True))
        ],
        axis=1,
    )
    b_ref = [
        ridge_closed_form(
            X, y, np.ones(len(y)) if not weighted else weights[t], alpha, fit_intercept
        )[1]
        for t, (X, y) in enumerate(zip(X_list, y_list, strict=True))
    ]
    ref_obj = objective(
        X_list, y_list, W_ref, np.asarray(b_ref), P.Ridge(alpha), sample_weight=weights
    )
    assert obj == pytest.approx(ref_obj, rel=1e-10)


def test_l21_matches_sklearn_multitask_lasso():
    """Shared design: sum_t 1/(2n) ||y_t - X w_t - b_t||^2 + alpha ||W||_21 is exactly
    MultiTaskLasso's objective."""
    from sklearn.linear_model import MultiTaskLasso

    rng = np.random.default_rng(51)
    X = rng.standard_normal((25, 6))
    Y = X[:, :3] @ rng.standard_normal((3, 4)) + 0.3 * rng.standard_normal((25, 4)) + 2.0
    alpha = 0.15
    sk = MultiTaskLasso(alpha=alpha, tol=1e-14, max_iter=100_000).fit(X, Y)
    X_list, y_list = [X] * 4, list(Y.T)
    W, b, obj = solve_reference(X_list, y_list, P.L21(alpha))
    sk_obj = objective(X_list, y_list, sk.coef_.T, sk.intercept_, P.L21(alpha))
    manual = np.sum((Y - X @ sk.coef_.T - sk.intercept_) ** 2) / (2 * len(X))
    manual += alpha * np.sum(np.linalg.norm(sk.coef_, axis=0))
    assert sk_obj == pytest.approx(manual, rel=1e-12)
    assert obj == pytest.approx(sk_obj, rel=1e-8)
    np.testing.assert_allclose(W, sk.coef_.T, atol=1e-5)
    np.testing.assert_allclose(b, sk.intercept_, atol=1e-5)
    assert np.any(np.all(W == 0, axis=1)) or np.any(np.all(np.abs(W) < 1e-7, axis=1))


def test_logistic_ridge_matches_sklearn():
    """1/n sum log(1 + exp(-y m)) + alpha ||w||^2 is LogisticRegression with C = 1/(2 alpha n)
    (lbfgs leaves the intercept unpenalised)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(52)
    X_list = [rng.standard_normal((40, 3)) for _ in range(2)]
    y_list = [
        (X @ rng.standard_normal(3) + 0.5 * rng.standard_normal(40) > 0).astype(int) for X in X_list
    ]
    alpha = 0.05
    W, b, _ = solve_reference(X_list, y_list, P.Ridge(alpha), loss="logistic")
    for t, (X, y) in enumerate(zip(X_list, y_list, strict=True)):
        sk = LogisticRegression(C=1 / (2 * alpha * len(y)), tol=1e-12, max_iter=10_000)
        sk.fit(X, y)
        np.testing.assert_allclose(W[:, t], sk.coef_[0], rtol=1e-5, atol=1e-6)
        assert b[t] == pytest.approx(sk.intercept_[0], rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("name", ["L1Inf", "TraceNorm", "TreeGroupLasso", "Dirty", "RobustMTL"])
def test_reference_solution_satisfies_kkt(name):
    """The datafit gradient at the cvxpy optimum is (nearly) in -∂penalty: checks the oracle
    and subdiff_distance against each other on a full problem."""
    penalty = NONSMOOTH[name]()
    penalty = type(penalty)(
        **{
            k: getattr(penalty, k) * (0.2 if k in ("alpha", "beta") else 1)
            for k in penalty._param_names
        }
    )
    rng = np.random.default_rng(53)
    X_list, y_list = make_tasks(rng, n_tasks=5, n_features=6, sizes=(20, 18, 25, 15, 22))
    W, b, _ = solve_reference(X_list, y_list, penalty)

    def datafit_grad(W):
        W_total = W if W.ndim == 2 else W.sum(axis=0)
        grad = np.zeros_like(W_total)
        for t, (X, y) in enumerate(zip(X_list, y_list, strict=True)):
            grad[:, t] = -X.T @ (y - X @ W_total[:, t] - b[t]) / len(y)
        return grad

    # interior-point zeros are ~1e-12, not 0: one small forward-backward step (a fixed
    # point at the optimum) makes them exact without moving the solution
    step = 1e-3
    W = penalty.prox(W - step * datafit_grad(W), step)
    grad = datafit_grad(W)
    assert penalty.subdiff_distance(W, grad) < 1e-5
    assert penalty.subdiff_distance(W, grad + 0.01) > 1e-3


def test_penalty_list_with_smooth_terms_matches_closed_form():
    """Ridge(a) + MeanRegularized(0, b) is ridge with strength a + b: a list of penalties is
    summed; None gives ordinary least squares."""
    rng = np.random.default_rng(54)
    X_list, y_list = make_tasks(rng)
    W, _b, obj = solve_reference(X_list, y_list, [P.Ridge(0.1), P.MeanRegularized(0.0, 0.2)])
    W_ref, _b_ref, obj_ref = solve_reference(X_list, y_list, P.Ridge(0.3))
    np.testing.assert_allclose(W, W_ref, atol=1e-7)
    assert obj == pytest.approx(obj_ref, rel=1e-9)
    W_ols, _b_ols, _ = solve_reference(X_list, y_list, None)
    X, y = X_list[0], y_list[0]
    coef = np.linalg.lstsq(np.column_stack([X, np.ones(len(y))]), y, rcond=None)[0]
    np.testing.assert_allclose(W_ols[:, 0], coef[:-1], atol=1e-7)
    # a composite plus a smooth term on the summed weight
    Wc, b_c, obj_c = solve_reference(X_list, y_list, [P.Dirty(0.05, 0.1), P.Ridge(0.2)])
    assert Wc.shape == (2, 4, 3)
    assert obj_c == pytest.approx(
        objective(X_list, y_list, Wc, b_c, [P.Dirty(0.05, 0.1), P.Ridge(0.2)]), rel=1e-12
    )
