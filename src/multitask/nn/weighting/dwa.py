"""Dynamic weight average (Liu, Johns & Davison 2019)."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask._params import check_int, check_real
from multitask.nn.weighting._base import LossWeighting, check_losses, check_n_tasks, host_softmax

__all__ = ["DWA"]


class DWA(LossWeighting):
    """Weight tasks by their recent rate of loss decrease (eq. 1)::

        r_t(k) = L_t(k-1) / L_t(k-2)
        w_t(k) = T exp(r_t(k) / temperature) / sum_s exp(r_s(k) / temperature)

    with ``r = 1`` for the first two periods and wherever the ratio is not finite (a period
    loss of zero before: a task with no labelled sample in it, whose masked loss is 0; the
    ratio of two zeros is NaN, of a positive loss to a zero one inf, and either made every
    weight NaN before 2026-11-22). A *period* is ``period`` calls of
    :meth:`forward` and ``L_t(k)`` is the mean of the task's losses over period
    ``k``: the paper averages over an epoch (``period = steps per epoch``);
    the default ``period=1`` uses the step losses. History lives in buffers
    (a stateful method: :meth:`reset` forgets it).

    Told which tasks are present (:meth:`present_tasks`: a task sampler drew some of the
    tasks, or a batch has no label for one), a step weights the present tasks ``P`` as DWA
    on them alone, ``w_t = |P| exp(r_t / temperature) / sum_{s in P} exp(r_s /
    temperature)`` (mean weight 1 over the trained tasks, as every task's is at a full step),
    and 0 the others; ``L_t(k)`` is the mean over the calls of period ``k`` at which task
    ``t`` was present, and a period without any leaves the task's history as it was, so
    ``r_t`` is the ratio of its last two trained periods.

    Parameters
    ----------
    n_tasks : int
    temperature : float, default=2.0
        The paper's ``T`` (softness of the weights).
    period : int, default=1
        Calls per period.

    References
    ----------
    Liu, Johns & Davison, "End-to-End Multi-Task Learning with Attention",
    CVPR 2019, Sec. 3.3, eq. 1.

    Examples
    --------
    >>> import torch
    >>> from multitask.nn.weighting import DWA
    >>> dwa = DWA(2)  # temperature 2; a period is one call
    >>> for losses in ([1.0, 1.0], [0.5, 1.0], [0.5, 1.0]):
    ...     total = dwa(torch.tensor(losses))
    >>> [round(w, 4) for w in dwa.weights().tolist()]  # r = (0.5, 1): 2 softmax(r / 2)
    [0.8756, 1.1244]

    The task whose loss halved gets less weight than the one that stalled.
    """

    absent_tasks_reason = "a zero loss would enter the loss history its weights are ratios of"
    drops_absent_rows = True  # (the present tasks' history and weights alone: see above)

    _loss_floor = 0.0
    loss_floor_reason = (
        "its weights follow the ratio of successive mean losses, a rate of "
        "descent only for a positive loss"
    )

    def __init__(self, n_tasks: int, temperature: float = 2.0, period: int = 1) -> None:
        super().__init__()
        n_tasks = check_n_tasks(n_tasks, "DWA")
        temperature = check_real(temperature, "temperature", "DWA", low=0.0, low_open=True)
        period = check_int(period, "period", "DWA", low=1)
        self.n_tasks = n_tasks
        self.temperature = temperature
        self.period = period
        nan = torch.full((n_tasks,), float("nan"))
        self.register_buffer("previous", nan.clone())  # L(k-1)
        self.register_buffer("before_previous", nan.clone())  # L(k-2)
        self.register_buffer("running_sum", torch.zeros(n_tasks))
        # calls of this period without the task (present_tasks), and whether there was one
        self.register_buffer("absent_calls", torch.zeros(n_tasks))
        self._partial = False
        self.register_buffer("last_weights", torch.ones(n_tasks))
        self._calls = 0

    #: On the CPU, the ``(T,)``-sized steps run in Python floats on the buffers' memory
    #: (:meth:`_host_forward`); False: in torch, as on a device (the tests compare them).
    _host: bool = True

    def forward(self, losses: Tensor) -> Tensor:
        """``losses`` of shape ``(n_tasks,)`` -> ``sum_t w_t L_t`` (weights detached)."""
        check_losses(losses, self.n_tasks, self)
        if self._on_host(losses, self.previous):
            return self._host_forward(losses)
        ratio = self.previous / self.before_previous
        ratio = torch.where(torch.isfinite(ratio), ratio, torch.ones_like(ratio))
        scores = ratio / self.temperature
        mask = self._present_mask(ratio)
        if mask is None:
            w = self.n_tasks * torch.softmax(scores, dim=0)
        elif self._present:  # DWA on the present tasks: |P| softmax over them, 0 elsewhere
            w = len(self._present) * torch.softmax(scores.masked_fill(~mask, -torch.inf), dim=0)
        else:  # no task present: nothing to weight
            w = torch.zeros_like(scores)
        self.last_weights = w.detach()
        self._advance(losses.detach(), mask)
        return (w.to(losses.dtype) * losses).sum()

    def _host_forward(self, losses: Tensor) -> Tensor:
        """:meth:`forward` on the CPU: the same steps as the torch path (compared in the tests)
        in Python floats on the buffers' memory, and one ``dot`` for autograd.

        About 15 torch calls on ``(T,)`` tensors made DWA's step 1.08-1.14x an equal-weighting
        step at T = 2 (on this CPU each torch or numpy call on a tiny array costs 3-7 us, more
        than its math). A float32 buffer stores the float64 result of one operation on float32
        values rounded once, which is the float32 operation's result (float64 carries more than
        twice float32's precision), so the buffers follow the torch path's; the weights differ
        from its float32 softmax by an ulp or two.
        """
        present, bufs = self._present, self._buffers  # (a dict read: no Module.__getattr__)
        big = torch.finfo(bufs["previous"].dtype).max  # a float32 ratio overflows past it: inf
        prev, before = bufs["previous"].numpy().tolist(), bufs["before_previous"].numpy().tolist()
        scores = [_ratio(p, b, big) / self.temperature for p, b in zip(prev, before, strict=True)]
        if present is None:
            w = [self.n_tasks * v for v in host_softmax(scores)]
        else:  # DWA on the present tasks: |P| softmax over them, 0 elsewhere (none: all 0)
            w = [0.0] * self.n_tasks
            if present:
                inner = host_softmax([scores[t] for t in present])
                for t, v in zip(present, inner, strict=True):
                    w[t] = len(present) * v
        weights = torch.tensor(w, dtype=bufs["last_weights"].dtype)
        bufs["last_weights"] = weights  # a new tensor each step, as the torch path's
        running = bufs["running_sum"].numpy()
        # rounded to the buffers' dtype first, as the torch path's .to()
        self._host_advance(losses.detach().numpy().astype(running.dtype, copy=False).tolist())
        if weights.dtype != losses.dtype:
            weights = weights.to(losses.dtype)
        return torch.dot(weights, losses)

    def _host_advance(self, values: list[float]) -> None:
        """:meth:`_advance` in Python floats, written back into the buffers."""
        present, bufs = self._present, self._buffers
        running = bufs["running_sum"].numpy()
        sums = running.tolist()
        if present is None:
            sums = [s + v for s, v in zip(sums, values, strict=True)]
        else:  # the present tasks' losses alone enter their period means
            absent = bufs["absent_calls"].numpy()
            missed, chosen = absent.tolist(), set(present)
            for t in range(self.n_tasks):
                if t in chosen:
                    sums[t] += values[t]
                else:
                    missed[t] += 1
            absent[:] = missed
            self._partial = True
        self._calls += 1
        if self._calls < self.period:
            running[:] = sums
            return
        prev_buf, before_buf = bufs["previous"].numpy(), bufs["before_previous"].numpy()
        if self._partial:  # per task, over its calls; none: its history stays as it was
            absent = bufs["absent_calls"].numpy()
            prev, before = prev_buf.tolist(), before_buf.tolist()
            for t, missed in enumerate(absent.tolist()):
                count = self.period - missed
                if count > 0:
                    before[t], prev[t] = prev[t], sums[t] / count
            before_buf[:], prev_buf[:] = before, prev
            absent[:] = 0
            self._partial = False
        else:
            before_buf[:] = prev_buf
            prev_buf[:] = [s / self.period for s in sums]
        running[:] = 0
        self._calls = 0

    def _advance(self, losses: Tensor, mask: Tensor | None) -> None:
        losses = losses.to(self.running_sum.dtype)
        if mask is None:
            self.running_sum.add_(losses)
        else:  # the present tasks' losses alone enter their period means
            self.running_sum.add_(torch.where(mask, losses, 0.0))
            self.absent_calls.add_(~mask)
            self._partial = True
        self._calls += 1
        if self._calls < self.period:
            return
        if self._partial:  # per task, over its calls; none: its history stays as it was
            counts = self.period - self.absent_calls
            seen = counts > 0
            self.before_previous.copy_(torch.where(seen, self.previous, self.before_previous))
            self.previous.copy_(torch.where(seen, self.running_sum / counts, self.previous))
            self.absent_calls.zero_()
            self._partial = False
        else:
            self.before_previous.copy_(self.previous)
            self.previous.copy_(self.running_sum / self.period)
        self.running_sum.zero_()
        self._calls = 0

    def weights(self) -> Tensor:
        return self.last_weights

    def reset(self) -> None:
        for buf in (self.previous, self.before_previous):
            buf.fill_(float("nan"))
        self.running_sum.zero_()
        self.absent_calls.zero_()
        self.last_weights = torch.ones_like(self.last_weights)  # (a step's weights: kept as read)
        self._calls = 0
        self._partial = False

    def get_extra_state(self) -> dict:
        return {"calls": self._calls, "partial": self._partial}

    def set_extra_state(self, state: dict) -> None:
        self._calls = int(state["calls"])
        self._partial = bool(state.get("partial", False))  # (not in checkpoints before it)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "absent_calls"
        if key not in state_dict:  # a checkpoint from before absent tasks: none was
            state_dict[key] = torch.zeros_like(self.absent_calls)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def _ratio(previous: float, before: float, big: float) -> float:
    """``previous / before``, or 1 where the torch path's ratio is not finite (a zero or NaN
    period mean; beyond ``big``, the buffers' largest finite value)."""
    if before == 0 or previous != previous or before != before:
        return 1.0
    r = previous / before
    return r if abs(r) <= big else 1.0
