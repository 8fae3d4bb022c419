"""Auxiliary-task helpers: the gradient reversal layer (Ganin & Lempitsky 2015).

An adversarial auxiliary task (predict the domain, a protected attribute...)
placed behind a gradient reversal layer trains its head normally while
pushing the shared encoder to make the auxiliary target *unpredictable*: the
layer is the identity forward and multiplies the gradient by ``-scale``
backward.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from multitask._params import check_real

__all__ = ["GradientReversal", "ganin_schedule", "grad_reverse"]


class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        # a copy, not a view: an in-place op after the layer (ReLU(inplace=True)) may not
        # modify a view made in a custom Function
        return x.clone()

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return -ctx.scale * grad, None


def grad_reverse(x: Tensor, scale: float = 1.0) -> Tensor:
    """Identity forward; gradient multiplied by ``-scale`` backward.

    References
    ----------
    Ganin & Lempitsky, "Unsupervised Domain Adaptation by Backpropagation",
    ICML 2015, Sec. 3 (the gradient reversal layer).

    Examples
    --------
    >>> import torch
    >>> from multitask.nn.auxiliary import grad_reverse
    >>> x = torch.tensor([1.0, 2.0], requires_grad=True)
    >>> y = grad_reverse(x, scale=0.5)
    >>> y  # the identity forward
    tensor([1., 2.], grad_fn=<...>)
    >>> (3 * y).sum().backward()
    >>> x.grad  # -0.5 * 3
    tensor([-1.5000, -1.5000])
    """
    return _Reverse.apply(x, _check_scale(scale, "grad_reverse"))


def _check_scale(scale, owner: str) -> float:
    """The reversal scale: a finite ``lambda >= 0`` (Ganin & Lempitsky's adaptation factor,
    0 to 1 under their schedule). A negative one would turn the reversal into a plain
    gradient, an infinite or NaN one would make the encoder's gradient non-finite."""
    return check_real(scale, "scale", owner, low=0.0)


class GradientReversal(nn.Module):
    """Module form of :func:`grad_reverse` (put it first in an adversarial head).

    The gradient reversal layer of Ganin & Lempitsky, "Unsupervised Domain Adaptation by
    Backpropagation", ICML 2015, Sec. 3: the identity forward, ``-lambda`` times the
    gradient backward.

    Parameters
    ----------
    scale : float, default=1.0
        The paper's ``lambda``, finite and ``>= 0`` (0: no gradient reaches the encoder
        from the head); change it during training through the attribute (e.g. with
        :func:`ganin_schedule`), which checks it the same way.

    Examples
    --------
    An adversarial head: it learns to predict the domain, while the encoder below the
    reversal gets the opposite of that head's gradient:

    >>> import torch
    >>> from torch import nn
    >>> from multitask.nn.auxiliary import GradientReversal
    >>> _ = torch.manual_seed(0)
    >>> encoder = nn.Linear(4, 3)
    >>> head = nn.Sequential(GradientReversal(scale=1.0), nn.Linear(3, 1))
    >>> head
    Sequential(
      (0): GradientReversal(scale=1.0)
      (1): Linear(in_features=3, out_features=1, bias=True)
    )
    >>> x = torch.randn(5, 4)
    >>> head(encoder(x)).sum().backward()
    >>> reversed_grad = encoder.weight.grad.clone()
    >>> encoder.zero_grad()
    >>> head[1](encoder(x)).sum().backward()  # the same head without the reversal
    >>> torch.allclose(reversed_grad, -encoder.weight.grad)
    True
    """

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale

    @property
    def scale(self) -> float:
        return self._scale

    @scale.setter
    def scale(self, value: float) -> None:
        self._scale = _check_scale(value, "GradientReversal")

    def forward(self, x: Tensor) -> Tensor:
        return grad_reverse(x, self.scale)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


def ganin_schedule(progress: float, gamma: float = 10.0) -> float:
    """``2 / (1 + exp(-gamma p)) - 1``: the reversal scale at training progress ``p`` in [0, 1]
    (``gamma``: finite, ``>= 0``; the paper's 10).

    References
    ----------
    Ganin & Lempitsky, ICML 2015, Sec. 5 (training procedure: the adaptation factor).

    Examples
    --------
    >>> from multitask.nn.auxiliary import ganin_schedule
    >>> [round(ganin_schedule(p), 4) for p in (0.0, 0.1, 0.5, 1.0)]  # 0 at the start, -> 1
    [0.0, 0.4621, 0.9866, 0.9999]
    """
    progress = check_real(progress, "progress", "ganin_schedule", low=0.0, high=1.0)
    gamma = check_real(gamma, "gamma", "ganin_schedule", low=0.0)
    return 2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0
