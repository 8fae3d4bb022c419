"""Multi-Fashion (Lin et al., NeurIPS 2019) as torch tensors for the benchmark scripts.

The builder lives in :func:`multitask.datasets.make_multi_fashion` (numpy,
documented there); this module only draws the train and test sets from
Debian's ``dataset-fashion-mnist`` package, read through
``multitask.datasets.load("fashion_mnist")`` (SHA-256 checked), and converts
them to tensors. Lin et al. use 120,000 training and 20,000 test images.
:func:`load_multi_fashion_splits` adds a validation set built from Fashion-MNIST
training items held out from the training composites (so no item is shared).

References
----------
Lin, X., Zhen, H.-L., Li, Z., Zhang, Q., Kwong, S. "Pareto Multi-Task
Learning." NeurIPS 2019, Sec. 5.2.
"""

from __future__ import annotations

import numpy as np
import torch

from multitask.datasets import load, make_multi_fashion


def _as_tensors(x: np.ndarray, y: dict[str, np.ndarray]):
    return torch.from_numpy(x), {t: torch.from_numpy(v) for t, v in y.items()}


def load_multi_fashion(n_train: int = 120_000, n_test: int = 20_000, seed: int = 0, size: int = 28):
    """Train and test Multi-Fashion sets drawn from the Fashion-MNIST train and test splits.

    Returns
    -------
    (x, y), (x_test, y_test)
        ``x`` of shape (n, 1, size, size) float32 tensors (28: resampled; 36: the
        canvas, as in Lin et al.'s code); ``y`` dicts of int64 tensors ``"top_left"``
        and ``"bottom_right"``.
    """
    data = load("fashion_mnist")
    X, y = np.asarray(data.X), np.asarray(data.targets["label"])
    train, test = data.split == "train", data.split == "test"
    return (
        _as_tensors(*make_multi_fashion(X[train], y[train], n_train, seed, size)),
        _as_tensors(*make_multi_fashion(X[test], y[test], n_test, seed + 1, size)),
    )


def load_multi_fashion_splits(
    n_train: int, n_val: int, n_test: int, seed: int = 0, val_items: int = 10_000, size: int = 28
):
    """Train, validation and test Multi-Fashion sets; validation from held-out training items.

    ``val_items`` Fashion-MNIST training items, chosen by ``seed``, are reserved
    for the validation composites; the training composites use the other
    items, the test composites the Fashion-MNIST test split.

    Returns
    -------
    (x, y), (x_val, y_val), (x_test, y_test)
        As :func:`load_multi_fashion`.
    """
    data = load("fashion_mnist")
    X, y = np.asarray(data.X), np.asarray(data.targets["label"])
    train = np.flatnonzero(data.split == "train")
    if not 0 < val_items < len(train):
        raise ValueError(f"val_items={val_items} must be in (0, {len(train)}); lower it")
    order = np.random.default_rng(seed + 100).permutation(train)
    fit, val = order[val_items:], order[:val_items]
    test = data.split == "test"
    return (
        _as_tensors(*make_multi_fashion(X[fit], y[fit], n_train, seed, size)),
        _as_tensors(*make_multi_fashion(X[val], y[val], n_val, seed + 2, size)),
        _as_tensors(*make_multi_fashion(X[test], y[test], n_test, seed + 1, size)),
    )
