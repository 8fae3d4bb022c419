"""Random loss weighting (Lin et al. 2022)."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask._params import check_int
from multitask.nn._device import to_device_async
from multitask.nn.weighting._base import LossWeighting, check_losses, check_n_tasks

__all__ = ["RLW"]


class RLW(LossWeighting):
    """Weights drawn afresh every step: ``w = softmax(eps)``, ``eps ~ N(0, I)``.

    The draws come from a private ``torch.Generator`` seeded with ``seed``; its
    state travels in ``state_dict`` (as extra state), so a resumed run draws the
    same weights. Weights are drawn on the CPU and copied to the losses' device
    from pinned memory, without a host synchronisation.

    Parameters
    ----------
    n_tasks : int
    seed : int, default=0

    References
    ----------
    Lin, Ye, Zhang & Tsang, "Reasonable Effectiveness of Random Weighting:
    A Litmus Test for Multi-Task Learning", TMLR 2022, Sec. 3 (random weighting), with the
    standard normal and softmax (their default choice).

    Examples
    --------
    >>> import torch
    >>> from multitask.nn.weighting import RLW
    >>> rlw = RLW(2, seed=0)
    >>> losses = torch.tensor([1.0, 3.0])
    >>> total = rlw(losses)
    >>> rlw.weights()  # softmax of a standard normal draw
    tensor([0.8623, 0.1377])
    >>> torch.allclose(total, rlw.weights() @ losses)
    True
    >>> total = rlw(losses)
    >>> rlw.weights()  # a fresh draw at every call
    tensor([0.0602, 0.9398])
    >>> rlw.reset()  # back to the seed's first draw
    >>> total = rlw(losses)
    >>> rlw.weights()
    tensor([0.8623, 0.1377])
    """

    handles_absent_tasks = True  # (tested: tests/nn/test_absent_task_rows.py)

    def __init__(self, n_tasks: int, seed: int = 0) -> None:
        super().__init__()
        n_tasks = check_n_tasks(n_tasks, "RLW")
        seed = check_int(seed, "seed", "RLW", low=0)  # (a seed; None has no stream to replay)
        self.n_tasks = n_tasks
        self.seed = seed
        self._gen = torch.Generator().manual_seed(seed)
        self.register_buffer("last_weights", torch.full((n_tasks,), 1.0 / n_tasks))

    def forward(self, losses: Tensor) -> Tensor:
        """``losses`` of shape ``(n_tasks,)`` -> ``sum_t w_t L_t`` with fresh ``w``."""
        check_losses(losses, self.n_tasks, self)
        eps = torch.randn(self.n_tasks, generator=self._gen)
        w = to_device_async(torch.softmax(eps, dim=0), losses)
        self.last_weights = w
        return (w * losses).sum()

    def weights(self) -> Tensor:
        return self.last_weights

    def reset(self) -> None:
        self._gen.manual_seed(self.seed)

    def get_extra_state(self) -> dict:
        return {"generator": self._gen.get_state()}

    def set_extra_state(self, state: dict) -> None:
        self._gen.set_state(state["generator"])
