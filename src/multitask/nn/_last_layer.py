"""A loss weighting's step through a model's representation (GradNorm's, on the last layer).

Chen et al. (ICML 2018, Sec. 3) take GradNorm's gradient norms on "the last shared layer of
weights ... to save on compute". With a model whose trunk reaches the losses only through
``model.representation`` (``shared_through_representation``), whose trunk ends in an
``nn.Linear`` (then elementwise activations) and whose heads start with a Linear, the step costs
one ordinary step plus ``T`` products of the last layer's size:

1. the head stage (:func:`multitask.nn._jacobian_fast.head_cotangents`): the per-task
   gradients of the representation ``rows_t``, factored, and the heads' gradients;
2. the last layer's per-task gradients from them: the activation derivative, then one batched
   GEMM with the layer's saved input (``J_t = C_t^T A``);
3. with ``c = d total / d L`` (GradNorm: its detached task weights): the heads' gradients scaled
   by ``c_t``, the last layer's gradient ``c @ J`` read off ``J``, and the rest of the trunk
   from ONE backward of the combined cotangent ``sum_t c_t rows_t`` carried through the last
   layer by hand.

For ``W`` = all the shared parameters, step 2 is the whole trunk by hand
(:func:`multitask.nn._trunk_chain.trunk_jacobian`) and the trunk's gradient is ``c @ J``, read off
(no trunk backward); for another layer (a convolution, a normalisation layer) or a trunk not done
by hand, ``J`` comes from one batched backward of the rows from the representation (autograd
runs only the part of the trunk above ``W``) and the trunk's gradient from one backward of
``sum_t c_t rows_t``. Either way the heads run once, not ``T`` times, and their gradients come
from the head stage (step 3), not from a second backward.

:func:`two_stage_weighting` returns None (nothing written) whenever the structure is not
recognised; :func:`multitask.nn.mtl_backward` then takes its general path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.autograd.graph import GradientEdge

from multitask.nn._jacobian import (
    _add_grad,
    _batched_vjp,
    _cosines,
    _give_grad,
    _set_or_add_grad,
    _unique,
)
from multitask.nn._jacobian_fast import (
    GraphBypass,
    _leaf,
    _linear,
    distinct_grads,
    head_cotangents,
)
from multitask.nn._trunk_chain import (
    _ACTIVATIONS,
    _SAVED,
    _apply_act,
    _scratch,
    _single_input,
    trunk_jacobian,
)
from multitask.nn.weighting._base import LossWeighting

__all__ = ["last_layer_params", "two_stage_weighting"]

_SLOT = 2  # scratch slot of the (T, batch, width) cotangents (the trunk chain uses 0 and 1)
#: nodes that only reshape a parameter on its way into a layer (``nn.Linear``'s transpose)
_PARAM_VIEWS = ("TBackward0", "TransposeBackward0", "ViewBackward0", "PermuteBackward0")


@dataclass(frozen=True)
class _Top:
    """The trunk's top: ``rep = acts(A @ weight.T + bias)``.

    ``acts``: ``(node, saved)`` pairs, output first, as in ``_trunk_chain._plan`` (node None:
    a constant factor, dropout's scaled mask); ``edge``: where the layer's input ``A`` enters
    the graph (None when ``A`` needs no gradient).
    """

    acts: list
    weight: Tensor
    bias: Tensor | None
    A: Tensor
    edge: GradientEdge | None


def _top(rep: Tensor) -> _Top | None:
    """The activations and the Linear layer that produce ``rep`` (2-D), or None."""
    acts, node = [], rep.grad_fn
    while node is not None:
        name = type(node).__name__
        if name in ("AddmmBackward0", "MmBackward0"):
            found = _linear(node, name)
            if found is None:
                return None
            weight, bias, A, _ = found
            fn, k = node.next_functions[1 if name == "AddmmBackward0" else 0]
            edge = None if fn is None else GradientEdge(fn, k)
            return _Top(acts, weight, bias, A, edge)
        if name in _ACTIVATIONS:
            acts.append((node, getattr(node, _SAVED[name])))
            nxt = _single_input(node)
        elif name == "MulBackward0":  # a constant factor: dropout's scaled mask
            (f0, _), (f1, _) = node.next_functions
            if (f0 is None) == (f1 is None):
                return None
            acts.append((None, node._saved_other if f1 is None else node._saved_self))
            nxt = f0 if f1 is None else f1
        else:
            return None
        if nxt is None or nxt is False or _leaf(nxt) is not None:
            return None
        node = nxt
    return None


def _fits(top: _Top, rep: Tensor, params: Sequence[Tensor]) -> bool:
    """``params`` are the layer's weight and/or bias, once each, and every shape chains."""
    mine = [p for p in (top.weight, top.bias) if p is not None]
    ids = [id(p) for p in params]
    if not ids or len(set(ids)) != len(ids) or not set(ids) <= {id(p) for p in mine}:
        return False
    batch, width = rep.shape
    if top.weight.shape[0] != width or top.A.shape != (batch, top.weight.shape[1]):
        return False
    dtypes = {rep.dtype, top.A.dtype, *(p.dtype for p in mine)}
    for _, saved in top.acts:
        if saved is None or saved.dtype not in (rep.dtype, torch.bool):
            return False
        if saved.dim() > 0 and saved.shape != (batch, width):
            return False
    return len(dtypes) == 1


def _reused(top: _Top) -> bool:
    """Whether the layer's weight or bias is used again below it (a tied layer): its gradient
    then has parts that the hand-carried step does not see."""
    if top.edge is None:
        return False
    mine = {id(p) for p in (top.weight, top.bias) if p is not None}
    stack, seen = [top.edge.node], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        leaf = _leaf(node)
        if leaf is not None and id(leaf) in mine:
            return True
        stack.extend(f for f, _ in node.next_functions)
    return False


def _owners(heads: Sequence[Sequence[Tensor]], shared) -> dict[int, int] | None:
    """Parameter id -> its task; None when a parameter is in two tasks or also shared."""
    owner, shared_ids = {}, {id(p) for p in shared}
    for t, own in enumerate(heads):
        for p in own:
            if id(p) in shared_ids or owner.setdefault(id(p), t) != t:
                return None
    return owner


def two_stage_weighting(
    losses, vec, extra, balancer: LossWeighting, model, names, shared, params, record, chunk_size
):
    """:func:`multitask.nn.mtl_backward`'s weighting step, ``J`` taken through the representation.

    ``params`` the trunk's last Linear (under elementwise activations): ``J`` and the trunk's
    gradient by hand, as the module docstring says; ``params`` all the shared parameters: ``J``
    by hand through the whole chain (else one batched backward from the representation) and the
    trunk's gradient read off ``J``; any other subset of the shared parameters (a convolution
    or a normalisation layer last): ``J`` from ONE batched backward of the head stage's rows
    from the representation and the trunk's gradient from one backward of
    ``sum_t c_t rows_t``.

    Parameters
    ----------
    losses : dict of str -> Tensor of shape ()
    vec : Tensor of shape (n_tasks,)
        The same losses, stacked in the order of ``names``.
    extra : Tensor of shape () or None
        Backpropagated ordinarily into every parameter.
    balancer : LossWeighting
        With ``needs_jacobian``. One with a :meth:`~LossWeighting.shared_gradient` of its own
        (DB-MTL) takes this path when ``params`` is ``shared``: its vector is then the
        trunk's update, and the heads get ``d balancer(L) / d L_t`` times their task's
        gradient, as on the generic path.
    model, names, shared
        The model, its task names and its shared parameters (unique, in order).
    params : list of Parameter
        ``balancer.jacobian_params`` (a subset of ``shared``; GradNorm: the last shared layer)
        or ``shared`` itself.
    record : bool
        Also return the cosines of the rows of ``J``.
    chunk_size : int or None
        Tasks per batched backward (the path through autograd only).

    Returns
    -------
    (total, weights, cosines) or None
        As :func:`multitask.nn.backward._weighting`; None, with nothing computed or written,
        when the model or the balancer is not of the recognised form.

    References
    ----------
    Chen, Badrinarayanan, Lee & Rabinovich, "GradNorm: Gradient Normalization for Adaptive Loss
    Balancing in Deep Multitask Networks", ICML 2018, Sec. 3 (``W``: the last shared layer) and
    Algorithm 1.
    """
    rep = getattr(model, "representation", None)
    own_update = type(balancer).shared_gradient is not LossWeighting.shared_gradient
    if (
        (own_update and params is not shared)  # its vector is for the shared parameters
        or not getattr(model, "shared_through_representation", False)
        or not isinstance(rep, Tensor)
        or rep.grad_fn is None
        or rep.dim() != 2
    ):
        return None
    heads = [_unique(model.task_parameters(t)) for t in names]
    owner = _owners(heads, shared)
    if owner is None or not {id(p) for p in params} <= {id(p) for p in shared}:
        return None
    everything = params is shared
    top = None if everything else _top(rep)
    top = top if top is not None and _fits(top, rep, params) and not _reused(top) else None
    live = [losses[n] if losses[n].requires_grad else None for n in names]
    terms = _term_scale(balancer, vec, top)  # DB-MTL: its gradients are those of log(L_t + eps)
    # a weighting that sets the shared update from its terms' gradients (DB-MTL) gets the head
    # stage seeded with c = d forward / d L: rows and head gradients come out as those of
    # sum_t c_t L_t, and nothing is scaled afterwards
    seeded = terms is not None and own_update
    try:  # one root: the stacked losses
        fast = head_cotangents(live, rep, heads, vec, shared, seed=terms[0] if seeded else None)
    except GraphBypass:  # a loss reaches the trunk around the representation
        return None
    if fast is None:
        return None
    rows, head_grads = fast
    rows_j = rows if terms is None or seeded else rows.scaled(terms[0])
    if top is not None:
        jac = _jacobian(top, rows_j, params)
    else:  # the trunk by hand; else T rows from the representation down to ``params`` only
        jac = trunk_jacobian(rep, rows_j, params)
        jac = _batched_vjp(rep, params, rows_j.dense(), chunk_size) if jac is None else jac
    cos = _cosines(jac) if record else None  # (c > 0: DB-MTL's losses are >= 0)
    if terms is None:
        aux = balancer.observe(vec.detach(), jac)
    else:
        aux = balancer._observe_term_gradients(vec.detach(), jac)
    direction = balancer.shared_gradient(vec.detach(), jac) if own_update else None
    # coeffs: d total / d L_t (the closed form found above holds when observe gave no aux)
    known = terms if aux is None else None
    total, coeffs = _total_and_coefficients(balancer, aux, vec, known)
    _write_heads(head_grads, owner, None if seeded else coeffs)
    if direction is not None:  # the balancer's own shared update (DB-MTL)
        # a vector shared_gradient makes at each call becomes .grad as views (else copied)
        is_new = getattr(balancer, "_shared_gradient_is_new", False)
        (_set_or_add_grad if is_new else _add_grad)(shared, direction)
    elif top is not None:
        _write_trunk(top, rows, coeffs, jac, params, shared, retain=extra is not None)
    elif everything:  # read off J (a new tensor: .grad may be views of it)
        _set_or_add_grad(shared, coeffs.to(jac.dtype) @ jac)
    else:
        retain = extra is not None
        torch.autograd.backward(rep, rows.combine(coeffs), inputs=shared, retain_graph=retain)
    if extra is not None:
        total = total + extra
        if extra.requires_grad:
            others = _unique([*shared, *(p for own in heads for p in own), *balancer.parameters()])
            torch.autograd.backward(extra, inputs=others)
    weights = balancer.weights()
    return total, None if weights is None else weights.detach(), cos


def _jacobian(top: _Top, rows, params: Sequence[Tensor]) -> Tensor:
    """``(T, n_params)``: per task, the gradient of the layer's ``params`` (in that order)."""
    with torch.no_grad():
        cot = rows.dense(out=_scratch(_SLOT, tuple(rows.shape), rows.delta))  # (T, B, width)
        for node, saved in top.acts:
            cot = _apply_act(cot, node, saved, cot)
        n_tasks = cot.shape[0]
        jac = cot.new_empty((n_tasks, sum(p.numel() for p in params)))
        start = 0
        for p in params:
            block = jac[:, start : start + p.numel()]
            if p is top.weight:  # per task (out, B) @ (B, in), each into its contiguous block
                # (one bmm into the strided blocks measured 1.5-2x slower at T = 5, 10)
                blocks = block.view(n_tasks, *p.shape)
                for t in range(n_tasks):
                    torch.mm(cot[t].T, top.A, out=blocks[t])
            else:
                torch.sum(cot, dim=1, out=block)
            start += p.numel()
    return jac


def _write_heads(head_grads, owner: dict[int, int], coeffs: Tensor | None) -> None:
    """Each head parameter's gradient (of its task's loss alone) times ``c_t``, into ``.grad``
    (``coeffs`` None: the gradients as they are, already of ``c_t L_t``: a seeded head stage)."""
    if coeffs is None:
        for p, g in head_grads:  # new tensors of this step, of the parameter's shape: no copy
            _give_grad(p, g)
        return
    scale = coeffs.unbind()
    with torch.no_grad():
        for p, g in head_grads:  # out of place: autograd may hand one tensor to two parameters
            _give_grad(p, g * scale[owner[id(p)]])


def _write_trunk(top: _Top, rows, coeffs, jac, params, shared, retain: bool) -> None:
    """The shared gradient of ``sum_t c_t L_t``: the last layer read off ``J``, the rest of the
    trunk from one backward of the combined cotangent through the layer's input."""
    with torch.no_grad():
        g = rows.combine(coeffs)  # (B, width): sum_t c_t rows_t
        for node, saved in top.acts:
            g = _apply_act(g, node, saved, g)
        _set_or_add_grad(params, coeffs.to(jac.dtype) @ jac)
        done = {id(p) for p in params}
        if top.weight.requires_grad and id(top.weight) not in done:
            _give_grad(top.weight, g.T @ top.A)
        if top.bias is not None and top.bias.requires_grad and id(top.bias) not in done:
            _give_grad(top.bias, g.sum(dim=0))
        layer = {id(top.weight), id(top.bias)}
        rest = [p for p in shared if id(p) not in layer]
        g_in = g @ top.weight if rest and top.edge is not None else None  # (B, in)
    if g_in is not None:
        torch.autograd.backward(top.edge, g_in, inputs=rest, retain_graph=retain)


def _term_scale(balancer, vec: Tensor, top) -> tuple | None:
    """The closed form ``(c, own)`` of ``_closed_form_gradients(L, None)``, ``c = d forward(L)
    / d L`` of shape ``(T,)``, for a weighting that takes the gradients of its per-task terms
    (``forward(L) = sum_t f(L_t)``, gradients ``c_t J_t``) through
    ``_observe_term_gradients``; None otherwise.

    Scaling the head stage's cotangents by ``c`` (a ``(T, batch)`` product) gives those rows
    from the trunk's Jacobian for free: DB-MTL's moving average of ``grad log(L_t + eps)`` is
    then one ``lerp`` over ``(T, n)`` instead of a scaled copy and a multiply-add. Only where
    the Jacobian covers every shared parameter (``top`` None: DB-MTL's own update)."""
    if top is not None or getattr(balancer, "_observe_term_gradients", None) is None:
        return None
    closed = getattr(balancer, "_closed_form_gradients", None)
    return None if closed is None else closed(vec.detach(), None)


def _total_and_coefficients(
    balancer, aux: Tensor | None, vec: Tensor, found: tuple | None = None
) -> tuple[Tensor, Tensor]:
    """``total = balancer(L)`` and ``c = d total / d L``, shape ``(T,)``; the weighting's own
    parameters get ``d (total + aux) / d own`` (:func:`_write_own`).

    A weighting that gives these gradients in closed form (a ``_closed_form_gradients(L,
    aux)`` method returning ``c`` and one gradient of ``aux`` per parameter, or None:
    DB-MTL's ``1 / (L_t + eps)``, GradNorm's ``w`` and the coefficients of its piecewise-linear
    ``L_grad``) skips the ``autograd.grad`` call, which costs tens of microseconds whatever the
    graph, more inside a step; its total is then built without a graph, since nothing
    backpropagates through it here. ``found``: that closed form when the caller has it.
    """
    closed = getattr(balancer, "_closed_form_gradients", None)
    if found is None and closed is not None:
        found = closed(vec.detach(), aux)
    if found is None:
        total = balancer(vec)
        return total, _write_own(balancer, total, aux, vec)
    coeffs, own = found
    with torch.no_grad():
        total = balancer(vec)
        for p, g in zip(balancer.parameters(), own, strict=True):  # one per parameter
            if g is not None and p.requires_grad:
                _give_grad(p, g)
    return total, coeffs


def _write_own(balancer: nn.Module, total: Tensor, aux: Tensor | None, vec: Tensor) -> Tensor:
    """``c = d total / d L``; the weighting's own parameters get ``d (total + aux) / d own``.

    One ``autograd.grad`` call for both (each call costs tens of microseconds whatever the
    graph): ``aux`` is built from detached losses, so ``d aux / d L = 0`` and the first result
    is ``c``.
    """
    own = _unique(balancer.parameters())
    outputs = [total] if aux is None or not aux.requires_grad else [total, aux]
    grads = torch.autograd.grad(outputs, [vec, *own], retain_graph=True, allow_unused=True)
    with torch.no_grad():
        pairs = [(p, g) for p, g in zip(own, grads[1:], strict=True) if g is not None]
        for p, g in distinct_grads(pairs):  # (None: GradNorm's total does not reach w)
            _give_grad(p, g)
    return torch.zeros_like(vec) if grads[0] is None else grads[0].detach()


def last_layer_params(
    model: nn.Module, strict: bool = True, shared: Sequence[nn.Parameter] | None = None
) -> list[nn.Parameter] | None:
    """The shared parameters of the layer that produces ``model.representation``.

    Walks the representation's autograd graph down through single-input nodes (activations,
    dropout, reshapes) to the first node that takes shared parameters (a Linear, a
    convolution, a normalisation layer): GradNorm's ``W`` in the paper's configuration.

    Parameters
    ----------
    model : MultiTaskModule
        After its forward pass.
    strict : bool, default=True
        False (GradNorm's ``"auto"``): None instead of an error, and None unless the model
        declares ``shared_through_representation`` (then that layer is the last shared one
        for every task).
    shared : sequence of Parameter, optional
        ``model.shared_parameters()``, unique and requiring a gradient, when the caller has
        that list already (it is read from the model otherwise).

    Returns
    -------
    params : list of Parameter or None
        In the order of ``model.shared_parameters()``.

    Raises
    ------
    ValueError
        (``strict`` only) When the model set no representation during the forward pass, or the
        graph branches before a parameterised layer is reached.

    References
    ----------
    Chen, Badrinarayanan, Lee & Rabinovich, ICML 2018, Sec. 3.
    """
    rep = getattr(model, "representation", None)
    if not strict and not getattr(model, "shared_through_representation", False):
        return None
    hint = "pass shared_params=[...] (the parameters to take gradient norms on) instead"
    if not isinstance(rep, Tensor) or rep.grad_fn is None:
        if not strict:
            return None
        raise ValueError(
            f"shared_params='last' needs model.representation set, with its graph, during the "
            f"forward pass; {type(model).__name__} has none: {hint}"
        )
    shared = _unique(model.shared_parameters()) if shared is None else shared
    ids = {id(p) for p in shared}
    node = rep.grad_fn
    while node is not None:
        found = {id(p) for p in _node_params(node) if id(p) in ids}
        if found:
            return [p for p in shared if id(p) in found]
        nxt = [f for f, _ in node.next_functions if f is not None and _leaf(f) is None]
        if len(nxt) != 1:
            break
        node = nxt[0]
    if not strict:
        return None
    raise ValueError(
        f"shared_params='last': no single shared layer produces {type(model).__name__}"
        f".representation (its graph branches or ends before one): {hint}"
    )


def _node_params(node) -> list[Tensor]:
    """Leaf tensors entering ``node`` directly or through a parameter-only reshape."""
    out = []
    for f, _ in node.next_functions:
        while f is not None and type(f).__name__ in _PARAM_VIEWS and len(f.next_functions) == 1:
            f = f.next_functions[0][0]
        leaf = None if f is None else _leaf(f)
        if leaf is not None:
            out.append(leaf)
    return out
