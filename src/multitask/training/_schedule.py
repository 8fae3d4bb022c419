"""Learning-rate schedules and gradient clipping of the :class:`~multitask.training.Trainer`.

A schedule is a name (:data:`SCHEDULES`: a multiplier of every group's own learning rate,
stepped once per optimizer step, with an optional linear warmup) or a callable
``optimizer -> scheduler`` of :mod:`torch.optim.lr_scheduler`, stepped per optimizer step or
per epoch; :class:`~torch.optim.lr_scheduler.ReduceLROnPlateau` is stepped after each
evaluation with the model-selection score.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, ReduceLROnPlateau

__all__ = [
    "INTERVALS",
    "SCHEDULES",
    "build_scheduler",
    "check_checkpointable",
    "check_clip",
    "check_schedule",
    "clip_gradients",
    "schedule_factor",
]

#: the named schedules: the multiplier after the warmup, ``p`` the fraction of those steps done
SCHEDULES = ("constant", "linear", "cosine")
#: when a callable's scheduler is stepped
INTERVALS = ("step", "epoch")


def schedule_factor(kind: str, warmup: int, total: int) -> Callable[[int], float]:
    """The multiplier of the learning rate at optimizer step ``k`` (0-based).

    Warmup, ``k < warmup``: ``(k + 1) / warmup`` (linear, the last warmup step at the full
    rate, no step at zero). Then, with ``p = (k - warmup) / (total - warmup)`` (capped at 1):
    ``"constant"`` 1; ``"linear"`` ``1 - p``; ``"cosine"`` ``(1 + cos(pi p)) / 2`` (Loshchilov
    & Hutter, ICLR 2017, eq. 5 with ``eta_min = 0`` and no restart). ``total`` is the number of
    optimizer steps of the run, so the last step (``k = total - 1``) still has a positive rate.
    """
    if kind not in SCHEDULES:
        raise ValueError(f"scheduler={kind!r}: use one of {SCHEDULES} or a callable")
    span = max(total - warmup, 1)

    def factor(k: int) -> float:
        if k < warmup:
            return (k + 1) / warmup
        if kind == "constant":
            return 1.0
        p = min((k - warmup) / span, 1.0)
        return 1.0 - p if kind == "linear" else 0.5 * (1.0 + math.cos(math.pi * p))

    return factor


def check_schedule(scheduler, interval: str, warmup_steps: int) -> None:
    """The Trainer's schedule settings, checked at construction (``warmup_steps``: a count
    the Trainer has checked already)."""
    if scheduler is not None and not isinstance(scheduler, str) and not callable(scheduler):
        raise TypeError(
            f"scheduler must be None, one of {SCHEDULES} or a callable optimizer -> scheduler; "
            f"got {type(scheduler).__name__}"
        )
    if isinstance(scheduler, str) and scheduler not in SCHEDULES:
        raise ValueError(f"scheduler={scheduler!r}: use one of {SCHEDULES} or a callable")
    if interval not in INTERVALS:
        raise ValueError(f"scheduler_interval={interval!r}: use one of {INTERVALS}")
    if warmup_steps and callable(scheduler):
        raise ValueError(
            "warmup_steps applies to the named schedules; put the warmup in your own scheduler "
            "(e.g. torch.optim.lr_scheduler.SequentialLR with a LinearLR first)"
        )
    if interval != "step" and not callable(scheduler):
        raise ValueError(
            "scheduler_interval applies to a callable scheduler; the named schedules step "
            "once per optimizer step"
        )


def check_clip(clip_grad_norm) -> None:
    """``clip_grad_norm``: None or a positive number (``math.inf``: record the norm only)."""
    if clip_grad_norm is None:
        return
    if isinstance(clip_grad_norm, bool) or not isinstance(clip_grad_norm, (int, float)):
        raise TypeError(f"clip_grad_norm must be a number, got {type(clip_grad_norm).__name__}")
    if not clip_grad_norm > 0:  # (NaN fails it)
        raise ValueError(
            f"clip_grad_norm must be positive (math.inf: record the norm without clipping), "
            f"got {clip_grad_norm}"
        )


def build_scheduler(
    scheduler,
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_steps: int,
    has_val: bool,
):
    """The scheduler of a fit (None without one); a clear error for one that cannot run.

    ``scheduler=None`` with ``warmup_steps`` is the warmup alone (``"constant"`` after it).
    """
    if scheduler is None and not warmup_steps:
        return None
    if scheduler is None or isinstance(scheduler, str):
        factor = schedule_factor(scheduler or "constant", warmup_steps, total_steps)
        return LambdaLR(optimizer, factor)  # (a closure: not in its state_dict, rebuilt here)
    built = scheduler(optimizer)
    if not isinstance(built, (LRScheduler, ReduceLROnPlateau)):
        raise TypeError(
            "scheduler(optimizer) must return a torch.optim.lr_scheduler scheduler, got "
            f"{type(built).__name__}"
        )
    if getattr(built, "optimizer", optimizer) is not optimizer:
        raise ValueError(
            "scheduler(optimizer) returned a scheduler of another optimizer: build it on the "
            "optimizer it is given"
        )
    if isinstance(built, ReduceLROnPlateau):
        if not has_val:
            raise ValueError(
                "ReduceLROnPlateau is stepped with the validation score after each evaluation: "
                "pass val to fit"
            )
        if built.mode != "max":
            raise ValueError(
                "ReduceLROnPlateau is stepped with the model-selection score, where higher is "
                "better (the monitor's metric, or delta_m): build it with mode='max'"
            )
    return built


def check_checkpointable(scheduler) -> None:
    """Before the first step, with a checkpoint_dir: the scheduler's state must load with
    ``torch.load(weights_only=True)``, as the checkpoint is read (numbers, strings, lists and
    dicts; torch's own schedulers all pass). Else a run would train, then fail to resume."""
    if scheduler is None:
        return
    buffer = io.BytesIO()
    torch.save(scheduler.state_dict(), buffer)
    buffer.seek(0)
    try:
        torch.load(buffer, weights_only=True)
    except Exception as e:  # (torch's UnpicklingError, or what a custom object raises)
        raise ValueError(
            f"the state_dict of {type(scheduler).__name__} holds objects a checkpoint cannot "
            "load (it is read with torch.load(weights_only=True)): keep only numbers, strings, "
            "lists and dicts in it (a LambdaLR's lambda: a plain function, not an object with "
            "attributes)"
        ) from e


def clip_gradients(params: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale the gradients of ``params`` so that their joint L2 norm is at most ``max_norm``
    (as :func:`torch.nn.utils.clip_grad_norm_`: ``g * min(1, max_norm / (||g|| + 1e-6))``, on
    the device, no host sync); ``max_norm = inf`` leaves them as they are. Returns that norm,
    before clipping (a 0-d tensor). A non-finite norm leaves the gradients non-finite; the
    trainer's parameter check then stops the run before a checkpoint keeps them."""
    params = [p for p in params if p.grad is not None]
    norm = torch.nn.utils.get_total_norm([p.grad for p in params])
    if math.isfinite(max_norm):
        torch.nn.utils.clip_grads_with_norm_(params, max_norm, norm)  # (scales p.grad)
    return norm
