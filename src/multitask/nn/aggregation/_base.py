"""Base class of the gradient aggregators."""

from __future__ import annotations

import numpy as np
from torch import Tensor, nn

from . import _gramian
from ._checks import check_jacobian

__all__ = ["GradientAggregator", "check_jacobian"]


class GradientAggregator(nn.Module):
    """Combine per-task gradients into one update direction.

    An aggregator maps the Jacobian of the task losses with respect to the
    shared parameters, ``jacobian`` of shape ``(n_tasks, n_params)``, to one
    vector of shape ``(n_params,)``. It never calls ``backward`` and never
    writes ``.grad``: :func:`multitask.nn.mtl_backward` does that.

    Most aggregators return a linear combination of the rows of the Jacobian,
    ``weights(jacobian) @ jacobian``. Those override :meth:`weights` only and
    inherit :meth:`forward`; because their output is a combination of rows, they
    also work on the Jacobian with respect to a shared representation (the
    MGDA-UB trick of Sener & Koltun 2018): ``mtl_backward`` then computes the
    weights from the small representation Jacobian and runs one ordinary
    backward of ``sum_t w_t L_t``. Aggregators whose output is not a fixed
    combination of rows (GradDrop) override :meth:`forward` and set
    ``linear = False``.

    Solvers run on the Jacobian's device in torch, with no host
    synchronisation (no ``.item()``, no ``if tensor:``) in the step.

    Examples
    --------
    A linear aggregator of one's own overrides :meth:`weights` alone; here the sum of
    the task gradients scaled to unit norm:

    >>> import torch
    >>> from multitask.nn.aggregation import GradientAggregator
    >>> class UnitSum(GradientAggregator):
    ...     def weights(self, jacobian):
    ...         return 1 / jacobian.norm(dim=1)
    >>> J = torch.tensor([[3.0, 0.0], [0.0, -2.0]])  # (n_tasks, n_params)
    >>> agg = UnitSum()
    >>> agg.weights(J)
    tensor([0.3333, 0.5000])
    >>> agg(J)  # weights @ J, shape (n_params,)
    tensor([ 1., -1.])
    """

    #: True when ``forward(J) == weights(J) @ J`` (usable on a representation).
    linear: bool = True

    #: (a non-linear aggregator) True when :meth:`forward` returns a new tensor that it keeps
    #: no reference to and that is no view of its input: ``mtl_backward`` then makes the shared
    #: ``.grad`` views of it instead of copying it (GradDrop).
    _output_is_new: bool = False

    #: True when the weights depend on ``J`` only through its Gramian ``J J^T``: then
    #: :meth:`gramian_weights` gives them without the Jacobian (a Gramian-based backward
    #: can skip materialising ``J``).
    uses_gramian: bool = False

    #: True when the weights drop the Gramian's eigenvalues below a cut-off (IMTL-G,
    #: Aligned-MTL): the cut-off must sit above the Gramian's rounding, that of the Jacobian's
    #: dtype rather than the float64 it is solved in, so :meth:`gramian_weights` and
    #: :meth:`host_weights` take it as ``rounding`` (:func:`._solvers.rounding`).
    cuts_spectrum: bool = False

    #: True when :meth:`gramian_weights` is a pure function of its tensor arguments and the
    #: aggregator's settings (no state, no host work on CUDA): on CUDA it is then captured once
    #: and replayed as a CUDA graph (:mod:`._graphs`).
    graph_safe: bool = False

    #: True when :meth:`weights` / :meth:`forward` take the task losses as a second argument,
    #: ``losses`` of shape ``(n_tasks,)`` (MGDA's loss normalisations); ``mtl_backward`` passes
    #: them.
    needs_losses: bool = False

    #: True when the method is defined on an activation layer rather than on the parameters
    #: (GradDrop): :func:`multitask.nn.mtl_backward` with ``use_representation=None`` (its
    #: default) then aggregates the per-task gradients of ``model.representation``.
    prefers_representation: bool = False

    #: True when a zero row (a task absent from the step: a task sampler did not draw it)
    #: leaves the output what it is on the other rows alone, up to a positive scale, and
    #: feeds no state of the method (tested). The :class:`~multitask.training.Trainer`
    #: refuses an aggregator without it under a task sampler that trains only some of the
    #: tasks at a step.
    handles_absent_tasks: bool = False
    #: What a zero row does to the method (for that error message).
    absent_tasks_reason: str = "a zero row changes its result for the other tasks"
    #: True (a linear aggregator defined on any number of tasks: MGDA, CAGrad, GradVac) when
    #: the method on the present tasks is the method on their rows alone (per-task state, if
    #: any, narrowed to them by its ``_on_rows``): :func:`multitask.nn.mtl_backward` told of
    #: absent tasks (``absent_tasks``) then runs it on the other rows and gives the absent ones
    #: weight zero; the Trainer tells it (tested).
    drops_absent_rows: bool = False

    def weights(self, jacobian: Tensor) -> Tensor:
        """Task weights of shape ``(n_tasks,)`` such that the output is ``weights @ jacobian``."""
        if self.uses_gramian:  # CPU: numpy from a float64 Gramian, formed once
            return _gramian.weights(self, jacobian)
        raise NotImplementedError(f"{type(self).__name__} does not define task weights")

    def gramian_weights(self, gramian: Tensor) -> Tensor:
        """Task weights of shape ``(n_tasks,)`` from ``gramian = J J^T`` (``uses_gramian``)."""
        raise NotImplementedError(
            f"{type(self).__name__} needs the Jacobian, not only its Gramian: call weights(J)"
        )

    def host_weights(self, gramian: np.ndarray) -> np.ndarray | None:
        """Weights of shape ``(n_tasks,)`` from a float64 numpy ``gramian`` (the CPU path).

        None (the default: no host path) sends the step to :meth:`gramian_weights` in torch;
        so does a host solver that gives up. A numpy call on a ``(T,)`` array costs about a
        microsecond and a torch op several: on the CPU the tiny task-space math runs here.
        """
        return None

    def forward(self, jacobian: Tensor) -> Tensor:
        """Aggregate ``jacobian`` of shape ``(n_tasks, n_params)`` into ``(n_params,)``."""
        return self.weights(jacobian) @ jacobian

    def reset(self) -> None:
        """Forget any state kept across steps (stateless aggregators: nothing)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
