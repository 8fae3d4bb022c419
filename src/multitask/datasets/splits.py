"""Train/test splits of multi-task data: per-task ratios, published protocols, held-out tasks.

Every split is seeded (``numpy.random.default_rng(seed)``) and vectorised over
tasks (no Python loop per task), so Chem97's 2,410 tasks split as fast as 10.
"""

from __future__ import annotations

import numpy as np

from multitask.datasets._data import MultiOutputData, MultiTaskData

__all__ = ["PROTOCOLS", "protocol_split", "task_groups", "train_test_split_per_task"]


def _segments(codes: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Size of each group and the rank of each element inside its group (any order)."""
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.empty_like(codes)
    rank[order] = np.arange(codes.size) - starts[codes[order]]
    return sizes, rank


def _n_train(sizes: np.ndarray, train_size: float | int) -> np.ndarray:
    """Training rows per task: ``floor(train_size * n_t)``, or ``train_size`` if an int."""
    if isinstance(train_size, (int, np.integer)) and not isinstance(train_size, bool):
        if train_size < 1:
            raise ValueError(f"integer train_size={train_size} must be >= 1 (samples per task)")
        return np.full_like(sizes, train_size)
    if not 0.0 < float(train_size) < 1.0:
        raise ValueError(
            f"train_size={train_size} must be in (0, 1), or an int of samples per task"
        )
    return np.floor(float(train_size) * sizes + 1e-9).astype(sizes.dtype)


def _check_sides(tasks: np.ndarray, sizes: np.ndarray, n_train: np.ndarray, train_size) -> None:
    bad = np.flatnonzero((n_train < 1) | (n_train >= sizes))
    if bad.size:
        t = bad[0]
        name = tasks[t].item() if hasattr(tasks[t], "item") else tasks[t]
        side = "training" if n_train[t] < 1 else "test"
        raise ValueError(
            f"task {name!r} ({sizes[t]} rows) would have 0 {side} samples with "
            f"train_size={train_size} ({bad.size} such tasks); change train_size or drop "
            "small tasks (e.g. data.subset(...) or a loader's min_task_size=)"
        )


def _stratified_quota(task_code, y, n_train, rng) -> tuple[np.ndarray, np.ndarray]:
    """Group code per row for (task, class) and its training quota (largest remainder)."""
    _, cls = np.unique(y, return_inverse=True)
    pair = task_code.astype(np.int64) * (cls.max() + 1) + cls
    uniq, group = np.unique(pair, return_inverse=True)
    g_task = uniq // (cls.max() + 1)
    g_size = np.bincount(group, minlength=uniq.size)
    t_size = np.bincount(task_code)
    ideal = n_train[g_task] * g_size / t_size[g_task]
    quota = np.floor(ideal + 1e-9).astype(np.int64)
    remainder = n_train - np.bincount(g_task, weights=quota, minlength=t_size.size).astype(np.int64)
    # Hand the leftover rows of each task to its classes with the largest fractional part.
    order = np.lexsort((rng.random(uniq.size), -(ideal - quota), g_task))
    _, rank_in_task = _segments(g_task[order], t_size.size)
    bonus = np.zeros(uniq.size, dtype=np.int64)
    bonus[order] = rank_in_task < remainder[g_task[order]]
    return group, np.minimum(quota + bonus, g_size)


def train_test_split_per_task(
    data: MultiTaskData,
    train_size: float | int,
    seed: int = 0,
    stratify: bool | None = None,
) -> tuple[MultiTaskData, MultiTaskData]:
    """Split every task into train and test rows.

    Parameters
    ----------
    data : MultiTaskData
    train_size : float in (0, 1) or int
        A float is the share of each task's rows used for training,
        ``floor(train_size * n_t)``; an int is the number of training rows per task.
    seed : int, default=0
    stratify : bool or None, default=None
        Keep each task's class proportions on both sides (largest-remainder
        allocation per task). None means True for "binary" and "multiclass"
        data, False for regression.

    Returns
    -------
    train, test : MultiTaskData
        Rows keep their original order.

    Raises
    ------
    ValueError
        A task would have no training or no test row; the message names it.
    """
    is_train = train_mask_per_task(data, train_size, seed, stratify)
    return data.subset(is_train), data.subset(~is_train)


def train_mask_per_task(
    data: MultiTaskData, train_size: float | int, seed: int = 0, stratify: bool | None = None
) -> np.ndarray:
    """The training rows of :func:`train_test_split_per_task`, as a boolean mask."""
    if stratify is None:
        stratify = data.kind != "regression"
    tasks, task_code = np.unique(data.task, return_inverse=True)
    sizes = np.bincount(task_code, minlength=tasks.size)
    n_train = _n_train(sizes, train_size)
    _check_sides(tasks, sizes, n_train, train_size)
    rng = np.random.default_rng(seed)
    if stratify:
        group, quota = _stratified_quota(task_code, data.y, n_train, rng)
    else:
        group, quota = task_code, n_train
    key = rng.random(group.size)
    order = np.lexsort((key, group))
    _, rank = _segments(group[order], quota.size)
    is_train = np.zeros(group.size, dtype=bool)
    is_train[order] = rank < quota[group[order]]
    return is_train


def task_groups(data: MultiTaskData) -> np.ndarray:
    """Task id of each row, to pass as ``groups=`` to sklearn's ``GroupKFold``.

    ``GroupKFold(n_splits).split(data.X, data.y, groups=task_groups(data))``
    holds out whole tasks: no task has rows on both sides of a fold.
    """
    return data.task


def _school(train_size):
    def split(data, seed):
        return train_test_split_per_task(data, train_size, seed)

    return split


def _computer_survey(data: MultiTaskData, seed: int):
    if data.meta is None or "profile" not in data.meta:
        raise ValueError("computer_survey split needs meta['profile']; load it with load()")
    profile = data.meta["profile"].to_numpy()
    return data.subset(profile <= 8), data.subset(profile >= 17)


def _given_split(data: MultiOutputData, seed: int):
    if data.split is None:
        raise ValueError(f"dataset {data.name!r} has no published split (data.split is None)")
    return data.subset(data.split == "train"), data.subset(data.split == "test")


#: Published protocols: name -> (function(data, seed) -> (train, test), description).
PROTOCOLS = {
    "school": (_school(0.75), "75% / 25% per school (Bakker & Heskes 2003; Argyriou 2008)"),
    "school_10": (_school(0.10), "10% train per school, rest test (MALSAR-era papers)"),
    "school_20": (_school(0.20), "20% train per school, rest test (MALSAR-era papers)"),
    "school_30": (_school(0.30), "30% train per school, rest test (MALSAR-era papers)"),
    "landmine": (_school(0.20), "20% / 80% per field, stratified by label"),
    "landmine_50": (_school(0.50), "50% / 50% per field, stratified by label"),
    "computer_survey": (_computer_survey, "profiles 1-8 train, 17-20 test (Argyriou 2008)"),
    "adult": (_given_split, "the published adult.data / adult.test split"),
    "fashion_mnist": (_given_split, "the published 60,000 / 10,000 split"),
}


def protocol_split(name: str, data, seed: int = 0):
    """Split ``data`` by a published protocol.

    Parameters
    ----------
    name : str
        A key of :data:`PROTOCOLS`: ``"school"`` (75/25 per task),
        ``"school_10"``, ``"school_20"``, ``"school_30"``, ``"landmine"``
        (20/80 stratified), ``"landmine_50"``, ``"computer_survey"`` (first 8
        profiles / last 4), ``"adult"`` and ``"fashion_mnist"`` (given split).
    data : MultiTaskData or MultiOutputData
        The dataset as returned by :func:`~multitask.datasets.load`.
    seed : int, default=0
        Used by the random protocols; the fixed ones ignore it.

    Returns
    -------
    train, test
        Same type as ``data``.

    References
    ----------
    Bakker & Heskes (2003), Task clustering and gating for Bayesian multitask
    learning, JMLR 4:83-99 (School 75/25). Argyriou, Evgeniou & Pontil (2008),
    Convex multi-task feature learning, Machine Learning 73:243-272, Sec. 6
    (School, Computer survey). Xue et al. (2007), JMLR 8:35-63 (Landmine).
    """
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; valid: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name][0](data, seed)
