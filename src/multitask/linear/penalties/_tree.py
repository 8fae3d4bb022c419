"""Tree-guided group lasso: nested groups of tasks, applied to every feature row."""

from __future__ import annotations

import numbers

import numpy as np

from ._base import RowSeparablePenalty, check_strength, group_shrink


def _check_groups(groups, weights):
    """Validate a tree-structured family of task groups; return (groups, weights)."""
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
    sets = [set(g) for g in clean]
    for a in range(len(sets)):
        for b in range(a + 1, len(sets)):
            if sets[a] & sets[b] and not (sets[a] <= sets[b] or sets[b] <= sets[a]):
                raise ValueError(
                    f"groups {a} {clean[a]} and {b} {clean[b]} overlap without one containing "
                    "the other; a tree needs every two groups to be nested or disjoint"
                )
    if weights is None:
        weights = np.ones(len(clean))
    weights = np.asarray(weights, dtype=float)
    if weights.shape != (len(clean),) or not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError(
            f"weights must hold one finite value >= 0 per group ({len(clean)}), got {weights!r}"
        )
    return tuple(clean), tuple(float(w) for w in weights)


class TreeGroupLasso(RowSeparablePenalty):
    """``alpha * sum_j sum_g weights[g] * ||W[j, groups[g]]||_2``.

    The groups are sets of tasks organised as a tree (every two groups are nested
    or disjoint): the leaves are single tasks and each inner node groups the tasks
    below it, so related tasks select features together. Tasks in no group are
    not penalised.

    Parameters
    ----------
    alpha : float, default=1.0
        Regularisation strength, ``>= 0``.
    groups : list of list of int
        Task indices of each group (tree node).
    weights : array-like of shape (n_groups,), default=None
        Node weights ``>= 0`` (all ones when None). Kim & Xing (2010) derive them
        from node heights, see :meth:`from_heights`.

    Notes
    -----
    The prox is exact: group soft-thresholdings composed from the leaves to the
    root, i.e. groups sorted by increasing size (Jenatton et al. 2011, Sec. 3).
    :meth:`alpha_max` (= :meth:`dual_norm`) is the dual norm of the tree norm, found
    by bisection on ``alpha`` with the exact prox to a relative precision of 1e-13.

    References
    ----------
    Kim, S. and Xing, E. P. "Tree-guided group lasso for multi-task regression
    with structured sparsity." ICML, 2010, Sec. 3 (the penalty and its
    recursive node weights).
    Jenatton, R., Mairal, J., Obozinski, G. and Bach, F. "Proximal methods for
    hierarchical sparse coding." JMLR, 2011, Sec. 3 (exact prox for
    tree-structured groups by composing group shrinkages).
    """

    _param_names = ("alpha", "groups", "weights")

    def __init__(self, alpha: float = 1.0, groups=None, weights=None):
        self.alpha = check_strength(alpha, "alpha")
        if groups is None:
            raise ValueError("TreeGroupLasso needs groups, e.g. groups=[[0], [1], [0, 1]]")
        self.groups, self.weights = _check_groups(groups, weights)
        self._order = sorted(range(len(self.groups)), key=lambda g: len(self.groups[g]))
        self._n_min = 1 + max(max(g) for g in self.groups)

    @classmethod
    def from_heights(cls, alpha, groups, heights):
        """Weights of Kim & Xing (2010), Sec. 3, from a height ``s_v`` in [0, 1] per node.

        A node ``v`` gets ``g_v * prod_{ancestors m} s_m`` with ``g_v = 1 - s_v`` for
        an inner node and ``g_v = 1`` for a leaf (a single task).
        """
        clean, _ = _check_groups(groups, None)
        heights = np.asarray(heights, dtype=float)
        if heights.shape != (len(clean),) or np.any((heights < 0) | (heights > 1)):
            raise ValueError(f"heights must hold one value in [0, 1] per group, got {heights!r}")
        sets = [set(g) for g in clean]
        weights = []
        for v, g in enumerate(sets):
            own = 1.0 if len(g) == 1 else 1.0 - heights[v]
            ancestors = [m for m, h in enumerate(sets) if m != v and g < h]
            weights.append(own * float(np.prod(heights[ancestors])))
        return cls(alpha, groups=clean, weights=weights)

    def _check_tasks(self, W):
        if W.shape[-1] < self._n_min:
            raise ValueError(
                f"the groups name task {self._n_min - 1} but W has only {W.shape[-1]} tasks"
            )

    def _value_rows(self, W):
        self._check_tasks(W)
        total = np.zeros(W.shape[0])
        for group, weight in zip(self.groups, self.weights, strict=True):
            total += weight * np.linalg.norm(W[:, group], axis=-1)
        return self.alpha * total

    def _compose(self, V, thresholds):
        """Group shrinkages in leaves-to-root order; ``thresholds[g]`` scalar or per row."""
        V = np.array(V, dtype=float)
        for g in self._order:
            idx = list(self.groups[g])
            V[:, idx] = group_shrink(V[:, idx], thresholds[g], axis=-1)
        return V

    def prox(self, W, step):
        """Exact prox by composing group shrinkages from the leaves to the root."""
        W = np.atleast_2d(np.asarray(W, dtype=float))
        self._check_tasks(W)
        return self._compose(W, [step * self.alpha * w for w in self.weights])

    def _subdiff_distance_rows(self, W, grad):
        # Groups with W[j, g] != 0 contribute a fixed vector; the zero groups Z a sum of
        # balls, whose distance from r is ||prox_{alpha Omega_Z}(r)|| (Moreau decomposition).
        self._check_tasks(W)
        r = -np.array(grad, dtype=float)
        thresholds = []
        for group, weight in zip(self.groups, self.weights, strict=True):
            idx = list(group)
            norms = np.linalg.norm(W[:, idx], axis=-1)
            nonzero = norms > 0
            safe = np.where(nonzero, norms, 1.0)[:, None]
            r[:, idx] -= self.alpha * weight * W[:, idx] / safe
            thresholds.append(np.where(nonzero, 0.0, self.alpha * weight))
        return np.linalg.norm(self._compose(r, thresholds), axis=-1)

    def alpha_max(self, grad0):
        """Smallest ``alpha`` with ``W = 0`` optimal: ``max_j Omega^*(grad0[j])``, by bisection.

        ``inf`` if a task in no group has a nonzero gradient.
        """
        G = np.atleast_2d(np.asarray(grad0, dtype=float))
        self._check_tasks(G)
        covered = np.zeros(G.shape[1], dtype=bool)
        for group, weight in zip(self.groups, self.weights, strict=True):
            covered[list(group)] |= weight > 0
        if np.any(G[:, ~covered] != 0):
            return float("inf")
        if not np.any(G):
            return 0.0

        def zero_at(a):
            return not np.any(self._compose(G, [a * w for w in self.weights]))

        hi = float(np.max(np.linalg.norm(G, axis=-1))) * np.sqrt(G.shape[1])
        hi /= min(w for w in self.weights if w > 0)
        while not zero_at(hi):
            hi *= 2.0
        lo = 0.0
        while hi - lo > 1e-13 * hi:
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if zero_at(mid) else (mid, hi)
        return hi

    def dual_norm(self, G):
        """Dual norm ``Omega^*(G)`` of the unit-strength norm (the penalty is ``alpha * Omega``).

        Equal to :meth:`alpha_max` (``W = 0`` is optimal iff ``Omega^*(grad0) <= alpha``);
        used by solvers to build a feasible dual point for the duality gap.
        """
        return self.alpha_max(G)
