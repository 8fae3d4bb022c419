"""GradDrop: keep, per coordinate, the gradients of one sign at random (Chen et al. 2020)."""

from __future__ import annotations

import math
import threading

import torch
from torch import Tensor

from ._base import GradientAggregator, check_jacobian
from ._checks import check_task_vector
from ._rng import SeededBits, SeededGenerator

_SCRATCH = threading.local()
#: buffers reused from call to call (CPU, per thread) up to this many elements; larger ones are
#: allocated per call (a fresh buffer of a few hundred KiB costs its page faults every step)
_SCRATCH_MAX = 1 << 22
_INF = torch.tensor(float("inf"))


class GradDrop(GradientAggregator):
    """Gradient sign dropout: ``d = sum_i (l_i + (1 - l_i) M_i) * g_i`` (element-wise).

    Per coordinate, the positive sign purity is ``P = (1 + sum_i g_i / sum_i |g_i|) / 2``; with
    ``U ~ Uniform(0, 1)`` drawn once per coordinate, the mask ``M_i`` keeps ``g_i`` where
    ``P > U`` and ``g_i > 0`` or where ``P < U`` and ``g_i < 0``. Not a combination of rows:
    ``linear = False``.

    With the sums of the positive and negative parts ``s+ = sum_i max(g_i, 0)`` and
    ``s- = sum_i min(g_i, 0)``, ``P = s+ / (s+ - s-)``, so ``P > U`` exactly when the margin
    ``(1 - U) s+ + U s- = lerp(s+, s-, U)`` is positive, and the output is ``s+`` there and
    ``s-`` where it is negative: ``clamp(copysign(inf, margin), s-, s+)`` (no division, no
    boolean mask; each sum is formed from its own parts, so a small one is not lost to
    cancellation against the other). A tie ``P = U`` (probability zero for the paper's
    continuous ``U``, about ``2^-24`` per mixed coordinate for the drawn grid) keeps ``s+``;
    coordinates where every gradient is zero give zero.

    Where to apply it: Chen et al. put GradDrop on an activation layer, "usually the final
    layer before the prediction heads" (Sec. 3): ``mtl_backward(..., use_representation=True)``
    does that, each scalar of ``model.representation`` being one coordinate, and costs about
    1.3x an equal-weighting step at T = 2 to 10 on the speed benchmark's MLP; on the
    parameters' Jacobian (the default, as torchjd does) it costs 1.8x / 2.8x / 3.7-4.1x
    (docs/aggregation.md).

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
    (sign purity), the mask ``M_i`` below it, and Algorithm 1, lines 10-15 (with the leak).
    """

    linear = False
    _output_is_new = True  # every path of forward returns a tensor made there

    def __init__(self, leak: Tensor | None = None, seed: int = 0) -> None:
        super().__init__()
        if leak is not None and leak.dim() != 1:
            raise ValueError(f"leak must have shape (n_tasks,), got {tuple(leak.shape)}")
        check_task_vector(leak, "leak", self, upper=1.0)
        self.leak = leak
        self.seed = seed
        self._rng = SeededGenerator(seed)
        self._bits = SeededBits(seed)

    def forward(self, jacobian: Tensor) -> Tensor:
        """Aggregate ``jacobian`` of shape ``(n_tasks, n_params)`` into ``(n_params,)``."""
        check_jacobian(jacobian, self)
        J = jacobian.detach()
        if self.leak is not None and self.leak.shape[0] != J.shape[0]:
            raise ValueError(
                f"leak has {self.leak.shape[0]} entries but the Jacobian has {J.shape[0]} tasks"
            )
        if J.device.type == "cpu" and J.dtype not in (torch.float32, torch.float64):
            return self.forward(J.float()).to(J.dtype)  # U's 24-bit grid is not exact below
        T, n = J.shape
        U = self._uniform(J)  # (n,)
        parts = torch.clamp(J, min=0, out=_scratch(0, (T, n), J))  # max(g_i, 0)
        pos = _row_sum(parts, _scratch(1, (n,), J))  # s+
        parts = torch.clamp(J, max=0, out=parts)  # min(g_i, 0)
        neg = _row_sum(parts, _scratch(2, (n,), J))  # s-
        margin = torch.lerp(pos, neg, U, out=U)  # (1 - U) s+ + U s-: the sign of P - U
        side = torch.copysign(_INF, margin, out=margin)  # +inf: keep s+, -inf: keep s-
        if self.leak is None:
            return torch.clamp(side, neg, pos)
        # the masked part carries 1 - l_i, the leak l_i g_i passes whole
        leak = self.leak.to(J)
        neg = torch.mv(parts.T, 1 - leak, out=neg)  # sum_i (1 - l_i) min(g_i, 0)
        parts = torch.clamp(J, min=0, out=parts)  # max(g_i, 0) again
        pos = torch.mv(parts.T, 1 - leak, out=pos)
        return torch.clamp(side, neg, pos).add_(leak @ J)

    def _uniform(self, J: Tensor) -> Tensor:
        """One ``U ~ Uniform[0, 1)`` per coordinate: shape ``(n_params,)``, ``J``'s dtype and
        device (a scratch buffer on the CPU)."""
        n = J.shape[1]
        if J.device.type == "cpu":
            return self._bits.uniform(n, J.dtype, out=_scratch(3, (n,), J))
        g = self._rng.get(J.device)
        return torch.rand(n, generator=g, device=J.device, dtype=J.dtype)

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


def _row_sum(X: Tensor, out: Tensor) -> Tensor:
    """``X.sum(dim=0)`` into ``out``; for two or three rows as adds of rows (a strided reduction
    over a short first axis costs about twice that on one CPU core)."""
    if X.shape[0] > 3:
        return torch.sum(X, dim=0, out=out)
    if X.shape[0] == 1:
        return out.copy_(X[0])
    out = torch.add(X[0], X[1], out=out)
    return out.add_(X[2]) if X.shape[0] == 3 else out


def _scratch(slot: int, shape: tuple[int, ...], like: Tensor) -> Tensor:
    """A buffer of ``shape`` and ``like``'s dtype, reused between calls (CPU, per thread).

    Its content never leaves :meth:`GradDrop.forward` (the output is a new tensor). On other
    devices (whose allocators cache memory already), above ``_SCRATCH_MAX`` elements and in
    inference mode, a new tensor.
    """
    n = math.prod(shape)
    if like.device.type != "cpu" or n > _SCRATCH_MAX or torch.is_inference_mode_enabled():
        return like.new_empty(shape)
    bufs = getattr(_SCRATCH, "bufs", None)
    if bufs is None:
        bufs = _SCRATCH.bufs = {}
    buf = bufs.get((slot, like.dtype))
    if buf is None or buf.numel() < n:
        buf = bufs[(slot, like.dtype)] = like.new_empty(n)
    return buf[:n].view(shape)
