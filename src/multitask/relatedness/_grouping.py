"""Task grouping from an inter-task affinity matrix (TAG, Fifty et al., NeurIPS 2021)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from numbers import Integral

import numpy as np

from multitask._params import check_int

__all__ = ["MAX_EXHAUSTIVE_TASKS", "group_score", "group_tasks"]

#: exhaustive search enumerates Stirling-number many partitions: S(10, 5) = 42,525
MAX_EXHAUSTIVE_TASKS = 10


def _partitions(n: int, k: int) -> Iterator[list[list[int]]]:
    """Every partition of ``range(n)`` into exactly ``k`` non-empty blocks (each once)."""

    def extend(i: int, blocks: list[list[int]]):
        if len(blocks) + (n - i) < k:  # too few items left to open the missing blocks
            return
        if i == n:
            yield [list(b) for b in blocks]
            return
        for b in blocks:
            b.append(i)
            yield from extend(i + 1, blocks)
            b.pop()
        if len(blocks) < k:
            blocks.append([i])
            yield from extend(i + 1, blocks)
            blocks.pop()

    yield from extend(0, [])


def _square(affinity) -> np.ndarray:
    """The affinity as a float ``(n_tasks, n_tasks)`` array, or a clear error."""
    Z = np.asarray(affinity, dtype=float)
    if Z.ndim != 2 or Z.shape[0] != Z.shape[1]:
        raise ValueError(f"affinity must be a square (n_tasks, n_tasks) matrix, got {Z.shape}")
    return Z


def _check_groups(groups: Sequence[Sequence[int]], n: int) -> list[list[int]]:
    """The groups as lists of task indices in ``[0, n)``, each task in at most one group (a
    negative index wrapped around to another task, and a repeated one was counted twice)."""
    out = [list(g) for g in groups]
    flat = [i for g in out for i in g]
    bad = [i for i in flat if not isinstance(i, Integral) or isinstance(i, bool) or not 0 <= i < n]
    if bad:
        raise ValueError(f"groups must hold task indices in [0, {n}), got {bad!r}")
    repeated = sorted(int(i) for i, k in Counter(flat).items() if k > 1)  # (not O(n^2))
    if repeated:
        raise ValueError(
            f"tasks {repeated} appear more than once in groups {out}; each task belongs to "
            "one group"
        )
    return out


def _score(Z: np.ndarray, groups: Sequence[Sequence[int]]) -> float:
    """:func:`group_score` without the checks (the search calls it for every partition)."""
    total = 0.0
    for g in groups:
        if len(g) > 1:
            block = Z[np.ix_(g, g)]
            total += (block.sum() - np.trace(block)) / (len(g) - 1)
    return float(total)


def group_score(affinity: np.ndarray, groups: Sequence[Sequence[int]]) -> float:
    """Total affinity onto each task from the other members of its group.

    .. math:: S = \\sum_{G} \\sum_{j \\in G} \\frac{1}{|G| - 1}
              \\sum_{i \\in G, i \\ne j} Z_{i \\to j}

    (a singleton group contributes 0).

    Parameters
    ----------
    affinity : ndarray of shape (n_tasks, n_tasks)
        ``affinity[i, j] = Z_{i -> j}``.
    groups : sequence of sequence of int
        Task indices of each group, each task in at most one group (a task in
        no group counts as a singleton).

    Returns
    -------
    score : float

    Raises
    ------
    ValueError
        If ``affinity`` is not square, or a group holds an index outside
        ``[0, n_tasks)`` or a task that is already in a group.

    Examples
    --------
    Tasks 0 and 2 help each other, and so do 1 and 3; the other pairs hurt a little:

    >>> import numpy as np
    >>> from multitask.relatedness import group_score
    >>> Z = np.full((4, 4), -0.1)
    >>> Z[0, 2], Z[2, 0], Z[1, 3], Z[3, 1] = 0.5, 0.5, 0.4, 0.3
    >>> round(group_score(Z, [[0, 2], [1, 3]]), 2)  # 0.5 + 0.5 + 0.4 + 0.3
    1.7
    >>> round(group_score(Z, [[0, 1], [2, 3]]), 2)  # four pairs at -0.1
    -0.4
    >>> round(group_score(Z, [[0, 1, 2], [3]]), 2)  # 0.2 onto tasks 0 and 2, -0.1 onto 1
    0.3
    """
    Z = _square(affinity)
    return _score(Z, _check_groups(groups, Z.shape[0]))


def group_tasks(affinity, n_groups: int, *, max_tasks: int = MAX_EXHAUSTIVE_TASKS):
    """Split the tasks into ``n_groups`` groups maximising the within-group affinity.

    Exhaustive search over every partition of the tasks into ``n_groups``
    non-empty groups, maximising :func:`group_score` (the affinity onto each
    task from the other members of its group, averaged over them, summed over
    tasks). Ties (up to a rounding tolerance relative to the size of the
    affinities, so that ``c * affinity`` gives the same groups for every
    ``c > 0``) keep the first partition found (tasks in index order).

    TAG solves a network-selection problem in which a task may sit in several
    candidate groups and is served by its best one; here the groups form a
    partition (each task trained once), the setting of Standley et al. (ICML
    2020) with TAG's score. The search costs a Stirling number of the second
    kind of partitions, so it refuses more than ``max_tasks`` tasks rather than
    silently running for hours (there is no greedy fallback).

    Parameters
    ----------
    affinity : array-like of shape (n_tasks, n_tasks)
        ``affinity[i, j] = Z_{i -> j}`` (e.g. :func:`lookahead_affinity`);
        the diagonal is ignored.
    n_groups : int
        Number of groups, ``1 <= n_groups <= n_tasks``.
    max_tasks : int, default=10
        Largest number of tasks searched exhaustively.

    Returns
    -------
    groups : list of list of int
        Task indices of each group, each sorted, groups ordered by their
        smallest task.

    Raises
    ------
    ValueError
        If ``affinity`` is not square or not finite, ``n_groups`` is not an
        integer in ``[1, n_tasks]``, or there are more than ``max_tasks`` tasks.
    TypeError
        If ``max_tasks`` is not an integer (it must be at least 1).

    References
    ----------
    Fifty, Amid, Zhao, Yu, Anil & Finn, "Efficiently Identifying Task
    Groupings for Multi-Task Learning", NeurIPS 2021, Sec. 3.2 (task grouping
    from the inter-task affinities of eq. 3); Standley et al., "Which Tasks
    Should Be Learned Together in Multi-task Learning?", ICML 2020, Sec. 3.

    Examples
    --------
    Tasks 0 and 2 help each other, and so do 1 and 3; the other pairs hurt a little:

    >>> import numpy as np
    >>> from multitask.relatedness import group_tasks
    >>> Z = np.full((4, 4), -0.1)  # Z[i, j]: the effect of task i on task j
    >>> Z[0, 2], Z[2, 0], Z[1, 3], Z[3, 1] = 0.5, 0.5, 0.4, 0.3
    >>> group_tasks(Z, n_groups=2)
    [[0, 2], [1, 3]]
    >>> group_tasks(Z, n_groups=1)  # a single group holds every task
    [[0, 1, 2, 3]]
    """
    Z = _square(affinity)
    if not np.all(np.isfinite(Z)):
        raise ValueError("affinity has NaN or infinite entries; measure it on more batches")
    n = Z.shape[0]
    whole = isinstance(n_groups, Integral) and not isinstance(n_groups, bool)
    if not whole or not 1 <= n_groups <= n:  # (2.5 acted as 2, True as 1)
        raise ValueError(f"n_groups must be an integer between 1 and n_tasks={n}, got {n_groups!r}")
    max_tasks = check_int(max_tasks, "max_tasks", "group_tasks", low=1)
    if n > max_tasks:
        raise ValueError(
            f"exhaustive grouping of {n} tasks is too costly (limit max_tasks={max_tasks}); "
            "group a subset of the tasks, or raise max_tasks if you can wait"
        )
    # rounding tolerance of a score (a sum of n averages of off-diagonal entries); an absolute
    # 1e-12 took every partition as tied with the first once the affinities were below ~1e-13
    off_diagonal = Z[~np.eye(n, dtype=bool)]
    tol = 1e-12 * n * (np.abs(off_diagonal).max() if n > 1 else 0.0)
    best, best_score = None, -np.inf
    for groups in _partitions(n, int(n_groups)):
        score = _score(Z, groups)
        if score > best_score + tol:
            best, best_score = groups, score
    return best
