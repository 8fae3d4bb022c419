"""Gradient affinity: mean cosine similarity of the task gradients on the shared parameters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch

from multitask.nn import Task, task_jacobian
from multitask.relatedness._common import (
    as_task_list,
    batch_losses,
    check_batches,
    keep_representation,
    shared_named,
)

__all__ = ["gradient_affinity"]


def gradient_affinity(
    model, tasks: Sequence[Task] | Mapping[str, Task], batches: Iterable
) -> np.ndarray:
    """Mean cosine similarity of the task gradients on the shared parameters.

    For each batch ``b`` the gradients ``g_i = d L_i / d theta_shared`` come
    from one batched backward (:func:`multitask.nn.task_jacobian`, which does
    not write ``.grad``), and

    .. math:: A_{ij} = \\frac{1}{B} \\sum_b \\frac{\\langle g_i^b, g_j^b \\rangle}
              {\\lVert g_i^b \\rVert \\, \\lVert g_j^b \\rVert}.

    A task whose gradient is zero on a batch has cosine 0 with every task there.

    Parameters
    ----------
    model : MultiTaskModule
        ``forward(x) -> dict[task, Tensor]`` and ``shared_parameters()``.
    tasks : sequence of Task, or dict of str -> Task
        The tasks, in the order of the rows of the result (at least two).
    batches : iterable of (inputs, dict of str -> Tensor)
        Batches to average over (a few are enough for a heatmap).

    Returns
    -------
    affinity : ndarray of shape (n_tasks, n_tasks)
        Symmetric, in ``[-1, 1]``, ones on the diagonal (for non-zero gradients).
        The model's parameters and ``.grad`` are unchanged.

    References
    ----------
    Yu et al., "Gradient Surgery for Multi-Task Learning", NeurIPS 2020,
    Definition 1 (conflicting gradients: negative cosine ``cos phi_ij``);
    Ruder, "An Overview of Multi-Task Learning in Deep Neural Networks",
    arXiv:1706.05098, 2017, Sec. 9 (measuring task relatedness).
    """
    tasks = as_task_list(tasks)
    batches = check_batches(batches)
    params = [p for _, p in shared_named(model)]
    total = None
    with keep_representation(model):
        for batch in batches:
            jac = task_jacobian(batch_losses(model, tasks, batch), params, retain_graph=False)
            unit = jac / jac.norm(dim=1, keepdim=True).clamp_min(1e-12)  # (T, n_shared)
            cos = (unit @ unit.T).detach()
            total = cos if total is None else total + cos
    with torch.no_grad():
        return (total / len(batches)).cpu().double().numpy()
