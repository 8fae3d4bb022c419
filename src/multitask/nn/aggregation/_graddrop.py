"""GradDrop: keep, per coordinate, the gradients of one sign at random (Chen et al. 2020)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import GradientAggregator
from ._rng import SeededGenerator


class GradDrop(GradientAggregator):
    """Gradient sign dropout: ``d = sum_i (l_i + (1 - l_i) M_i) * g_i`` (element-wise).

    Per coordinate, the positive sign purity is ``P = (1 + sum_i g_i / sum_i |g_i|) / 2``; with
    ``U ~ Uniform(0, 1)`` drawn once per coordinate, the mask ``M_i`` keeps ``g_i`` where
    ``P > U`` and ``g_i > 0`` or where ``P < U`` and ``g_i < 0``. Coordinates where every gradient
    is zero get ``P = 1/2`` (and a zero output). Not a combination of rows: ``linear = False``.

    Parameters
    ----------
    leak : Tensor of shape (n_tasks,), optional
        Leak ``l_i`` in [0, 1] of each task's gradient through the mask; default 0.
    seed : int
        Seed of the generator for ``U``, kept on the Jacobian's device; on the CPU it draws what
        ``torch.rand`` draws after ``torch.manual_seed(seed)``.

    References
    ----------
    Chen, Z., Ngiam, J., Huang, Y., Luong, T., Kretzschmar, H., Chai, Y. & Anguelov, D. "Just Pick
    a Sign: Optimizing Deep Multitask Models with Gradient Sign Dropout". NeurIPS 2020. Eq. (1)
    (sign purity) and Algorithm 1, lines 10-15.
    """

    linear = False

    def __init__(self, leak: Tensor | None = None, seed: int = 0) -> None:
        super().__init__()
        if leak is not None and leak.dim() != 1:
            raise ValueError(f"leak must have shape (n_tasks,), got {tuple(leak.shape)}")
        self.leak = leak
        self.seed = seed
        self._rng = SeededGenerator(seed)

    def forward(self, jacobian: Tensor) -> Tensor:
        """Aggregate ``jacobian`` of shape ``(n_tasks, n_params)`` into ``(n_params,)``."""
        J = jacobian.detach()
        if self.leak is not None and self.leak.shape[0] != J.shape[0]:
            raise ValueError(
                f"leak has {self.leak.shape[0]} entries but the Jacobian has {J.shape[0]} tasks"
            )
        g = self._rng.get(J.device)
        U = torch.rand(J.shape[1], generator=g, device=J.device, dtype=J.dtype)
        total, mass = J.sum(dim=0), J.abs().sum(dim=0)  # sum_i g_i, sum_i |g_i|
        purity = 0.5 * (1 + total / (mass + (mass == 0).to(J.dtype)))
        # M_i keeps g_i > 0 where P > U and g_i < 0 where P < U: s = +1, -1, or 0 (P = U)
        s = torch.sign(purity - U)
        if self.leak is None:  # sum of the positive parts is (mass + total) / 2, and so on
            return 0.5 * (s * mass + s.abs() * total)
        rest = 1 - self.leak.to(J)  # the masked part carries 1 - l_i, the leak l_i g_i passes
        kept_pos, kept_neg = rest @ J.clamp(min=0), rest @ J.clamp(max=0)
        out = 0.5 * ((s.abs() + s) * kept_pos + (s.abs() - s) * kept_neg)
        return out + self.leak.to(J) @ J

    def reset(self) -> None:
        """Restart the random stream from ``seed``."""
        self._rng = SeededGenerator(self.seed)

    def get_extra_state(self) -> dict:
        return self._rng.state()

    def set_extra_state(self, state: dict) -> None:
        self._rng.load_state(state)

    def __repr__(self) -> str:
        return f"GradDrop(seed={self.seed})"
