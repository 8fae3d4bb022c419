"""GradDrop: keep, per coordinate, the gradients of one sign at random (Chen et al. 2020)."""

from __future__ import annotations

import math
import threading

import torch
from torch import Tensor

from multitask._params import check_bool, check_int

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
    ``s-`` where it is negative: ``clamp(inf / margin, s-, s+)`` (``inf / margin`` is ``+-inf``
    by the margin's sign, that of a zero included; no division by ``s+ - s-``, no boolean mask;
    each sum is formed from its own parts, so a small one is not lost to cancellation against
    the other). A tie ``P = U`` (probability zero for the paper's continuous ``U``, about
    ``2^-24`` per mixed coordinate for the drawn grid) keeps ``s+``; coordinates where every
    gradient is zero give zero. A coordinate with a NaN or infinite gradient gives a NaN or
    infinite output (the margin is then NaN, or infinite, and ``inf / margin`` NaN), as a
    non-finite Jacobian must; so does one whose ``s+ - s-`` overflows the dtype.

    Where it applies: Chen et al. define GradDrop as a layer on activations, "usually the final
    layer before the prediction heads" (Sec. 3), and so do the authors' layer (lingvo's
    ``GradDrop``) and LibMTL, which refuses it on parameter gradients. ``prefers_representation``
    is therefore True: :func:`multitask.nn.mtl_backward` (``use_representation=None``, its
    default) hands it the per-task gradients of ``model.representation`` and backpropagates
    the cotangent of :meth:`combine_representation` into the trunk. ``use_representation=False``
    applies :meth:`forward` to the shared parameters' Jacobian instead (torchjd's placement).
    On the speed benchmark's MLP the representation step costs about 1.3x an equal-weighting
    step at T = 2 to 10, the parameter one 1.8x / 2.8x / 3.7-4.1x (docs/aggregation.md).

    On an activation layer the gradients are separated by example. With ``marginalize_batch`` (the
    default: the paper's extension to batch-separated gradients, Sec. 3, and lingvo's
    ``marginalize_batch_dim`` / ``use_input_sign_only``), the signal of task ``i`` at a unit is
    ``G_i = sum_b sign(A_b) dL_i/dA_b`` (the sign the next layer's weight gradient sees), ``P`` and
    ``U`` are per unit and the mask, from the sign of ``G_i``, is applied to every example's
    ``dL_i/dA_b``. Without it every scalar activation of the batch is one coordinate of
    :meth:`forward`. lingvo's optional rescaling of the output norm (``keep_gradnorm_constant``) is
    not part of the paper's algorithm and is not applied.

    Parameters
    ----------
    leak : Tensor of shape (n_tasks,), optional
        Leak ``l_i`` in [0, 1] of each task's gradient through the mask; default 0.
    seed : int
        Seed of the draws of ``U``, kept as state. On the CPU a numpy ``SFC64`` bit generator
        (:class:`._rng.SeededBits`: ``k 2^-24`` from 32-bit halves of its draws for float32,
        ``k 2^-53`` from whole draws for float64; about 3x cheaper than ``torch.rand``);
        elsewhere ``torch.rand`` with a generator on the Jacobian's device.
    marginalize_batch : bool, default=True
        On a representation (:meth:`combine_representation`): the batch-marginalised signal
        ``G_i`` above (one ``U`` per unit) instead of one coordinate per scalar activation.

    References
    ----------
    Chen, Z., Ngiam, J., Huang, Y., Luong, T., Kretzschmar, H., Chai, Y. & Anguelov, D. "Just Pick
    a Sign: Optimizing Deep Multitask Models with Gradient Sign Dropout". NeurIPS 2020. Eq. (1)
    (sign purity), the mask ``M_i`` below it, Sec. 3 (batch-separated gradients) and
    Algorithm 1, lines 10-15 (with the leak).

    Examples
    --------
    Each coordinate of the output is the sum of either the positive or the negative parts of
    the task gradients there; where the tasks agree in sign (the last coordinate) nothing is
    dropped:

    >>> import torch
    >>> from multitask.nn.aggregation import GradDrop
    >>> J = torch.tensor([[1.0, -2.0, 3.0], [-1.0, 2.0, 1.0]])  # purity P = (0.5, 0.5, 1)
    >>> graddrop = GradDrop(seed=0)
    >>> graddrop(J)
    tensor([-1., -2.,  4.])
    >>> graddrop(J)  # a fresh U per coordinate at every call
    tensor([-1.,  2.,  4.])
    >>> GradDrop(leak=torch.ones(2))(J)  # leak 1: every gradient passes, the plain sum
    tensor([0., 0., 4.])
    """

    handles_absent_tasks = True  # (tested: tests/nn/test_absent_task_rows.py)

    linear = False
    prefers_representation = True  # the paper's placement: an activation layer
    _output_is_new = True  # every path of forward returns a tensor made there

    def __init__(
        self, leak: Tensor | None = None, seed: int = 0, marginalize_batch: bool = True
    ) -> None:
        super().__init__()
        if leak is not None and not isinstance(leak, Tensor):
            raise TypeError(
                f"GradDrop: leak must be None or a Tensor of shape (n_tasks,) with entries in "
                f"[0, 1], got {leak!r}"
            )
        if leak is not None and leak.dim() != 1:
            raise ValueError(f"leak must have shape (n_tasks,), got {tuple(leak.shape)}")
        check_task_vector(leak, "leak", self, upper=1.0)
        seed = check_int(seed, "seed", "GradDrop", low=0)  # (a seed; None has no stream to replay)
        self.leak = leak
        self.seed = seed
        self.marginalize_batch = check_bool(marginalize_batch, "marginalize_batch", "GradDrop")
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
        # +inf: keep s+, -inf: keep s- (inf / +-0 too, as copysign); a NaN margin (an infinite
        # s+ or s-: inf - inf in lerp) stays NaN and so does the output (copysign took a side
        # from the NaN's sign bit and the clamp returned the finite sum: a +inf was dropped)
        side = torch.div(_INF, margin, out=margin)
        if self.leak is None:
            return torch.clamp(side, neg, pos)
        # the masked part carries 1 - l_i, the leak l_i g_i passes whole
        leak = self.leak.to(J)
        neg = torch.mv(parts.T, 1 - leak, out=neg)  # sum_i (1 - l_i) min(g_i, 0)
        parts = torch.clamp(J, min=0, out=parts)  # max(g_i, 0) again
        pos = torch.mv(parts.T, 1 - leak, out=pos)
        return torch.clamp(side, neg, pos).add_(leak @ J)

    def combine_representation(self, rows: Tensor, representation: Tensor) -> Tensor:
        """The cotangent GradDrop passes down from an activation layer, shaped as it.

        Parameters
        ----------
        rows : Tensor of shape (n_tasks, batch, ...)
            ``dL_i / dA``: each task's gradient of the activations.
        representation : Tensor of shape (batch, ...)
            The activations ``A`` (batch first).

        Returns
        -------
        Tensor of shape ``representation.shape``
            ``sum_i (l_i + (1 - l_i) M_i) dL_i/dA``. With ``marginalize_batch`` the mask
            ``M_i`` is per unit, from ``G_i = sum_b sign(A_b) dL_i/dA_b`` (one ``U`` per unit;
            a tie ``P = U`` keeps the positive side, a unit where every ``G_i`` is zero passes
            nothing), and is the same for every example; otherwise :meth:`forward` on the
            flattened rows.
        """
        if rows.dim() < 2 or tuple(rows.shape[1:]) != tuple(representation.shape):
            raise ValueError(
                f"rows must have shape (n_tasks, *representation.shape) = (n_tasks, "
                f"{', '.join(map(str, representation.shape))}), got {tuple(rows.shape)}"
            )
        T = rows.shape[0]
        if not self.marginalize_batch or representation.dim() == 0:
            return self.forward(rows.reshape(T, -1)).reshape(representation.shape)
        R = rows.detach()
        if R.dtype not in (torch.float32, torch.float64):  # as forward: U's grid
            return self.combine_representation(R.float(), representation.float()).to(R.dtype)
        if self.leak is not None and self.leak.shape[0] != T:
            raise ValueError(f"leak has {self.leak.shape[0]} entries but there are {T} tasks")
        batch = representation.shape[0]
        R = R.reshape(T, batch, -1)  # (T, B, units)
        signs = torch.sign(representation.detach().reshape(1, batch, -1).to(R.dtype))
        G = torch.mul(R, signs).sum(1)  # (T, units): sum_b sign(A_b) dL_i/dA_b
        check_jacobian(G, self)
        U = self._uniform(G)  # (units,)
        pos = G.clamp(min=0).sum(0)  # s+
        neg = G.clamp(max=0).sum(0)  # s-
        keep_pos = torch.lerp(pos, neg, U) >= 0  # P >= U (the margin of forward)
        mask = torch.where(keep_pos, G > 0, G < 0).to(R.dtype)  # (T, units): M_i
        if self.leak is not None:
            leak = self.leak.to(R)[:, None]
            mask = mask.mul_(1 - leak).add_(leak)
        out = torch.mul(R, mask[:, None, :]).sum(0)  # (B, units)
        return out.reshape(representation.shape)

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
        extra = "" if self.marginalize_batch else ", marginalize_batch=False"
        return f"GradDrop(seed={self.seed}{extra})"


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
