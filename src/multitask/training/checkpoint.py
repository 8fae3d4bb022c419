"""Exact checkpoints: atomic writes, ``weights_only`` loads, every RNG.

A checkpoint is a dict of tensors and primitive containers only (so that
``torch.load(weights_only=True)`` reads it without unpickling code). It is
written to a temporary file in the same folder and renamed over the old one,
so a run killed mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from multitask._atomic import atomic_path

__all__ = [
    "get_rng_state",
    "load_checkpoint",
    "load_module_state",
    "save_checkpoint",
    "set_rng_state",
]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def get_rng_state() -> dict[str, Any]:
    """RNG states of python, numpy (legacy global), torch, every CUDA device and the Apple
    GPU (MPS; None without one)."""
    version, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 - user code may draw from it
    return {
        "python": {
            "version": version,
            "state": torch.tensor(mt, dtype=torch.int64),
            "gauss": gauss,
        },
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "mps": torch.mps.get_rng_state() if _mps_available() else None,
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the states saved by :func:`get_rng_state` (a device's only where it is saved
    and available: a checkpoint from before the MPS state, or from a machine without an
    Apple GPU, leaves that generator as it is)."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"].tolist()), py["gauss"]))
    npy = state["numpy"]
    keys = npy["keys"].numpy().astype(np.uint32)
    np.random.set_state((npy["name"], keys, npy["pos"], npy["has_gauss"], npy["cached"]))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if state.get("mps") is not None and _mps_available():
        torch.mps.set_rng_state(state["mps"])


def load_module_state(module: torch.nn.Module, state: dict[str, Any]) -> None:
    """``module.load_state_dict(state)``, also filling buffers created lazily.

    A stateful balancer may register a buffer as None and create it at its
    first step (its shape depends on the model); a fresh instance then lacks
    the key. Such buffers are set from ``state`` before the strict load.
    """
    for key, value in state.items():
        path, _, name = key.rpartition(".")
        owner = module.get_submodule(path) if path else module
        if name in owner._buffers and owner._buffers[name] is None:
            owner._buffers[name] = value.clone()
    module.load_state_dict(state)


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file + rename).

    Parameters
    ----------
    state : dict
        Tensors, numbers, strings, None and lists / tuples / dicts of those.
    path : str or Path

    Returns
    -------
    Path
        The path written.

    Examples
    --------
    A round trip, in a temporary folder (the parent folders are created):

    >>> import tempfile
    >>> from pathlib import Path
    >>> import torch
    >>> from multitask.training import load_checkpoint, save_checkpoint
    >>> state = {"step": 3, "model": {"w": torch.arange(3.0)}, "tasks": ["y", "c"]}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_checkpoint(state, Path(tmp) / "run" / "last.pt")
    ...     print(sorted(p.name for p in path.parent.iterdir()))  # no temporary file left
    ...     loaded = load_checkpoint(path)
    ['last.pt']
    >>> loaded["step"], loaded["tasks"], loaded["model"]["w"]
    (3, ['y', 'c'], tensor([0., 1., 2.]))
    """
    path = Path(path)
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Parameters
    ----------
    path : str or Path
    map_location : str or torch.device
        Device the tensors are loaded onto.

    Returns
    -------
    dict
        The saved ``state``.

    Raises
    ------
    FileNotFoundError
        When there is no file at ``path``.

    Examples
    --------
    A round trip, in a temporary folder (the parent folders are created):

    >>> import tempfile
    >>> from pathlib import Path
    >>> import torch
    >>> from multitask.training import load_checkpoint, save_checkpoint
    >>> state = {"step": 3, "model": {"w": torch.arange(3.0)}, "tasks": ["y", "c"]}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_checkpoint(state, Path(tmp) / "run" / "last.pt")
    ...     print(sorted(p.name for p in path.parent.iterdir()))  # no temporary file left
    ...     loaded = load_checkpoint(path)
    ['last.pt']
    >>> loaded["step"], loaded["tasks"], loaded["model"]["w"]
    (3, ['y', 'c'], tensor([0., 1., 2.]))
    >>> load_checkpoint(Path(tmp) / "run" / "last.pt")  # the folder is gone
    Traceback (most recent call last):
    ...
    FileNotFoundError: no checkpoint at ...last.pt; start without resume or fix the path
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; start without resume or fix the path")
    return torch.load(path, map_location=map_location, weights_only=True)
