"""Deep relationship networks / multilinear relationship networks (Long et al., NIPS 2017)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

import torch
from torch import Tensor, nn

from ..._params import check_bool, check_int, check_real
from ._base import MultiTaskModule
from ._layers import check_heads, check_partition, parameters_of


def _modes(w: Tensor, mats: dict[int, Tensor]) -> Tensor:
    """Mode products ``w x_k mats[k]`` (each ``mats[k]`` symmetric), one mode at a time."""
    for k, m in mats.items():
        w = torch.tensordot(w, m, dims=([k], [0])).movedim(-1, k)
    return w


def tensor_normal_quadratic(w: Tensor, precisions: tuple[Tensor, Tensor, Tensor]) -> Tensor:
    r"""Quadratic form :math:`\mathrm{vec}(W)^\top \Sigma^{-1} \mathrm{vec}(W)`.

    Here :math:`\Sigma = \Sigma_1 \otimes \Sigma_2 \otimes \Sigma_3`.

    Parameters
    ----------
    w : Tensor of shape (d1, d2, d3)
    precisions : three Tensors of shapes (d1, d1), (d2, d2), (d3, d3)
        The inverses of the three mode covariances.
    """
    return (_modes(w, dict(enumerate(precisions))) * w).sum()


def flip_flop(
    w: Tensor,
    covariances: tuple[Tensor, Tensor, Tensor],
    epsilon: float = 1e-3,
    normalize: bool = True,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""One flip-flop sweep of the tensor-normal covariance updates (MRN, Eq. 9).

    With :math:`D = d_1 d_2 d_3` and :math:`W_{(k)}` the mode-``k`` unfolding,

    .. math::
        \Sigma_1 &\leftarrow \tfrac{1}{d_2 d_3}W_{(1)} (\Sigma_3 \otimes\Sigma_2)^{-1}W_{(1)}^\top
                   + \epsilon I_{d_1},\\
        \Sigma_2 &\leftarrow \tfrac{1}{d_1 d_3}W_{(2)} (\Sigma_3 \otimes\Sigma_1)^{-1}W_{(2)}^\top
                   + \epsilon I_{d_2},\\
        \Sigma_3 &\leftarrow \tfrac{1}{d_1 d_2}W_{(3)} (\Sigma_2 \otimes\Sigma_1)^{-1}W_{(3)}^\top
                   + \epsilon I_{d_3},

    each update using the latest values of the others. The Kronecker products are
    never formed (mode products instead). The product
    :math:`\Sigma_1 \otimes \Sigma_2 \otimes \Sigma_3` is invariant to moving a
    scale between factors; with ``normalize=True`` the feature covariances are
    rescaled to trace ``d_1`` and ``d_2`` right after their update, so the scale
    lives in the task covariance.

    Parameters
    ----------
    w : Tensor of shape (d1, d2, d3)
        Stacked weights: input features x output features x tasks.
    covariances : three Tensors of shapes (d1, d1), (d2, d2), (d3, d3)
    epsilon : float
        Ridge added to every update (the paper's regulariser, keeps the inverses bounded).
    normalize : bool

    Returns
    -------
    tuple of three Tensors, the updated covariances.
    """
    d1, d2, d3 = w.shape
    s1, s2, s3 = covariances
    inv = torch.linalg.inv

    def gram(mode: int, others: dict[int, Tensor]) -> Tensor:  # W_(k) (x others^-1) W_(k)^T
        v = _modes(w, {k: inv(c) for k, c in others.items()})
        return torch.tensordot(v, w, dims=([k for k in range(3) if k != mode],) * 2)

    s1 = gram(0, {1: s2, 2: s3}) / (d2 * d3)
    s1 = s1 + epsilon * torch.eye(d1, dtype=w.dtype, device=w.device)
    if normalize:
        s1 = s1 * (d1 / torch.diagonal(s1).sum())
    s2 = gram(1, {0: s1, 2: s3}) / (d1 * d3)
    s2 = s2 + epsilon * torch.eye(d2, dtype=w.dtype, device=w.device)
    if normalize:
        s2 = s2 * (d2 / torch.diagonal(s2).sum())
    s3 = gram(2, {0: s1, 1: s2}) / (d1 * d2)
    s3 = s3 + epsilon * torch.eye(d3, dtype=w.dtype, device=w.device)
    return s1, s2, s3


class DeepRelationshipNetwork(MultiTaskModule):
    r"""Shared trunk, task-specific layers tied by a tensor-normal prior (MRN).

    The trunk is shared. Each task has its own head; the heads must have the same
    structure, and the weights of their ``nn.Linear`` layers (matched by order)
    are stacked into tensors :math:`\mathcal W^{\ell}` of shape
    ``(in_features, out_features, n_tasks)`` under the prior
    :math:`\mathcal W^{\ell} \sim \mathcal{TN}(0, \Sigma_1^\ell, \Sigma_2^\ell, \Sigma_3^\ell)`
    (input-feature, output-feature and task covariances; Eq. 5 of the paper).
    The prior's negative log density (up to the :math:`2\pi` constant), summed
    over the layers, is

    .. math::
        P(\mathcal W) = \tfrac12 \mathrm{vec}(\mathcal W)^\top
        (\Sigma_1 \otimes \Sigma_2 \otimes \Sigma_3)^{-1}
        \mathrm{vec}(\mathcal W) + \sum_k \tfrac{D}{2 d_k} \ln|\Sigma_k|,

    and :meth:`update_covariances` runs the closed-form flip-flop updates
    (:func:`flip_flop`, Eq. 9) on the current weights, as the paper alternates
    them with SGD on the network weights (call it every few hundred steps).

    **Scaling.** The paper's MAP objective (Eqs. 6-7) is the loss *summed* over all
    ``N`` training examples plus :math:`P` once. Dividing it by ``N`` gives what a
    mini-batch step estimates when the task losses are *means* over the batch:
    ``mean batch loss + P / N``. So :meth:`regularization` returns
    ``prior_weight * P / n_samples``: with ``n_samples=N`` (the number of training
    examples) and ``prior_weight=1`` it is the paper's objective, per example;
    other values of ``prior_weight`` trade the prior off against the data. With
    ``n_samples=None`` nothing is divided (``prior_weight * P``, the behaviour of
    earlier versions): then ``prior_weight`` must carry the ``1/N`` itself.

    Parameters
    ----------
    trunk : nn.Module
        Shared feature extractor (``nn.Identity()`` for none).
    heads : dict of str to nn.Module
        Task-specific layers of each task; same structure for every task.
    prior_weight : float, default=1e-3
        Multiplier of the prior term (1 with ``n_samples`` = the paper's objective); finite
        and >= 0 (0: no prior).
    epsilon : float, default=1e-3
        Ridge of the covariance updates, finite and > 0 (it keeps them invertible).
    normalize : bool, default=True
        Trace-normalise the feature covariances after each update (see :func:`flip_flop`).
    n_samples : int, optional
        Number of training examples the mean losses are taken over; the prior
        is divided by it (see Scaling). None: not divided.

    Attributes
    ----------
    task_covariance : Tensor of shape (n_tasks, n_tasks)
        Task covariance of the last prior layer (the learned task relationship).

    References
    ----------
    Long, M., Cao, Z., Wang, J., Yu, P. S. "Learning Multiple Tasks with
    Multilinear Relationship Networks." NIPS 2017, Eqs. (5)-(9); the MAP
    objective is Eqs. (6)-(7).

    Examples
    --------
    Three tasks whose heads' weights are ``W``, ``W`` and ``-W``: the flip-flop updates find
    the first two positively and the third negatively related:

    >>> import torch
    >>> from torch import nn
    >>> from multitask.nn.architectures import DeepRelationshipNetwork
    >>> _ = torch.manual_seed(0)
    >>> heads = {t: nn.Linear(8, 3) for t in ("a", "b", "c")}
    >>> with torch.no_grad():
    ...     _ = heads["b"].weight.copy_(heads["a"].weight)
    ...     _ = heads["c"].weight.copy_(-heads["a"].weight)
    >>> model = DeepRelationshipNetwork(nn.Linear(4, 8), heads, n_samples=1000)
    >>> {task: tuple(y.shape) for task, y in model(torch.randn(5, 4)).items()}
    {'a': (5, 3), 'b': (5, 3), 'c': (5, 3)}
    >>> model.task_covariance  # identity before any update
    tensor([[1., 0., 0.],
            [0., 1., 0.],
            [0., 0., 1.]])
    >>> model.update_covariances(n_iter=5)
    >>> model.task_covariance.sign()
    tensor([[ 1.,  1., -1.],
            [ 1.,  1., -1.],
            [-1., -1.,  1.]])
    >>> torch.allclose(model.regularization(), 1e-3 * model.prior() / 1000)
    True
    """

    def __init__(
        self,
        trunk: nn.Module,
        heads: Mapping[str, nn.Module],
        prior_weight: float = 1e-3,
        epsilon: float = 1e-3,
        normalize: bool = True,
        n_samples: int | None = None,
    ):
        super().__init__()
        owner = "DeepRelationshipNetwork"
        prior_weight = check_real(prior_weight, "prior_weight", owner, low=0.0)
        epsilon = check_real(epsilon, "epsilon", owner, low=0.0, low_open=True)
        normalize = check_bool(normalize, "normalize", owner)
        if n_samples is not None:
            n_samples = check_int(n_samples, "n_samples", owner)
        if n_samples is not None and n_samples < 1:
            raise ValueError(
                f"n_samples={n_samples}: pass the number of training examples (>= 1), or None"
            )
        self.task_names = check_heads(heads)
        self.trunk = trunk
        self.heads = nn.ModuleDict(heads)
        self.prior_weight = prior_weight
        self.epsilon = epsilon
        self.normalize = normalize
        self.n_samples = n_samples
        shapes = self._linear_shapes()
        if not shapes:
            raise ValueError("the heads hold no nn.Linear layer: nothing to put the prior on")
        n_tasks = len(self.task_names)
        for i, (d1, d2) in enumerate(shapes):
            for name, d in (("in", d1), ("out", d2), ("task", n_tasks)):
                self.register_buffer(f"sigma_{name}_{i}", torch.eye(d))
        self.n_prior_layers = len(shapes)
        check_partition(self)  # one module given for two roles

    def _linears(self, task: str) -> list[nn.Linear]:
        return [m for m in self.heads[task].modules() if isinstance(m, nn.Linear)]

    def _linear_shapes(self) -> list[tuple[int, int]]:
        per_task = {
            t: [(m.in_features, m.out_features) for m in self._linears(t)] for t in self.heads
        }
        first = per_task[self.task_names[0]]
        for t, shapes in per_task.items():
            if shapes != first:
                raise ValueError(
                    f"head of task {t!r} has linear layers {shapes}, but task "
                    f"{self.task_names[0]!r} has {first}; MRN needs identical head structures"
                )
        return first

    def stacked_weight(self, layer: int) -> Tensor:
        """Weights of prior layer ``layer`` stacked as ``(in_features, out_features, n_tasks)``."""
        return torch.stack([self._linears(t)[layer].weight.T for t in self.task_names], dim=-1)

    def covariances(self, layer: int) -> tuple[Tensor, Tensor, Tensor]:
        """(input-feature, output-feature, task) covariances of prior layer ``layer``."""
        return tuple(getattr(self, f"sigma_{n}_{layer}") for n in ("in", "out", "task"))

    @property
    def task_covariance(self) -> Tensor:
        return self.covariances(self.n_prior_layers - 1)[2]

    @torch.no_grad()
    def update_covariances(self, n_iter: int = 1) -> None:
        """Run ``n_iter`` flip-flop sweeps on every prior layer (weights held fixed)."""
        for layer in range(self.n_prior_layers):
            w = self.stacked_weight(layer).detach()
            covs = self.covariances(layer)
            for _ in range(n_iter):
                covs = flip_flop(w, covs, self.epsilon, self.normalize)
            for name, cov in zip(("in", "out", "task"), covs, strict=True):
                getattr(self, f"sigma_{name}_{layer}").copy_(cov)

    def prior(self) -> Tensor:
        """The prior's negative log density :math:`P` over all prior layers (no scaling)."""
        total = 0.0
        for layer in range(self.n_prior_layers):
            w = self.stacked_weight(layer)
            covs = self.covariances(layer)
            quad = tensor_normal_quadratic(w, tuple(torch.linalg.inv(c) for c in covs))
            size = math.prod(w.shape)
            logdets = sum(size / d * torch.logdet(c) for d, c in zip(w.shape, covs, strict=True))
            total = total + 0.5 * (quad + logdets)
        return total

    def regularization(self) -> Tensor:
        """``prior_weight * prior() / n_samples`` (see Scaling in the class docstring)."""
        return self.prior_weight / (self.n_samples or 1) * self.prior()

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        h = self.trunk(x)
        self.representation = h
        return {t: self.heads[t](h) for t in self.task_names}

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.trunk.parameters()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        return parameters_of([self.heads[task]])
