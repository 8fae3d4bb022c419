"""Per-task gradients without ``T`` backward passes, read off the autograd graph.

Two pieces of the two-stage Jacobian of :func:`multitask.nn.mtl_backward`:

- :func:`head_cotangents`: the per-task gradients of the representation when every head starts
  with a Linear layer: ONE backward of ``sum_t L_t`` stopped at the output of each head's first
  layer gives ``delta_t``, and the rows ``delta_t W_t`` stay factored (:class:`HeadRows`), so
  that their Gramian and their weighted sum cost little (the task graphs only meet at the
  representation, which is checked).
- :func:`trunk_jacobian`: those ``T`` cotangents carried through a trunk that is a chain of
  ``nn.Linear`` layers (2-D inputs) and elementwise activations by hand, as per-sample-gradient
  libraries do: ``C <- (C @ W) * act'`` per layer, weight blocks ``C_t^T A`` by one batched
  matrix product written straight into the preallocated ``(T, n_params)`` Jacobian, bias blocks
  by a sum over the batch. The layer inputs ``A`` and the activations' saved tensors are those
  the forward pass stored for autograd (``node._saved_*``), so no hook on the model is needed.

Both return None when the graph holds anything they do not recognise; the caller then uses the
autograd path (same result, slower).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.autograd.graph import GradientEdge

__all__ = ["HeadRows", "head_cotangents", "trunk_jacobian"]


def _consumers(loss: Tensor, rep: Tensor) -> tuple[list[tuple[object, int]], set] | None:
    """Nodes of ``loss``'s graph that take ``rep`` as an input (with that input's index).

    Also returns every node visited above ``rep`` (to check that task graphs are disjoint).
    """
    target, nr = rep.grad_fn, rep.output_nr
    hits, seen, stack = [], set(), [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for i, (nxt, k) in enumerate(node.next_functions):
            if nxt is target and k == nr:
                hits.append((node, i))
            elif nxt is not None and nxt is not target:
                stack.append(nxt)
    return hits, seen


def head_cotangents(
    losses: Sequence[Tensor | None], rep: Tensor, heads: Sequence[Sequence[Tensor]] | None
) -> tuple[HeadRows, list[tuple[Tensor, Tensor]]] | None:
    """``dL_t / d rep`` for every task (factored), when every head starts with a Linear.

    One backward of ``sum_t L_t`` stops at the output of each head's first layer
    (``torch.autograd.grad`` with ``GradientEdge`` inputs), giving ``delta_t = dL_t / d out_t``;
    then ``dL_t / d rep = delta_t W_t`` and the first layer's gradients ``delta_t^T rep`` and
    ``sum_b delta_t`` come from batched products over the tasks instead of ``T`` backward
    passes. The task graphs must meet only at ``rep`` (checked).

    Parameters
    ----------
    losses : sequence of Tensor of shape () or None
        Task losses; None gives a zero row.
    rep : Tensor of shape (batch, width)
        The shared representation (not a leaf).
    heads : sequence of sequence of Tensor, optional
        Task ``t``'s own parameters: their gradients (of ``L_t`` alone) are returned as
        ``(param, grad)`` pairs.

    Returns
    -------
    (rows, head_grads) or None
        ``rows``: a :class:`HeadRows`; None when the graph is not of that form (the caller then
        takes one backward per task).
    """
    if rep.grad_fn is None or rep.dim() != 2:
        return None
    firsts = _first_layers(losses, rep)
    if firsts is None:
        return None
    live = [t for t, f in enumerate(firsts) if f is not None]
    if not live or len({firsts[t][1].shape for t in live}) != 1:
        return None
    first = {id(p) for t in live for p in firsts[t][1:] if p is not None}
    if heads is not None and not all(
        id(p) in {id(q) for q in heads[t]} for t in live for p in firsts[t][1:] if p is not None
    ):
        return None  # a first layer that is not the task's own
    own = [p for t in live for p in (heads[t] if heads is not None else ())]
    others = [p for p in own if id(p) not in first]
    edges = [GradientEdge(firsts[t][0], 0) for t in live]
    total = torch.stack([losses[t].reshape(()) for t in live]).sum()
    grads = torch.autograd.grad(total, [*edges, *others], retain_graph=True, allow_unused=True)
    with torch.no_grad():
        rows = HeadRows(
            delta=torch.stack(grads[: len(live)]),
            weight=torch.stack([firsts[t][1] for t in live]),
            live=live,
            n_tasks=len(losses),
        )
        out = [(p, g) for p, g in zip(others, grads[len(live) :], strict=True) if g is not None]
        if heads is not None:
            w_grads = torch.matmul(rows.delta.transpose(1, 2), rep)  # (T', k, width)
            b_grads = rows.delta.sum(dim=1)  # (T', k)
            for j, t in enumerate(live):
                _, w, b = firsts[t]
                out.append((w, w_grads[j]))
                if b is not None:
                    out.append((b, b_grads[j]))
    return rows, out


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

    def dense(self) -> Tensor:
        """The rows, ``(n_tasks, batch, width)``."""
        part = torch.bmm(self.delta, self.weight)
        if len(self.live) == self.n_tasks:
            return part
        rows = part.new_zeros((self.n_tasks, *part.shape[1:]))
        rows[self.live] = part
        return rows

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

    def combine(self, w: Tensor) -> Tensor:
        """``sum_t w_t rows_t``, ``(batch, width)``, as one matrix product."""
        n, b, k = self.delta.shape
        wl = w[self.live] if n != self.n_tasks else w
        D = (self.delta * wl.to(self.delta.dtype)[:, None, None]).transpose(0, 1).reshape(b, n * k)
        return D @ self.weight.reshape(n * k, -1)


def _first_layers(losses, rep) -> list | None:
    """Per task: (node, weight, bias) of the Linear that consumes ``rep``; None if not so."""
    owner, firsts = {}, []
    for t, loss in enumerate(losses):
        if loss is None or loss.grad_fn is None:
            firsts.append(None)
            continue
        hits, seen = _consumers(loss, rep)
        for node in seen:
            if owner.setdefault(node, t) != t:
                return None  # a node above rep serves two tasks
        if len(hits) != 1:
            if hits:
                return None
            firsts.append(None)
            continue
        node, index = hits[0]
        name = type(node).__name__
        if (name, index) not in (("AddmmBackward0", 1), ("MmBackward0", 0)):
            return None
        found = _linear(node, name)
        if found is None:
            return None
        firsts.append((node, found[0], found[1]))
    return firsts


# ---------------------------------------------------------------------------------------------
# The trunk: a chain of Linear layers and elementwise activations.

_ACTIVATIONS = {
    "ReluBackward0": lambda n: n._saved_result > 0,
    "TanhBackward0": lambda n: 1 - n._saved_result.square(),
    "SigmoidBackward0": lambda n: n._saved_result * (1 - n._saved_result),
    "GeluBackward0": lambda n: torch.ops.aten.gelu_backward(
        torch.ones_like(n._saved_self), n._saved_self, approximate=n._saved_approximate
    ),
    "LeakyReluBackward0": lambda n: torch.ops.aten.leaky_relu_backward(
        torch.ones_like(n._saved_self), n._saved_self, n._saved_negative_slope, False
    ),
    "SiluBackward0": lambda n: _silu_derivative(n._saved_self),
}


def _silu_derivative(x: Tensor) -> Tensor:
    s = torch.sigmoid(x)
    return s * (1 + x * (1 - s))


def _single_input(node) -> object | bool | None:
    """The one non-None next node; False when there are several."""
    nxt = [f for f, _ in node.next_functions if f is not None]
    return nxt[0] if len(nxt) == 1 else (None if not nxt else False)


def _leaf(node) -> Tensor | None:
    return node.variable if type(node).__name__ == "AccumulateGrad" else None


def _linear(node, name: str):
    """``(weight, bias, input, next node)`` of an ``nn.Linear`` on a 2-D input, or None."""
    if name == "AddmmBackward0":
        if node._saved_alpha != 1 or node._saved_beta != 1:
            return None
        bias_fn, (inp_fn, _), (t_fn, _) = node.next_functions[0][0], *node.next_functions[1:]
        bias, A = (None if bias_fn is None else _leaf(bias_fn)), node._saved_mat1
        if bias_fn is not None and (bias is None or bias.dim() != 1):
            return None
    else:  # MmBackward0: a Linear without bias
        (inp_fn, _), (t_fn, _) = node.next_functions
        bias, A = None, node._saved_self
        bias_fn = None
    if t_fn is None or type(t_fn).__name__ != "TBackward0":
        return None
    weight = _leaf(t_fn.next_functions[0][0])
    if weight is None or A.dim() != 2:
        return None
    return weight, bias, A, inp_fn


def _plan(rep: Tensor) -> list | None:
    """The trunk as a list of ``("act", factor)`` / ``("linear", W, b, A)`` steps, output first."""
    steps, node = [], rep.grad_fn
    while node is not None:
        name = type(node).__name__
        if name in _ACTIVATIONS:
            nxt = _single_input(node)
            steps.append(("act", _ACTIVATIONS[name](node)))
        elif name == "MulBackward0":  # a constant factor: dropout's scaled mask
            (f0, _), (f1, _) = node.next_functions
            if (f0 is None) == (f1 is None):
                return None
            steps.append(("act", node._saved_other if f1 is None else node._saved_self))
            nxt = f0 if f1 is None else f1
        elif name in ("AddmmBackward0", "MmBackward0"):
            found = _linear(node, name)
            if found is None:
                return None
            weight, bias, A, nxt = found
            steps.append(("linear", weight, bias, A))
        else:
            return None
        if nxt is False:
            return None
        node = None if nxt is None or _leaf(nxt) is not None else nxt
    return steps


def trunk_jacobian(rep: Tensor, rows: Tensor, params: Sequence[Tensor]) -> Tensor | None:
    """Rows ``rows[t]^T d rep / d params``, flattened: ``(T, n_params)``, or None.

    Parameters
    ----------
    rep : Tensor of shape (batch, width)
        Output of the trunk, with its autograd graph.
    rows : Tensor of shape (T, batch, width)
        Cotangents (per-task gradients of the representation).
    params : sequence of Tensor
        The trunk's parameters, in the Jacobian's column order; a parameter that the chain does
        not reach gets zero columns.

    Returns
    -------
    jacobian : Tensor of shape (T, n_params) or None
        None when the graph from ``rep`` down is not a chain of Linear layers and elementwise
        activations, or reaches a parameter not in ``params``, or uses one twice.

    References
    ----------
    Goodfellow, "Efficient Per-Example Gradient Computations", arXiv:1510.01799, 2015 (the
    weight gradient of a linear layer as an outer product of its input and output gradient),
    applied here with one cotangent per task instead of one per example.
    """
    if rep.grad_fn is None or rep.dim() != 2 or rows.shape[1:] != rep.shape:
        return None
    with torch.no_grad():
        return _chain_jacobian(rep, rows, params)


def _chain_jacobian(rep: Tensor, rows: Tensor, params: Sequence[Tensor]) -> Tensor | None:
    steps = _plan(rep)
    offsets, total = {}, 0
    for p in params:
        offsets[id(p)] = (total, p.numel())
        total += p.numel()
    if steps is None or not _fits(steps, offsets, rows):
        return None
    T = rows.shape[0]
    jac = rows.new_empty((T, total))
    cot = rows
    last = max(i for i, s in enumerate(steps) if s[0] == "linear")
    for i, step in enumerate(steps):
        if step[0] == "act":
            cot = cot * step[1]
            continue
        _, weight, bias, A = step
        start, size = offsets[id(weight)]
        block = jac[:, start : start + size].view(T, *weight.shape)  # (T, out, in)
        torch.matmul(cot.transpose(1, 2), A, out=block)
        if bias is not None:
            start, size = offsets[id(bias)]
            torch.sum(cot, dim=1, out=jac[:, start : start + size])
        if i < last:
            cot = cot @ weight  # (T, B, out) @ (out, in): the input's cotangent
    reached = {id(p) for s in steps if s[0] == "linear" for p in s[1:3] if p is not None}
    for p in params:  # parameters the chain does not reach: no gradient
        if id(p) not in reached:
            start, size = offsets[id(p)]
            jac[:, start : start + size] = 0
    return jac


def _fits(steps: list, offsets: dict, rows: Tensor) -> bool:
    """Every parameter is in ``params`` once, with the Jacobian's dtype and shapes that chain."""
    seen, width = set(), rows.shape[-1]
    linears = [s for s in steps if s[0] == "linear"]
    if not linears:
        return False
    for step in steps:
        if step[0] == "act":
            factor = step[1]
            if factor is None or (factor.dim() > 0 and factor.shape != (rows.shape[1], width)):
                return False
            continue
        _, weight, bias, A = step
        for p in (weight, bias):
            if p is None:
                continue
            if id(p) not in offsets or id(p) in seen or p.dtype != rows.dtype:
                return False
            seen.add(id(p))
        if weight.shape[0] != width or A.shape[1] != weight.shape[1] or A.dtype != rows.dtype:
            return False
        if A.shape[0] != rows.shape[1]:
            return False
        width = weight.shape[1]
    return True
