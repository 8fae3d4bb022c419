"""Soft parameter sharing: one network per task, coupled by a penalty."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

from multitask._params import check_names, check_real
from multitask.nn.architectures._base import MultiTaskModule
from multitask.nn.architectures._layers import check_heads, check_partition

__all__ = ["SoftSharing"]

COUPLINGS = ("l2", "trace")


class _NuclearNorm(torch.autograd.Function):
    """Sum of singular values; backward: the minimum-norm subgradient (see :func:`nuclear_norm`)."""

    generate_vmap_rule = True  # torch.func.vmap / grad work through it

    @staticmethod
    def forward(w: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        u, s, vh = torch.linalg.svd(w, full_matrices=False)  # (..., m, k), (..., k), (..., k, n)
        return s.sum(-1), u, s, vh

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _, u, s, vh = output
        ctx.mark_non_differentiable(u, s, vh)
        ctx.save_for_backward(u, s, vh)

    @staticmethod
    def backward(ctx, grad: Tensor, *_) -> Tensor:
        u, s, vh = ctx.saved_tensors
        # numpy's matrix_rank tolerance; a mask, not an index, so that vmap can batch it
        tol = s[..., :1] * max(u.shape[-2], vh.shape[-1]) * torch.finfo(s.dtype).eps
        keep = (s > tol).to(u.dtype)  # (..., k)
        return grad[..., None, None] * ((u * keep[..., None, :]) @ vh)


def nuclear_norm(w: Tensor) -> Tensor:
    r"""Nuclear (trace) norm :math:`\|W\|_* = \sum_i \sigma_i(W)` with the minimum-norm subgradient.

    The value is ``torch.linalg.matrix_norm(w, "nuc")``. The gradient is
    :math:`U_r V_r^\top`, over the singular values above
    ``max(m, n) * eps(dtype) * sigma_max`` (numpy's ``matrix_rank`` tolerance): at full rank
    the gradient of the norm, as torch gives it; at a rank-deficient ``W`` the subgradient of
    least norm, which is zero on the null space. torch's own backward adds :math:`u_i v_i^\top`
    for zero singular values too, with arbitrary singular vectors, so identical task networks
    (a rank-one stack) would get different gradients and be pushed apart. Zero at ``W = 0``.

    Parameters
    ----------
    w : Tensor of shape (..., m, n)

    Returns
    -------
    Tensor of shape (...)

    References
    ----------
    Yang & Hospedales, "Trace Norm Regularised Deep Multi-Task Learning", ICLR Workshop
    2017, Sec. 2 (the trace norm penalty, optimised by subgradient descent through the SVD).
    Watson, "Characterization of the subdifferential of some matrix norms", Linear Algebra
    Appl. 170, 1992 (the subdifferential :math:`\{U_r V_r^\top + M : U_r^\top M = 0,
    M V_r = 0, \|M\|_2 \le 1\}`, whose element of least norm is :math:`U_r V_r^\top`).
    """
    return _NuclearNorm.apply(w)[0]


def _networks(networks, task_names) -> dict[str, nn.Module]:
    if isinstance(task_names, str):  # would be read letter by letter: "price" -> p, r, i, c, e
        raise TypeError(
            "SoftSharing: task_names must be a sequence of task names, not the string "
            f"{task_names!r}"
        )
    if isinstance(networks, Mapping):
        if task_names is not None and list(task_names) != list(networks):
            raise ValueError(
                f"SoftSharing: task_names {list(task_names)} differ from the keys of the "
                f"networks dict {list(networks)}, which name the tasks; drop task_names"
            )
        return dict(networks)
    if task_names is None:
        raise ValueError("pass task_names when networks is a module or a list of modules")
    names = check_names(task_names, "task_names", "SoftSharing")  # a repeated name dropped a net
    if isinstance(networks, nn.Module):  # a template, copied once per task
        return {t: copy.deepcopy(networks) for t in names}
    networks = list(networks)
    if len(networks) != len(names):
        raise ValueError(f"got {len(networks)} networks for {len(names)} task names {names}")
    return dict(zip(names, networks, strict=True))


class SoftSharing(MultiTaskModule):
    """One network per task; corresponding parameters are pulled together.

    ``forward(x)`` returns ``{t: networks[t](x)}``. Nothing is shared:
    :meth:`shared_parameters` is empty and every parameter belongs to its
    task. Parameters with the same name and shape in every network are
    *corresponding*; :meth:`regularization` (to be passed to
    :func:`multitask.nn.mtl_backward` as ``extra_loss``) couples them:

    - ``"l2"``: ``strength * sum_p sum_{s<t} ||theta_s^p - theta_t^p||^2``, the
      squared distance of Duong et al. for two tasks, summed over task pairs
      (zero when the networks are identical);
    - ``"trace"``: ``strength * sum_p ||[vec theta_1^p, ..., vec theta_T^p]||_*``,
      the trace (nuclear) norm of each parameter stacked over tasks with the
      task axis last (Yang & Hospedales' last-axis flattening), which favours
      low-rank, i.e. linearly shared, task weights. Its gradient is the
      minimum-norm subgradient (:func:`nuclear_norm`): identical networks (the
      copies of a template) get identical gradients and stay identical.

    Parameters
    ----------
    networks : dict of str -> nn.Module, list of nn.Module, or nn.Module
        One network per task (keys give the task names), a list (with
        ``task_names``), or one template deep-copied for every task (the copies
        start identical).
    task_names : sequence of str, optional
        Needed unless ``networks`` is a dict (then None, or the dict's keys in order); each
        name once. One string is a TypeError (not read as its letters).
    coupling : {"l2", "trace"}, default="l2"
    strength : float, default=1e-3

    References
    ----------
    Duong, Cohn, Bird & Cook, "Low Resource Dependency Parsing: Cross-lingual
    Parameter Sharing in a Neural Network Parser", ACL 2015, Sec. 3 (L2
    coupling). Yang & Hospedales, "Trace Norm Regularised Deep Multi-Task
    Learning", ICLR Workshop 2017, Sec. 2 (tensor trace norm, last axis
    flattening). Ruder, arXiv:1706.05098, 2017, Sec. 3.2.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from multitask.nn.architectures import SoftSharing
    >>> model = SoftSharing(nn.Linear(3, 1), task_names=["a", "b"], strength=0.1)
    >>> {task: tuple(y.shape) for task, y in model(torch.randn(5, 3)).items()}
    {'a': (5, 1), 'b': (5, 1)}
    >>> model.coupled_names, list(model.shared_parameters())
    (('weight', 'bias'), [])
    >>> model.regularization().item()  # the copies of the template start identical
    0.0
    >>> with torch.no_grad():
    ...     _ = model.networks["b"].bias.add_(1.0)
    >>> round(model.regularization().item(), 6)  # 0.1 * ||bias_a - bias_b||^2
    0.1
    """

    def __init__(
        self,
        networks: Mapping[str, nn.Module] | Sequence[nn.Module] | nn.Module,
        task_names: Sequence[str] | None = None,
        *,
        coupling: str = "l2",
        strength: float = 1e-3,
    ) -> None:
        super().__init__()
        strength = check_real(strength, "strength", "SoftSharing", low=0.0)
        if coupling not in COUPLINGS:
            raise ValueError(f"unknown coupling {coupling!r}; use one of {COUPLINGS}")
        nets = _networks(networks, task_names)
        if len(nets) < 2:
            raise ValueError(f"soft sharing needs at least 2 tasks, got {list(nets)}")
        self.task_names = check_heads(nets)  # names nn.ModuleDict can hold, modules
        self.networks = nn.ModuleDict(nets)
        self.coupling = coupling
        self.strength = strength
        self.coupled_names = self._corresponding()
        check_partition(self)  # one module given for two roles

    def _corresponding(self) -> tuple[str, ...]:
        params = [dict(net.named_parameters()) for net in self.networks.values()]
        first = params[0]
        names = tuple(
            n for n, p in first.items() if all(n in q and q[n].shape == p.shape for q in params)
        )
        if not names:
            raise ValueError("the task networks have no parameter of the same name and shape")
        return names

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return {t: net(x) for t, net in self.networks.items()}

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return iter(())

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        if task not in self.networks:
            raise KeyError(f"unknown task {task!r}; valid task names are {list(self.task_names)}")
        return self.networks[task].parameters()

    def stacked(self, name: str) -> Tensor:
        """Parameter ``name`` of every network, flattened: shape ``(n_values, n_tasks)``."""
        return torch.stack(
            [dict(net.named_parameters())[name].reshape(-1) for net in self.networks.values()], 1
        )

    def regularization(self) -> Tensor:
        """The coupling penalty, a scalar in the graph of every network."""
        total = 0.0
        for name in self.coupled_names:
            w = self.stacked(name)  # (n_values, T)
            if self.coupling == "l2":
                # sum_{s<t} ||w_s - w_t||^2 = T sum_t ||d_t - mean(d)||^2 with
                # d_t = w_t - w_1 (exactly 0 for identical networks, never < 0)
                d = w - w[:, :1]
                total = total + w.shape[1] * (d - d.mean(1, keepdim=True)).pow(2).sum()
            else:
                total = total + nuclear_norm(w)
        return self.strength * total
