"""DB-MTL: dual balancing of loss scales and gradient magnitudes (Lin et al. 2023)."""

from __future__ import annotations

import math
from array import array

import numpy as np
import torch
from torch import Tensor

from multitask._params import check_real
from multitask.nn.weighting._base import HOST_DTYPES, LossWeighting, check_losses, check_n_tasks

__all__ = ["DBMTL"]

_ARRAY_CODE = {torch.float32: "f", torch.float64: "d"}  # host dtypes as array typecodes


def _shifted(values: list[float], eps: float, dtype: torch.dtype) -> list[float]:
    """``v + eps`` for each value as torch forms ``tensor + eps`` in ``dtype`` (a host dtype):
    ``eps`` rounded to the dtype first (a Python scalar takes the tensor's dtype), then the
    sum rounded."""
    if dtype == torch.float64:
        return [v + eps for v in values]
    (eps,) = array("f", [eps])
    return array("f", [v + eps for v in values]).tolist()


def _host_tensor(values: list[float], dtype: torch.dtype) -> Tensor:
    """A new ``(len(values),)`` tensor of ``dtype`` (a host dtype) holding ``values``, each
    rounded to it (C's conversion: to nearest, inf beyond the range; one torch call:
    ``torch.tensor`` of a list costs twice as much inside the step)."""
    return torch.frombuffer(array(_ARRAY_CODE[dtype], values), dtype=dtype)


class DBMTL(LossWeighting):
    """Log-transformed losses plus max-norm gradient balancing.

    Loss balancing: every task minimises ``log(L_t + eps)``; task-specific
    parameters get ``grad log L_t`` (:meth:`forward` returns
    ``sum_t log(L_t + eps)``). Gradient balancing on the shared parameters,
    at step ``k`` with ``g_t = grad_shared log(L_t + eps) = J_t / (L_t + eps)``::

        beta_k  = beta / k^sigma
        gh_t   <- beta_k gh_t + (1 - beta_k) g_t        (gh initialised at 0)
        update  = sum_t (max_s ||gh_s|| / ||gh_t||) gh_t

    ``needs_jacobian = True``: :func:`multitask.nn.mtl_backward` hands the
    Jacobian to :meth:`observe` and writes :meth:`shared_gradient` into the
    shared ``.grad``.

    Told which tasks are present (:meth:`present_tasks`: a task sampler drew some of the
    tasks, or a batch has no label for one), a step is DB-MTL on them alone: their moving
    averages are updated, the max norm and the factors ``alpha`` run over them, and the
    absent tasks' averages are left as they are and not applied (``alpha_t = 0``). The step
    count ``k`` of ``beta_k`` counts every step.

    Parameters
    ----------
    n_tasks : int
    beta : float, default=0.9
        Moving-average coefficient, ``0 <= beta < 1`` (1 would keep the average at 0).
    sigma : float, default=0.0
        Decay exponent of the moving-average coefficient ``beta_k`` (0: a
        constant ``beta``, the authors' default in LibMTL); finite, ``>= 0``.
    eps : float, default=1e-8
        Added to the losses inside the logarithm; finite and ``> 0`` (0 would make a zero
        loss, a task without labels in the batch, ``log 0 = -inf`` and its gradient inf).

    References
    ----------
    Lin, Jiang, Ye, Zhang, Chen, Chen, Liu & Kwok, "Dual-Balancing for
    Multi-Task Learning", arXiv:2308.12029, 2023, Sec. 3 (Algorithm 1).

    Examples
    --------
    >>> import torch
    >>> from multitask.nn.weighting import DBMTL
    >>> dbmtl = DBMTL(2, beta=0.5)
    >>> losses = torch.tensor([1.0, 0.25])
    >>> J = torch.tensor([[2.0, 0.0], [0.0, 1.0]])  # gradients of the raw losses
    >>> dbmtl.observe(losses, J)  # g_t = J_t / L_t = (2, 0), (0, 4); gh = 0.5 g
    >>> dbmtl.average
    tensor([[1., 0.],
            [0., 2.]])
    >>> dbmtl.weights()  # max_s ||gh_s|| / ||gh_t||
    tensor([2., 1.])
    >>> dbmtl.shared_gradient(losses, J)  # both tasks' terms at the larger norm, 2
    tensor([2., 2.])
    >>> round(dbmtl(losses).item(), 4)  # sum_t log(L_t + eps): log 0.25
    -1.3863
    """

    absent_tasks_reason = (
        "the absent task's stale moving-average gradient would still be applied, at the "
        "largest task's norm"
    )
    drops_absent_rows = True  # (the present tasks' averages and factors alone: see above)

    _loss_floor = 0.0
    loss_floor_reason = (
        "it balances the gradients of log(L_t + eps), which has no value for a negative loss"
    )

    needs_jacobian = True
    #: :meth:`shared_gradient` returns a tensor it makes at each call, used nowhere else:
    #: ``mtl_backward`` may make the shared ``.grad`` views of it instead of copying it
    _shared_gradient_is_new = True

    def __init__(self, n_tasks: int, beta: float = 0.9, sigma: float = 0.0, eps: float = 1e-8):
        super().__init__()
        n_tasks = check_n_tasks(n_tasks, "DBMTL")
        # beta = 1 would keep the average at its initial 0 for good (1 - beta_k = 0)
        beta = check_real(beta, "beta", "DBMTL", low=0.0, high=1.0, high_open=True)
        sigma = check_real(sigma, "sigma", "DBMTL", low=0.0)
        # eps = 0 would make a zero loss (a task without labels in the batch) log 0 = -inf
        eps = check_real(eps, "eps", "DBMTL", low=0.0, low_open=True)
        self.n_tasks, self.beta, self.sigma, self.eps = n_tasks, beta, sigma, eps
        self.register_buffer("n_steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("average", None)  # (T, n_params), created at the first step
        self.register_buffer("alpha", torch.ones(n_tasks))

    def observe(self, losses: Tensor, jacobian: Tensor) -> None:
        """Update the moving average of the log-loss gradients.

        Two passes over ``(T, n)`` arrays for the average (a scaled copy, then one fused
        multiply-add of the Jacobian with per-task coefficients) and one for the norms. A task
        whose new average is not finite (a non-finite loss or Jacobian, e.g. a step a gradient
        scaler skips) keeps its previous one: the average would stay NaN for good.

        Off the CPU the new average is a new tensor (no host synchronisation). On the CPU
        (:meth:`_observe_host`) it is written into a second tensor the module keeps, the two
        taking turns, and the ``(T,)``-sized steps run on the host (the factors ``alpha`` in
        Python floats, the coefficients of a Jacobian that is not yet ``g`` in numpy).
        """
        self._observe(losses, jacobian, terms=False)

    def _observe_term_gradients(self, losses: Tensor, gradients: Tensor) -> None:
        """:meth:`observe` given ``g_t = grad log(L_t + eps) = J_t / (L_t + eps)`` itself.

        ``mtl_backward``'s two-stage step forms these rows at no cost (the heads' cotangents
        scaled by :meth:`_closed_form_gradients`), and the update is then ONE pass,
        ``gh <- lerp(gh, g, 1 - beta_k)``, instead of two.
        """
        self._observe(losses, gradients, terms=True)

    def _observe(self, losses: Tensor, rows: Tensor, terms: bool) -> None:
        """:meth:`observe` (``terms`` False: ``rows`` is ``J``) or
        :meth:`_observe_term_gradients` (``terms`` True: ``rows`` is ``g``)."""
        check_losses(losses, self.n_tasks, self)
        J = rows.detach()
        avg = self._buffers["average"]  # (the buffers are read from the dict: every step)
        if avg is None or avg.shape != J.shape:
            self.average = torch.zeros_like(J)
            self.n_steps.zero_()
        if self._present is not None:
            return self._observe_present(losses.detach(), J, terms)
        out = self._spare_for(J, losses)
        if out is not None:
            return self._observe_host(losses.detach(), J, out, terms)
        self.n_steps.add_(1)
        beta_k = self._beta_k(J)
        if terms:  # gh <- gh + (1 - beta_k) (g - gh)
            avg = self.average
            weight = (1 - beta_k).to(avg.dtype) if isinstance(beta_k, Tensor) else 1 - beta_k
            average = torch.lerp(avg, J.to(avg.dtype), weight)
        else:  # gh <- beta_k gh + (1 - beta_k) J_t / (L_t + eps), row by row
            coef = (1 - beta_k) / (losses.detach().to(J.dtype) + self.eps)  # (T,)
            average = torch.mul(self.average, beta_k).addcmul_(J, coef[:, None])
        norms = torch.linalg.vector_norm(average, dim=1)  # (T,)
        ok = torch.isfinite(norms)
        self.average = torch.where(ok[:, None], average, self.average)
        norms = torch.where(ok, norms, torch.linalg.vector_norm(self.average, dim=1))
        self.alpha = norms.max() / (norms + self.eps)
        return None

    def _observe_present(self, losses: Tensor, J: Tensor, terms: bool) -> None:
        """:meth:`_observe` on the present tasks' rows alone (:meth:`present_tasks`): their
        averages updated into a new tensor, the absent tasks' rows copied as they were, and
        ``alpha`` 0 for the absent tasks."""
        avg = self.average
        if not self._present:  # no task present: nothing to update, nothing applied
            self.alpha = torch.zeros_like(self.alpha)
            return None
        idx = self._present_index(J)
        self.n_steps.add_(1)
        beta_k = self._beta_k(J)
        previous, rows = avg.index_select(0, idx), J.index_select(0, idx).to(avg.dtype)
        if terms:
            weight = (1 - beta_k).to(avg.dtype) if isinstance(beta_k, Tensor) else 1 - beta_k
            new = torch.lerp(previous, rows, weight)
        else:
            coef = (1 - beta_k) / (losses.index_select(0, idx.to(losses.device)) + self.eps)
            new = torch.mul(previous, beta_k).addcmul_(rows, coef.to(rows)[:, None])
        norms = torch.linalg.vector_norm(new, dim=1)
        ok = torch.isfinite(norms)  # a task with a non-finite new average keeps its previous
        new = torch.where(ok[:, None], new, previous)
        norms = torch.where(ok, norms, torch.linalg.vector_norm(previous, dim=1))
        self.average = avg.clone().index_copy_(0, idx, new)
        alpha = torch.zeros_like(self.alpha, dtype=norms.dtype)
        self.alpha = alpha.index_copy_(0, idx.to(alpha.device), norms.max() / (norms + self.eps))
        return None

    def _observe_host(self, losses: Tensor, J: Tensor, out: Tensor, terms: bool) -> None:
        """:meth:`_observe` on the CPU, the new average written into ``out``.

        ``out`` is the previous step's average (:meth:`_spare_for`): a fresh ``(T, n)``
        tensor each step cost hundreds of page faults a step at T = 5 on the speed benchmark.
        Like an optimizer's state, ``average`` (and a state dict holding it) therefore
        changes in memory: a copy to keep across steps must be a clone. The finiteness test
        and ``alpha`` are Python floats, each operation rounded to the dtype (the same numbers
        as the device path's torch operations, which round each correctly). Inside the speed
        benchmark's step a numpy or torch call on a ``(T,)`` array costs 30-80 us, its code
        out of the caches after the step's GEMMs; the interpreter's arithmetic a few.
        """
        buffers = self._buffers  # read and written directly: nn.Module's attribute hooks
        # cost microseconds each, several times that after the step's GEMMs
        steps = buffers["n_steps"].add_(1)  # (29 us inside the step; numpy's in-place add 65)
        beta_k = self.beta if self.sigma == 0 else self.beta / int(steps.numpy()) ** self.sigma
        previous = buffers["average"]
        if terms:
            J = J if J.dtype == out.dtype else J.to(out.dtype)
            average = torch.lerp(previous, J, 1 - beta_k, out=out)
        else:
            L = losses.numpy().astype(J.numpy().dtype, copy=False)  # as the device path
            # as torch rounds (1 - beta_k) / x: a reciprocal, then a product
            coef = torch.from_numpy(np.reciprocal(L + self.eps) * (1 - beta_k))[:, None]
            average = torch.mul(previous, beta_k, out=out).addcmul_(J, coef)  # (T, n)
        norms = torch.linalg.vector_norm(average, dim=1).numpy().tolist()  # (T,)
        if all(map(math.isfinite, norms)):
            self.__dict__["_spare"] = previous  # the next step's output
        else:  # the tasks with a non-finite new average keep their previous one
            ok = torch.tensor(list(map(math.isfinite, norms)))
            average = torch.where(ok[:, None], average, previous)
            norms = torch.linalg.vector_norm(average, dim=1).numpy().tolist()
        buffers["average"] = average  # a tensor as the buffer was: what __setattr__ would do
        # max_s ||gh_s|| / (||gh_t|| + eps), each operation rounded to the dtype as torch's
        shifted = _shifted(norms, self.eps, average.dtype)
        if all(shifted):
            top = max(norms)
            buffers["alpha"] = _host_tensor([top / d for d in shifted], average.dtype)
        else:  # a zero average with an eps float32 rounds to 0 (e.g. 1e-300): torch's inf or
            # NaN (Python would raise)
            norms = torch.tensor(norms, dtype=average.dtype)
            buffers["alpha"] = norms.max() / (norms + self.eps)
        return None

    def _spare_for(self, J: Tensor, losses: Tensor) -> Tensor | None:
        """The tensor :meth:`_observe_host` writes the new average into: the previous step's
        average, or a new tensor on the first step or after a change of shape, dtype or
        device. None (the device path) off the CPU, in inference mode, for a dtype other
        than float32 / float64."""
        avg, host = self._buffers["average"], (torch.float32, torch.float64)
        if (
            not J.is_cpu
            or not avg.is_cpu
            or not losses.is_cpu
            or J.dtype not in host
            or avg.dtype not in host
            or losses.dtype not in host
            or torch.is_inference_mode_enabled()
            or avg.is_inference()
        ):
            return None
        spare = self.__dict__.get("_spare")
        if (
            spare is None
            or spare.shape != avg.shape
            or spare.dtype != avg.dtype
            or not spare.is_cpu
            or spare.is_inference()
            or spare.untyped_storage().data_ptr() == avg.untyped_storage().data_ptr()
        ):
            spare = self.__dict__["_spare"] = torch.empty_like(avg)
        return spare

    def _beta_k(self, like: Tensor) -> float | Tensor:
        """``beta / k^sigma``: a Python float when ``sigma = 0`` or on the CPU (no host sync)."""
        if self.sigma == 0:
            return self.beta
        if self.n_steps.device.type == "cpu":
            return self.beta / int(self.n_steps.numpy()) ** self.sigma
        return self.beta / self.n_steps.to(like.dtype) ** self.sigma

    def shared_gradient(self, losses: Tensor, jacobian: Tensor) -> Tensor:
        """``sum_t alpha_t gh_t``, shape ``(n_params,)``."""
        buffers = self._buffers
        return buffers["alpha"] @ buffers["average"]

    def forward(self, losses: Tensor) -> Tensor:
        """``sum_t log(L_t + eps)``; inside :meth:`present_tasks`, over the present tasks.

        Where no gradient is asked for (``mtl_backward``'s step reads ``d / d L`` in closed
        form) and the losses are on the CPU, summed in Python floats and rounded once to the
        dtype, instead of three torch calls (80 us inside the step; this about half). It may
        differ from torch's ``log`` and ``sum``, which round each term, by an ulp of the
        terms' magnitudes.
        """
        check_losses(losses, self.n_tasks, self)
        mask = self._present_mask(losses)
        if mask is None:
            host = self._host_total(losses)
            return torch.log(losses + self.eps).sum() if host is None else host
        # the log of 1 where absent, then 0: no 0 * inf in the gradient when L + eps is 0
        return torch.where(mask, torch.log(torch.where(mask, losses, 1.0) + self.eps), 0.0).sum()

    def _host_total(self, losses: Tensor) -> Tensor | None:
        """:meth:`forward`'s sum in Python floats, or None (a gradient asked for, not on the
        CPU, another dtype, or a term whose log Python would not take)."""
        if (
            (losses.requires_grad and torch.is_grad_enabled())
            or not losses.is_cpu
            or losses.dtype not in HOST_DTYPES
        ):
            return None
        shifted = _shifted(losses.detach().numpy().tolist(), self.eps, losses.dtype)
        if not all(d > 0 for d in shifted):  # (0: torch's -inf; NaN: torch's NaN)
            return None
        return torch.scalar_tensor(math.fsum(map(math.log, shifted)), dtype=losses.dtype)

    def _closed_form_gradients(self, losses: Tensor, aux: None) -> tuple[Tensor, list]:
        """``d forward(L) / d L = 1 / (L_t + eps)``, shape ``(n_tasks,)``, and no parameters:
        ``mtl_backward``'s two-stage step reads it instead of differentiating :meth:`forward`
        (the same operations as autograd's, so the same numbers)."""
        if self._present is not None:  # 0 for an absent task (forward's where)
            mask = self._present_mask(losses)
            return torch.where(mask, 1 / (losses.detach() + self.eps), 0.0), []
        if losses.is_cpu and losses.dtype in HOST_DTYPES:
            # Python floats, each operation rounded to the dtype: torch rounds the sum and the
            # reciprocal correctly (IEEE), so the same numbers (two torch calls, or numpy's,
            # cost 70-80 us inside the step)
            shifted = _shifted(losses.detach().numpy().tolist(), self.eps, losses.dtype)
            if all(shifted):  # (1 / 0: torch's inf, Python's error)
                return _host_tensor([1 / d for d in shifted], losses.dtype), []
        return 1 / (losses + self.eps), []

    def weights(self) -> Tensor:
        """Gradient-balancing factors ``alpha_t``, shape ``(n_tasks,)``."""
        return self.alpha

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # the moving average is created at the first step: size it from the checkpoint
        key = prefix + "average"
        if key in state_dict and (
            self.average is None or self.average.shape != state_dict[key].shape
        ):
            self.average = torch.empty_like(state_dict[key])
        steps = state_dict.get(prefix + "n_steps")
        if key not in state_dict and steps is not None and int(steps) == 0:
            # a state dict from before the first step (no average yet) into a module that has
            # stepped: back to no average, as the checkpoint had (not "missing key average")
            self.average = None
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def reset(self) -> None:
        self.average = None
        self.n_steps.zero_()
        self.alpha = torch.ones_like(self.alpha)
