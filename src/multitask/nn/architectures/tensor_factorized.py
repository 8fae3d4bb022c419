"""Deep multi-task representation learning by tensor factorisation (DMTRL, ICLR 2017)."""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

from ..._params import check_int
from ._base import MultiTaskModule
from ._layers import check_heads, check_partition, parameters_of

METHODS = ("tucker", "tt")


def _unfold(w: Tensor, mode: int) -> Tensor:
    return w.movedim(mode, 0).reshape(w.shape[mode], -1)


def full_ranks(shape: tuple[int, int, int], method: str) -> tuple[int, ...]:
    """Ranks at which the decomposition of a ``(d1, d2, n_tasks)`` tensor is exact."""
    d1, d2, t = shape
    if method == "tucker":
        return (min(d1, d2 * t), min(d2, d1 * t), min(t, d1 * d2))
    r1 = min(d1, d2 * t)
    return (r1, min(r1 * d2, t))


def hosvd(w: Tensor, ranks: Sequence[int]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Truncated higher-order SVD: ``w ~= core x1 U1 x2 U2 x3 U3`` (De Lathauwer et al., 2000).

    Returns ``core (r1, r2, r3)``, ``U1 (d1, r1)``, ``U2 (d2, r2)``, ``U3 (d3, r3)``.
    """
    us = [
        torch.linalg.svd(_unfold(w, k), full_matrices=False)[0][:, :r] for k, r in enumerate(ranks)
    ]
    core = torch.einsum("ijt,ia,jb,tc->abc", w, *us)
    return core, *us


def tt_svd(w: Tensor, ranks: Sequence[int]) -> tuple[Tensor, Tensor, Tensor]:
    """Tensor-train SVD (Oseledets, 2011): ``w[i, j, t] ~= G1[i, :] @ G2[:, j, :] @ G3[:, t]``.

    Returns ``G1 (d1, r1)``, ``G2 (r1, d2, r2)``, ``G3 (r2, d3)``.
    """
    d1, d2, t = w.shape
    r1, r2 = ranks
    u, s, vh = torch.linalg.svd(w.reshape(d1, d2 * t), full_matrices=False)
    g1, rest = u[:, :r1], s[:r1, None] * vh[:r1]  # (d1, r1), (r1, d2 * t)
    u, s, vh = torch.linalg.svd(rest.reshape(r1 * d2, t), full_matrices=False)
    return g1, u[:, :r2].reshape(r1, d2, r2), s[:r2, None] * vh[:r2]


def _resolve_ranks(ranks, shapes: list[tuple[int, int, int]], method: str) -> list[tuple[int, ...]]:
    n_modes = 3 if method == "tucker" else 2
    if ranks is None or isinstance(ranks, numbers.Real | tuple):  # one for every layer
        per_layer = [ranks] * len(shapes)
    elif not isinstance(ranks, Sequence) or isinstance(ranks, str):
        raise TypeError(
            f"TensorFactorized: ranks must be None, an int, a tuple of ints or a list of those "
            f"(one per layer), got {ranks!r}"
        )
    else:  # a list: one entry per layer (an int list was read as one tuple for all layers)
        per_layer = list(ranks)
    if len(per_layer) != len(shapes):
        raise ValueError(f"ranks gives {len(per_layer)} layers, the model has {len(shapes)}")
    out = []
    for r, shape in zip(per_layer, shapes, strict=True):
        full = full_ranks(shape, method)
        if r is None:
            r = full
        elif isinstance(r, numbers.Real):  # an int (a bool or 8.5 is refused just below)
            r = (r,) * n_modes
        elif isinstance(r, Sequence) and not isinstance(r, str):
            r = tuple(r)
        else:
            raise TypeError(
                f"TensorFactorized: a layer's ranks must be an int or a tuple, got {r!r}"
            )
        if len(r) != n_modes:
            raise ValueError(f"{method} needs {n_modes} positive ranks per layer, got {r}")
        r = tuple(check_int(a, "ranks", "TensorFactorized") for a in r)
        if min(r) < 1:
            raise ValueError(f"{method} needs {n_modes} positive ranks per layer, got {r}")
        r = tuple(min(a, f) for a, f in zip(r, full, strict=True))
        if method == "tt":  # G2 is (r1, d2, r2): r2 is bounded by the r1 kept, not the full one
            r = (r[0], min(r[1], r[0] * shape[1]))
        out.append(r)
    return out


class TensorFactorized(MultiTaskModule):
    r"""Per-task layers whose stacked weights are a low-rank tensor (DMTRL).

    A shared ``trunk`` is followed by fully connected layers ``dims[0] -> dims[1]
    -> ...``, one path per task. The weights of layer ``l`` of all tasks, stacked
    into :math:`\mathcal W \in \mathbb R^{d_1 \times d_2 \times T}`, are
    factorised (Sec. 3.2 of the paper):

    - ``"tucker"``: :math:`\mathcal W = \mathcal S \times_1 U_1 \times_2 U_2 \times_3 U_3`
      (Eq. 6); the core and :math:`U_1, U_2` are shared, row ``t`` of :math:`U_3` is task ``t``'s;
    - ``"tt"`` (tensor train): :math:`\mathcal W_{i,j,t} = G_1[i,:]\, G_2[:,j,:]\, G_3[:,t]`
      (Eq. 7); :math:`G_1, G_2` are shared, column ``t`` of :math:`G_3` is task ``t``'s.

    Each task also has its own biases; an ``activation`` follows every layer but
    the last; ``heads[t]`` maps task ``t``'s last output to its prediction
    (``nn.Identity()`` when the last layer is already the output).
    :meth:`from_independent` initialises the factors from the decomposition
    (HOSVD / TT-SVD) of independently trained weights, as the paper does (Sec. 3.3).

    Parameters
    ----------
    trunk : nn.Module
        Shared encoder producing ``(..., dims[0])`` features (``nn.Identity()`` for none).
    dims : sequence of int
        Widths of the factorised layers, at least two entries.
    heads : dict of str to nn.Module
    ranks : None, int, tuple of int, or a list of those (one per layer), default=None
        Tucker ``(r1, r2, r3)`` or TT ``(r1, r2)``; None means full (exact) rank,
        an int the same rank for every mode; a tuple or an int applies to every
        layer, a list gives each layer's. Clipped to the full ranks (TT's ``r2`` to
        ``r1 * d2`` with the ``r1`` kept).
    method : {"tucker", "tt"}, default="tucker"
    activation : nn.Module, default=nn.ReLU()

    References
    ----------
    Yang, Y., Hospedales, T. M. "Deep Multi-task Representation Learning: A Tensor
    Factorisation Approach." ICLR 2017, Eqs. (6)-(7) and Sec. 3.3 (initialisation).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from multitask.nn.architectures import TensorFactorized
    >>> _ = torch.manual_seed(0)
    >>> heads = {"a": nn.Identity(), "b": nn.Identity()}
    >>> model = TensorFactorized(nn.Identity(), [4, 8, 3], heads, ranks=(2, 2, 1))
    >>> {task: tuple(y.shape) for task, y in model(torch.randn(5, 4)).items()}
    {'a': (5, 3), 'b': (5, 3)}
    >>> W = model.layer_weight(0).detach()  # (d_in, d_out, n_tasks)
    >>> tuple(W.shape)
    (4, 8, 2)
    >>> torch.linalg.matrix_rank(W.reshape(-1, 2)).item()  # task rank 1: proportional weights
    1

    Built from independently trained weights at full rank, the factors give them back
    exactly (Sec. 3.3):

    >>> W = torch.randn(4, 3, 2)
    >>> model = TensorFactorized.from_independent([W], None, heads)
    >>> torch.allclose(model.layer_weight(0), W, atol=1e-5)
    True
    """

    def __init__(
        self,
        trunk: nn.Module,
        dims: Sequence[int],
        heads: Mapping[str, nn.Module],
        ranks=None,
        method: str = "tucker",
        activation: nn.Module | None = None,
    ):
        super().__init__()
        self.task_names = check_heads(heads)
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if len(dims) < 2:
            raise ValueError(f"dims needs at least an input and an output width, got {list(dims)}")
        n_tasks = len(self.task_names)
        self.method = method
        self.dims = tuple(
            check_int(d, f"dims[{j}]", "TensorFactorized", low=1) for j, d in enumerate(dims)
        )
        shapes = [(self.dims[i], self.dims[i + 1], n_tasks) for i in range(len(dims) - 1)]
        self.ranks = _resolve_ranks(ranks, shapes, method)
        self.trunk = trunk
        self.heads = nn.ModuleDict(heads)
        self.activation = nn.ReLU() if activation is None else activation
        self.factors = nn.ModuleList()
        self.task_factors = nn.ModuleDict({t: nn.ParameterList() for t in self.task_names})
        self.biases = nn.ModuleDict({t: nn.ParameterList() for t in self.task_names})
        for (d1, d2, _), r in zip(shapes, self.ranks, strict=True):
            init = torch.stack([nn.Linear(d1, d2).weight.detach().T for _ in range(n_tasks)], -1)
            self._add_layer(init, r, torch.zeros(d2, n_tasks))
        check_partition(self)  # one module given for two roles

    def _add_layer(self, w: Tensor, ranks: tuple[int, ...], bias: Tensor) -> None:
        """Factors of ``w`` (decomposed in float64, stored in the default dtype)."""
        w, dtype = w.double(), torch.get_default_dtype()
        if self.method == "tucker":
            core, u1, u2, u3 = hosvd(w, ranks)
            shared, per_task = {"core": core, "u1": u1, "u2": u2}, u3  # (T, r3)
        else:
            g1, g2, g3 = tt_svd(w, ranks)
            shared, per_task = {"g1": g1, "g2": g2}, g3.T  # (T, r2)
        self.factors.append(
            nn.ParameterDict({k: nn.Parameter(v.to(dtype)) for k, v in shared.items()})
        )
        for i, t in enumerate(self.task_names):
            self.task_factors[t].append(nn.Parameter(per_task[i].to(dtype)))
            self.biases[t].append(nn.Parameter(bias[:, i].to(dtype)))

    def layer_weight(self, layer: int) -> Tensor:
        """Stacked weights of ``layer`` rebuilt from its factors, ``(d_in, d_out, n_tasks)``."""
        f = self.factors[layer]
        task = torch.stack([self.task_factors[t][layer] for t in self.task_names])  # (T, r)
        if self.method == "tucker":
            return torch.einsum("abc,ia,jb,tc->ijt", f["core"], f["u1"], f["u2"], task)
        return torch.einsum("ia,ajb,tb->ijt", f["g1"], f["g2"], task)

    @classmethod
    def from_independent(
        cls,
        weights: Sequence[Tensor],
        ranks,
        heads: Mapping[str, nn.Module],
        *,
        trunk: nn.Module | None = None,
        method: str = "tucker",
        biases: Sequence[Tensor] | None = None,
        activation: nn.Module | None = None,
    ) -> TensorFactorized:
        """Build a model whose factors decompose independently trained weights.

        Parameters
        ----------
        weights : sequence of Tensor of shape (d_in, d_out, n_tasks)
            Layer ``l``'s weights of every task (``W[:, :, t] = linear_t.weight.T``).
        ranks : see the class.
        heads : dict of str to nn.Module, in the order of the last axis of ``weights``.
        trunk, method, activation : see the class.
        biases : sequence of Tensor of shape (d_out, n_tasks), optional (zeros by default).
        """
        weights = [torch.as_tensor(w).detach() for w in weights]  # (float64 stays: see _add_layer)
        if not weights:
            raise ValueError("weights must hold at least one (d_in, d_out, n_tasks) tensor")
        for i, w in enumerate(weights):
            if w.dim() != 3 or w.shape[2] != len(heads):
                raise ValueError(
                    f"weights[{i}] has shape {tuple(w.shape)}; expected (d_in, d_out, {len(heads)})"
                )
            if i and w.shape[0] != weights[i - 1].shape[1]:
                raise ValueError(
                    f"weights[{i}] takes {w.shape[0]} inputs, previous layer gives "
                    f"{weights[i - 1].shape[1]}"
                )
        dims = [weights[0].shape[0]] + [w.shape[1] for w in weights]
        model = cls(trunk or nn.Identity(), dims, heads, ranks, method, activation)
        model.factors = nn.ModuleList()
        model.task_factors = nn.ModuleDict({t: nn.ParameterList() for t in model.task_names})
        model.biases = nn.ModuleDict({t: nn.ParameterList() for t in model.task_names})
        for i, (w, r) in enumerate(zip(weights, model.ranks, strict=True)):
            b = (
                torch.zeros(w.shape[1], w.shape[2])
                if biases is None
                else torch.as_tensor(biases[i])
            )
            model._add_layer(w, r, b)
        return model

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        h0 = self.trunk(x)
        self.representation = h0
        n_layers = len(self.factors)
        weights = [self.layer_weight(i) for i in range(n_layers)]
        outputs = {}
        for m, t in enumerate(self.task_names):
            h = h0
            for i, w in enumerate(weights):
                h = h @ w[:, :, m] + self.biases[t][i]
                if i < n_layers - 1:
                    h = self.activation(h)
            outputs[t] = self.heads[t](h)
        return outputs

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return parameters_of([self.trunk, self.factors])

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        return parameters_of([self.task_factors[task], self.biases[task], self.heads[task]])
