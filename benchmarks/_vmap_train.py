"""Train ``R`` independent copies of one architecture at once (``torch.func`` + ``vmap``).

Small networks on a CPU spend most of a training step in Python, not in
arithmetic: training 200 repeats of a 13k-weight model one after the other is
200 times the overhead. Here the ``R`` copies (each with its own
initialisation, its own data set and its own minibatch order) are stacked with
:func:`torch.func.stack_module_state` and run by ``vmap`` over
:func:`torch.func.functional_call`, so one step is a handful of batched matrix
products for all copies.

One :class:`torch.optim.Adam` over the stacked parameters is exactly ``R``
independent Adams: Adam's update is elementwise, and the loss minimised is the
*sum* of the copies' losses, whose gradient with respect to copy ``r``'s slice
is copy ``r``'s own gradient (the copies share nothing). With ``R = 1`` and
the same seed, :func:`fit_selected` takes the same minibatches, losses and
steps as ``architectures_common.train_selected`` (tested to 1e-6).

Only architectures without a regulariser (``regularization() == 0``), without
dropout / batch-norm statistics and whose forward is a pure function of the
parameters (up to inspection attributes it writes, such as ``last_gates``)
can be stacked this way; :func:`stack` checks the regulariser.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

Data = tuple[Tensor, Mapping[str, Tensor]]  # X (R, n, ...), {task: y (R, n)}


class Stacked:
    """``R`` copies of one module as stacked leaf tensors, called on ``(R, batch, ...)`` inputs.

    Parameters
    ----------
    models : sequence of nn.Module
        ``R`` modules of one class and structure (tied parameters, such as one
        gate shared by two tasks, stay tied: they are stored once).
    """

    def __init__(self, models: Sequence[nn.Module]):
        models = list(models)
        for m in models:
            reg = m.regularization() if hasattr(m, "regularization") else 0.0
            if float(reg) != 0.0:
                raise ValueError(
                    f"{type(m).__name__} has a non-zero regularization(); the stacked trainer "
                    "minimises the task losses only: train it with architectures_common.train"
                )
        self.params, self.buffers = stack_module_state(models)
        self.base = copy.deepcopy(models[0]).to("meta")
        self.n_copies = len(models)

        def one(params, buffers, x):
            return functional_call(self.base, (params, buffers), (x,))

        self._forward = vmap(one)

    def __call__(self, x: Tensor) -> dict[str, Tensor]:
        return self._forward(self.params, self.buffers, x)

    def state(self) -> dict[str, Tensor]:
        """Detached copies of the stacked parameters (each of shape ``(R, ...)``)."""
        return {k: v.detach().clone() for k, v in self.params.items()}

    def load(self, state: Mapping[str, Tensor]) -> None:
        with torch.no_grad():
            for k, v in state.items():
                self.params[k].copy_(v)


def squared_errors(out: Mapping[str, Tensor], y: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``{task: mean squared error per copy}``, each of shape ``(R,)`` (outputs ``(R, b, 1)``)."""
    return {t: ((out[t].squeeze(-1) - y[t]) ** 2).mean(dim=1) for t in y}


@torch.no_grad()
def evaluate(model: Stacked, data: Data, rows: int = 2048) -> dict[str, Tensor]:
    """Per-copy MSE of each task on ``data`` (each copy on its own rows): ``{task: (R,)}``."""
    x, y = data
    total = {t: torch.zeros(model.n_copies, dtype=torch.float64) for t in y}
    for i in range(0, x.shape[1], rows):
        out = model(x[:, i : i + rows])
        for t in y:
            err = (out[t].squeeze(-1) - y[t][:, i : i + rows]).double() ** 2
            total[t] += err.sum(dim=1)
    return {t: v / x.shape[1] for t, v in total.items()}


def minibatches(n: int, batch_size: int, gens: Sequence[torch.Generator]):
    """Row indices ``(R, b)`` of each step: copy ``r`` walks its own ``randperm(n, gens[r])``,
    as ``architectures_common.batches`` does for one model."""
    order = torch.stack([torch.randperm(n, generator=g) for g in gens])
    for i in range(0, n, batch_size):
        yield order[:, i : i + batch_size]


def adam_epoch(model: Stacked, opt, train: Data, batch_size: int, gens) -> Tensor:
    """One epoch of Adam on the sum over copies of each copy's summed task MSE.

    Returns the per-step training loss, shape ``(steps, R)`` (summed task MSEs
    of each copy on its minibatch, before the step).
    """
    x, y = train
    rows = torch.arange(model.n_copies)[:, None]
    losses = []
    for idx in minibatches(x.shape[1], batch_size, gens):
        yb = {t: v.gather(1, idx) for t, v in y.items()}
        task_sum = sum(squared_errors(model(x[rows, idx]), yb).values())  # (R,)
        opt.zero_grad()
        task_sum.sum().backward()
        opt.step()
        losses.append(task_sum.detach())
    return torch.stack(losses)


def fit_selected(
    models: Sequence[nn.Module],
    train: Data,
    validation: Data,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seeds: Sequence[int],
    on_epoch: Callable[[int], None] | None = None,
) -> tuple[Stacked, dict]:
    """Adam on ``R`` copies at once, each keeping its epoch of lowest validation loss.

    Parameters
    ----------
    models : sequence of nn.Module
        The ``R`` initialised copies (copy ``r`` trains on slice ``r`` of the data).
    train, validation : (Tensor of shape (R, n, ...), dict of str to Tensor of shape (R, n))
    epochs, batch_size : int
    lr : float
        Adam's learning rate (defaults otherwise).
    seeds : sequence of int
        Copy ``r``'s minibatch order comes from ``torch.Generator().manual_seed(seeds[r])``.
    on_epoch : callable, optional
        Called with the epoch index after each epoch (a progress bar).

    Returns
    -------
    model : Stacked
        Holding each copy's validation-selected parameters.
    info : dict
        ``step_loss`` (steps, R), ``train_curve`` and ``val_curve`` (epochs, R) (mean
        summed training loss over the epoch's steps; summed validation MSE after the
        epoch), ``best_epoch`` (R,) counted from 1, ``sec_per_epoch``.
    """
    if len(seeds) != len(models):
        raise ValueError(f"got {len(models)} models but {len(seeds)} seeds; pass one seed each")
    model = Stacked(models)
    opt = torch.optim.Adam(list(model.params.values()), lr=lr)
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    best = torch.full((model.n_copies,), float("inf"), dtype=torch.float64)
    best_state, best_epoch = model.state(), torch.zeros(model.n_copies, dtype=torch.long)
    steps, train_curve, val_curve, times = [], [], [], []
    for epoch in range(epochs):
        start = time.perf_counter()
        step_loss = adam_epoch(model, opt, train, batch_size, gens)
        times.append(time.perf_counter() - start)
        val = sum(evaluate(model, validation).values())
        steps.append(step_loss)
        train_curve.append(step_loss.double().mean(dim=0))
        val_curve.append(val)
        better = val < best
        best = torch.where(better, val, best)
        best_epoch[better] = epoch + 1
        for k, v in model.params.items():
            best_state[k][better] = v.detach()[better]
        if on_epoch is not None:
            on_epoch(epoch)
    model.load(best_state)
    return model, {
        "step_loss": torch.cat(steps),
        "train_curve": torch.stack(train_curve),
        "val_curve": torch.stack(val_curve),
        "best_epoch": best_epoch,
        "sec_per_epoch": float(np.median(times)),
    }
