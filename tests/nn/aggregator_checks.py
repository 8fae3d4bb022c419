"""Reusable property asserts for gradient aggregators, and the hand-made Jacobians they run on.

Every function takes an aggregator *factory* (a zero-argument callable), so stateful or seeded
aggregators start fresh for each call that has to be compared.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

Factory = Callable[[], torch.nn.Module]


def jacobian_cases(n_tasks: int, n_params: int = 24, seed: int = 0) -> dict[str, Tensor]:
    """Orthogonal, conflicting, identical, rescaled-identical and random rows, in float64."""
    g = torch.Generator().manual_seed(seed + n_tasks)
    Q, _ = torch.linalg.qr(torch.randn(n_params, n_tasks, generator=g, dtype=torch.float64))
    norms = torch.linspace(0.5, 3.0, n_tasks, dtype=torch.float64)
    base = torch.randn(n_params, generator=g, dtype=torch.float64)
    # conflicting: a shared direction plus strong, partly opposed task-specific parts
    conflict = 0.3 * base + torch.randn(n_tasks, n_params, generator=g, dtype=torch.float64)
    conflict[0] = -conflict[1] + 0.2 * base
    illcond = torch.randn(n_tasks, 200, generator=g, dtype=torch.float64)[:, :n_params]
    illcond = illcond * torch.logspace(-2, 1, n_tasks, dtype=torch.float64)[:, None]
    illcond[0] = illcond[0] - 0.5 * illcond[-1]
    return {
        "orthogonal": norms[:, None] * Q.T,
        "conflicting": conflict,
        "identical": base.expand(n_tasks, n_params).clone(),
        "rescaled": norms[:, None] * base,
        "random": torch.randn(n_tasks, n_params, generator=g, dtype=torch.float64),
        # norms 1000x apart (Gramian eigenvalues down to 1e-6 of the trace), one conflict
        "ill_conditioned": illcond,
    }


def assert_finite_and_shaped(make: Factory, J: Tensor) -> Tensor:
    """The output is a finite vector of shape ``(n_params,)`` with the Jacobian's dtype."""
    d = make()(J)
    assert d.shape == (J.shape[1],), f"output shape {tuple(d.shape)} != ({J.shape[1]},)"
    assert d.dtype == J.dtype, f"output dtype {d.dtype} != Jacobian dtype {J.dtype}"
    assert torch.isfinite(d).all(), f"non-finite output: {d}"
    return d


def assert_permutation_invariant(make: Factory, J: Tensor, atol: float = 1e-7) -> None:
    """Permuting the tasks (rows) does not change the output."""
    perm = torch.randperm(J.shape[0], generator=torch.Generator().manual_seed(1))
    d, d_perm = make()(J), make()(J[perm])
    scale = J.abs().max()
    torch.testing.assert_close(d_perm, d, atol=atol * scale, rtol=1e-6)


def assert_non_conflicting(make: Factory, J: Tensor, eps: float = 1e-7) -> None:
    """``J d >= -eps * ||J||^2``: the update decreases no task to first order."""
    d = make()(J)
    worst = (J @ d).min()
    assert worst >= -eps * (J**2).sum(), f"conflicts with a task: min_i g_i . d = {worst}"


def assert_scales(make: Factory, J: Tensor, degree: int, atol: float = 1e-7) -> None:
    """``d(s J) = s**degree d(J)`` for ``s`` in (0.01, 7): degree 1 homogeneous, 0 invariant."""
    d = make()(J)
    for s in (0.01, 7.0):
        torch.testing.assert_close(
            make()(s * J), s**degree * d, atol=atol * s**degree * J.abs().max(), rtol=1e-5
        )


def assert_weights_consistent(make: Factory, J: Tensor) -> None:
    """For a linear aggregator, ``forward(J) == weights(J) @ J`` (fresh state for each)."""
    agg = make()
    assert agg.linear, f"{type(agg).__name__} is not linear"
    w = make().weights(J)
    assert w.shape == (J.shape[0],)
    torch.testing.assert_close(agg(J), w @ J)


def graddrop_uniforms(seed: int, n: int, dtype) -> np.ndarray:
    """GradDrop's documented CPU draws, written out independently: numpy SFC64, the top 53 bits
    of a draw (float64) or the top 24 bits of a 32-bit half (float32), scaled to [0, 1)."""
    bits = np.random.SFC64(seed)
    if dtype == np.float64:
        return (bits.random_raw(n) >> np.uint64(11)) * 2.0**-53
    halves = bits.random_raw((n + 1) // 2).view(np.uint32)[:n]
    return (halves >> np.uint32(8)) * 2.0**-24
