"""``mtl_backward``: the only code that builds per-task gradients or writes ``.grad``.

The per-task Jacobian (one batched backward, or the two-stage path through a
model's representation with the by-hand trunk) lives in
:mod:`multitask.nn._jacobian`; this module routes a step to the no-balancer,
loss-weighting, gradient-aggregator or MGDA-UB path and writes ``.grad``.
Gradients are *added* into ``.grad`` so that gradient accumulation over
several calls works.
"""

from __future__ import annotations

import math
import warnings
import weakref
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral

import torch
from torch import Tensor, nn

from multitask._params import check_real
from multitask.nn._device import index_on, to_device_async
from multitask.nn._jacobian import (
    _add_grad,
    _batched_vjp,
    _cosines,
    _head_stage,
    _jacobian,
    _set_or_add_grad,
    _unique,
    check_no_reentrant_checkpoint,
    task_jacobian,
)
from multitask.nn._jacobian_fast import HeadRows
from multitask.nn._last_layer import last_layer_params, two_stage_weighting
from multitask.nn.aggregation import _graphs
from multitask.nn.aggregation._base import GradientAggregator
from multitask.nn.aggregation._present import PresentRows
from multitask.nn.weighting._base import LossWeighting

__all__ = ["StepInfo", "mtl_backward", "task_jacobian"]


@dataclass(frozen=True)
class StepInfo:
    """What one call of :func:`mtl_backward` did (all tensors detached).

    Attributes
    ----------
    loss : Tensor of shape ()
        The objective that was backpropagated: ``sum_t w_t L_t`` (no balancer),
        ``balancer(L)`` (loss weighting) or ``sum_t L_t`` (gradient
        aggregator), plus ``extra_loss``.
    losses : Tensor of shape (n_tasks,)
        The task losses, ordered as ``model.task_names``.
    weights : Tensor of shape (n_tasks,) or None
        Task weights of the step (None for a non-linear aggregator).
    cosines : Tensor of shape (n_tasks, n_tasks) or None
        Cosine similarities of the task gradients (``record_cosines=True`` only), on the
        Jacobian the step forms, which is not always all the shared parameters': the
        representation's with ``use_representation`` (MGDA-UB, GradDrop's default), the
        ``jacobian_params`` of a weighting that has them (GradNorm's default, the last
        shared layer), else every shared parameter. Cosines of steps on different
        placements are therefore not comparable; for the shared parameters' cosines under
        any balancer, take :func:`task_jacobian` of the losses on
        ``model.shared_parameters()``.

    Examples
    --------
    One shared weight row at zero, two tasks whose gradients are ``g_a = (-1, -2)`` and
    ``g_b = (1, 0)`` (MSE at a zero prediction: ``2 mean((0 - y) x)``):

    >>> import torch
    >>> from torch import nn
    >>> from multitask.nn import Task, mtl_backward, task_losses
    >>> from multitask.nn.aggregation import MGDA
    >>> from multitask.nn.architectures import HardSharing
    >>> trunk = nn.Linear(2, 1, bias=False)
    >>> _ = nn.init.zeros_(trunk.weight)
    >>> model = HardSharing(trunk, {"a": nn.Flatten(0), "b": nn.Flatten(0)})
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    >>> targets = {"a": torch.tensor([1.0, 1.0]), "b": torch.tensor([-1.0, 0.0])}
    >>> losses = task_losses([Task("a"), Task("b")], model(x), targets)
    >>> info = mtl_backward(losses, model, MGDA(), record_cosines=True)
    >>> info.losses  # ordered as model.task_names
    tensor([1.0000, 0.5000])
    >>> info.loss  # an aggregator's step reports sum_t L_t
    tensor(1.5000)
    >>> info.cosines  # g_a . g_b / (||g_a|| ||g_b||) = -1 / sqrt(5)
    tensor([[ 1.0000, -0.4472],
            [-0.4472,  1.0000]])
    >>> info.weights  # MGDA's min-norm point: gamma = (g_b - g_a) . g_b / ||g_a - g_b||^2
    tensor([0.2500, 0.7500])
    >>> trunk.weight.grad  # 0.25 g_a + 0.75 g_b
    tensor([[ 0.5000, -0.5000]])
    """

    loss: Tensor
    losses: Tensor
    weights: Tensor | None = None
    cosines: Tensor | None = None


def _loss_vector(losses: Mapping[str, Tensor], names: Sequence[str]) -> Tensor:
    if set(losses) != set(names):
        extra = sorted(set(losses) - set(names))
        missing = [n for n in names if n not in losses]
        raise KeyError(
            f"losses must have one entry per task of the model {list(names)}; "
            f"missing {missing}, unknown {extra}"
        )
    # a 0-d loss as it is: a reshape of a tensor in the graph adds a view node per task
    values = [losses[n] for n in names]
    try:
        return torch.stack([v if v.dim() == 0 else v.reshape(()) for v in values])
    except (AttributeError, RuntimeError):  # the reason, by task, only once it failed
        _check_scalars(values, names)
        raise


def _check_scalars(values: Sequence, names: Sequence[str]) -> None:
    """Raise a TypeError / ValueError naming the first task whose loss is not a scalar Tensor."""
    for name, v in zip(names, values, strict=True):
        if not isinstance(v, Tensor):
            raise TypeError(
                f"the loss of task {name!r} is a {type(v).__name__}; mtl_backward needs one "
                "scalar Tensor per task (still attached to the graph)"
            )
        if v.numel() != 1:
            raise ValueError(
                f"the loss of task {name!r} has shape {tuple(v.shape)}; mtl_backward needs one "
                "scalar per task: reduce it (e.g. loss.mean())"
            )


def _check_finite(vec: Tensor, extra: Tensor | None, names: Sequence[str]) -> None:
    """Raise a FloatingPointError naming every task whose loss is NaN or infinite."""
    x = vec.detach()
    if x.dtype == torch.bfloat16:  # numpy has no bfloat16
        x = x.float()
    values = x.cpu().numpy().tolist()  # numpy's tolist: one read, no per-element tensors
    bad = [(n, v) for n, v in zip(names, values, strict=True) if not math.isfinite(v)]
    if bad:
        what = (
            f"the loss of task {bad[0][0]!r} is {bad[0][1]}"
            if len(bad) == 1
            else "the losses of tasks " + ", ".join(f"{n!r} ({v})" for n, v in bad) + " are"
            " not finite"
        )
        raise FloatingPointError(
            f"{what}; mtl_backward wrote no gradient and left the balancer's state as it was. "
            "Check the inputs and targets of the step, or lower the learning rate"
        )
    if extra is not None:
        e = extra.detach()
        value = float((e.float() if e.dtype == torch.bfloat16 else e).cpu().numpy())
        if not math.isfinite(value):
            raise FloatingPointError(
                f"extra_loss is {value}; mtl_backward wrote no gradient. Check the "
                "architecture's regularization() and the parameters it reads"
            )


def _task_params(model: nn.Module, names: Sequence[str], shared) -> list[nn.Parameter]:
    """Every task's own parameters, once: :func:`_own_lists` joined."""
    return _unique(p for own in _own_lists(model, names, shared) for p in own)


def _own_lists(model: nn.Module, names: Sequence[str], shared) -> list[list[nn.Parameter]]:
    """``task_parameters(t)`` of each task, less the ``shared`` parameters.

    A parameter that ``model`` lists as shared and as a task's own (a block tied across
    depths) can change several tasks' outputs, so it is shared: it gets the balanced shared
    update alone, not that plus its task's gradient (both treatments wrote it twice). The
    library's architectures never list a parameter twice (checked at construction); a model
    of one's own gets this rule, at the cost of one set of ids per step.
    """
    ids = {id(p) for p in shared}
    return [[p for p in _unique(model.task_parameters(t)) if id(p) not in ids] for t in names]


def _as_tensor(value, like: Tensor) -> Tensor | None:
    if value is None or (not isinstance(value, Tensor) and value == 0):
        return None
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"extra_loss has shape {tuple(value.shape)}; it must be a scalar: reduce it "
                "(e.g. .sum())"
            )
        return value
    return torch.full((), float(value), dtype=like.dtype, device=like.device)  # no copy


def _static_weights(task_weights, vec: Tensor, names: Sequence[str], read_device: bool) -> Tensor:
    """``task_weights`` as a tensor of ``vec``'s device and dtype, ordered as ``names``.

    One weight per task, finite and >= 0, else an error naming the task (a NaN weight made
    every ``.grad`` NaN; a negative one trains that task by gradient ascent). The values are
    read where that costs no host synchronisation: a mapping's (Python numbers), a CPU
    tensor's, a list's; a tensor on an accelerator only when ``read_device``.
    """
    if isinstance(task_weights, Mapping):
        missing = [n for n in names if n not in task_weights]
        if missing:
            raise KeyError(f"task_weights has no weight for the tasks {missing}; give one per task")
        unknown = sorted(set(task_weights) - set(names), key=str)
        if unknown:  # as losses' unknown names are: a misspelt task is not silently weighed 1
            raise KeyError(
                f"task_weights names unknown tasks {unknown}; the tasks are {list(names)}"
            )
        values = [_weight(task_weights[n], n) for n in names]
        return to_device_async(torch.tensor(values), vec)
    w = task_weights if isinstance(task_weights, Tensor) else torch.as_tensor(task_weights)
    if w.shape != vec.shape:  # a (T, 1) column would broadcast into a (T, T) sum
        raise ValueError(
            f"task_weights has shape {tuple(w.shape)}; it needs one weight per task, shape "
            f"({vec.shape[0]},), ordered as model.task_names"
        )
    if w.is_cpu or read_device:
        for n, value in zip(names, w.detach().cpu().tolist(), strict=True):
            _weight(value, n)
    return w.to(vec.dtype) if w.device == vec.device else to_device_async(w, vec)


def _weight(value, name: str) -> float:
    return check_real(value, f"task_weights[{name!r}]", "mtl_backward", low=0.0)


def _plain(vec, extra, task_weights, names, read_device) -> tuple[Tensor, Tensor]:
    w = (
        torch.ones_like(vec)
        if task_weights is None
        else _static_weights(task_weights, vec, names, read_device)
    )
    total = (w * vec).sum()
    if extra is not None:
        total = total + extra
    total.backward()
    return total, w


def _weighting(losses, vec, extra, balancer: LossWeighting, model, names, chunk_size, record):
    """Loss-weighting path: one ordinary backward of ``balancer(L)``."""
    needs = balancer.needs_jacobian
    # a weighting of the losses alone (no Jacobian, no cosines) never reads the shared list
    shared = _unique(model.shared_parameters()) if needs or record else []
    jac = cos = aux = direction = None
    read_off = False
    jparams = getattr(balancer, "jacobian_params", None) if needs else None
    if isinstance(jparams, str):  # "last" / "auto": the layer producing model.representation
        jparams = last_layer_params(model, strict=jparams == "last", shared=shared)
    if needs:  # through the representation, heads once (GradNorm's last layer: by hand)
        params = shared if jparams is None else _unique(jparams)
        args = (losses, vec, extra, balancer, model, names, shared, params, record, chunk_size)
        fast = two_stage_weighting(*args)
        if fast is not None:
            return fast
    if needs or record:
        jparams = shared if jparams is None else _unique(jparams)
        jac, _ = _jacobian(losses, names, vec, model, jparams, chunk_size, shared=shared)
        cos = _cosines(jac) if record else None
    if needs:
        aux = balancer.observe(vec.detach(), jac)
        direction = balancer.shared_gradient(vec.detach(), jac)
        # a vector made at each call (DB-MTL's) may become .grad as views, as one made here
        read_off = direction is not None and getattr(balancer, "_shared_gradient_is_new", False)
    total = balancer(vec)
    if needs and direction is None and jparams is shared and total.requires_grad:
        # J covers every shared parameter: their gradient sum_t (d total / d L_t) J_t is read
        # off J, so the ordinary backward below skips the trunk (GradNorm)
        coeffs = torch.autograd.grad(
            total, vec, retain_graph=True, allow_unused=True, materialize_grads=True
        )[0]
        direction = coeffs.to(jac.dtype) @ jac  # (losses may be float64 on a float32 model)
        read_off = True  # a new tensor: .grad may be views of it
    if extra is not None:
        total = total + extra
    objective = total if aux is None else total + aux
    if direction is None:
        objective.backward()
    else:
        # the shared update is set (DB-MTL) or known from J: the ordinary
        # backward only feeds task-specific and the weighting's own parameters
        others = _task_params(model, names, shared) + _unique(balancer.parameters())
        if extra is not None:
            direction, read_off = direction + _flat_grad(extra, shared), True
        if others:
            torch.autograd.backward(objective, inputs=others)
        # a balancer's own vector is copied unless it says it makes it anew (DB-MTL does)
        (_set_or_add_grad if read_off else _add_grad)(shared, direction)
    return total, _detached(balancer.weights()), cos


def _zero_absent(w: Tensor, present: Sequence[int]) -> Tensor:
    """``w`` with 0 for every task not in ``present`` (a new tensor)."""
    idx = index_on(present, w)
    return torch.zeros_like(w).index_copy_(0, idx, w.index_select(0, idx))


def _detached(w: Tensor | None) -> Tensor | None:
    """``w`` detached; a tensor outside the graph as it is (``detach`` costs a new tensor)."""
    return w.detach() if w is not None and w.requires_grad else w


def _flat_grad(value: Tensor, params: Sequence[nn.Parameter]) -> Tensor:
    if not value.requires_grad:  # a constant extra loss has no gradient
        return torch.cat([p.new_zeros(p.numel()) for p in params])
    grads = torch.autograd.grad(
        value, params, retain_graph=True, allow_unused=True, materialize_grads=True
    )
    return torch.cat([g.reshape(-1) for g in grads])


def _aggregate(
    losses,
    vec,
    extra,
    agg: GradientAggregator,
    model,
    names,
    chunk_size,
    record,
    use_rep,
    representation=None,
):
    """Gradient-aggregator path: one batched backward for the shared Jacobian."""
    shared = _unique(model.shared_parameters())
    heads = _own_lists(model, names, shared)
    if not shared:  # nothing shared (or a frozen trunk): every parameter gets its own task's
        total = _total(vec, extra)  # gradient, on either placement
        total.backward()
        return total, torch.ones_like(vec), None
    if use_rep:
        own = _unique(p for h in heads for p in h)
        total = _total(vec, extra)
        reps = _representations(model, representation)
        out = _aggregate_representation(
            losses,
            names,
            vec,
            extra,
            agg,
            model,
            shared,
            own,
            total,
            chunk_size,
            record,
            heads,
            reps,
        )
        unreached = [p for p in shared if p.grad is None]
        if unreached:  # unused, or inside a reentrant checkpoint (backward(inputs=...) skips it)
            check_no_reentrant_checkpoint(vec, unreached)
        return out
    jac, heads_done = _jacobian(
        losses, names, vec, model, shared, chunk_size, heads=heads, shared=shared
    )
    if agg.linear:
        w = _weights(agg, jac, vec)
        direction = w @ jac  # a new tensor: .grad may be views of it
    else:
        w, direction = None, _direction(agg, jac, vec)
    if extra is not None:
        direction = direction + _flat_grad(extra, shared)
    if agg.linear or extra is not None or agg._output_is_new:
        _set_or_add_grad(shared, direction)
    else:  # the aggregator's own tensor: copied
        _add_grad(shared, direction)
    cos = _cosines(jac) if record else None
    if heads_done and (extra is None or not extra.requires_grad):
        # the heads' task gradients are in: the objective is only reported
        return _total(vec.detach(), None if extra is None else extra.detach()), w, cos
    total = _total(vec, extra)
    own = _unique(p for h in heads for p in h)
    if own:  # with heads_done, the heads' task gradients are in already: only extra's
        torch.autograd.backward(extra if heads_done else total, inputs=own)
    return total, w, cos


def _total(vec: Tensor, extra: Tensor | None) -> Tensor:
    """``sum_t L_t`` (plus ``extra``): the objective of an aggregator step."""
    return vec.sum() if extra is None else vec.sum() + extra


def _representations(model: nn.Module, representation) -> list[Tensor] | None:
    """The step's representation tensors: ``representation`` (one tensor or several) when
    given, else ``model.representation``; None when there is none."""
    rep = getattr(model, "representation", None) if representation is None else representation
    if isinstance(rep, Tensor):
        return [rep]
    if isinstance(rep, Sequence) and rep and all(isinstance(r, Tensor) for r in rep):
        return list(rep)
    if representation is not None:
        raise TypeError(
            "representation must be a Tensor or a non-empty sequence of Tensors, got "
            f"{type(representation).__name__}"
        )
    return None


def _aggregate_representation(
    losses, names, vec, extra, agg, model, shared, own, total, chunk_size, record, heads, reps
):
    """MGDA-UB (Sener & Koltun 2018, Sec. 3.3): weights from the representation Jacobian.

    With ``shared_through_representation`` the representation Jacobian comes from
    the head stage (:func:`_head_stage`, which also fills the heads' ``.grad``),
    kept factored for Linear heads (:class:`HeadRows`: Gramian from the factors),
    and the shared parameters get one backward of ``sum_t w_t dL_t/d rep`` from
    the representation down; not from ``T`` one-hot rows pushed through every head.
    """
    if reps is None:
        raise ValueError(
            f"use_representation=True needs model.representation set during forward; "
            f"{type(model).__name__} has none: use use_representation=False"
        )
    rep, rows = reps[0], None
    if len(reps) == 1 and getattr(model, "shared_through_representation", False):
        rows = _head_stage(losses, names, rep, heads, dense=False, stacked=vec, shared=shared)
    if not agg.linear:  # GradDrop where its paper puts it: on an activation layer
        if rows is None:  # no head stage (or several forwards): a batched backward to them
            return _nonlinear_representations(
                agg, vec, reps, shared, own, total, chunk_size, record
            )
        return _nonlinear_representation(agg, rows, vec, extra, rep, shared, own, total, record)
    if rows is None:  # no two-stage path (or several forwards): one pass to the representations
        jac = _representation_jacobian(vec, reps, chunk_size)
        w = _weights(agg, jac, vec).detach()
        weighted = (w * vec).sum()
        if extra is not None:
            weighted = weighted + extra
        if shared:
            torch.autograd.backward(weighted, inputs=shared, retain_graph=bool(own))
        if own:
            torch.autograd.backward(total, inputs=own)
        return total, w, _cosines(jac) if record else None
    w, cos, combine = _representation_weights(agg, rows, vec, record)
    has_extra = extra is not None and extra.requires_grad
    if shared:  # the trunk only: one backward of the combined cotangent sum_t w_t rows_t
        torch.autograd.backward(rep, combine(w), inputs=shared, retain_graph=has_extra)
    if has_extra and (shared or own):
        torch.autograd.backward(extra, inputs=shared + own)
    return total, w, cos


class _RepresentationUnreached(ValueError):
    """No task loss reaches ``model.representation``. Raised before any ``.grad`` is written
    or any balancer state changes: with the default placement, ``mtl_backward`` then takes
    the shared parameters' Jacobian instead."""


def _representation_jacobian(vec: Tensor, rep: Tensor | list[Tensor], chunk_size) -> Tensor:
    """``d L_t / d rep`` for every task, ``(T, rep.numel())``; a clear error when no loss reaches
    ``rep`` (a forward after the one that made the losses replaced ``model.representation``:
    the rows would all be zero, and the weights meaningless)."""
    eye = torch.eye(vec.shape[0], dtype=vec.dtype, device=vec.device)
    jac = _batched_vjp(vec, rep if isinstance(rep, list) else [rep], eye, chunk_size, used=True)
    if jac is None:  # (a model compiled whole by an AOT backend also returns rep beside the
        # losses' graph: the message names that cause too)
        raise _RepresentationUnreached(
            "use_representation=True: no task loss reaches model.representation; a forward "
            "after the one that computed these losses replaced it, or the model is compiled "
            "as one graph (torch.compile with an AOT backend), which returns the "
            "representation beside the losses' graph, not inside it. Call mtl_backward right "
            "after the forward of its losses, compile the trunk alone, or use "
            "use_representation=False"
        )
    return jac


def _nonlinear_representation(agg, rows, vec, extra, rep, shared, own, total, record):
    """A non-linear aggregator (GradDrop) on the per-task gradients of the representation,
    from the head stage's ``rows`` (every task reaches the shared parameters through the
    representation; the heads' gradients are in already).

    The aggregator combines the rows ``dL_t / d rep`` into the cotangent that the
    representation passes down, as a layer would (its ``combine_representation`` given the rows
    of shape ``(T, *rep.shape)`` and the activations, else its ``forward`` on the rows flattened
    so that every scalar activation is one coordinate): this is where Chen et al. (NeurIPS 2020,
    Sec. 3) place GradDrop, on the activations, "usually the final layer before the prediction
    heads". The shared parameters get one backward of that cotangent. Without the head stage,
    :func:`_nonlinear_representations`.
    """
    dense = rows.dense() if isinstance(rows, HeadRows) else rows
    jac = dense.reshape(dense.shape[0], -1)
    cotangent = _combined(agg, dense, jac, rep.detach(), vec).to(rep.dtype)
    has_extra = extra is not None and extra.requires_grad
    if shared:  # the trunk only: one backward of the aggregated cotangent
        torch.autograd.backward(rep, cotangent, inputs=shared, retain_graph=has_extra)
    if has_extra and (shared or own):
        torch.autograd.backward(extra, inputs=shared + own)
    return total, None, _cosines(jac) if record else None


def _combined(agg, dense: Tensor, jac: Tensor, acts: Tensor, vec: Tensor) -> Tensor:
    """The cotangent a non-linear aggregator makes of the rows ``dense`` ``(T, *acts.shape)``
    (``jac``: them flattened): its ``combine_representation`` (GradDrop: per unit, batch
    summed), else its ``forward`` on the flattened rows."""
    combine = getattr(agg, "combine_representation", None)
    if combine is not None:
        return combine(dense, acts)
    return _direction(agg, jac, vec).reshape(acts.shape)


def _nonlinear_representations(agg, vec, reps, shared, own, total, chunk_size, record):
    """A non-linear aggregator (GradDrop) on the representation(s) without the head stage: the
    rows come from one batched backward to them, and one ordinary backward of the summed
    losses runs with the tasks' part of each representation's gradient swapped for the
    combined one (a hook): the heads get their own gradients, and shared parameters that also
    reach a loss around the representation get that part unchanged.

    Several representations (one forward per drawn task's batch): the rows and activations
    are concatenated along the batch dimension, so that each unit's signs are summed over
    every batch of the step, as on one batch holding all of them, and the combined cotangent
    is split back, one hook on each.
    """
    trailing = {tuple(r.shape[1:]) for r in reps}
    if len(reps) > 1 and (len(trailing) > 1 or any(r.dim() == 0 for r in reps)):
        raise ValueError(
            f"{type(agg).__name__} on several representations needs them alike but for their "
            f"first (batch) dimension; got shapes {[tuple(r.shape) for r in reps]}: use "
            "use_representation=False"
        )
    jac = _representation_jacobian(vec, reps, chunk_size)
    T, sizes = jac.shape[0], [r.numel() for r in reps]
    if len(reps) == 1:
        dense, acts = jac.reshape(T, *reps[0].shape), reps[0].detach()
    else:
        parts = jac.split(sizes, dim=1)
        dense = torch.cat([j.reshape(T, *r.shape) for j, r in zip(parts, reps, strict=True)], 1)
        acts = torch.cat([r.detach() for r in reps], dim=0)
    cotangent = _combined(agg, dense, dense.reshape(T, -1), acts, vec).to(reps[0].dtype)
    swap = cotangent - dense.sum(0).to(cotangent.dtype)
    swaps = swap.split([r.shape[0] for r in reps]) if len(reps) > 1 else [swap]
    handles = [r.register_hook(lambda g, s=s: g + s) for r, s in zip(reps, swaps, strict=True)]
    try:
        if shared or own:  # extra (if any) is inside total: its own gradient, unmasked
            torch.autograd.backward(total, inputs=shared + own)
    finally:
        for h in handles:
            h.remove()
    return total, None, _cosines(jac) if record else None


def _representation_weights(agg, rows, vec, record):
    """Weights, cosines and ``w -> sum_t w_t rows_t`` from the per-task representation gradients.

    With factored rows (:class:`HeadRows`) and an aggregator that needs only the Gramian, the
    Gramian comes from the factors and the rows are never formed.
    """
    if isinstance(rows, HeadRows) and agg.uses_gramian:
        G = rows.gramian()
        if getattr(agg, "needs_losses", False):
            w = _graphs.gramian_weights(agg, G, losses=vec.detach())
        else:
            w = _graphs.gramian_weights(agg, G)
        w = w.to(G.dtype).detach()
        return w, _gram_cosines(G) if record else None, rows.combine
    dense = rows.dense() if isinstance(rows, HeadRows) else rows
    jac = dense.reshape(dense.shape[0], -1)
    w = _weights(agg, jac, vec).detach()
    cos = _cosines(jac) if record else None
    return w, cos, lambda v: torch.tensordot(v.to(dense.dtype), dense, dims=1)


def _gram_cosines(G: Tensor) -> Tensor:
    norms = G.diagonal().clamp_min(0).sqrt().clamp_min(1e-12)
    return G / (norms[:, None] * norms[None, :])


def _direction(agg: GradientAggregator, jac: Tensor, vec: Tensor) -> Tensor:
    """``agg(J)``, with the task losses for an aggregator that needs them."""
    if getattr(agg, "needs_losses", False):
        return agg(jac, losses=vec.detach())
    return agg(jac)


def _weights(agg: GradientAggregator, jac: Tensor, vec: Tensor) -> Tensor:
    """``agg.weights(J)``, with the task losses for an aggregator that needs them."""
    if getattr(agg, "needs_losses", False):
        return agg.weights(jac, losses=vec.detach())
    return agg.weights(jac)


def _present_rows(balancer, absent: Collection[str], names: list[str]):
    """``(balancer, present)``: for absent tasks and a balancer with ``drops_absent_rows``, an
    aggregator on the present rows (:class:`~multitask.nn.aggregation._present.PresentRows`)
    or a loss weighting with the indices ``present`` of the present tasks (for its
    :meth:`~multitask.nn.weighting.LossWeighting.present_tasks`); else ``(balancer, None)``."""
    if isinstance(absent, str):
        raise TypeError(f"absent_tasks must be a collection of task names, not {absent!r}")
    if not absent:
        return balancer, None
    absent = set(absent)
    unknown = sorted(absent - set(names))
    if unknown:
        raise ValueError(f"absent_tasks names unknown tasks {unknown}; the tasks are {names}")
    if not getattr(balancer, "drops_absent_rows", False):
        return balancer, None
    present = [i for i, t in enumerate(names) if t not in absent]
    if isinstance(balancer, LossWeighting):
        return balancer, present
    return PresentRows(balancer, present), None


_WARNED_PLACEMENT: weakref.WeakSet = weakref.WeakSet()  # aggregators told of the fallback
#: models whose representation no task loss reached under the default placement (a model
#: compiled whole by an AOT backend): their later steps go to the parameters at once
_UNREACHED_REPRESENTATION: weakref.WeakSet = weakref.WeakSet()


def _preferred_placement(balancer, model: nn.Module, representation=None) -> bool:
    """``use_representation=None``: the aggregator's ``prefers_representation`` where the
    model exposes a representation in the graph; else the parameters (warned once)."""
    if not getattr(balancer, "prefers_representation", False):
        return False
    if model in _UNREACHED_REPRESENTATION:  # (warned when found)
        return False
    reps = _representations(model, representation)
    if reps and len({tuple(r.shape[1:]) for r in reps}) > 1 and not balancer.linear:
        # GradDrop concatenates several forwards' representations along the batch: unlike
        # ones (sequences of other lengths) take the parameters, as a model without one does
        if balancer not in _WARNED_PLACEMENT:
            _WARNED_PLACEMENT.add(balancer)
            warnings.warn(
                f"{type(balancer).__name__} is defined on an activation layer, but this "
                "step's forwards gave representations of different shapes "
                f"{[tuple(r.shape) for r in reps]}; it is applied to the shared parameters' "
                "Jacobian instead. Pass use_representation=False to choose that explicitly.",
                stacklevel=3,
            )
        return False
    if reps and all(r.requires_grad for r in reps):
        return True
    if balancer not in _WARNED_PLACEMENT:
        _WARNED_PLACEMENT.add(balancer)
        warnings.warn(
            f"{type(balancer).__name__} is defined on an activation layer, but "
            f"{type(model).__name__} exposes no representation tensor with a graph "
            "(model.representation, set during forward); it is applied to the shared "
            "parameters' Jacobian instead. Pass use_representation=False to choose that "
            "explicitly.",
            stacklevel=3,
        )
    return False


def _representation_was_unreached(balancer, model: nn.Module) -> None:
    """The default placement found no task loss reaching the representation (raised before
    anything was written): warn, and take the parameters for this model from now on."""
    _UNREACHED_REPRESENTATION.add(model)
    warnings.warn(
        f"{type(balancer).__name__} is defined on an activation layer, but no task loss "
        f"reaches {type(model).__name__}'s representation (a model compiled whole by an "
        "AOT backend returns it beside the losses' graph; compile the trunk alone to keep "
        "it in); it is applied to the shared parameters' Jacobian instead. Pass "
        "use_representation=False to choose that explicitly.",
        stacklevel=3,
    )


def mtl_backward(
    losses: Mapping[str, Tensor],
    model: nn.Module,
    balancer: LossWeighting | GradientAggregator | None = None,
    *,
    extra_loss: Tensor | float | None = None,
    use_representation: bool | None = None,
    chunk_size: int | None = None,
    record_cosines: bool = False,
    task_weights: Mapping[str, float] | Tensor | None = None,
    absent_tasks: Collection[str] = (),
    check_finite: bool | None = None,
    representation: Tensor | Sequence[Tensor] | None = None,
) -> StepInfo:
    """Backpropagate the task losses of one step into ``.grad`` (adding to it).

    Parameters
    ----------
    losses : dict of str -> Tensor of shape ()
        One loss per task of ``model.task_names`` (ordered as those).
    model : MultiTaskModule
        Gives ``task_names``, ``shared_parameters()``, ``task_parameters(task)``
        and, for ``use_representation``, ``representation``.
    balancer : LossWeighting, GradientAggregator or None
        - None: one backward of ``sum_t w_t L_t`` with ``w = task_weights``
          (ones by default).
        - LossWeighting: one backward of ``balancer(L)``. When
          ``balancer.needs_jacobian``, the Jacobian of ``L`` w.r.t. the shared
          parameters (or ``balancer.jacobian_params``) is computed first and
          handed to ``balancer.observe(L, J)``, whose optional scalar result
          (a loss on the weighting's own parameters, GradNorm) is
          backpropagated with it; if ``balancer.shared_gradient(L, J)`` returns
          a vector, that vector is the shared parameters' update (DB-MTL).
        - GradientAggregator: the Jacobian ``J`` of shape ``(T, n_shared)`` from
          one batched backward; ``aggregator(J)`` is added into the shared
          ``.grad``; each task's own parameters get the gradient of ``sum_t L_t``
          (their task's gradient where only their task's loss reaches them; the sum's
          for CrossStitch's and Sluice's columns, as those papers train them).
          A parameter that ``model`` lists as shared and as a task's own (a block
          tied across depths) is shared: it gets the aggregated update alone.
    extra_loss : Tensor or float, optional
        Backpropagated ordinarily into every parameter (the architecture's
        ``regularization()``).
    use_representation : bool or None, default=None
        True: aggregate the per-task gradients with respect to
        ``model.representation`` (small) instead of the shared parameters, then
        run one backward of the result into the shared parameters: for a linear
        aggregator the weights of ``sum_t w_t L_t`` (MGDA-UB, Sener & Koltun
        2018, Sec. 3.3); for a non-linear one (GradDrop) the cotangent it
        combines (GradDrop as Chen et al. 2020 define it, a layer on the last
        shared activations). False: the shared parameters' Jacobian. None: the
        aggregator's own placement (``prefers_representation``: GradDrop's is the
        representation, every other one's the parameters); a model without a
        ``representation`` tensor then falls back to the parameters, with a
        warning once per aggregator.
    chunk_size : int, optional
        Tasks per batched backward (memory versus speed; same result).
    record_cosines : bool, default=False
        Also return the gradient cosine matrix (costs a Jacobian on the
        no-balancer and plain weighting paths).
    task_weights : dict or Tensor of shape (n_tasks,), optional
        Static weights of the no-balancer path (e.g. ``Task.weight``); with a balancer they
        are ignored, with a warning (the balancer decides the weights). A dict has one weight
        per task and no other name (a KeyError, as for ``losses``). Each weight must be
        finite and >= 0 (a ValueError naming the task); a tensor on an accelerator is read
        for that check only with ``check_finite=True`` (the read would synchronise the host
        every step).
    absent_tasks : collection of str, default=()
        Tasks with no data at this step (a task sampler did not draw them, or none of their
        entries in the batch is labelled), whose losses are zero. An aggregator with
        ``drops_absent_rows`` (MGDA, CAGrad, GradVac: on a zero row MGDA would move nothing
        shared) then runs on the other tasks' rows alone (GradVac on their pairs' targets) and
        gives these weight zero; a loss weighting with ``drops_absent_rows`` (uncertainty,
        IMTL-L, DWA, FAMO, GradNorm, DB-MTL) runs its step on the present tasks alone (their
        terms and their state: :meth:`~multitask.nn.weighting.LossWeighting.present_tasks`),
        and the weights reported for the absent tasks are 0; every other balancer takes the
        zero losses as they are (those with ``handles_absent_tasks`` are unchanged by them).
        The :class:`~multitask.training.Trainer` passes them.
    check_finite : bool or None, default=None
        Raise a FloatingPointError naming the task when a task loss (or ``extra_loss``) is
        NaN or infinite, before anything is backpropagated or any balancer state changes.
        None: check when the losses are on the CPU (a read of ``T`` floats, about 3 us), not
        on an accelerator, where the read would synchronise the host with the device every
        step (the :class:`~multitask.training.Trainer` checks on every device: it reads the
        losses anyway). True: check on every device (and read ``task_weights`` there);
        False: never.
    representation : Tensor or sequence of Tensor, optional
        The representation(s) of these losses, for the representation placement (default:
        ``model.representation``, which the last forward set). Several tensors when the
        losses come from several forwards (a task sampler's one batch per drawn task, as
        the :class:`~multitask.training.Trainer` passes them): the representation
        Jacobian's columns then run over all of them (each task's row is zero on the other
        batches' representations), and GradDrop runs on them concatenated along their first
        (batch) dimension, its signs summed over every batch of the step.

    Returns
    -------
    info : StepInfo
        No host synchronisation happens in the step (no ``.item()``).

    References
    ----------
    Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization",
    NeurIPS 2018, Sec. 3.3 (MGDA-UB: balancing on the shared representation).

    Examples
    --------
    One step of a hard-sharing model with two regression tasks, without a balancer:

    >>> import torch
    >>> from torch import nn
    >>> from multitask.nn import Task, mtl_backward, task_jacobian, task_losses
    >>> from multitask.nn.aggregation import UPGrad
    >>> from multitask.nn.architectures import HardSharing
    >>> _ = torch.manual_seed(0)
    >>> model = HardSharing(nn.Linear(3, 4), {"a": nn.Linear(4, 1), "b": nn.Linear(4, 1)})
    >>> tasks = [Task("a"), Task("b")]
    >>> x, targets = torch.randn(8, 3), {"a": torch.randn(8, 1), "b": torch.randn(8, 1)}
    >>> info = mtl_backward(task_losses(tasks, model(x), targets), model)
    >>> torch.allclose(info.loss, info.losses.sum())  # the plain sum of the losses
    True
    >>> all(p.grad is not None for p in model.parameters())
    True

    With a gradient aggregator, the trunk's ``.grad`` is ``weights @ J``, ``J`` the
    Jacobian of the task losses with respect to the shared parameters:

    >>> model.zero_grad()
    >>> losses = task_losses(tasks, model(x), targets)
    >>> shared = list(model.shared_parameters())
    >>> J = task_jacobian(torch.stack([losses["a"], losses["b"]]), shared)
    >>> info = mtl_backward(losses, model, UPGrad())
    >>> info.weights.shape
    torch.Size([2])
    >>> torch.allclose(torch.cat([p.grad.reshape(-1) for p in shared]), info.weights @ J)
    True
    """
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, Integral) or chunk_size < 1
    ):  # (0 and negative values acted as 1)
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    if task_weights is not None and balancer is not None:
        warnings.warn(
            f"task_weights is ignored with a balancer ({type(balancer).__name__} decides the "
            "task weights); drop it, or weight the losses before the balancer sees them",
            UserWarning,
            stacklevel=2,
        )
    preferred = use_representation is None and balancer is not None
    if preferred:
        use_representation = _preferred_placement(balancer, model, representation)
    if use_representation and not isinstance(balancer, GradientAggregator):
        raise ValueError(
            "use_representation=True needs a GradientAggregator balancer (MGDA-UB), "
            f"got {type(balancer).__name__}; drop the flag"
        )
    names = list(model.task_names)
    given = balancer  # (named in a warning: _present_rows may wrap it)
    balancer, present = _present_rows(balancer, absent_tasks, names)
    vec = _loss_vector(losses, names)
    extra = _as_tensor(extra_loss, vec)
    if check_finite or (check_finite is None and vec.is_cpu):
        _check_finite(vec, extra, names)
    cos = None
    if balancer is None:
        if record_cosines:
            shared = _unique(model.shared_parameters())
            cos = _cosines(_jacobian(losses, names, vec, model, shared, chunk_size)[0])
        total, w = _plain(vec, extra, task_weights, names, bool(check_finite))
    elif isinstance(balancer, LossWeighting):
        args = (losses, vec, extra, balancer, model, names, chunk_size, record_cosines)
        if present is None:
            total, w, cos = _weighting(*args)
        else:  # the weighting's step on the present tasks alone; the others weigh 0
            with balancer.present_tasks(present):
                total, w, cos = _weighting(*args)
            w = None if w is None else _zero_absent(w, present)
    elif isinstance(balancer, GradientAggregator):
        args = (losses, vec, extra, balancer, model, names, chunk_size, record_cosines)
        try:
            total, w, cos = _aggregate(*args, use_representation, representation)
        except _RepresentationUnreached:
            if not (preferred and use_representation):
                raise
            _representation_was_unreached(given, model)
            total, w, cos = _aggregate(*args, False)
    else:
        raise TypeError(
            "balancer must be None, a LossWeighting or a GradientAggregator, "
            f"got {type(balancer).__name__}"
        )
    return StepInfo(loss=_detached(total), losses=vec.detach(), weights=_detached(w), cosines=cos)
