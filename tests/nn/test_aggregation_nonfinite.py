"""Non-finite Jacobians, Nash-MTL's rejected steps and ``task_jacobian``'s loss shape.

docs/aggregation.md ("Degenerate and bad input"): a NaN or infinite Jacobian (a step a gradient
scaler will skip) gives a non-finite output from every aggregator. Oracles: that rule itself;
for GradDrop, the paper's mask written out with GradDrop's documented uniform draws on the
other columns; for Nash-MTL, ``G alpha = 1 / alpha`` checked on the returned weights, and the
weights of the last good step (the state a step without a solution must leave).
"""

import numpy as np
import pytest
import torch
from aggregator_checks import graddrop_uniforms

from multitask.nn import task_jacobian
from multitask.nn.aggregation import (
    AGGREGATORS,
    IMTLG,
    AlignedMTL,
    GradDrop,
    NashMTL,
    _host_qp,
    _nash_mtl,
    _solvers,
)

torch.set_num_threads(1)


VARIANTS = {
    **{name: cls for name, cls in AGGREGATORS.items()},
    **{f"imtl_g-{m}": (lambda m=m: IMTLG(method=m)) for m in ("eigh", "iterative")},
    **{
        f"aligned_mtl-{s}-{m}": (lambda s=s, m=m: AlignedMTL(scale=s, method=m))
        for s in ("min", "mean", "median")
        for m in ("auto", "eigh", "iterative")
        if not (s == "median" and m == "iterative")
    },
}


def _bad(T: int, value: float, dtype=torch.float64) -> torch.Tensor:
    J = torch.randn(T, 8, generator=torch.Generator().manual_seed(T), dtype=dtype)
    J[T // 2, 3] = value
    return J


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("T", [2, 3, 6])
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_a_non_finite_jacobian_gives_a_non_finite_output(path, name, T, value):
    """Before: IMTL-G and Aligned-MTL (``eigh``, the CPU default) raised LinAlgError from numpy's
    or torch's ``eigh`` at three tasks and more; GradDrop dropped a +inf gradient."""
    J = _bad(T, value)
    agg = VARIANTS[name]()
    losses = (torch.rand(T, dtype=J.dtype) + 0.5,) if agg.needs_losses else ()
    assert not torch.isfinite(agg(J, *losses)).all()
    if agg.linear:
        assert not torch.isfinite(VARIANTS[name]().weights(J, *losses) @ J).all()
    if agg.uses_gramian and not agg.needs_losses:  # the Gramian-based backward's entry point
        w = VARIANTS[name]().gramian_weights(J @ J.T)
        assert not torch.isfinite(w @ J).all()


@pytest.mark.parametrize("T", [2, 4])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("agg", [IMTLG(), AlignedMTL(), AlignedMTL(scale="median")], ids=repr)
def test_eigh_paths_give_nan_weights_for_a_non_finite_gramian(path, agg, dtype, T):
    """No ``eigh`` on a NaN matrix: NaN weights (the step shows as skipped), float32 too."""
    J = _bad(T, float("nan"), dtype)
    w = agg.weights(J)
    assert w.dtype == dtype and torch.isnan(w).all()
    G = (J @ J.T).double()
    assert np.isnan(agg.host_weights(G.numpy())).all()  # the public host method alone
    assert torch.isnan(agg.gramian_weights(G)).all()


def _graddrop_oracle(J: np.ndarray, U: np.ndarray) -> np.ndarray:
    """The paper's rule per column: ``P = s+ / (s+ - s-)``; ``s+`` where ``P >= U``, else
    ``s-``; zero where every gradient is zero."""
    out = np.zeros(J.shape[1])
    for j in range(J.shape[1]):
        pos, neg = J[J[:, j] > 0, j].sum(), J[J[:, j] < 0, j].sum()
        if pos == neg == 0 or not np.isfinite(pos - neg):  # (non-finite: checked apart)
            continue
        out[j] = pos if pos / (pos - neg) >= U[j] else neg
    return out


def test_graddrop_keeps_a_positive_infinity():
    """The bug hunter's case: the +inf of column 1 came out as -0.75 (``lerp(inf, s-, U)`` is
    NaN, and copysign took a side from its sign bit)."""
    inf = float("inf")
    J = torch.tensor([[1.0, inf], [-0.5, 2.0], [0.25, -0.75]], dtype=torch.float64)
    out = GradDrop(seed=0)(J)
    assert not torch.isfinite(out[1])
    U = graddrop_uniforms(0, 2, np.float64)
    assert float(out[0]) == _graddrop_oracle(J[:, :1].numpy(), U)[0]
    # every entry +inf: s- = 0, and the output was 0 or inf by the NaN's sign bit
    assert not torch.isfinite(GradDrop(seed=0)(torch.full((2, 3), inf, dtype=torch.float64))).any()


@pytest.mark.parametrize("leak", [None, torch.tensor([0.2, 0.0, 0.7])])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("value", [float("inf"), -float("inf"), float("nan")])
def test_graddrop_a_non_finite_entry_shows_in_its_column_only(value, dtype, leak):
    """Over many draws of ``U``: the column of the bad entry is non-finite (before: finite in
    about half of the draws for +inf), every other column is the paper's value."""
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    for seed in range(40):
        gen = torch.Generator().manual_seed(seed)
        J = torch.randn(3, 64, generator=gen, dtype=tdtype)
        col = seed % 64
        J[seed % 3, col] = value
        out = GradDrop(seed=seed, leak=leak)(J)
        assert not torch.isfinite(out[col]), seed
        others = [j for j in range(64) if j != col]
        if leak is None:  # oracle with the documented draws
            want = _graddrop_oracle(J.double().numpy(), graddrop_uniforms(seed, 64, dtype))
            np.testing.assert_allclose(out[others].double().numpy(), want[others], rtol=1e-6)
        finite = J.clone()
        finite[seed % 3, col] = 1.0  # the same draws: the other columns do not move
        ref = GradDrop(seed=seed, leak=leak)(finite)
        assert torch.equal(out[others], ref[others])


@pytest.mark.parametrize("marginalize", [True, False])
def test_graddrop_representation_shows_a_positive_infinity(marginalize):
    for seed in range(20):
        gen = torch.Generator().manual_seed(seed)
        R = torch.randn(3, 4, 5, generator=gen, dtype=torch.float64)
        A = torch.randn(4, 5, generator=gen, dtype=torch.float64)
        R[seed % 3, 1, 2] = float("inf")
        out = GradDrop(seed=seed, marginalize_batch=marginalize).combine_representation(R, A)
        assert not torch.isfinite(out[1, 2])


def _assert_solves(J: torch.Tensor, w: torch.Tensor, atol: float) -> None:
    """Every utility ``w_t (G w)_t`` is 1: ``w`` solves ``G w = 1 / w``."""
    utilities = w * (J @ J.T @ w)
    torch.testing.assert_close(utilities, torch.ones_like(utilities), atol=atol, rtol=0)


def _sequence():
    """The bug hunter's steps: step 3 has a task without gradient, step 5 rows ``g0, g1, -g0``
    (no positive solution of ``G alpha = 1 / alpha``)."""
    g = torch.Generator().manual_seed(2)
    seq = [torch.randn(3, 6, generator=g, dtype=torch.float64) for _ in range(7)]
    seq[3][1] = 0
    seq[5][2] = -seq[5][0]
    return seq


def test_nash_mtl_a_step_without_solution_keeps_the_warm_start(path):
    """Before, on the device path: step 5 returned about (13.0, 0.46, 13.1) and kept it as
    ``alpha`` (utilities up to 3), and the warm Newton steps of step 6 ended 1.56 off the root.
    Now: zero weights and the state of step 4, as on the host; step 6 solves its equation."""
    nash = NashMTL()
    seq = _sequence()
    for J in seq[:5]:
        nash.weights(J)
    kept = nash.alpha.clone()
    _assert_solves(seq[4], kept, 1e-9)
    w = nash.weights(seq[5])
    assert torch.equal(w, torch.zeros(3, dtype=w.dtype))
    assert torch.equal(nash.alpha, kept)
    w = nash.weights(seq[6])
    assert (w > 0).all()
    _assert_solves(seq[6], w, 1e-9)


def _drifted(T: int, seed: int):
    """Two Gramians whose task norms moved up to 10x apart from one to the next."""
    g = torch.Generator().manual_seed(seed)
    norms = 10 ** (2 * torch.rand(T, 1, generator=g) - 1)
    J1 = torch.randn(T, 50, generator=g, dtype=torch.float64) * norms
    drift = 10 ** (2 * torch.rand(T, 1, generator=g) - 1)
    J2 = torch.randn(T, 50, generator=g, dtype=torch.float64) * norms * drift
    return J1, J2


@pytest.mark.parametrize("T", [3, 5])
def test_nash_mtl_device_steps_converge_after_the_norms_moved(T, device_path_only):
    """The fixed warm Newton steps (8) did not converge from the last weights after task norms
    moved several-fold (most draws at T = 5): with steps that do not converge counted as
    having no solution, that would have given no direction at every later step. They start
    from the cold start there, and converge."""
    for seed in range(10):
        J1, J2 = _drifted(T, seed)
        nash = NashMTL()
        nash.weights(J1)
        w = nash.weights(J2)
        _assert_solves(J2, w, 1e-8)


@pytest.fixture
def device_path_only(monkeypatch):
    monkeypatch.setattr(_solvers, "use_host", lambda G, host: bool(host))


@pytest.mark.parametrize("fresh", [True, False])
def test_python_nash_step_starts_where_the_torch_step_does(fresh, monkeypatch):
    """Two Newton steps, the utility check off: the unconverged iterates show the start,
    which the Python step (``_host_qp.nash_solve_small``) chooses as the torch one does
    (the last weights or the cold start, whichever starts lower), with drifted norms where
    the two choices differ."""
    monkeypatch.setattr(_nash_mtl, "UTILITY_TOL", float("inf"))
    monkeypatch.setattr(_host_qp, "UTILITY_TOL", float("inf"))
    chose_cold = 0
    for seed in range(12):
        J1, J2 = _drifted(4, seed)
        last = NashMTL().weights(J1)
        G = J2 @ J2.T
        alpha, state = _host_qp.nash_solve_small(G.tolist(), last.tolist(), fresh, 2, 0)
        want = _nash_mtl._solve(G, last, fresh=fresh, n_iter=2, max_iter=0).numpy()
        np.testing.assert_allclose(alpha, want[0], rtol=1e-10)
        np.testing.assert_allclose(state, want[1], rtol=1e-10)
        warm = _nash_mtl._solve(G, last, fresh=False, n_iter=0, max_iter=0)[0]
        cold = _nash_mtl._solve(G, last, fresh=True, n_iter=0, max_iter=0)[0]
        chose_cold += bool(torch.allclose(warm, cold)) and not torch.allclose(last, cold)
    assert fresh or chose_cold > 0  # (the case where the choice matters was exercised)


def test_task_jacobian_asks_for_a_loss_vector():
    """Before: a 0-d loss raised IndexError from ``losses.shape[0]``."""
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"shape \(n_tasks,\).*got \(\)"):
        task_jacobian((x**2).sum(), [x])
    with pytest.raises(ValueError, match=r"shape \(n_tasks,\).*got \(2, 1\)"):
        task_jacobian(torch.stack([x, 3 * x], 1)[:, :1], [x])
    J = task_jacobian((x**2).sum().reshape(1), [x])  # one task: gradient 2 x
    torch.testing.assert_close(J, torch.tensor([[2.0, 4.0]]))


def test_a_step_short_of_convergence_counts_as_one_without_solution():
    """With fixed step counts (the device path; ``max_iter=0``) a step whose utilities are
    still off 1 gives no direction and keeps the state, in torch and in Python floats alike."""
    J1, J2 = _drifted(4, 0)
    last = NashMTL().weights(J1)
    G = J2 @ J2.T
    alpha, state = _host_qp.nash_solve_small(G.tolist(), last.tolist(), False, 1, 0)
    want = _nash_mtl._solve(G, last, fresh=False, n_iter=1, max_iter=0)
    assert alpha == [0.0] * 4 and state == last.tolist()
    assert torch.equal(want, torch.stack([torch.zeros_like(last), last]))
