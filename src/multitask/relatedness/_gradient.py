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
    check_finite,
    keep_model_state,
    pair_mean,
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

    A pair is averaged over the batches where both tasks have a labelled entry (a task
    without one has loss 0 and no gradient there, which would pull its cosines towards 0);
    a labelled task whose gradient is zero on a batch has cosine 0 with every task there.

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
        The model (parameters, ``.grad``, buffers such as BatchNorm's running
        statistics, ``representation``) and torch's random state are unchanged.

    Raises
    ------
    ValueError
        If no batch labels some pair of tasks, or a labelled task's loss is NaN or
        infinite on a batch.
    TypeError
        If a task is not a :class:`~multitask.nn.Task` (a repeated task name is a
        ValueError), or a batch is not a pair ``(inputs, targets)``.

    References
    ----------
    Yu et al., "Gradient Surgery for Multi-Task Learning", NeurIPS 2020,
    Definition 1 (conflicting gradients: negative cosine ``cos phi_ij``);
    Ruder, "An Overview of Multi-Task Learning in Deep Neural Networks",
    arXiv:1706.05098, 2017, Sec. 9 (measuring task relatedness).

    Examples
    --------
    Three regression tasks on one shared linear layer, started at zero: the targets of
    ``"a"`` and ``"b"`` point the same way, that of ``"c"`` the opposite way.

    >>> import torch
    >>> from torch import nn
    >>> from multitask.nn import Task
    >>> from multitask.nn.architectures import HardSharing
    >>> from multitask.relatedness import gradient_affinity
    >>> trunk = nn.Linear(3, 1, bias=False)  # the shared parameters
    >>> _ = nn.init.zeros_(trunk.weight)
    >>> model = HardSharing(trunk, {t: nn.Flatten(0) for t in "abc"})  # heads without parameters
    >>> tasks = [Task("a"), Task("b"), Task("c")]  # regression tasks, the rows of the result
    >>> x = torch.randn(32, 3, generator=torch.Generator().manual_seed(0))
    >>> s = x @ torch.tensor([1.0, -2.0, 0.5])
    >>> batches = [(x, {"a": s, "b": 2 * s, "c": -s})]  # b agrees with a, c opposes it
    >>> gradient_affinity(model, tasks, batches).round(2)
    array([[ 1.,  1., -1.],
           [ 1.,  1., -1.],
           [-1., -1.,  1.]])
    """
    tasks = as_task_list(tasks)
    batches = check_batches(batches)
    params = [p for _, p in shared_named(model)]
    total = count = 0
    with keep_model_state(model):
        for b, batch in enumerate(batches):
            losses, counts = batch_losses(model, tasks, batch)
            check_finite(losses, counts, tasks, f"batch {b}")
            jac = task_jacobian(losses, params, retain_graph=False).detach()
            norms = jac.norm(dim=1, keepdim=True)
            unit = jac / torch.where(norms > 0, norms, torch.ones_like(norms))  # (T, n_shared)
            labelled = (counts > 0).to(jac.dtype)
            both = labelled[:, None] * labelled[None, :]
            total, count = total + both * (unit @ unit.T), count + both
    with torch.no_grad():
        return pair_mean(total, count, tasks).cpu().double().numpy()
