"""Validation of a tree of task groups and its vectorised level structure."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np


def clean_groups(groups):
    if isinstance(groups, (str, bytes)) or not hasattr(groups, "__len__") or len(groups) == 0:
        raise ValueError("groups must be a non-empty list of lists of task indices")
    clean = []
    for k, group in enumerate(groups):
        items = list(group) if hasattr(group, "__iter__") else [group]
        ok = all(isinstance(t, numbers.Integral) and not isinstance(t, bool) for t in items)
        if not items or not ok or min(items) < 0:
            raise ValueError(
                f"group {k} must be a non-empty list of task indices >= 0, got {group!r}"
            )
        if len(set(items)) != len(items):
            raise ValueError(f"group {k} repeats a task index: {group!r}")
        clean.append(tuple(sorted(int(t) for t in items)))
    return tuple(clean)


def _crossing_pair(groups):
    """Indices of two groups that overlap without being nested (slow; error path only)."""
    sets = [set(g) for g in groups]
    for a in range(len(sets)):
        for b in range(a + 1, len(sets)):
            if sets[a] & sets[b] and not (sets[a] <= sets[b] or sets[b] <= sets[a]):
                return a, b
    raise AssertionError("no crossing pair")  # pragma: no cover


def tree_heights(groups, n_tasks):
    """Height of each group in the tree (0 for groups containing no other group).

    Groups are processed by decreasing size: a group must lie inside the smallest
    group already seen that holds its tasks (its parent); otherwise two groups
    overlap without being nested and a ValueError names them. Identical groups are
    parent and child. O(sum of group sizes) after the sort.
    """
    order = sorted(range(len(groups)), key=lambda g: -len(groups[g]))
    owner = np.full(n_tasks, -1)
    parent = np.full(len(groups), -1)
    for g in order:
        owners = np.unique(owner[list(groups[g])])
        if owners.size > 1:
            a, b = _crossing_pair(groups)
            raise ValueError(
                f"groups {a} {groups[a]} and {b} {groups[b]} overlap without one containing "
                "the other; a tree needs every two groups to be nested or disjoint"
            )
        parent[g] = owners[0]
        owner[list(groups[g])] = g
    heights = np.zeros(len(groups), dtype=int)
    for g in reversed(order):  # children (smaller) before parents
        if parent[g] >= 0:
            heights[parent[g]] = max(heights[parent[g]], heights[g] + 1)
    return heights


@dataclass(frozen=True)
class GroupBlock:
    """Groups of tasks laid out for segment reductions over the task columns.

    ``cols`` concatenates the task indices of the groups ``ids``; group ``k`` of
    the block occupies ``cols[starts[k]:starts[k] + sizes[k]]`` and ``seg[i]`` is
    the block position of column ``i``.
    """

    ids: np.ndarray
    cols: np.ndarray
    starts: np.ndarray
    seg: np.ndarray

    @classmethod
    def of(cls, groups, ids):
        sizes = np.array([len(groups[g]) for g in ids])
        cols = np.concatenate([np.asarray(groups[g]) for g in ids])
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        return cls(np.asarray(ids), cols, starts, np.repeat(np.arange(len(ids)), sizes))

    def norms(self, V):
        """Norm of each group on each row: shape ``(n_rows, n_groups_in_block)``."""
        sub = V[:, self.cols]
        return np.sqrt(np.add.reduceat(sub * sub, self.starts, axis=1))


def tree_levels(groups, heights):
    """One :class:`GroupBlock` per height, leaves first; groups of one height are disjoint."""
    return tuple(
        GroupBlock.of(groups, np.flatnonzero(heights == h)) for h in range(heights.max() + 1)
    )
