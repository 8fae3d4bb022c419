"""Tree-guided group lasso across tasks.

Penalty: ``alpha * sum_j sum_v w_v ||W[j, G_v]||_2`` over the nodes ``v`` of a tree
of task groups ``G_v`` (leaves: single tasks; inner nodes: the tasks below).

References
----------
Kim & Xing, "Tree-guided group lasso for multi-task regression with
structured sparsity", ICML 2010, eq. (4); Jenatton, Mairal, Obozinski & Bach, "Proximal
methods for hierarchical sparse coding", JMLR 12, 2011, Sec. 3 (exact prox).
"""

from itertools import pairwise

import numpy as np

from multitask.linear._base import (
    MultiTaskClassifierMixin,
    MultiTaskLinearModel,
    MultiTaskRegressorMixin,
    fill_doc,
)
from multitask.linear._task_structure import label_codes, warn_absent
from multitask.linear.penalties._tree import _check_weights
from multitask.linear.penalties._tree_structure import clean_groups, tree_heights

__all__ = ["TreeGroupLassoClassifier", "TreeGroupLassoRegressor"]


class _TreeGroup(MultiTaskLinearModel):
    def __init__(
        self,
        alpha=0.1,
        *,
        tree=None,
        tree_weights=None,
        task_col=None,
        fit_intercept=True,
        tol=1e-8,
        max_iter=20000,
        warm_start=False,
        unseen_task="mean",
    ):
        self.alpha = alpha
        self.tree = tree
        self.tree_weights = tree_weights
        self.task_col = task_col
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.unseen_task = unseen_task

    def _make_penalty(self, data):
        from multitask.linear.penalties import TreeGroupLasso

        groups, weights = task_tree_groups(self.tree, self.tree_weights, data.tasks)
        if not groups:  # the tree names none of the fitted tasks: nothing is penalised
            return None, None
        return TreeGroupLasso(self.alpha, groups, weights), None


def task_tree_groups(tree, tree_weights, tasks):
    """Groups of task codes and their weights from a tree given with task labels.

    The tree is checked whole (groups nested or disjoint, one weight per group), then
    restricted to the fitted tasks ``tasks``: absent tasks leave their groups, groups left
    empty vanish with their weights, and groups made equal are merged, their weights summed
    (the same penalty). A warning names the absent labels.

    Returns
    -------
    groups : list of list of int
        Possibly empty (the tree names no fitted task).
    weights : tuple of float, or None (all ones)
    """
    n_tasks = len(tasks)
    if tree is None:
        groups = [[t] for t in range(n_tasks)]
        if n_tasks > 1:
            groups.append(list(range(n_tasks)))
        if tree_weights is not None and np.shape(tree_weights) != (len(groups),):
            raise ValueError(
                f"tree_weights must hold one weight per group of the default tree: one per "
                f"fitted task (tasks_ order) then the root's, {len(groups)} here; got shape "
                f"{np.shape(tree_weights)}. To keep weights with their tasks when a split "
                "holds some tasks out, pass the tree itself: tree=[[t] for t in tasks] + "
                "[list(tasks)]."
            )
        return groups, tree_weights
    if isinstance(tree, (str, bytes)) or not hasattr(tree, "__len__") or len(tree) == 0:
        raise ValueError(f"tree must be a non-empty list of lists of task labels, got {tree!r}")
    members = [_group_labels(group) for group in tree]
    codes, absent = label_codes([label for group in members for label in group], tasks)
    bounds = np.cumsum([0] + [len(group) for group in members])
    whole = clean_groups([codes[a:b].tolist() for a, b in pairwise(bounds)])
    tree_heights(whole, n_tasks + len(absent))  # nested or disjoint, absent tasks included
    weights = _check_weights(tree_weights, len(whole))
    if not absent:
        return [list(group) for group in whole], weights
    kept = {}  # restricted group -> summed weight, in the order of first appearance
    for group, weight in zip(whole, weights, strict=True):
        fitted = tuple(t for t in group if t < n_tasks)
        if fitted:
            kept[fitted] = kept.get(fitted, 0.0) + weight
    warn_absent(
        "task tree",
        absent,
        tasks,
        "they leave their groups, groups left empty are dropped, and groups made equal are "
        "merged with their weights summed",
    )
    return [list(group) for group in kept], tuple(kept.values())


def _group_labels(group):
    """The task labels of one tree group (a lone label is a group of one)."""
    if isinstance(group, (str, bytes)) or not hasattr(group, "__iter__"):
        return [group]
    return list(group)


_TREE_DOC = """tree : list of lists of task labels, or None, default=None
        The groups (tree nodes) as lists of task labels; every two groups must be
        nested or disjoint. None: one leaf per task and a root holding all tasks. The tree
        may name tasks absent from the data fitted (a split holding out whole tasks, e.g.
        ``GroupKFold``): it is checked whole, then restricted to the fitted tasks (absent
        tasks leave their groups, empty groups vanish with their weights, groups made
        equal are merged with their weights summed) and a ``UserWarning`` names the absent
        labels; a label of another type than the task column's (``'1'`` for ``1``) reads
        the same, so heed the warning.
    tree_weights : array-like of shape (n_groups,), or None, default=None
        Node weights (all ones when None), in the order of ``tree``; with
        ``tree=None``, one weight per fitted task (``tasks_`` order) then the root's, so
        they cannot follow the tasks when a split holds some out: pass ``tree`` then."""


@fill_doc(tree=_TREE_DOC)
class TreeGroupLassoRegressor(MultiTaskRegressorMixin, _TreeGroup):
    """Squared loss + tree-guided group lasso over tasks, for every feature.

    Parameters
    ----------
    alpha : float, default=0.1
        Strength of the tree penalty (>= 0).
    %(tree)s
    %(common)s

    %(fitted)s

    References
    ----------
    Kim & Xing, ICML 2010, eq. (4); Jenatton et al., JMLR 12, 2011, Sec. 3.

    Examples
    --------
    Four tasks of 20 rows each, the task id in column 0 of ``X``: feature 0 matters in
    tasks 0 and 1, feature 1 in tasks 2 and 3. The tree groups the tasks the same way.

    >>> import numpy as np
    >>> from multitask.linear import TreeGroupLassoRegressor
    >>> rng = np.random.default_rng(0)
    >>> task = np.repeat([0, 1, 2, 3], 20)
    >>> features = rng.standard_normal((80, 4))
    >>> W = np.zeros((4, 4))  # (n_features, n_tasks)
    >>> W[0, :2], W[1, 2:] = [1.0, 1.5], [-1.0, -2.0]
    >>> y = (features * W.T[task]).sum(axis=1) + 0.1 * rng.standard_normal(80)
    >>> X = np.column_stack([task, features])
    >>> tree = [[0], [1], [2], [3], [0, 1], [2, 3]]  # four leaves, two inner nodes
    >>> est = TreeGroupLassoRegressor(alpha=0.1, tree=tree, task_col=0).fit(X, y)
    >>> (est.coef_ != 0).astype(int)  # (n_tasks, n_features)
    array([[1, 0, 0, 0],
           [1, 0, 0, 0],
           [0, 1, 0, 0],
           [0, 1, 0, 0]])
    >>> round(est.score(X, y), 2)
    0.96
    """


@fill_doc(tree=_TREE_DOC)
class TreeGroupLassoClassifier(MultiTaskClassifierMixin, _TreeGroup):
    """Logistic loss + tree-guided group lasso over tasks (binary labels).

    Parameters
    ----------
    alpha : float, default=0.1
        Strength of the tree penalty (>= 0).
    %(tree)s
    %(common)s

    %(fitted)s
    classes_ : ndarray of shape (2,)
        The two labels; ``classes_[1]`` is the positive class.

    References
    ----------
    Kim & Xing, ICML 2010, eq. (4); Jenatton et al., JMLR 12, 2011, Sec. 3.

    Examples
    --------
    Three tasks of 30 rows each, the task id in column 0 of ``X``; the default tree (one
    leaf per task, a root over all). The label depends on features 0 and 1 only.

    >>> import numpy as np
    >>> from multitask.linear import TreeGroupLassoClassifier
    >>> rng = np.random.default_rng(0)
    >>> task = np.repeat([0, 1, 2], 30)
    >>> features = rng.standard_normal((90, 4))
    >>> signal = features[:, 0] - features[:, 1] + 0.3 * rng.standard_normal(90)
    >>> y = (signal > 0).astype(int)
    >>> X = np.column_stack([task, features])
    >>> clf = TreeGroupLassoClassifier(alpha=0.05, task_col=0).fit(X, y)
    >>> np.flatnonzero(clf.coef_.any(axis=0))  # the features kept
    array([0, 1])
    >>> round(clf.score(X, y), 2)  # accuracy
    0.94
    """
