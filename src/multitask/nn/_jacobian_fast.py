"""The head stage of the two-stage per-task Jacobian, read off the autograd graph.

:func:`head_cotangents`: the per-task gradients of the representation when every head starts
with a Linear layer: ONE backward of ``sum_t L_t`` stopped at the output of each head's first
layer gives ``delta_t``, and the rows ``delta_t W_t`` stay factored (:class:`HeadRows`), so that
their Gramian and their weighted sum cost little (the task graphs only meet at the
representation, which is checked). The trunk stage (those cotangents through a chain of Linear
layers and activations) is :func:`multitask.nn._trunk_chain.trunk_jacobian`.

It returns None when the graph holds anything it does not recognise; the caller then takes one
backward per task (same result, slower).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.autograd.graph import GradientEdge
from torch.overrides import has_torch_function

__all__ = ["HeadRows", "head_cotangents"]


class GraphBypass(Exception):
    """A task loss reaches a shared parameter other than through the representation.

    Raised before anything is computed or written; the callers then take the one-pass
    Jacobian through the whole graph (:func:`multitask.nn._jacobian._jacobian`), which sees
    every path (weight decay on the trunk folded into a task loss, a second trunk call).
    """


def _consumers(loss: Tensor, rep: Tensor, target=None):
    """Nodes of ``loss``'s graph that take ``rep`` as an input (with that input's index).

    Also returns every node visited above ``rep`` (to check that task graphs are disjoint),
    the nodes reached more than once (a parameter used twice) and the leaves reached (the
    ``AccumulateGrad`` nodes above ``rep``). ``target``: ``rep.grad_fn``, when the caller holds
    it (each read of ``grad_fn`` makes a new Python object for the node).
    """
    target = rep.grad_fn if target is None else target
    nr = rep.output_nr
    hits, seen, again, leaves, stack = [], set(), set(), [], [loss.grad_fn]
    pop, push, visit = stack.pop, stack.append, seen.add
    while stack:
        node = pop()
        if node in seen:
            again.add(node)
            continue
        visit(node)
        nexts = node.next_functions
        if not nexts:
            leaves.append(node)
            continue
        i = 0
        for nxt, k in nexts:
            if nxt is target:
                if k == nr:
                    hits.append((node, i))
            elif nxt is not None:
                push(nxt)
            i += 1
    return hits, seen, again, leaves


def check_no_bypass(leaves, shared_ids: set | None) -> None:
    """Raise :class:`GraphBypass` when a leaf above the representation is a shared parameter."""
    if shared_ids:
        for node in leaves:  # AccumulateGrad nodes (the graph's only nodes without inputs)
            if id(getattr(node, "variable", None)) in shared_ids:
                raise GraphBypass


def head_cotangents(
    losses: Sequence[Tensor | None],
    rep: Tensor,
    heads: Sequence[Sequence[Tensor]] | None,
    stacked: Tensor | None = None,
    shared: Sequence[Tensor] | None = None,
    seed: Tensor | None = None,
) -> tuple[HeadRows, list[tuple[Tensor, Tensor]]] | None:
    """``dL_t / d rep`` for every task (factored), when every head starts with a Linear.

    One backward of ``sum_t L_t`` stops at the output of each head's first layer
    (``torch.autograd.grad`` with ``GradientEdge`` inputs), giving ``delta_t = dL_t / d out_t``;
    then ``dL_t / d rep = delta_t W_t`` and the first layer's gradients ``delta_t^T rep`` and
    ``sum_b delta_t`` come from batched products over the tasks instead of ``T`` backward
    passes. The task graphs must meet only at ``rep`` (checked), and a first layer's
    parameters must feed nothing else in their task's graph (a penalty on them inside the
    loss: checked, then the caller's per-task path).

    Parameters
    ----------
    losses : sequence of Tensor of shape () or None
        Task losses; None gives a zero row.
    rep : Tensor of shape (batch, width)
        The shared representation (not a leaf).
    heads : sequence of sequence of Tensor, optional
        Task ``t``'s own parameters: their gradients (of ``L_t`` alone) are returned as
        ``(param, grad)`` pairs.
    stacked : Tensor of shape (n_tasks,), optional
        ``stack(losses)`` (a dead task's entry included), already in the graph: the backward
        then starts from this one root instead of ``T`` (the same values; the ``autograd.grad``
        call measured 14% faster at ``T = 5`` and ``10``, the same at ``T = 2``).
    shared : sequence of Tensor, optional
        The shared parameters: a loss that reaches one of them other than through ``rep``
        raises :class:`GraphBypass` (nothing computed or written).
    seed : Tensor of shape (n_tasks,), optional
        Coefficients ``c_t``: the rows and the head gradients are then those of ``c_t L_t``
        (one backward seeded with ``c`` instead of ones; DB-MTL's ``1 / (L_t + eps)``). Only
        with ``stacked``.

    Returns
    -------
    (rows, head_grads) or None
        ``rows``: a :class:`HeadRows`; None when the graph is not of that form (the caller then
        takes one backward per task).
    """
    if rep.grad_fn is None or rep.dim() != 2:
        return None
    firsts = _first_layers(losses, rep, None if shared is None else {id(p) for p in shared})
    if firsts is None:
        return None
    live, first, shapes = [], set(), set()  # tasks reaching rep, their first layers' ids
    for t, found in enumerate(firsts):
        if found is None:
            continue
        live.append(t)
        shapes.add(found[1].shape)
        mine = None if heads is None else {id(q) for q in heads[t]}
        for p in found[1:]:
            if p is not None:
                if mine is not None and id(p) not in mine:
                    return None  # a first layer that is not the task's own
                first.add(id(p))
    if not live or len(shapes) != 1:
        return None
    others = _other_head_params(losses, heads, first)
    edges = [GradientEdge(firsts[t][0], 0) for t in live]
    if seed is not None and stacked is None:
        raise ValueError("head_cotangents: a seed needs the stacked losses")
    if stacked is None:  # one backward of their sum (no stack/sum node)
        outputs = [losses[t] for t in live]
        grads = torch.autograd.grad(
            outputs, [*edges, *others], None, retain_graph=True, allow_unused=True
        )
    else:
        grads = _grad(stacked, (*edges, *others), seed)
    with torch.no_grad():
        rows = HeadRows(
            delta=torch.stack(grads[: len(live)]),
            weight=torch.stack([firsts[t][1] for t in live]),
            live=live,
            n_tasks=len(losses),
        )
        pairs = zip(others, grads[len(live) :], strict=True)
        out = distinct_grads([(p, g) for p, g in pairs if g is not None])
        if heads is not None:
            out += _first_layer_grads(rows, rep, [firsts[t] for t in live])
    return rows, out


def _grad(root: Tensor, inputs: tuple, seed: Tensor | None = None) -> tuple:
    """``torch.autograd.grad(root, inputs, seed, retain_graph=True, allow_unused=True)``
    (``seed`` ones by default), through torch's engine call directly when no tensor overrides
    torch functions.

    ``autograd.grad``'s Python layer (argument normalisation, the seed's shape check, the
    ``__torch_function__`` dispatch) costs about 40 us a call on this CPU, more than the engine's
    own work on a step's head graph; the seed made here matches ``root`` by construction, so
    only the dispatch check is kept (a tensor subclass takes the public call).
    """
    if seed is None:
        seed = torch.ones_like(root)
    elif seed.shape != root.shape or seed.dtype != root.dtype or seed.device != root.device:
        seed = seed.to(root).reshape(root.shape)  # matching the root, as autograd.grad checks
    tensors = (root, seed, *(x for x in inputs if isinstance(x, Tensor)))
    if _ENGINE is None or has_torch_function(tensors):
        return torch.autograd.grad(
            [root], list(inputs), [seed], retain_graph=True, allow_unused=True
        )
    return _ENGINE((root,), (seed,), True, False, inputs, True, False)


#: torch's call into the C++ engine behind ``torch.autograd.grad`` (private; None: absent)
_ENGINE = getattr(torch.autograd.graph, "_engine_run_backward", None)


def _other_head_params(losses, heads, first: set) -> list[Tensor]:
    """The head parameters whose gradient autograd gives: every task with a loss (one that does
    not reach ``rep`` still trains its head), less the first layers (ids in ``first``)."""
    if heads is None:
        return []
    live = [heads[t] for t, loss in enumerate(losses) if loss is not None]
    return [p for own in live for p in own if id(p) not in first]


def distinct_grads(pairs: list[tuple[Tensor, Tensor]]) -> list[tuple[Tensor, Tensor]]:
    """``(param, grad)`` pairs from one autograd call, each grad its own memory.

    The engine may hand ONE tensor to several inputs (``W1 + W2``: ``AddBackward`` passes its
    incoming gradient to both unchanged). Given as ``.grad`` without a copy, the parameters
    would then share it, and the next accumulation into one would change the other; a
    repeated tensor is therefore cloned (torch's own ``AccumulateGrad`` copies such a tensor
    too).
    """
    seen: set[int] = set()
    out = []
    for p, g in pairs:
        key = g.data_ptr() if g.numel() else id(g)
        out.append((p, g.clone() if key in seen else g))
        seen.add(key)
    return out


def _first_layer_grads(rows: HeadRows, rep: Tensor, firsts: list) -> list[tuple[Tensor, Tensor]]:
    """``(param, grad)`` of each live task's first head layer: ``delta_t^T rep``, ``sum_b delta_t``.

    The weight gradients of every task come from ONE matrix product ``(T' k, batch) @ (batch,
    width)`` instead of a batched product that broadcasts ``rep``.
    """
    n, b, k = rows.delta.shape
    w_grads = (rows.delta.transpose(1, 2).reshape(n * k, b) @ rep).view(n, k, -1)  # (T', k, width)
    b_grads = rows.delta.sum(dim=1)  # (T', k)
    out = []
    for (_, w, bias), wg, bg in zip(firsts, w_grads.unbind(0), b_grads.unbind(0), strict=True):
        out.append((w, wg))
        if bias is not None:
            out.append((bias, bg))
    return out


@dataclass(frozen=True)
class HeadRows:
    """Per-task gradients of the representation, factored: ``rows_t = delta_t @ weight_t``.

    Attributes
    ----------
    delta : Tensor of shape (T', batch, k)
        Gradient of each live task's loss with respect to its first head layer's output.
    weight : Tensor of shape (T', k, width)
        That layer's weight.
    live : list of int
        The tasks of those ``T'`` rows; the other rows are zero.
    n_tasks : int
    """

    delta: Tensor
    weight: Tensor
    live: list[int]
    n_tasks: int

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of the dense rows, ``(n_tasks, batch, width)``."""
        return (self.n_tasks, self.delta.shape[1], self.weight.shape[-1])

    def dense(self, out: Tensor | None = None) -> Tensor:
        """The rows, ``(n_tasks, batch, width)`` (written into ``out`` when given)."""
        full = len(self.live) == self.n_tasks
        if out is None:
            out = self.delta.new_empty(self.shape)
        part = out if full else self.delta.new_empty((len(self.live), *self.shape[1:]))
        if self.delta.shape[-1] == 1:  # k = 1: an outer product, cheaper by broadcasting
            torch.mul(self.delta, self.weight, out=part)
        else:
            torch.bmm(self.delta, self.weight, out=part)
        if not full:
            out.zero_()
            out[self.live] = part
        return out

    def gramian(self) -> Tensor:
        """``rows rows^T`` (rows flattened), ``(n_tasks, n_tasks)``, without forming the rows.

        ``<D_s W_s, D_t W_t> = sum_ij (D_s^T D_t)_ij (W_s W_t^T)_ij``: ``O(T^2 k^2 (batch +
        width))`` instead of ``O(T^2 batch width)``.
        """
        n, b, k = self.delta.shape
        D = self.delta.transpose(1, 2).reshape(n * k, b)
        W = self.weight.reshape(n * k, -1)
        part = ((D @ D.T) * (W @ W.T)).reshape(n, k, n, k).sum(dim=(1, 3))
        if n == self.n_tasks:
            return part
        G = part.new_zeros((self.n_tasks, self.n_tasks))
        idx = torch.tensor(self.live, device=part.device)
        G[idx[:, None], idx[None, :]] = part
        return G

    def scaled(self, c: Tensor) -> HeadRows:
        """The rows ``c_t rows_t`` (``c`` of shape ``(n_tasks,)``), as a scaling of ``delta``
        (``(T', batch, k)``: far smaller than the rows or what is computed from them)."""
        cl = c[self.live] if len(self.live) != self.n_tasks else c
        delta = self.delta * cl.to(self.delta.dtype)[:, None, None]
        return HeadRows(delta=delta, weight=self.weight, live=self.live, n_tasks=self.n_tasks)

    def combine(self, w: Tensor) -> Tensor:
        """``sum_t w_t rows_t``, ``(batch, width)``, as one matrix product."""
        n, b, k = self.delta.shape
        wl = w[self.live] if n != self.n_tasks else w
        D = (self.delta * wl.to(self.delta.dtype)[:, None, None]).transpose(0, 1).reshape(b, n * k)
        return D @ self.weight.reshape(n * k, -1)


def _first_layers(losses, rep, shared_ids: set | None = None) -> list | None:
    """Per task: (node, weight, bias) of the Linear that consumes ``rep``; None if not so.

    None also when a node above ``rep`` serves two tasks, or when a first layer's weight or bias
    (or the weight's transpose) is reached twice in its task's graph: its gradient is then more
    than ``delta_t^T rep``. Raises :class:`GraphBypass` when a loss reaches a parameter of
    ``shared_ids`` above ``rep``.
    """
    above, firsts = set(), []  # every node above rep seen so far (the tasks' graphs: disjoint)
    target = rep.grad_fn
    for loss in losses:
        if loss is None or loss.grad_fn is None:
            firsts.append(None)
            continue
        hits, seen, again, leaves = _consumers(loss, rep, target)
        check_no_bypass(leaves, shared_ids)
        if not above.isdisjoint(seen):
            return None  # a node above rep serves two tasks
        above |= seen
        if len(hits) != 1:
            if hits:
                return None
            firsts.append(None)
            continue
        node, index = hits[0]
        name = type(node).__name__
        if (name, index) not in _FIRST:
            return None
        found = _linear(node, name, with_input=False)  # its input: rep (2-D, checked)
        if found is None or (again and _reached_twice(node, found[1], again)):
            return None
        firsts.append((node, found[0], found[1]))
    return firsts


#: (node, input index of ``rep``) of a first head layer: ``nn.Linear`` with and without bias
_FIRST = frozenset({("AddmmBackward0", 1), ("MmBackward0", 0)})


def _reached_twice(node, bias: Tensor | None, again: set) -> bool:
    """Whether the Linear ``node``'s weight (its ``AccumulateGrad`` or transpose node) or bias
    is in ``again``, the nodes reached more than once (a penalty on them in the loss)."""
    names = ("AddmmBackward0", "MmBackward0")
    t_fn = node.next_functions[2 if type(node).__name__ == names[0] else 1][0]
    mine = [t_fn, t_fn.next_functions[0][0]]
    if bias is not None:
        mine.append(node.next_functions[0][0])
    return any(n in again for n in mine)


def _leaf(node) -> Tensor | None:
    return node.variable if type(node).__name__ == "AccumulateGrad" else None


def _linear(node, name: str, with_input: bool = True):
    """``(weight, bias, input, next node)`` of an ``nn.Linear`` on a 2-D input, or None.

    ``with_input=False`` (the head stage, whose input is the representation, 2-D and checked
    there): the saved input is not unpacked (each unpack makes a new tensor) and is None.
    """
    if name == "AddmmBackward0":
        if node._saved_alpha != 1 or node._saved_beta != 1:
            return None
        (bias_fn, _), (inp_fn, _), (t_fn, _) = node.next_functions
        bias = None if bias_fn is None else _leaf(bias_fn)
        if bias_fn is not None and (bias is None or bias.dim() != 1):
            return None
        A = node._saved_mat1 if with_input else None
    else:  # MmBackward0: a Linear without bias
        (inp_fn, _), (t_fn, _) = node.next_functions
        bias, A = None, node._saved_self if with_input else None
    if t_fn is None or type(t_fn).__name__ != "TBackward0":
        return None
    weight = _leaf(t_fn.next_functions[0][0])
    if weight is None or (with_input and A.dim() != 2):
        return None
    return weight, bias, A, inp_fn
