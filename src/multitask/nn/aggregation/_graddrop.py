"""GradDrop: keep, per coordinate, the gradients of one sign at random (Chen et al. 2020)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import GradientAggregator
from ._rng import SeededBits, SeededGenerator


class GradDrop(GradientAggregator):
    """Gradient sign dropout: ``d = sum_i (l_i + (1 - l_i) M_i) * g_i`` (element-wise).

    Per coordinate, the positive sign purity is ``P = (1 + sum_i g_i / sum_i |g_i|) / 2``; with
    ``U ~ Uniform(0, 1)`` drawn once per coordinate, the mask ``M_i`` keeps ``g_i`` where
    ``P > U`` and ``g_i > 0`` or where ``P < U`` and ``g_i < 0``. Not a combination of rows:
    ``linear = False``.

    With the mass ``m = sum_i |g_i|`` and ``t = sum_i g_i``, ``P = (m + t) / (2 m)``, so the
    draw is decided by the sign of ``m + t - 2 U m`` (no division): where it is positive the
    output is the sum of the positive parts ``(t + m) / 2``, where it is negative the sum of
    the negative parts ``(t - m) / 2``, i.e. ``(t + copysign(m, m + t - 2 U m)) / 2``. A tie
    ``P = U`` (probability zero for the paper's continuous ``U``, about ``2^-24`` per mixed
    coordinate for the drawn grid) keeps the positive parts; coordinates where every gradient is
    zero give zero.

    Parameters
    ----------
    leak : Tensor of shape (n_tasks,), optional
        Leak ``l_i`` in [0, 1] of each task's gradient through the mask; default 0.
    seed : int
        Seed of the draws of ``U``, kept as state. On the CPU a numpy ``SFC64`` bit generator
        (:class:`._rng.SeededBits`: ``k 2^-24`` from 32-bit halves of its draws for float32,
        ``k 2^-53`` from whole draws for float64; about 3x cheaper than ``torch.rand``);
        elsewhere ``torch.rand`` with a generator on the Jacobian's device.

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
        self._bits = SeededBits(seed)

    def forward(self, jacobian: Tensor) -> Tensor:
        """Aggregate ``jacobian`` of shape ``(n_tasks, n_params)`` into ``(n_params,)``."""
        J = jacobian.detach()
        if self.leak is not None and self.leak.shape[0] != J.shape[0]:
            raise ValueError(
                f"leak has {self.leak.shape[0]} entries but the Jacobian has {J.shape[0]} tasks"
            )
        k, scale = self._uniform(J)  # U = k * scale, shape (n_params,)
        absolute = J.abs()  # (T, n_params)
        mass, total = _row_sum(absolute), _row_sum(J)  # sum_i |g_i|, sum_i g_i
        # 2 m (P - U) = m + t - 2 U m; U's scale (a power of two) rides on the product
        margin = torch.addcmul(mass + total, k, mass, value=-2 * scale)
        if self.leak is not None:  # the masked part carries 1 - l_i, the leak l_i g_i passes
            leak = self.leak.to(J)
            mass, total = (1 - leak) @ absolute, (1 - leak) @ J
        out = torch.copysign(mass, margin).add_(total).mul_(0.5)
        return out if self.leak is None else out + leak @ J

    def _uniform(self, J: Tensor) -> tuple[Tensor, float]:
        """One ``U = k * scale ~ Uniform[0, 1)`` per coordinate: ``k`` of shape ``(n_params,)``
        in ``J``'s dtype, on its device."""
        if J.device.type == "cpu":
            return self._bits.uniform(J.shape[1], J.dtype)
        g = self._rng.get(J.device)
        return torch.rand(J.shape[1], generator=g, device=J.device, dtype=J.dtype), 1.0

    def reset(self) -> None:
        """Restart the random stream from ``seed``."""
        self._rng = SeededGenerator(self.seed)
        self._bits = SeededBits(self.seed)

    def get_extra_state(self) -> dict:
        return {**self._rng.state(), "bits": self._bits.state()}

    def set_extra_state(self, state: dict) -> None:
        self._rng.load_state(state)
        self._bits = SeededBits(state["seed"])
        if "bits" in state:  # absent in checkpoints written before the host generator
            self._bits.load_state(state["bits"])

    def __repr__(self) -> str:
        return f"GradDrop(seed={self.seed})"


def _row_sum(X: Tensor) -> Tensor:
    """``X.sum(dim=0)``; for two or three rows as adds of rows (a strided reduction over a short
    first axis costs about twice that on one CPU core)."""
    if X.shape[0] > 3:
        return X.sum(dim=0)
    out = X[0].clone() if X.shape[0] == 1 else X[0] + X[1]
    return out.add_(X[2]) if X.shape[0] == 3 else out
