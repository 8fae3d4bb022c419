"""Multi-Fashion (Lin et al., NeurIPS 2019): two Fashion-MNIST items overlaid, one per corner.

Each image puts one Fashion-MNIST item at the top-left and another at the
bottom-right of a 36x36 canvas (offsets 0 and 8 pixels), overlays them by the
pixel-wise maximum and, by default, resizes the canvas to 28x28 (bilinear with
anti-aliasing, the triangle filter widened by the scale factor 36/28), the
MultiMNIST convention of Sener & Koltun (2018). ``size=36`` keeps the canvas as
it is, as Lin et al.'s released code does (their LeNet sees 36x36 inputs). The
two tasks classify the top-left and the bottom-right item (10 classes each).

Written with numpy only, so :mod:`multitask.datasets` never imports torch; the
resize equals ``torch.nn.functional.interpolate(..., mode="bilinear",
antialias=True)`` (checked in the tests).

References
----------
Lin, X., Zhen, H.-L., Li, Z., Zhang, Q., Kwong, S. "Pareto Multi-Task
Learning." NeurIPS 2019, Sec. 5.2 (Multi-Fashion; 120,000 training and 20,000
test images). Sabour, S., Frosst, N., Hinton, G. E. "Dynamic Routing Between
Capsules." NeurIPS 2017, Sec. 6 (MultiMNIST, which Multi-Fashion follows: the
two items have different classes).
"""

from __future__ import annotations

import numpy as np

__all__ = ["make_multi_fashion", "overlay_pairs"]

CANVAS, SIZE, SHIFT = 36, 28, 8


def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Weights (n_out, n_in) of 1-D anti-aliased linear resampling (downscaling).

    The triangle filter is stretched by ``scale = n_in / n_out`` and each row is
    normalised to sum to one (the separable kernel of PIL and torch's
    ``antialias=True``).
    """
    scale = n_in / n_out
    support = scale  # triangle radius 1, widened by the scale
    W = np.zeros((n_out, n_in))
    for i in range(n_out):
        center = scale * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        j = np.arange(lo, hi)
        w = np.clip(1.0 - np.abs((j - center + 0.5) / scale), 0.0, None)
        W[i, lo:hi] = w / w.sum()
    return W


def overlay_pairs(top_left: np.ndarray, bottom_right: np.ndarray, size: int = SIZE) -> np.ndarray:
    """Compose pairs of 28x28 uint8 images into Multi-Fashion images.

    Parameters
    ----------
    top_left, bottom_right : ndarray of shape (n, 28, 28), uint8
        The items placed at offset (0, 0) and (8, 8) of the 36x36 canvas.
    size : int
        Side of the output: the canvas is resampled to ``size x size`` (1 to 36;
        36 keeps it unchanged).

    Returns
    -------
    X : ndarray of shape (n, 1, size, size), float32 in [0, 1]
    """
    if not 1 <= int(size) <= CANVAS:
        raise ValueError(f"size must be between 1 and {CANVAS} (the canvas), got {size}")
    a = np.asarray(top_left, np.float32) / 255.0
    b = np.asarray(bottom_right, np.float32) / 255.0
    if a.shape != b.shape or a.shape[1:] != (SIZE, SIZE):
        raise ValueError(
            f"expected two (n, {SIZE}, {SIZE}) image arrays, got {a.shape} and {b.shape}"
        )
    canvas = np.zeros((len(a), CANVAS, CANVAS), np.float32)
    canvas[:, :SIZE, :SIZE] = a
    canvas[:, SHIFT:, SHIFT:] = np.maximum(canvas[:, SHIFT:, SHIFT:], b)
    if size == CANVAS:
        return canvas[:, None]
    W = _resize_matrix(CANVAS, size).astype(np.float32)
    out = np.einsum("ij,njk,lk->nil", W, canvas, W, optimize=True)
    return np.clip(out, 0.0, 1.0)[:, None].astype(np.float32)


def make_multi_fashion(
    images: np.ndarray, labels: np.ndarray, n_samples: int, seed: int = 0, size: int = SIZE
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Draw ``n_samples`` Multi-Fashion images from one split of Fashion-MNIST.

    Items are drawn uniformly with replacement; the bottom-right partner is
    redrawn until its class differs from the top-left one.

    Parameters
    ----------
    images : ndarray of shape (m, 28, 28), uint8
        Fashion-MNIST images of one split (draw train and test from their own
        splits so no test item is seen in training).
    labels : ndarray of shape (m,)
        Their classes.
    n_samples : int
        Number of images to generate.
    seed : int
        Seed of the draw; the output is a deterministic function of it.
    size : int
        Side of the images: 28 (default, resampled) or 36 (the canvas itself, as in
        Lin et al.'s code); see :func:`overlay_pairs`.

    Returns
    -------
    X : ndarray of shape (n_samples, 1, size, size), float32 in [0, 1]
    y : dict
        ``"top_left"`` and ``"bottom_right"``: int64 classes of shape (n_samples,).

    References
    ----------
    Lin et al., "Pareto Multi-Task Learning", NeurIPS 2019, Sec. 5.2.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels; pass one label per image")
    if len(np.unique(labels)) < 2:
        raise ValueError("labels need at least two classes to draw pairs of different classes")
    if int(n_samples) < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples}")
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(images), n_samples)
    j = rng.integers(0, len(images), n_samples)
    same = labels[i] == labels[j]
    while same.any():  # redraw the partner until the classes differ
        j[same] = rng.integers(0, len(images), int(same.sum()))
        same = labels[i] == labels[j]
    y = {"top_left": labels[i].astype(np.int64), "bottom_right": labels[j].astype(np.int64)}
    return overlay_pairs(images[i], images[j], size), y
