"""Multi-Fashion (Lin et al., NeurIPS 2019): two Fashion-MNIST items overlaid, one per corner.

Each image puts one Fashion-MNIST item at the top-left and another at the
bottom-right of a 36x36 canvas (offsets 0 and 8 pixels), overlays them by the
pixel-wise maximum and resizes the canvas to 28x28 (bilinear, with
anti-aliasing). The two tasks classify the top-left and the bottom-right item
(10 classes each). Pairs are drawn at random within a split, with different
classes for the two items (as in MultiMNIST, Sabour et al. 2017, which
Multi-Fashion follows); Lin et al. use 120,000 training and 20,000 test images.

The source is Debian's ``dataset-fashion-mnist`` package, read through
``multitask.datasets.load("fashion_mnist")`` (SHA-256 checked).

References
----------
Lin, X., Zhen, H.-L., Li, Z., Zhang, Q., Kwong, S. "Pareto Multi-Task
Learning." NeurIPS 2019, Sec. 5.2. Sabour, S., Frosst, N., Hinton, G. E.
"Dynamic Routing Between Capsules." NeurIPS 2017, Sec. 6.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

CANVAS, SIZE, SHIFT = 36, 28, 8


def overlay(top_left: np.ndarray, bottom_right: np.ndarray) -> torch.Tensor:
    """Compose pairs of (n, 28, 28) uint8 images into (n, 1, 28, 28) floats in [0, 1]."""
    n = len(top_left)
    canvas = torch.zeros(n, 1, CANVAS, CANVAS)
    a = torch.as_tensor(top_left, dtype=torch.float32) / 255.0
    b = torch.as_tensor(bottom_right, dtype=torch.float32) / 255.0
    canvas[:, 0, :SIZE, :SIZE] = a
    canvas[:, 0, SHIFT:, SHIFT:] = torch.maximum(canvas[:, 0, SHIFT:, SHIFT:], b)
    return F.interpolate(canvas, size=(SIZE, SIZE), mode="bilinear", antialias=True)


def make_multi_fashion(
    images: np.ndarray, labels: np.ndarray, n_samples: int, seed: int = 0
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Draw ``n_samples`` overlaid pairs from one split.

    Returns
    -------
    x : Tensor of shape (n_samples, 1, 28, 28)
    y : dict with ``"top_left"`` and ``"bottom_right"`` int64 labels of shape (n_samples,)
    """
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(images), n_samples)
    j = rng.integers(0, len(images), n_samples)
    same = labels[i] == labels[j]
    while same.any():  # redraw the partner until the classes differ
        j[same] = rng.integers(0, len(images), int(same.sum()))
        same = labels[i] == labels[j]
    x = overlay(images[i], images[j])
    y = {
        "top_left": torch.as_tensor(labels[i], dtype=torch.int64),
        "bottom_right": torch.as_tensor(labels[j], dtype=torch.int64),
    }
    return x, y


def load_multi_fashion(n_train: int = 120_000, n_test: int = 20_000, seed: int = 0):
    """Train and test Multi-Fashion sets drawn from the Fashion-MNIST train and test splits."""
    from multitask.datasets import load

    data = load("fashion_mnist")
    X, y = np.asarray(data.X), np.asarray(data.targets["label"])
    train, test = data.split == "train", data.split == "test"
    return (
        make_multi_fashion(X[train], y[train], n_train, seed),
        make_multi_fashion(X[test], y[test], n_test, seed + 1),
    )
