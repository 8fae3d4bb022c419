"""An aggregator run on the rows of the tasks present at a step, the absent ones weighted zero.

A task absent from a step (a task sampler did not draw it, or none of its entries in the batch
is labelled) has loss 0 and a zero Jacobian row. For the aggregators that are defined on any
number of tasks (``drops_absent_rows``: MGDA, CAGrad, GradVac), the step on the present tasks
is the method on their rows alone, with GradVac's per-pair targets narrowed to the present
tasks' pairs (its ``_on_rows``): :func:`multitask.nn.mtl_backward`, told which tasks are
absent (``absent_tasks``), wraps the aggregator in :class:`PresentRows` for that step. On the
zero row itself these methods are not what they are on the others: the min-norm point of a
hull holding 0 is 0 (MGDA moves nothing shared), a zero row changes CAGrad's average gradient
and pulls GradVac's targets toward 0.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from torch import Tensor

from multitask.nn._device import index_on

from . import _graphs
from ._base import GradientAggregator


class PresentRows(GradientAggregator):
    """``inner`` on the rows ``present``; weight zero for the other rows.

    Parameters
    ----------
    inner : GradientAggregator
        A linear aggregator (its output is ``weights(J) @ J``) with ``drops_absent_rows``.
    present : sequence of int
        Indices of the present tasks' rows, increasing; may be empty (all weights zero).
    """

    handles_absent_tasks = True
    graph_safe = False  # (the inner aggregator's own graph runs on the present block)

    def __init__(self, inner: GradientAggregator, present: Sequence[int]) -> None:
        super().__init__()
        if not (inner.linear and getattr(inner, "drops_absent_rows", False)):
            raise ValueError(
                f"{type(inner).__name__} does not run on the present tasks' rows alone "
                "(drops_absent_rows is False)"
            )
        self.__dict__["inner"] = inner  # not a submodule: its state dict stays its own
        self.present = list(present)
        self.uses_gramian = inner.uses_gramian

    @property
    def needs_losses(self) -> bool:
        return getattr(self.inner, "needs_losses", False)

    def _index(self, like: Tensor) -> Tensor:
        return index_on(self.present, like)  # (no sync)

    def weights(self, jacobian: Tensor, losses: Tensor | None = None) -> Tensor:
        """Weights of shape ``(n_tasks,)``: the inner aggregator's on the present rows."""
        idx = self._index(jacobian)
        w = jacobian.new_zeros(jacobian.shape[0])
        if idx.numel():
            kw = self._losses(losses, idx)
            with self._state(jacobian):
                inner = self.inner.weights(jacobian.index_select(0, idx), **kw)
            w.index_copy_(0, idx, inner.to(w.dtype))
        return w

    def gramian_weights(self, gramian: Tensor, losses: Tensor | None = None) -> Tensor:
        """:meth:`weights` from ``gramian = J J^T``: the inner aggregator's on its present
        block."""
        idx = self._index(gramian)
        w = gramian.new_zeros(gramian.shape[0])
        if idx.numel():
            block = gramian.index_select(0, idx).index_select(1, idx)
            with self._state(gramian):
                inner = _graphs.gramian_weights(self.inner, block, **self._losses(losses, idx))
            w.index_copy_(0, idx, inner.to(w.dtype))
        return w

    def _state(self, like: Tensor):
        """The inner aggregator's per-task state narrowed to the present tasks for the call
        (its ``_on_rows``: GradVac's pair targets), or nothing to narrow."""
        on_rows = getattr(self.inner, "_on_rows", None)
        if on_rows is None:
            return contextlib.nullcontext()
        return on_rows(self.present, like.shape[0], like.device)

    def forward(self, jacobian: Tensor, losses: Tensor | None = None) -> Tensor:
        return self.weights(jacobian, losses) @ jacobian

    def _losses(self, losses: Tensor | None, idx: Tensor) -> dict:
        if not self.needs_losses or losses is None:
            return {}
        return {"losses": losses.index_select(0, idx.to(losses.device))}

    def __repr__(self) -> str:
        return f"PresentRows({self.inner!r}, present={self.present})"
