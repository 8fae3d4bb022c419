"""Audit of the aggregators: degenerate and non-finite Jacobians, and the state they leave.

Oracles: Nash-MTL's weights from a fresh aggregator (the warm start must not remember a
failed step), GradVac's targets before the step (a non-finite step must not move them).
"""

import math

import pytest
import torch

from multitask.nn.aggregation import AGGREGATORS, GradVac, NashMTL

torch.set_num_threads(1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nash_mtl_opposite_rows_give_no_direction_and_keep_no_state(path, dtype):
    """``G alpha = 1/alpha`` has no positive solution for ``g, -g``: no direction (zero
    weights, or finite ones on the float32 Gramian's rounding), not NaN; the next call then
    gives a fresh aggregator's weights."""
    g = torch.randn(1, 9, generator=torch.Generator().manual_seed(0), dtype=dtype)
    J = torch.cat([g, -g])
    nash = NashMTL()
    w = nash.weights(J)
    assert torch.isfinite(w).all()
    assert (w @ J).norm() <= 1e-3 * g.norm()
    good = torch.randn(2, 9, generator=torch.Generator().manual_seed(1), dtype=dtype)
    torch.testing.assert_close(nash.weights(good), NashMTL().weights(good))


def test_nash_mtl_non_finite_step_does_not_poison_the_warm_start(path):
    gen = torch.Generator().manual_seed(2)
    steps = [torch.randn(3, 9, generator=gen, dtype=torch.float64) for _ in range(3)]
    bad = steps[1].clone()
    bad[0, 4] = float("inf")
    clean, skipped = NashMTL(), NashMTL()
    for J in steps:
        clean.weights(J)
    skipped.weights(steps[0])
    assert not torch.isfinite(skipped(bad)).all()  # a non-finite J still shows in the output
    skipped.weights(steps[1])
    last = skipped.weights(steps[2])
    assert torch.isfinite(skipped.alpha).all()
    # the warm start after the skipped step is the last good alpha: same fixed point
    torch.testing.assert_close(last, NashMTL().weights(steps[2]), atol=1e-10, rtol=1e-8)
    torch.testing.assert_close(last, clean.alpha.to(last.dtype), atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("n_tasks", [2, 3])
def test_gradvac_non_finite_step_keeps_the_targets(path, n_tasks):
    gen = torch.Generator().manual_seed(3)
    agg = GradVac(beta=0.5)
    agg(torch.randn(n_tasks, 9, generator=gen, dtype=torch.float64))
    before = agg.targets.clone()
    bad = torch.full((n_tasks, 9), float("nan"), dtype=torch.float64)
    assert torch.isnan(agg(bad)).all()
    torch.testing.assert_close(agg.targets, before, atol=0, rtol=0)
    inf = torch.randn(n_tasks, 9, generator=gen, dtype=torch.float64)
    inf[0, 0] = float("inf")
    agg(inf)  # pairs with task 0 keep their targets; the others move
    assert torch.isfinite(agg.targets).all()
    torch.testing.assert_close(agg.targets[0], before[0], atol=0, rtol=0)
    torch.testing.assert_close(agg.targets[:, 0], before[:, 0], atol=0, rtol=0)


BAD_JACOBIANS = {
    "one-dimensional": torch.ones(7),  # Mean and Sum returned a 0-d tensor
    "no-task": torch.zeros(0, 7),  # ZeroDivisionError, IndexError, numpy errors
    "integer": torch.ones(2, 3, dtype=torch.long),  # Mean returned zeros (1 / 2 cast to 0)
    "three-dimensional": torch.ones(2, 3, 4),
    "numpy": torch.ones(2, 3).numpy(),
}


@pytest.mark.parametrize("bad", BAD_JACOBIANS, ids=list(BAD_JACOBIANS))
@pytest.mark.parametrize("name", sorted(AGGREGATORS))
def test_aggregators_reject_a_jacobian_that_is_not_a_float_matrix(name, bad):
    agg = AGGREGATORS[name]()
    with pytest.raises(ValueError, match=r"shape \(n_tasks, n_params\) with n_tasks >= 1"):
        agg(BAD_JACOBIANS[bad])
    if agg.linear:
        with pytest.raises(ValueError, match="floating-point Tensor"):
            agg.weights(BAD_JACOBIANS[bad])


@pytest.mark.parametrize("name", sorted(set(AGGREGATORS) - {"graddrop"}))
def test_float16_jacobian_gramian_does_not_overflow(path, name):
    """``J J^T`` of a float16 Jacobian exceeds 65504 here (entries about 10, 2000 columns):
    formed in float16 it gave MGDA NaN and Nash-MTL / IMTL-G / CAGrad wrong weights. Oracle:
    the same aggregator on the float64 copy of the same Jacobian (output in float16)."""
    gen = torch.Generator().manual_seed(4)
    J = (10 * torch.randn(3, 2000, generator=gen)).half()
    out = AGGREGATORS[name]()(J)
    ref = AGGREGATORS[name]()(J.double())
    assert out.dtype == torch.float16
    assert torch.isfinite(out).all()
    assert (out.double() - ref).norm() <= 2e-3 * ref.norm()


def test_preference_vectors_are_checked(path):
    """Before: AlignedMTL with 3 preferences on 2 tasks dropped the third silently; UPGrad with
    the wrong count failed inside numpy; a GradDrop leak of 2 or -1 was accepted."""
    from multitask.nn.aggregation import AlignedMTL, GradDrop, UPGrad

    J2 = torch.randn(2, 5, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    with pytest.raises(ValueError, match="weights_pref has 3 entries but the Jacobian has 2"):
        AlignedMTL(weights_pref=torch.ones(3))(J2)
    with pytest.raises(ValueError, match="pref has 3 entries but the Jacobian has 2"):
        UPGrad(pref=torch.ones(3))(J2)
    for make in [
        lambda: UPGrad(pref=torch.ones(3, 1)),
        lambda: UPGrad(pref=torch.tensor([1.0, -1.0])),
        lambda: AlignedMTL(weights_pref=torch.tensor([1.0, float("nan")])),
        lambda: GradDrop(leak=torch.tensor([2.0, 0.5])),
        lambda: GradDrop(leak=torch.tensor([-0.1, 0.5])),
    ]:
        with pytest.raises(ValueError, match="one finite entry >= 0"):
            make()
    # the right count still works: UPGrad with pref (1, 1) is twice the mean's weights
    torch.testing.assert_close(
        UPGrad(pref=torch.ones(2, dtype=torch.float64)).weights(J2), 2 * UPGrad().weights(J2)
    )


@pytest.mark.parametrize("n_tasks", [2, 4])
@pytest.mark.parametrize("spread", [1e3, 1e6, 1e8])
def test_upgrad_conflicts_with_no_task_whatever_the_norm_ratio(path, n_tasks, spread):
    """Quinton & Rey 2024, Thm 1: ``J d >= 0``. Row norms ``spread`` apart (float64): on a
    trace-normalised Gramian the smallest task fell under the ridge and was left in conflict
    (cosine -0.09 at 1e6, -0.5 at 1e8). Checked per task as the cosine of ``g_i`` and ``d``."""
    from multitask.nn.aggregation import UPGrad

    for seed, J in _spread_jacobians(n_tasks, spread, n_seeds=10):
        d = UPGrad()(J)
        cos = (J @ d) / (J.norm(dim=1) * d.norm())
        assert cos.min() >= -1e-9, (seed, cos)


def _spread_jacobians(n_tasks: int, spread: float, n_seeds: int):
    """``(seed, J)``: float64 ``(n_tasks, 20)`` Gaussian rows scaled by ``logspace(0,
    log10(spread))``, so the row norms are ``spread`` apart."""
    scales = torch.logspace(0, math.log10(spread), n_tasks, dtype=torch.float64)[:, None]
    for seed in range(n_seeds):
        gen = torch.Generator().manual_seed(seed)
        yield seed, torch.randn(n_tasks, 20, generator=gen, dtype=torch.float64) * scales


DEVICE_CASES = {
    "mgda": lambda: AGGREGATORS["mgda"](),
    "mgda-l2": lambda: AGGREGATORS["mgda"]("l2"),
    "mgda-frank-wolfe": lambda: AGGREGATORS["mgda"](solver="frank-wolfe", n_iter=5),
    "upgrad": lambda: AGGREGATORS["upgrad"](),
    "upgrad-torchjd-ridge": lambda: AGGREGATORS["upgrad"](reg_eps=1e-4),
    "cagrad": lambda: AGGREGATORS["cagrad"](),
    "pcgrad": lambda: AGGREGATORS["pcgrad"](),
    "gradvac": lambda: AGGREGATORS["gradvac"](),
    "nash_mtl": lambda: AGGREGATORS["nash_mtl"](max_norm=1.0),
    "imtl_g": lambda: AGGREGATORS["imtl_g"](),
    "aligned_mtl": lambda: AGGREGATORS["aligned_mtl"](),
    "aligned_mtl-mean": lambda: AGGREGATORS["aligned_mtl"]("mean"),
    "mean": lambda: AGGREGATORS["mean"](),
}


@pytest.mark.parametrize("n_tasks", [2, 3, 12])
@pytest.mark.parametrize("case", sorted(DEVICE_CASES))
def test_device_code_reads_nothing_back_to_the_host(case, n_tasks):
    """The device path on ``meta`` tensors, which refuse ``.item()``, ``bool()`` and copies to
    the host: a CPU-run proxy for the CUDA sync check that has no GPU to run on. Before:
    MGDA's and CAGrad's ``x[best]`` (a 0-d index is read with ``.item()``), Frank-Wolfe's
    ``eye[t]``, ``Ga[t]``, ``G[t, t]`` (three syncs per iteration), and GradVac's targets left
    on the CPU by an earlier call. Stateful ones take a CPU step first (state on another
    device than the Jacobian). GradDrop is left out: meta tensors have no generator."""
    agg = DEVICE_CASES[case]()
    cpu = torch.randn(n_tasks, 7, generator=torch.Generator().manual_seed(6))
    agg(cpu)  # state (if any) on the CPU
    for _ in range(2):  # a first device call and a warm one
        out = agg(torch.empty(n_tasks, 7, device="meta"))
        assert out.device.type == "meta" and out.shape == (7,)


def test_nash_mtl_after_an_all_zero_jacobian(path):
    """J = 0 stored alpha = 0, and the next warm start from 0 gave NaN for good."""
    nash = NashMTL()
    assert torch.equal(nash(torch.zeros(3, 7, dtype=torch.float64)), torch.zeros(7))
    J = torch.randn(3, 7, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    torch.testing.assert_close(nash.weights(J), NashMTL().weights(J), atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("n_tasks", [3, 5, 12])
@pytest.mark.parametrize("spread", [1e3, 1e6, 1e9])
def test_mgda_min_norm_point_conflicts_with_no_task_whatever_the_norm_ratio(path, n_tasks, spread):
    """Sener & Koltun 2018: the min-norm point ``d`` of the hull satisfies ``g_i . d >=
    ||d||^2`` for every task. Row norms ``spread`` apart (float64): on a trace-normalised
    Gramian a task whose squared norm fell under the ridge was lost (cosine down to -0.4 on
    4-task Jacobians with norms 1.6e8 apart). Checked per task as the cosine of ``g_i`` and
    ``d``, and as the optimality condition itself, relative to ``||g_i|| ||d||``."""
    from multitask.nn.aggregation import MGDA

    for seed, J in _spread_jacobians(n_tasks, spread, n_seeds=5):
        d = MGDA()(J)
        cos = (J @ d) / (J.norm(dim=1) * d.norm())
        assert cos.min() >= -1e-6, (seed, cos)
        slack = (J @ d - d @ d) / (J.norm(dim=1) * d.norm())  # g_i . d - ||d||^2 >= 0
        assert slack.min() >= -1e-6, (seed, slack)
