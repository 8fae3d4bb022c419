"""Test oracle shared by the per-task Jacobian tests: one ordinary ``autograd.grad`` per task."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch


def per_task_rows(
    losses: Mapping[str, torch.Tensor], names: Sequence[str], params: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Rows ``d losses[t] / d params``, flattened and stacked: shape (T, n_params)."""
    rows = []
    for t in names:
        gs = torch.autograd.grad(losses[t], params, retain_graph=True, allow_unused=True)
        flat = [torch.zeros_like(p) if g is None else g for g, p in zip(gs, params, strict=True)]
        rows.append(torch.cat([g.reshape(-1) for g in flat]))
    return torch.stack(rows)
