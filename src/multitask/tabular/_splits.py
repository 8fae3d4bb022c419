"""Row splits of ``multitask fit``: held-out test rows, per-task splits, validation rows.

Every split is seeded, so the same table and seed give the same rows.
"""

from __future__ import annotations

import numpy as np

__all__ = ["random_split", "task_split", "validation_split"]


def random_split(n: int, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if n < 2:
        raise ValueError(f"the table has {n} row(s); it needs at least 2 (train and test)")
    perm = np.random.default_rng(seed).permutation(n)
    n_test = min(max(1, round(test_size * n)), n - 1)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def task_split(tasks: np.ndarray, test_size: float, seed: int):
    """Split each task's rows; every task keeps >= 2 training rows."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    labels, codes, counts = np.unique(tasks, return_inverse=True, return_counts=True)
    small = np.flatnonzero(counts < 2)
    if small.size:
        t = labels[small[0]]
        raise ValueError(
            f"task {t!r} has {counts[small[0]]} labelled row(s); every task needs at least 2 "
            "rows to be trained on. Drop the task or give it more rows"
        )
    for k in range(len(labels)):
        rows = rng.permutation(np.flatnonzero(codes == k))
        n_test = min(int(np.floor(test_size * len(rows))), len(rows) - 2)
        test.append(rows[:n_test])
        train.append(rows[n_test:])
    if not any(len(rows) for rows in test):
        need = max(int(np.ceil(1 / test_size)), 3)  # floor(test_size n) >= 1, n - 2 >= 1
        raise ValueError(
            f"no task has a held-out row: each holds out floor({test_size} x its rows), keeping "
            f"2 for training, and the largest of the {len(labels)} tasks has {counts.max()} "
            f"rows; raise --test-size or give some task at least {need} rows"
        )
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def validation_split(train: np.ndarray, val_size: float, seed: int):
    """Carve a seeded validation part out of the training rows (deep half).

    The validation rows come from the training part only, so the held-out test
    rows never take part in training or model selection.
    """
    if val_size == 0:
        return train, train[:0]
    if len(train) < 2:
        raise ValueError(
            f"{len(train)} training row(s) cannot be split into training and validation; "
            "give more rows or --val-size 0"
        )
    perm = np.random.default_rng([seed, 1]).permutation(train)
    n_val = min(max(1, round(val_size * len(train))), len(train) - 1)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])
