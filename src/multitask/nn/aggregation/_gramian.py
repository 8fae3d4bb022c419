"""The task Gramian ``J J^T`` of a Jacobian, by the cheapest kernel for its device and size.

On one CPU core a ``(T, P)`` by ``(P, T)`` GEMM with ``T`` tiny and ``P`` large runs far below
peak (MKL, ``P = 91648``, float32: about 80 us at ``T = 2``, 270 us at ``T = 5``, 1.1 ms at
``T = 10``). ``T`` matrix-vector products over the upper triangle, row ``i`` of ``G`` from
``J[i:] @ J[i]`` (numpy's GEMV: ``T (T + 1) / 2`` row reads, symmetry halving the work), cost
about 50, 190 and 600 us there, less than ``T (T + 1) / 2`` separate dots too; from about
20 tasks on the GEMM wins again (:data:`GEMV_MAX_TASKS`). On the CPU the
result is a float64 numpy array, ready for the host solvers; elsewhere one ``J @ J.T`` stays on
the device (:func:`weights`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from . import _graphs, _solvers
from ._checks import check_jacobian

_NUMPY = {torch.float32: np.float32, torch.float64: np.float64}
_NUMPY_DTYPES = tuple(_NUMPY)
#: a Gramian of these is formed in float32: float16 products overflow at 65504 (a (2, 2000)
#: Jacobian of entries about 10 already), which gave MGDA NaN and Nash-MTL or IMTL-G wrong weights
_HALF = (torch.float16, torch.bfloat16)
#: up to this many tasks the Gramian is ``T`` GEMVs; beyond, one GEMM is faster (one core,
#: P = 91648 float32: 2.1 vs 2.1 ms at T = 20, 7.8 vs 5.8 ms at T = 40, 36 vs 18 ms at T = 80)
GEMV_MAX_TASKS = 16
#: up to this many tasks the sequential projections of PCGrad / GradVac run in Python floats
#: on the host; beyond, their vectorised torch path is faster (PCGrad 3.3 vs 2.3 ms and
#: GradVac 10 vs 6 ms at T = 40; 0.6 vs 1.1 ms and 1.8 vs 3.2 ms at T = 20)
PYTHON_LOOP_MAX_TASKS = 24


def host_gramian(jacobian: Tensor) -> np.ndarray:
    """``J J^T`` of a CPU Jacobian as a float64 array of shape ``(n_tasks, n_tasks)``.

    Parameters
    ----------
    jacobian : Tensor of shape (n_tasks, n_params), on the CPU

    Returns
    -------
    G : ndarray of shape (n_tasks, n_tasks), float64 (products accumulated in ``J``'s dtype,
        float32 for float16 and bfloat16).
    """
    J = jacobian.detach()
    if J.dtype in _HALF:
        J = J.float()
    T = J.shape[0]
    if J.dtype not in _NUMPY_DTYPES or T > GEMV_MAX_TASKS:
        G = torch.mm(J, J.T).to(torch.float64).numpy()
        return 0.5 * (G + G.T)  # exactly symmetric, as the GEMV route gives
    rows = J.numpy()
    G = np.empty((T, T))
    for i in range(T):
        G[i, i:] = G[i:, i] = rows[i:] @ rows[i]
    return G


def host_array(gramian: Tensor) -> np.ndarray | None:
    """A CPU Gramian as a float64 numpy array (no copy when it is one already); None elsewhere.

    None also when :func:`._solvers.use_host` says no (the tests force the device code so), and
    for a non-finite Gramian (see :func:`weights`).
    """
    if gramian.device.type != "cpu" or not _solvers.use_host(gramian, None):
        return None
    G = gramian.detach().to(torch.float64).numpy()
    return G if np.isfinite(G).all() else None


def from_host(weights: np.ndarray, dtype: torch.dtype) -> Tensor:
    """Host weights of shape ``(n_tasks,)`` as a CPU tensor of ``dtype``."""
    if dtype in _NUMPY_DTYPES:  # cast in numpy: a torch cast of a tiny tensor costs more
        return torch.from_numpy(np.ascontiguousarray(weights, dtype=_NUMPY[dtype]))
    return torch.from_numpy(np.ascontiguousarray(weights)).to(dtype)


def weights(aggregator, jacobian: Tensor, *args) -> Tensor:
    """``aggregator``'s weights from ``J J^T``, the Gramian formed once.

    On the CPU (when :func:`._solvers.use_host` agrees) ``aggregator.host_weights(G, *args)``
    on the float64 numpy Gramian, as a tensor of ``J``'s dtype; when there is no host path or
    it gives up, ``aggregator.gramian_weights`` on the same Gramian (on another device, on
    ``J @ J.T`` there). A non-finite Gramian (a NaN or infinite Jacobian) skips the host path:
    numpy's solvers raise on it (``eigh``) or warn, where the torch paths give the non-finite
    output documented for it (the test costs about 3 us at ``T = 2``).
    """
    check_jacobian(jacobian, aggregator)
    J = jacobian.detach()
    # the float64 host Gramian of a float32 Jacobian carries float32's rounding
    kw = {"rounding": _solvers.rounding(J.dtype)} if aggregator.cuts_spectrum else {}
    if J.device.type == "cpu":
        G = host_gramian(J)
        if _solvers.use_host(J, None) and np.isfinite(G).all():
            w = aggregator.host_weights(G, *args, **kw)
            if w is not None:
                return from_host(w, J.dtype)
        G = torch.from_numpy(G)
    else:
        G = J.float() @ J.float().T if J.dtype in _HALF else J @ J.T
        return _graphs.gramian_weights(aggregator, G, *args, **kw).to(J.dtype)
    return aggregator.gramian_weights(G, *args, **kw).to(J.dtype)


def gramian_host_weights(aggregator, gramian: Tensor, *args, **kwargs) -> Tensor | None:
    """``aggregator.host_weights(G, *args, **kwargs)`` for a CPU Gramian tensor ``G``; None as
    above."""
    G = host_array(gramian)
    w = None if G is None else aggregator.host_weights(G, *args, **kwargs)
    return None if w is None else from_host(w, gramian.dtype)
