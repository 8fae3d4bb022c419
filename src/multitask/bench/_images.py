"""Image problems of the deep half: Multi-Fashion with a LeNet trunk.

Multi-Fashion (Lin et al., NeurIPS 2019) overlays two Fashion-MNIST items,
one top-left and one bottom-right; the tasks classify each (accuracy per
task). Training images are drawn from Fashion-MNIST's training split, the
validation set is a seeded slice of that generated training set, and the test
images are drawn from Fashion-MNIST's test split. Sizes come from ``options``
(``n_train``, ``n_val``, ``n_test``; defaults 20,000 / 2,000 / 4,000 to keep
a CPU run sane; Lin et al. use 120,000 training and 20,000 test images).

References
----------
Lin, X., Zhen, H.-L., Li, Z., Zhang, Q., Kwong, S. "Pareto Multi-Task
Learning." NeurIPS 2019, Sec. 5.2. Sener, O., Koltun, V. "Multi-Task Learning
as Multi-Objective Optimization." NeurIPS 2018, Sec. 6.1 and Appendix (the
LeNet-style shared encoder for MultiMNIST). LeCun, Y., Bottou, L., Bengio, Y.,
Haffner, P. "Gradient-Based Learning Applied to Document Recognition." Proc.
IEEE 86(11), 1998 (LeNet).
"""

from __future__ import annotations

import numpy as np

from multitask.bench._deep import DeepProblem

__all__ = ["LENET_WIDTH", "lenet_encoder", "load_multi_fashion_problem"]

LENET_WIDTH = 50
TASKS = ("top_left", "bottom_right")
DEFAULT_SIZES = {"n_train": 20_000, "n_val": 2_000, "n_test": 4_000}


def lenet_encoder():
    """LeNet trunk for (n, 1, 28, 28) images: conv-pool-conv-pool-fc, 50 outputs.

    conv 1->10 (5x5), max-pool 2, ReLU; conv 10->20 (5x5), max-pool 2, ReLU;
    flatten (20 * 4 * 4 = 320); fc 320->50, ReLU.

    Returns
    -------
    trunk : torch.nn.Module
    width : int
        Output width of the trunk (50).
    """
    from torch import nn

    trunk = nn.Sequential(
        nn.Conv2d(1, 10, kernel_size=5),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Conv2d(10, 20, kernel_size=5),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(320, LENET_WIDTH),
        nn.ReLU(),
    )
    return trunk, LENET_WIDTH


def _sizes(options: dict) -> dict[str, int]:
    sizes = {k: int(options.get(k, v)) for k, v in DEFAULT_SIZES.items()}
    bad = {k: v for k, v in sizes.items() if v < 1}
    if bad:
        raise ValueError(f"Multi-Fashion sizes must be positive integers, got {bad}")
    return sizes


def load_multi_fashion_problem(seed: int, options: dict) -> DeepProblem:
    """Multi-Fashion as a :class:`DeepProblem` with a LeNet encoder.

    Parameters
    ----------
    seed : int
        Seeds the draw of the pairs and the validation slice.
    options : dict
        ``n_train``, ``n_val``, ``n_test`` (defaults 20,000 / 2,000 / 4,000).

    Returns
    -------
    DeepProblem
        ``X[split]`` of shape (n, 1, 28, 28) float32; tasks ``top_left`` and
        ``bottom_right`` (10 classes each, int64 targets).
    """
    from multitask.datasets import load, make_multi_fashion

    sizes = _sizes(options)
    data = load("fashion_mnist")
    images, labels = np.asarray(data.X), np.asarray(data.targets["label"])
    train, test = data.split == "train", data.split == "test"
    n_fit = sizes["n_train"] + sizes["n_val"]
    X_fit, Y_fit = make_multi_fashion(images[train], labels[train], n_fit, seed)
    order = np.random.default_rng(seed + 1).permutation(n_fit)
    rows = {"train": order[sizes["n_val"] :], "val": order[: sizes["n_val"]]}
    X = {s: X_fit[r] for s, r in rows.items()}
    Y = {s: {t: Y_fit[t][r] for t in TASKS} for s, r in rows.items()}
    X["test"], Y["test"] = make_multi_fashion(images[test], labels[test], sizes["n_test"], seed + 2)
    kinds = {t: "multiclass" for t in TASKS}
    n_outputs = {t: 10 for t in TASKS}
    return DeepProblem("multi_fashion", kinds, n_outputs, X, Y, encoder=lenet_encoder)
