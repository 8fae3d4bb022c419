"""FAMO: fast adaptive multitask optimisation (Liu, Feng, Stone & Liu 2023)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from multitask._params import check_real
from multitask.nn.weighting._base import LossWeighting, check_losses, check_n_tasks, host_softmax

__all__ = ["FAMO"]


class FAMO(LossWeighting):
    """Balance the rates of decrease of the log losses at O(1) cost (Alg. 1).

    Logits ``xi`` (a buffer, init 0), weights ``z = softmax(xi)``. Step ``k``
    receives the losses ``l(k)`` and:

    1. if a previous step exists, updates the logits with the change of the
       log losses ``delta = log l(k-1) - log l(k)``::

           xi <- xi - beta * (grad_xi z(xi)^T delta + gamma * xi)

       where ``grad_xi z^T delta = z * (delta - z^T delta)`` (softmax's
       Jacobian; plain gradient step as in Alg. 1, not Adam);
    2. returns ``c * sum_t z_t log(l_t - b_t + eps)`` with ``c = 1 / sum_t
       z_t / (l_t - b_t + eps)`` and ``z``, ``c`` held constant, whose
       gradient ``sum_t c z_t / l_t grad l_t`` is FAMO's model update.

    Which losses: ``l(k-1)`` is the loss *returned at the previous call*, i.e.
    ``l(theta_{k-1})`` on batch ``k-1``, and ``l(k)`` is ``l(theta_k)`` on batch
    ``k``. Alg. 1 evaluates both at the same batch (one extra forward per
    step); using consecutive batches costs nothing extra, and on a fixed batch
    the two agree exactly (the logits then follow Alg. 1 step by step).

    Parameters
    ----------
    n_tasks : int
    lr : float, default=0.025
        ``beta``, the logits' step size.
    gamma : float, default=1e-3
        Decay of the logits.
    min_losses : float or Tensor of shape (n_tasks,), default=0.0
        Lower bounds ``b`` of the losses. A loss below ``b - eps`` has no logarithm: the
        objective is NaN (a negative loss, e.g. a Gaussian negative log-likelihood, needs
        ``b`` set below it). A loss of exactly ``b`` (0 by default: a task without labels in
        the batch) gives ``log(eps)``, finite.
    eps : float, default=1e-8
        Added to ``l_t - b_t`` inside the logarithm; finite and ``> 0`` (0 would make a loss
        at its floor ``log 0 = -inf`` and the step NaN).

    References
    ----------
    Liu, Feng, Stone & Liu, "FAMO: Fast Adaptive Multitask Optimization",
    NeurIPS 2023, Algorithm 1.

    Examples
    --------
    >>> import torch
    >>> from multitask.nn.weighting import FAMO
    >>> famo = FAMO(2, lr=0.5, gamma=0.0)
    >>> total = famo(torch.tensor([1.0, 1.0]))  # first step: no previous losses, no update
    >>> famo.weights()
    tensor([0.5000, 0.5000])

    The first task's loss halves, the second's stays: ``delta = (log 2, 0)``, the logits step
    by ``-0.5 z (delta - z^T delta) = (-0.0866, 0.0866)`` and the improving task gets less
    weight:

    >>> total = famo(torch.tensor([0.5, 1.0]))
    >>> famo.logits
    tensor([-0.0866,  0.0866])
    >>> famo.weights()
    tensor([0.4568, 0.5432])
    >>> round(total.item(), 4)  # c sum_t z_t log l_t, c = 1 / sum_t z_t / l_t
    -0.2173
    """

    absent_tasks_reason = (
        "the log of a zero loss would enter its estimate of each task's loss change"
    )
    # told which tasks are present (present_tasks), a step is FAMO on them alone: their
    # logits and last log losses, updated; the absent tasks' left as they are (their next
    # delta is the change since the step they were last trained at)
    drops_absent_rows = True

    loss_floor_reason = (
        "it takes the logarithm of L_t - min_losses_t; set min_losses below the smallest loss "
        "each task can take (a Gaussian negative log-likelihood can be negative)"
    )

    #: On the CPU, the (T,)-sized steps run in Python floats (:meth:`_host_forward`); False:
    #: in torch, as on a device (the tests compare the two).
    _host: bool = True

    def __init__(
        self,
        n_tasks: int,
        lr: float = 0.025,
        gamma: float = 1e-3,
        min_losses: float | Tensor = 0.0,
        eps: float = 1e-8,
    ) -> None:
        super().__init__()
        n_tasks = check_n_tasks(n_tasks, "FAMO")
        lr = check_real(lr, "lr", "FAMO", low=0.0, low_open=True)
        gamma = check_real(gamma, "gamma", "FAMO", low=0.0)
        # eps = 0 would make a loss at its floor b log 0 = -inf, and the step NaN
        eps = check_real(eps, "eps", "FAMO", low=0.0, low_open=True)
        self.n_tasks = n_tasks
        self.lr, self.gamma, self.eps = lr, gamma, eps
        self.register_buffer("logits", torch.zeros(n_tasks))
        self.register_buffer("previous_log", torch.full((n_tasks,), float("nan")))
        self.register_buffer("min_losses", torch.zeros(n_tasks) + _min_losses(min_losses, n_tasks))

    def _update_logits(self, log_now: Tensor, logits: Tensor, previous: Tensor) -> None:
        """``logits <- logits - lr * (grad z^T delta + gamma logits)``, in place."""
        delta = previous - log_now  # NaN at the first step
        z = torch.softmax(logits, dim=0)
        grad = z * (delta - (z * delta).sum()) + self.gamma * logits
        grad = torch.where(torch.isnan(grad), torch.zeros_like(grad), grad)
        logits.sub_(self.lr * grad)

    def forward(self, losses: Tensor) -> Tensor:
        """``losses`` of shape ``(n_tasks,)`` -> FAMO's scalarised loss, shape ``()``; inside
        :meth:`present_tasks`, FAMO's on the present tasks alone."""
        check_losses(losses, self.logits.shape[0], self)
        if self._on_host(losses, self.logits):
            return self._host_forward(losses)
        if self._present is None:
            return self._step(losses, self.logits, self.previous_log, self.min_losses)
        if not self._present:  # no task present: nothing to weight, no state to update
            return (losses * 0).sum()
        idx = self._present_index(self.logits)
        logits, previous = self.logits[idx], self.previous_log[idx]
        out = self._step(losses[idx.to(losses.device)], logits, previous, self.min_losses[idx])
        self.logits.index_copy_(0, idx, logits)
        self.previous_log.index_copy_(0, idx, previous)
        return out

    def _step(self, losses: Tensor, logits: Tensor, previous: Tensor, bounds: Tensor) -> Tensor:
        """Alg. 1's step on these tasks (the torch path): ``logits`` and ``previous`` (the
        last log losses) updated in place; returns the scalarised loss."""
        shifted = losses - bounds.to(losses.dtype) + self.eps
        log_now = torch.log(shifted.detach()).to(logits.dtype)
        self._update_logits(log_now, logits, previous)
        previous.copy_(log_now)
        z = torch.softmax(logits, dim=0).to(losses.dtype)
        c = 1.0 / (z / shifted.detach()).sum()
        return (c * z * torch.log(shifted)).sum()

    def _host_forward(self, losses: Tensor) -> Tensor:
        """:meth:`forward` on the CPU: the ``(T,)``-sized update in Python floats on the
        buffers' memory (a torch call on a ``(T,)`` tensor costs microseconds, more than its
        math: about 20 of them made FAMO's step 1.1x an equal-weighting step at T = 2), and
        one ``dot`` with ``log(l - b + eps)`` for autograd. The same steps as the torch path
        (compared in the tests), in float64 before the buffers' rounding."""
        present = self._present
        values = losses.detach().numpy().tolist()  # numpy's tolist: no torch scalar reads
        bounds = self.min_losses.numpy().tolist()
        logits = self.logits.numpy()  # the buffer's memory: updated in place
        previous = self.previous_log.numpy()
        rows = slice(None) if present is None else list(present)  # the tasks of the step
        if present is not None:
            if not present:  # no task present: nothing to weight, no state to update
                return (losses * 0).sum()
            values = [values[t] for t in present]
            bounds = [bounds[t] for t in present]
        # l - b + eps in this order, as the torch path: l - (b - eps) lost eps where b - eps
        # rounds to b (float32, b = -1), and a loss at its floor b had log 0 = -inf
        shifted = [v - b + self.eps for v, b in zip(values, bounds, strict=True)]
        log_now = [math.log(v) for v in shifted]
        xi = logits[rows].tolist()
        delta = [p - q for p, q in zip(previous[rows].tolist(), log_now, strict=True)]
        z = host_softmax(xi)
        inner = sum(a * d for a, d in zip(z, delta, strict=True))
        if not math.isnan(inner):  # NaN at the first step: no update (the torch path's where)
            steps = [a * (d - inner) + self.gamma * x for a, d, x in zip(z, delta, xi, strict=True)]
            # written back from Python floats (numpy's in-place ``-=`` of a list computes in
            # float64 and rounds to the buffer's dtype just the same, at several times the cost)
            logits[rows] = [x - self.lr * g for x, g in zip(xi, steps, strict=True)]
        previous[rows] = log_now
        z = host_softmax(logits[rows].tolist())
        c = 1.0 / sum(a / v for a, v in zip(z, shifted, strict=True))
        weights = torch.tensor([c * a for a in z], dtype=losses.dtype)
        if present is not None:  # the present tasks' losses alone enter the objective
            losses = losses[list(present)]
        if all(b == 0 for b in bounds):  # the default floor: l + eps, one operation
            return torch.dot(weights, torch.log(losses + self.eps))
        # one floor for every task: a Python scalar, which torch rounds to the losses' dtype as
        # it rounds the tensor of floors (no second tensor to make)
        same = all(b == bounds[0] for b in bounds)
        floors = bounds[0] if same else torch.tensor(bounds, dtype=losses.dtype)
        return torch.dot(weights, torch.log(losses - floors + self.eps))

    def loss_floor(self) -> Tensor:
        """``min_losses``: a loss below it has no logarithm in FAMO's objective."""
        return self.min_losses

    def weights(self) -> Tensor:
        """``softmax(xi)``, shape ``(n_tasks,)``."""
        return torch.softmax(self.logits, dim=0)

    def reset(self) -> None:
        self.logits.zero_()
        self.previous_log.fill_(float("nan"))


def _min_losses(value, n_tasks: int) -> Tensor:
    """FAMO's ``min_losses`` as a finite float tensor of shape ``()`` or ``(n_tasks,)``."""
    if isinstance(value, Tensor):
        bounds = value.detach()
    else:
        try:
            bounds = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError):
            bounds = None
    if bounds is None or bounds.dtype == torch.bool or bounds.dtype.is_complex:
        raise TypeError(f"FAMO: min_losses must be a real number or a Tensor, got {value!r}")
    if bounds.shape not in ((), (n_tasks,)):
        raise ValueError(
            f"FAMO: min_losses must be a number or have shape (n_tasks,) = ({n_tasks},), got "
            f"shape {tuple(bounds.shape)}"
        )
    if not bool(torch.isfinite(bounds).all()):
        raise ValueError(f"FAMO: min_losses must be finite, got {value!r}")
    return bounds
