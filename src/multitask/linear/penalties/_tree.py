"""Tree-guided group lasso: nested groups of tasks, applied to every feature row."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from ._base import RowSeparablePenalty, check_strength
from ._tree_structure import GroupBlock, clean_groups, tree_heights, tree_levels


def _check_weights(weights, n_groups):
    if weights is None:
        return (1.0,) * n_groups
    weights = np.asarray(weights, dtype=float)
    if weights.shape != (n_groups,) or not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError(
            f"weights must hold one finite value >= 0 per group ({n_groups}), got {weights!r}"
        )
    return tuple(float(w) for w in weights)


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
        self.groups = clean_groups(groups)
        self.weights = _check_weights(weights, len(self.groups))
        self._n_min = 1 + max(max(g) for g in self.groups)
        heights = tree_heights(self.groups, self._n_min)
        self._levels = tree_levels(self.groups, heights)
        self._all = GroupBlock.of(self.groups, np.arange(len(self.groups)))
        self._w = np.asarray(self.weights)
        rows = np.arange(self._all.cols.size)
        self._embed = sparse.csr_matrix(
            (np.ones(rows.size), (rows, self._all.cols)), shape=(rows.size, self._n_min)
        )

    @classmethod
    def from_heights(cls, alpha, groups, heights):
        """Weights of Kim & Xing (2010), Sec. 3, from a height ``s_v`` in [0, 1] per node.

        A node ``v`` gets ``g_v * prod_{ancestors m} s_m`` with ``g_v = 1 - s_v`` for
        an inner node and ``g_v = 1`` for a leaf (a single task).
        """
        clean = clean_groups(groups)
        heights = np.asarray(heights, dtype=float)
        if heights.shape != (len(clean),) or np.any((heights < 0) | (heights > 1)):
            raise ValueError(f"heights must hold one value in [0, 1] per group, got {heights!r}")
        tree_heights(clean, 1 + max(max(g) for g in clean))  # validates the nesting
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
        return self.alpha * (self._all.norms(W) @ self._w)

    def _compose(self, V, thresholds):
        """Group shrinkages level by level, leaves first (groups of a level are disjoint).

        ``thresholds(block)`` gives the thresholds of the block's groups, shape
        ``(n_groups_in_block,)`` or ``(n_rows, n_groups_in_block)``.
        """
        V = np.array(V, dtype=float)
        for block in self._levels:
            sub = V[:, block.cols]
            norms = np.sqrt(np.add.reduceat(sub * sub, block.starts, axis=1))
            t = np.broadcast_to(thresholds(block), norms.shape)
            safe = np.where(norms > 0, norms, 1.0)
            scale = np.where(norms > t, 1.0 - t / safe, 0.0)
            V[:, block.cols] = sub * scale[:, block.seg]
        return V

    def prox(self, W, step):
        """Exact prox by composing group shrinkages from the leaves to the root."""
        W = np.atleast_2d(np.asarray(W, dtype=float))
        self._check_tasks(W)
        if np.ndim(step):  # per-row step (n_rows, 1): thresholds (n_rows, n_groups)
            level = np.asarray(step, dtype=float).reshape(-1, 1) * (self.alpha * self._w)
            return self._compose(W, lambda block: level[:, block.ids])
        level = step * self.alpha * self._w
        return self._compose(W, lambda block: level[block.ids])

    def _subdiff_distance_rows(self, W, grad):
        # Groups with W[j, g] != 0 contribute a fixed vector; the zero groups Z a sum of
        # balls, whose distance from r is ||prox_{alpha Omega_Z}(r)|| (Moreau decomposition).
        self._check_tasks(W)
        block = self._all
        norms = block.norms(W)  # (n_rows, n_groups)
        nonzero = norms > 0
        coef = self.alpha * self._w / np.where(nonzero, norms, 1.0) * nonzero
        r = -np.array(grad, dtype=float)
        r[:, : self._n_min] -= (W[:, block.cols] * coef[:, block.seg]) @ self._embed
        zero_thr = self.alpha * self._w * ~nonzero  # (n_rows, n_groups)
        return np.linalg.norm(self._compose(r, lambda b: zero_thr[:, b.ids]), axis=-1)

    def alpha_max(self, grad0):
        """Smallest ``alpha`` with ``W = 0`` optimal: ``max_j Omega^*(grad0[j])``, by bisection.

        ``inf`` if a task in no group of positive weight has a nonzero gradient.
        """
        G = np.atleast_2d(np.asarray(grad0, dtype=float))
        self._check_tasks(G)
        covered = np.zeros(G.shape[1], dtype=bool)
        for group, weight in zip(self.groups, self.weights, strict=True):
            covered[list(group)] |= weight > 0
        if np.any(G[:, ~covered] != 0):
            return float("inf")
        G = G[np.any(G != 0, axis=1)]
        if G.size == 0:
            return 0.0

        # Per-row bisection on Omega^*(g_j), whose prox at alpha is zero iff alpha >= it.
        # Omega(x) >= w_min ||x||_inf on covered tasks, so Omega^*(g) <= ||g||_1 / w_min.
        # Rows whose upper bound falls below the best lower bound cannot hold the max.
        hi = np.abs(G).sum(axis=1) / min(w for w in self.weights if w > 0)
        lo = np.zeros_like(hi)
        while True:
            live = (hi >= lo.max()) & (hi - lo > 1e-13 * hi)
            if not live.any():
                return float(hi[hi >= lo.max()].max())
            mid = 0.5 * (lo[live] + hi[live])
            thr = mid[:, None] * self._w  # (n_live, n_groups)
            shrunk = self._compose(G[live], lambda block, thr=thr: thr[:, block.ids])
            zero = ~np.any(shrunk, axis=1)
            hi[np.flatnonzero(live)[zero]] = mid[zero]
            lo[np.flatnonzero(live)[~zero]] = mid[~zero]

    def dual_norm(self, G):
        """Dual norm ``Omega^*(G)`` of the unit-strength norm (the penalty is ``alpha * Omega``).

        Equal to :meth:`alpha_max` (``W = 0`` is optimal iff ``Omega^*(grad0) <= alpha``);
        used by solvers to build a feasible dual point for the duality gap. None when a
        task of ``G`` is in no group of positive weight: that task is unpenalised, no
        rescaled residual is dual feasible, and solvers then stop on the prox-gradient
        mapping instead of a gap that would stay at 1.
        """
        G = np.atleast_2d(np.asarray(G, dtype=float))
        covered = np.zeros(max(G.shape[1], self._n_min), dtype=bool)
        for group, weight in zip(self.groups, self.weights, strict=True):
            covered[list(group)] |= weight > 0
        if not covered[: G.shape[1]].all():
            return None
        return self.alpha_max(G)
