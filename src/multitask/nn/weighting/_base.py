"""Base class of the loss weightings."""

from __future__ import annotations

from torch import Tensor, nn


class LossWeighting(nn.Module):
    """Turn the vector of task losses into one scalar to minimise.

    ``forward(losses)`` takes ``losses`` of shape ``(n_tasks,)`` (still attached
    to the graph) and returns a scalar. Learnable weights are
    ``nn.Parameter``s of the weighting (so the optimizer sees them); history is
    kept in registered buffers (so checkpoints carry it); a stateful method
    says so and implements :meth:`reset`.

    A weighting never calls ``backward`` nor writes ``.grad``. A method that
    needs per-task gradient information (GradNorm, FAMO's update) declares it
    with ``needs_jacobian = True`` and receives it from
    :func:`multitask.nn.mtl_backward` through :meth:`observe`, which is called
    after the step with whatever the method asked for.
    """

    #: True when the method needs per-task gradients of the shared parameters.
    needs_jacobian: bool = False

    def forward(self, losses: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def weights(self) -> Tensor | None:
        """Current task weights of shape ``(n_tasks,)`` for logging, or None."""
        return None

    def reset(self) -> None:
        """Forget any state kept across steps (stateless weightings: nothing)."""
