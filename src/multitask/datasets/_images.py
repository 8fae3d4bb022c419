"""Image datasets: MNIST test split, Fashion-MNIST (Debian package), scikit-learn digits."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from multitask.datasets._cache import DatasetNotFoundError, fetch, verify
from multitask.datasets._data import MultiOutputData
from multitask.datasets._files import FASHION_MNIST_DIR, FASHION_MNIST_FILES, FILES
from multitask.datasets._info import INFO


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read a gzip-compressed IDX file (the MNIST format) into a uint8 array.

    The header is two zero bytes, a type byte (0x08 = uint8), the number of
    dimensions, then one big-endian int32 per dimension.
    """
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise ValueError(f"{path} is not a uint8 IDX file (header {raw[:4]!r})")
    nd = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(nd)]
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * nd)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} but holds {data.size} values")
    return data.reshape(dims)


def _images(X: np.ndarray, labels: np.ndarray, name: str, split=None) -> MultiOutputData:
    return MultiOutputData(
        X,
        {"label": labels.astype(np.int64)},
        {"label": "multiclass"},
        split,
        name,
        INFO[name].citation,
    )


def load_mnist_test() -> MultiOutputData:
    """MNIST test split: 10,000 images of shape (28, 28), uint8, target ``label``."""
    X = read_idx(fetch(FILES["mnist/t10k-images-idx3-ubyte.gz"]))
    y = read_idx(fetch(FILES["mnist/t10k-labels-idx1-ubyte.gz"]))
    return _images(X, y, "mnist_test")


def _fashion_file(name: str, root: Path) -> Path:
    path = root / name
    if not path.is_file():
        raise DatasetNotFoundError(
            f"Fashion-MNIST file {path} is missing; install it with "
            "`apt-get install dataset-fashion-mnist` (Debian / Ubuntu)"
        )
    return verify(path, FASHION_MNIST_FILES[name])


def load_fashion_mnist(root: str | os.PathLike = FASHION_MNIST_DIR) -> MultiOutputData:
    """Fashion-MNIST: 70,000 images (60,000 train then 10,000 test), (28, 28) uint8.

    Read from the Debian package ``dataset-fashion-mnist`` (files verified by
    SHA-256). ``split`` marks "train" / "test"; target ``label`` has 10 classes.
    """
    root = Path(root)
    parts = {
        s: (read_idx(_fashion_file(f"{p}-images-idx3-ubyte.gz", root)),
            read_idx(_fashion_file(f"{p}-labels-idx1-ubyte.gz", root)))
        for s, p in (("train", "train"), ("test", "t10k"))
    }  # fmt: skip
    X = np.concatenate([parts["train"][0], parts["test"][0]])
    y = np.concatenate([parts["train"][1], parts["test"][1]])
    split = np.array(["train"] * len(parts["train"][1]) + ["test"] * len(parts["test"][1]), object)
    return _images(X, y, "fashion_mnist", split)


def load_digits() -> MultiOutputData:
    """scikit-learn's digits: 1,797 images of shape (8, 8), uint8 (values 0-16)."""
    from sklearn.datasets import load_digits as _load

    d = _load()
    return _images(d.images.astype(np.uint8), d.target, "digits")
