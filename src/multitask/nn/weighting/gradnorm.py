"""GradNorm (Chen, Badrinarayanan, Lee & Rabinovich 2018)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from multitask._params import check_real
from multitask.nn.weighting._base import LossWeighting, check_losses, check_n_tasks

__all__ = ["GradNorm"]


class GradNorm(LossWeighting):
    """Learn task weights that equalise the tasks' training rates (Alg. 1).

    Per step, with ``J_t`` the gradient of ``L_t`` w.r.t. the chosen shared
    weights ``W``::

        G_t   = w_t ||J_t||                     (gradient norm of w_t L_t)
        r_t   = (L_t / L_t(0)) / mean_s (L_s / L_s(0))
        L_grad = sum_t | G_t - [mean_s G_s] r_t^alpha |   (bracket held constant)

    ``L_t(0)`` is the task's first positive loss: a task without a labelled
    sample in the first batches (a masked loss of 0) records it when it first
    has one, and counts ``L_t / L_t(0) = 1`` until then (a zero ``L_t(0)``
    made every ratio, then the weights, NaN for good before 2026-11-22).

    Told which tasks are present (:meth:`present_tasks`: a task sampler drew some of the
    tasks, or a batch has no label for one), ``L_grad``, ``mean_s G_s`` and ``mean_s (L_s /
    L_s(0))`` run over the present tasks alone: Alg. 1 on them, whose weights get the same
    gradient as those of GradNorm built for them alone. The renormalisation still scales
    all ``T`` weights to sum to ``T``, so the absent tasks' weights keep their proportion
    to the others, and get no gradient.

    How it gets its gradients without touching ``.grad``:
    ``needs_jacobian = True``, so :func:`multitask.nn.mtl_backward` computes
    ``J`` (one batched backward, or by hand from the heads' cotangents for the
    last layer of a :class:`~multitask.nn.architectures.HardSharing` MLP trunk)
    and calls :meth:`observe`, which first
    renormalises ``w`` to sum to ``T`` (in place, no gradient), then returns
    ``L_grad`` built on ``w`` with ``J`` detached. ``mtl_backward``
    backpropagates ``forward(L) + L_grad``; :meth:`forward` uses ``w``
    *detached*, so ``w.grad`` is exactly ``dL_grad/dw`` and the model's
    gradients are those of ``sum_t w_t L_t``. The optimizer then steps ``w``
    with the model; the renormalisation of Alg. 1's last line happens at the
    start of the next step, before ``w`` is used.

    Parameters
    ----------
    n_tasks : int
    alpha : float, default=1.5
        Asymmetry: larger pulls harder towards equal training rates.
    shared_params : "auto", "last", None or iterable of Parameter, default="auto"
        The weights ``W`` whose gradient norms are balanced.

        - ``"auto"`` (default): the paper's choice where the model has one
          last shared layer, all shared parameters otherwise. That is
          ``"last"`` when the model declares ``shared_through_representation``
          (every task reaches the shared parameters only through
          ``representation``, as in
          :class:`~multitask.nn.architectures.HardSharing`, so the layer that
          produces it is the last shared one for every task) and that layer
          is found; None otherwise (MMoE, cross-stitch, a trunk whose graph
          branches above its last parameterised layer).
        - ``"last"``: the shared layer that produces ``model.representation``
          (found in the autograd graph below activations and dropout at each
          step); an error when the model has no such single layer. The paper:
          "W is generally chosen as the last shared layer of weights to save
          on compute" (Sec. 3; Alg. 1 takes ``grad_W``).
        - None: all the model's shared parameters (the default until
          2026-11; the norms, hence the learned weights, differ from the
          paper's configuration).
        - parameters: exactly those.

        Cost on the benchmark's MLP trunk (100-256-256, batch 256; see
        docs/aggregation.md): a step takes about 1.6x / 2.0x / 2.35x an
        equal-weighting step at T = 2 / 5 / 10 on the last layer
        (``mtl_backward`` takes its per-task gradients by hand and the
        model's gradient from one backward), against 1.75x / 2.6-2.8x /
        3.6-3.8x with all shared parameters.

    References
    ----------
    Chen, Badrinarayanan, Lee & Rabinovich, "GradNorm: Gradient Normalization
    for Adaptive Loss Balancing in Deep Multitask Networks", ICML 2018,
    Algorithm 1, eq. 2 and Sec. 3 (the choice of ``W``).

    Examples
    --------
    :func:`multitask.nn.mtl_backward` calls :meth:`observe` with the Jacobian; by hand, with
    task gradients of norms 1 and 3 and equal training rates (the first step, ``r = 1``):

    >>> import torch
    >>> from multitask.nn.weighting import GradNorm
    >>> gradnorm = GradNorm(2, alpha=1.5, shared_params=None)
    >>> optimizer = torch.optim.SGD(gradnorm.parameters(), lr=0.1)
    >>> J = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    >>> L_grad = gradnorm.observe(torch.tensor([1.0, 1.0]), J)
    >>> L_grad.item()  # G = (1, 3), target mean(G) = 2: |1 - 2| + |3 - 2|
    2.0
    >>> L_grad.backward()
    >>> optimizer.step()
    >>> gradnorm.weights()  # w - 0.1 (-1, 3): the smaller gradient gets more weight
    tensor([1.1000, 0.7000])

    The next step renormalises ``w`` to sum to ``T`` and compares training rates: the first
    task's loss halved, so its target ``mean(G) (r_t)^alpha`` is below its ``G_t`` and its
    weight goes down:

    >>> optimizer.zero_grad()
    >>> L_grad = gradnorm.observe(torch.tensor([0.5, 1.0]), J)
    >>> gradnorm.weights()  # (1.1, 0.7) * 2 / 1.8
    tensor([1.2222, 0.7778])
    >>> L_grad.backward()
    >>> gradnorm.task_weights.grad  # sign(G_t - target_t) ||J_t||
    tensor([ 1., -3.])
    """

    absent_tasks_reason = "the absent task's loss ratio L_t / L_t(0) would read 0"
    # told which tasks are present (present_tasks), L_grad, its means and the inverse training
    # rates run over them alone (Alg. 1 on the present tasks); the renormalisation still
    # scales every weight, which keeps the absent tasks' weights in proportion
    drops_absent_rows = True

    _loss_floor = 0.0
    loss_floor_reason = (
        "its targets are powers of the ratio L_t / L_t(0), undefined for a negative loss"
    )

    needs_jacobian = True

    #: On the CPU, the (T,)-sized steps run in numpy (:meth:`_host_loss`); False: in torch, as
    #: on a device (the tests compare the two).
    _host: bool = True

    def __init__(
        self,
        n_tasks: int,
        alpha: float = 1.5,
        shared_params: Iterable[nn.Parameter] | str | None = "auto",
    ) -> None:
        super().__init__()
        n_tasks = check_n_tasks(n_tasks, "GradNorm")
        alpha = check_real(alpha, "alpha", "GradNorm", low=0.0)
        self.n_tasks = n_tasks
        self.alpha = alpha
        self.task_weights = nn.Parameter(torch.ones(n_tasks))
        self.register_buffer("initial_losses", torch.full((n_tasks,), float("nan")))
        if isinstance(shared_params, str) and shared_params not in ("auto", "last"):
            raise ValueError(
                f"shared_params must be 'auto', 'last', None or an iterable of parameters, "
                f"got {shared_params!r}"
            )
        keep = shared_params is None or isinstance(shared_params, str)
        if not keep:
            given = shared_params
            try:
                shared_params = list(shared_params)
            except TypeError:
                shared_params = None
            wrong = shared_params is None or any(not isinstance(p, Tensor) for p in shared_params)
            if wrong:
                raise TypeError(
                    "GradNorm: shared_params must be 'auto', 'last', None or an iterable of "
                    f"parameters, got {given!r}"
                )
            if not shared_params:
                raise ValueError("GradNorm: shared_params is an empty iterable of parameters")
        self.jacobian_params = shared_params

    def observe(self, losses: Tensor, jacobian: Tensor) -> Tensor:
        """GradNorm's loss ``L_grad`` (a function of ``task_weights`` only)."""
        check_losses(losses, self.n_tasks, self)
        J = jacobian.detach()
        if self._on_host(losses, J, self.task_weights):
            return self._host_loss(losses.detach(), J)
        norms = torch.linalg.vector_norm(J, dim=1)  # (T,) ||grad_W L_t||
        w = self.task_weights
        mask = self._present_mask(w)
        with torch.no_grad():
            w.mul_(self.n_tasks / w.sum())
            first = ~(self.initial_losses > 0)  # unset (NaN) or zero so far
            first = first if mask is None else first & mask  # (present tasks only)
            self.initial_losses.copy_(torch.where(first, losses, self.initial_losses))
        g = w * norms  # (T,)
        initial = self.initial_losses
        ratio = torch.where(initial > 0, losses.detach() / initial, 1.0)  # inverse rate, (T,)
        if mask is not None:  # Alg. 1 on the present tasks
            if not self._present:
                return (w * 0).sum()
            idx = self._present_index(g)
            g, ratio = g.index_select(0, idx), ratio.index_select(0, idx)
        target = g.mean().detach() * (ratio / ratio.mean()) ** self.alpha
        return (g - target).abs().sum()

    def _host_loss(self, losses: Tensor, jacobian: Tensor) -> Tensor:
        """:meth:`observe` on the CPU: the ``(T,)``-sized steps in Python floats, one autograd
        node (a torch or numpy call on a ``(T,)`` array costs microseconds, more than its math).

        ``L_grad`` is piecewise linear in ``w`` with the target held constant, so it equals
        ``c^T w + (L_grad - c^T w)`` with ``c_t = sign(G_t - target_t) ||J_t||`` (the gradient
        autograd gives ``|.|``, ``sign(0) = 0``) and the bracket a constant: the same value and
        the same ``w.grad`` from one ``dot``. The norms are BLAS dots of the rows. The
        renormalisation runs on the parameter's memory in numpy (a torch ``mul_`` under
        ``no_grad`` costs about five times as much) and bumps its version counter by hand, so
        autograd still sees the in-place change.
        """
        w = self.task_weights
        wn = w.detach().numpy()  # the parameter's memory
        wn *= self.n_tasks / sum(wn.tolist())
        torch.autograd.graph.increment_version(w)
        wl = wn.tolist()
        initial = self.initial_losses.numpy()  # the buffer's memory: updated in place
        loss = losses.numpy().tolist()  # numpy's tolist: no torch scalar reads
        present = range(len(wl)) if self._present is None else self._present
        for t in present:
            if not initial[t] > 0:  # unset (NaN) or zero so far
                initial[t] = loss[t]
        rows, initial = jacobian.numpy(), initial.tolist()  # (Python floats from here)
        norms = [math.sqrt(max(float(rows[t] @ rows[t]), 0.0)) for t in present]
        g = [wl[t] * n for t, n in zip(present, norms, strict=True)]
        ratio = [loss[t] / initial[t] if initial[t] > 0 else 1.0 for t in present]
        mean_g, mean_ratio = sum(g) / max(len(g), 1), sum(ratio) / max(len(ratio), 1)
        gaps = [a - mean_g * (r / mean_ratio) ** self.alpha for a, r in zip(g, ratio, strict=True)]
        coef = [0.0] * len(wl)  # d L_grad / d w: 0 for an absent task
        for t, gap, n in zip(present, gaps, norms, strict=True):
            coef[t] = ((gap > 0) - (gap < 0)) * n  # sign, 0 at 0
        value = sum(abs(gap) for gap in gaps) - sum(c * a for c, a in zip(coef, wl, strict=True))
        dw = torch.tensor(coef, dtype=w.dtype)
        aux = torch.dot(w, dw) + value
        aux._closed_weight_gradient = dw  # d aux / d w: see _closed_form_gradients
        return aux

    def _closed_form_gradients(self, losses: Tensor, aux: Tensor | None) -> tuple | None:
        """``d forward(L) / d L = w`` and ``d L_grad / d w = c`` (:meth:`_host_loss`), for
        ``mtl_backward``'s two-stage step (no ``autograd.grad`` call; the same numbers as
        autograd's); None for an ``L_grad`` built in torch (the device path)."""
        dw = getattr(aux, "_closed_weight_gradient", None)
        if dw is None:
            return None
        w = self.task_weights.detach().clone()
        mask = self._present_mask(w)
        return (w if mask is None else torch.where(mask, w, 0.0)), [dw]  # absent: d/dL_t 0

    def forward(self, losses: Tensor) -> Tensor:
        """``sum_t w_t L_t`` with ``w`` detached (``w`` learns through ``observe``); inside
        :meth:`present_tasks`, over the present tasks."""
        check_losses(losses, self.n_tasks, self)
        return self._sum_present(self.task_weights.detach() * losses)

    def weights(self) -> Tensor:
        return self.task_weights.detach()

    def reset(self) -> None:
        with torch.no_grad():
            self.task_weights.fill_(1.0)
        self.initial_losses.fill_(float("nan"))
