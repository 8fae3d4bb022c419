"""The per-task Jacobian for :func:`multitask.nn.mtl_backward` (split from ``backward.py``).

Per-task gradients come from ONE batched vector-Jacobian product: the loss
vector ``L`` of shape ``(T,)`` is differentiated against the stacked one-hot
cotangents ``eye(T)`` with ``torch.autograd.grad(..., is_grads_batched=True)``
(vmap over the backward pass), and the results are flattened once into a
``(T, n_params)`` buffer. A model that declares
``shared_through_representation`` gets the same Jacobian in two stages: the
per-task gradients of its representation (the head stage), then those
cotangents through the shared trunk, by hand for a chain of Linear layers and
elementwise activations (:mod:`multitask.nn._trunk_chain`), otherwise by ONE
batched backward.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from multitask.nn._jacobian_fast import (
    GraphBypass,
    HeadRows,
    _consumers,
    check_no_bypass,
    head_cotangents,
)
from multitask.nn._trunk_chain import trunk_jacobian

__all__ = ["task_jacobian"]


def _unique(params) -> list[nn.Parameter]:
    seen, out = set(), []
    for p in params:
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def _batched_vjp(
    outputs: Tensor, inputs, cotangents: Tensor, chunk_size, retain=True, *, used: bool = False
) -> Tensor | None:
    """Rows ``cotangents[t]^T d outputs / d inputs``, flattened: shape ``(T, n_inputs)``.

    One vmapped backward per chunk of rows (``is_grads_batched=True``), copied
    once into a preallocated buffer. An input that ``outputs`` does not reach gives zeros, or,
    with ``used``, None (e.g. a representation from a later forward than the losses').
    """
    n_rows = cotangents.shape[0]
    sizes = [x.numel() for x in inputs]
    ref = inputs[0] if inputs else outputs
    if not outputs.requires_grad or not inputs:
        return torch.zeros((n_rows, sum(sizes)), dtype=ref.dtype, device=ref.device)
    jac = torch.empty((n_rows, sum(sizes)), dtype=ref.dtype, device=ref.device)
    step = n_rows if chunk_size is None else max(1, int(chunk_size))
    for start in range(0, n_rows, step):
        rows = slice(start, min(start + step, n_rows))
        keep = retain or rows.stop < n_rows
        try:
            grads = torch.autograd.grad(
                outputs,
                inputs,
                grad_outputs=cotangents[rows],
                retain_graph=keep,
                allow_unused=True,
                is_grads_batched=True,
            )
        except (RuntimeError, NotImplementedError) as e:
            if not keep:  # the failed call may have freed the graph: no second try
                raise
            grads = _rows_one_by_one(outputs, inputs, cotangents[rows], e)
        if any(g is None for g in grads):
            if used:
                return None
            # an input out of reach: truly unused (zero columns), or hidden inside a reentrant
            # checkpoint, which autograd.grad does not enter (zero columns would be wrong)
            unreached = [x for x, g in zip(inputs, grads, strict=True) if g is None]
            check_no_reentrant_checkpoint(outputs, unreached)
        k = rows.stop - rows.start
        pieces = [
            g.reshape(k, size).to(jac.dtype) if g is not None else jac.new_zeros((k, size))
            for g, size in zip(grads, sizes, strict=True)
        ]
        torch.cat(pieces, dim=1, out=jac[rows])  # the one copy into the (T, n) buffer
    return jac


_WARNED_UNBATCHED: list[bool] = []


def _rows_one_by_one(outputs: Tensor, inputs, cotangents: Tensor, error: Exception) -> tuple:
    """What ``autograd.grad(..., is_grads_batched=True)`` gives, one backward per row: for a
    graph whose backward vmap cannot run (a ``torch.compile``'d one, under inductor or over
    an in-place op: "Cannot access storage of BatchedTensorImpl", "vmap: aten::copy_"). The
    graph is retained. A genuine error of the backward raises again here, unbatched."""
    per_row = [
        torch.autograd.grad(outputs, inputs, grad_outputs=c, retain_graph=True, allow_unused=True)
        for c in cotangents
    ]
    if not _WARNED_UNBATCHED:
        _WARNED_UNBATCHED.append(True)
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        warnings.warn(
            f"the batched backward of the per-task Jacobian failed on this graph ({first}), "
            "as it does through a torch.compile'd backward: each task's row is computed by "
            "its own backward instead (the same numbers, one backward per task); leave the "
            "shared layers uncompiled for the batched one",
            UserWarning,
            stacklevel=4,
        )
    return tuple(
        None if g is None else torch.stack([row[i] for row in per_row])
        for i, g in enumerate(per_row[0])
    )


#: the backward node of ``torch.utils.checkpoint.checkpoint(..., use_reentrant=True)``
_REENTRANT_CHECKPOINT = "CheckpointFunctionBackward"

#: sets of unreached inputs (their ids) whose graph held no reentrant checkpoint: not walked again
_CLEAN_UNREACHED: set[frozenset[int]] = set()


def check_no_reentrant_checkpoint(root: Tensor, unreached: Sequence[Tensor] = ()) -> None:
    """Raise a ValueError when ``root``'s graph holds a reentrant activation checkpoint.

    Its node runs the checkpointed block's backward as a separate ``.backward()`` inside the
    outer one, so the parameters inside it are not in the outer graph: ``torch.autograd.grad``
    (and ``backward(inputs=...)``) finds no path to them and gives them nothing, which the
    per-task Jacobian would read as zero gradients. Called only once an input was found out of
    reach (``unreached``), it walks the whole graph (about 2 us a node on this CPU: 9 ms for 4,000
    nodes) once per set of unreached inputs: a shared layer that some steps do not use (a task
    not drawn by the sampler, a branch of a hierarchical model) costs one walk, not one a step.
    """
    key = frozenset(id(x) for x in unreached)
    if root.grad_fn is None or (key and key in _CLEAN_UNREACHED):
        return
    stack, seen = [root.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if type(node).__name__ == _REENTRANT_CHECKPOINT:
            raise ValueError(
                "the graph holds torch.utils.checkpoint.checkpoint(..., use_reentrant=True), "
                "whose parameters torch.autograd.grad cannot reach: mtl_backward would give "
                "them no per-task gradient. Use use_reentrant=False (the form PyTorch "
                "recommends), or a step without per-task gradients (no balancer, or a loss "
                "weighting without needs_jacobian: one ordinary backward)"
            )
        stack.extend(f for f, _ in node.next_functions)
    if key:
        if len(_CLEAN_UNREACHED) >= 256:  # (bounded: ids of collected tensors are reused)
            _CLEAN_UNREACHED.clear()
        _CLEAN_UNREACHED.add(key)


def task_jacobian(
    losses: Tensor,
    inputs: Sequence[Tensor],
    *,
    chunk_size: int | None = None,
    retain_graph: bool = True,
) -> Tensor:
    """Jacobian of the loss vector with respect to ``inputs``, flattened.

    Parameters
    ----------
    losses : Tensor of shape (n_tasks,)
    inputs : sequence of Tensor
        Parameters or intermediate tensors of the graph.
    chunk_size : int, optional
        Number of tasks differentiated per batched backward (None: all at
        once). Smaller chunks use less memory; the result is the same.
    retain_graph : bool, default=True
        Keep the graph for a later backward.

    Returns
    -------
    jacobian : Tensor of shape (n_tasks, n_inputs)
        Row ``t`` is the gradient of ``losses[t]``, the inputs flattened and
        concatenated in order; zeros where a loss does not depend on an input.

    Examples
    --------
    >>> import torch
    >>> from multitask.nn import task_jacobian
    >>> x = torch.tensor([1.0, 2.0], requires_grad=True)
    >>> losses = torch.stack([(x**2).sum(), 3 * x[0]])  # gradients (2 x0, 2 x1) and (3, 0)
    >>> task_jacobian(losses, [x])
    tensor([[2., 4.],
            [3., 0.]])
    """
    if not isinstance(losses, Tensor) or losses.dim() != 1:
        shape = tuple(losses.shape) if isinstance(losses, Tensor) else type(losses).__name__
        raise ValueError(
            f"losses must be a Tensor of shape (n_tasks,), one loss per task, got {shape}: "
            "stack the task losses (torch.stack([loss_a, loss_b])), or reshape(1) a single one"
        )
    eye = torch.eye(losses.shape[0], dtype=losses.dtype, device=losses.device)
    return _batched_vjp(losses, list(inputs), eye, chunk_size, retain_graph)


def _through_representation(model, params: Sequence[nn.Parameter], shared) -> Tensor | None:
    """The representation, when the Jacobian of ``params`` may be taken in two stages."""
    rep = getattr(model, "representation", None)
    if not getattr(model, "shared_through_representation", False) or not isinstance(rep, Tensor):
        return None
    same = params is shared or (
        len(params) == len(shared) and all(p is q for p, q in zip(params, shared, strict=True))
    )
    return rep if same and rep.requires_grad else None


def _jacobian(
    losses, names, vec, model, params, chunk_size, heads=None, shared=None
) -> tuple[Tensor, bool]:
    """Jacobian ``(T, n)`` of the task losses w.r.t. ``params`` (shared parameters).

    When the model declares ``shared_through_representation`` (every path from
    the shared parameters to the losses goes through ``model.representation``)
    and ``params`` are its shared parameters, two stages: the per-task gradients
    of the representation (:func:`_head_stage`; ``heads``: each task's own
    parameters, whose gradients are then added into ``.grad``), then those
    ``(T, *representation.shape)`` cotangents through the shared trunk, by hand
    for a chain of Linear layers and elementwise activations
    (:func:`trunk_jacobian`), otherwise by ONE batched backward. This avoids
    pushing ``T`` one-hot rows through every head (as torchjd does). Otherwise
    (or when no loss depends on the stored representation, i.e. it is stale):
    one batched backward of ``eye(T)`` through the whole graph.

    Returns the Jacobian and whether the heads' gradients were added.
    """
    shared = _unique(model.shared_parameters()) if shared is None else shared
    rep = _through_representation(model, params, shared)
    if rep is None:
        return task_jacobian(vec, params, chunk_size=chunk_size), False
    rows = _head_stage(losses, names, rep, heads, dense=False, stacked=vec, shared=shared)
    if rows is None:  # a representation from another forward pass, or a loss around it
        return task_jacobian(vec, params, chunk_size=chunk_size), False
    jac = trunk_jacobian(rep, rows, params)  # by hand for a Linear/activation chain
    if jac is None:
        dense = rows.dense() if isinstance(rows, HeadRows) else rows
        jac = _batched_vjp(rep, params, dense, chunk_size)
    return jac, heads is not None


def _head_stage(losses, names, rep: Tensor, heads, dense: bool = True, stacked=None, shared=None):
    """Per-task gradients of the representation, ``(T, *rep.shape)`` (or :class:`HeadRows`).

    When every head starts with a Linear layer on ``rep`` and the task graphs
    meet only at ``rep``: one backward of ``sum_t L_t`` stopped at those layers'
    outputs, then batched products (:func:`head_cotangents`; with
    ``dense=False`` the rows stay factored, :class:`HeadRows`). Otherwise one
    small backward per task, through its own head.
    The heads' gradients (``heads[t]``: task ``t``'s parameters, when given)
    are added into ``.grad`` on the way. ``stacked``: the losses as one vector in the graph
    (ordered as ``names``), the one root of that backward. None when no loss depends on ``rep``
    (a stale representation) or when a loss reaches one of the ``shared`` parameters other than
    through ``rep`` (weight decay on the trunk inside a task loss: two stages would miss it), in
    which case nothing is written.
    """
    live = [losses[n] if losses[n].requires_grad else None for n in names]
    try:
        fast = head_cotangents(live, rep, heads, stacked, shared)
        if fast is None and shared:  # the per-task path below: check the graphs here
            shared_ids = {id(p) for p in shared}
            for loss in live:
                if loss is not None and loss.grad_fn is not None:
                    check_no_bypass(_consumers(loss, rep)[3], shared_ids)
    except GraphBypass:
        return None
    if fast is not None:
        rows, head_grads = fast
        for p, g in head_grads:  # new tensors of this step, of the parameter's shape: no copy
            _give_grad(p, g)
        return rows.dense() if dense else rows
    rows, head_grads = [], []
    for i, name in enumerate(names):
        loss = losses[name]
        own = heads[i] if heads is not None else []
        if not loss.requires_grad:
            rows.append(None)
            continue
        grads = torch.autograd.grad(loss, [*own, rep], retain_graph=True, allow_unused=True)
        head_grads += [(p, g) for p, g in zip(own, grads[:-1], strict=True) if g is not None]
        rows.append(grads[-1])
    if all(r is None for r in rows):
        return None
    for p, g in head_grads:
        _add_grad([p], g.reshape(-1))
    return torch.stack([torch.zeros_like(rep) if r is None else r for r in rows])


def _set_or_add_grad(params: Sequence[nn.Parameter], flat: Tensor) -> None:
    """Add ``flat`` into the ``.grad`` of ``params``; an empty ``.grad`` becomes a view of it.

    Only for a ``flat`` made in this step and used nowhere else (no copy of it is made);
    detached, so that ``zero_grad(set_to_none=False)`` can reset the views.
    """
    flat, offset = (flat.detach() if flat.requires_grad else flat), 0
    if flat.dim() != 1 or flat.stride(0) != 1:  # (not met by w @ J nor an aggregator's output)
        flat = flat.contiguous()
    base = flat.storage_offset()
    for p in params:
        n = p.numel()
        if p.is_contiguous():  # one view op (not slice + view): the parameter's own strides
            _give_grad(p, flat.as_strided(p.shape, p.stride(), base + offset))
        else:
            _give_grad(p, flat[offset : offset + n].view_as(p))
        offset += n


def _give_grad(p: Tensor, g: Tensor) -> None:
    """``g`` (made in this step, of ``p``'s shape, used nowhere else) becomes ``p.grad``, or is
    added into the ``.grad`` already there."""
    if p.grad is None:
        p.grad = g
    else:
        p.grad.add_(g)


def _add_grad(params: Sequence[nn.Parameter], flat: Tensor) -> None:
    """Add the flat vector ``flat`` into the ``.grad`` of ``params`` (in order)."""
    offset = 0
    for p in params:
        piece = flat[offset : offset + p.numel()].view_as(p)
        offset += p.numel()
        if p.grad is None:
            p.grad = piece.clone()
        else:
            p.grad.add_(piece)


def _cosines(jac: Tensor) -> Tensor:
    unit = jac / jac.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return unit @ unit.T
