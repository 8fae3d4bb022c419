"""Task labels of a structure (graph edges, tree groups) matched to the fitted tasks.

A structure may name tasks that the data being fitted lacks: a split that holds out whole
tasks (``GroupKFold`` over the task column) fits each fold on some tasks only. Such labels
get codes past the fitted ones, so the structure is checked whole (the same errors in every
fold), then restricted to the fitted tasks with a :class:`TaskSubsetWarning` naming the
absent labels. A label of another type than the task column's (``'1'`` for ``1``) or a typo
cannot be told from an absent task: the warning is what shows it.
"""

import warnings
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np

from multitask.linear._validation import task_label, task_lookup


class TaskSubsetWarning(UserWarning):
    """A task structure (graph, tree, ``n_clusters``) was restricted to the fitted tasks.

    The restriction depends only on which tasks the rows hold, so every fit on the same
    rows gives the same warning: a cross-validated path of ``alpha`` values gives it at its
    first fit only, once per fold, and :class:`MultiTaskCV` names a label absent from the
    whole data (a typo) once, before its folds. Filter it by this class once its message
    has been read.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> import pandas as pd
    >>> from multitask.linear import GraphRegularizedRegressor, TaskSubsetWarning
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame(rng.standard_normal((40, 2)), columns=["x0", "x1"])
    >>> X["task"] = np.repeat(["a", "b"], 20)  # a fold without task "c"
    >>> y = X["x0"] + 0.1 * rng.standard_normal(40)
    >>> est = GraphRegularizedRegressor(graph=[("a", "b"), ("b", "c")], task_col="task")
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = est.fit(X, y)
    >>> [w.category.__name__ for w in caught]
    ['TaskSubsetWarning']
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error")
    ...     warnings.simplefilter("ignore", TaskSubsetWarning)
    ...     est.fit(X, y).tasks_.tolist()
    ['a', 'b']
    """


def label_codes(labels, tasks):
    """Codes of task labels; labels that name no fitted task get codes ``>= n_tasks``.

    Parameters
    ----------
    labels : iterable of task labels
    tasks : ndarray of shape (n_tasks,)
        Sorted labels of the fitted tasks.

    Returns
    -------
    codes : ndarray of int of shape (n_labels,)
        Position of each label in ``tasks``, or ``n_tasks + k`` for the ``k``-th distinct
        label not among them.
    absent : list
        The labels not among ``tasks``, in order of first appearance.
    """
    lookup = task_lookup(tasks)
    absent = {}
    codes = []
    for label in labels:
        key = task_label(label)
        try:
            code = lookup.get(key)
            if code is None:
                code = absent.setdefault(key, len(tasks) + len(absent))
        except TypeError:  # unhashable: a list or an array where a label belongs
            raise ValueError(
                f"{label!r} is not a task label; name tasks by the values of the task column."
            ) from None
        codes.append(code)
    return np.asarray(codes, dtype=np.intp), list(absent)


#: the labels already reported within :func:`reported_absent` (None outside it)
_REPORTED: ContextVar = ContextVar("reported_absent", default=None)


@contextmanager
def reported_absent(labels=()):
    """Within: :func:`warn_absent` leaves out ``labels`` and collects the labels it warns about.

    A cross-validation warns once, before its folds, about the labels absent from the whole
    data (typos: no split holds them out), then fits the folds and refits within this
    context given those labels, so that a fold warns only about the tasks its split held out.

    Parameters
    ----------
    labels : iterable of task labels, default=()
        Labels already reported.

    Yields
    ------
    reported : list
        ``labels``, then each label warned about within, in order.
    """
    reported = list(labels)
    token = _REPORTED.set(reported)
    try:
        yield reported
    finally:
        _REPORTED.reset(token)


def warn_absent(structure, absent, tasks, effect):
    """Warn that ``structure`` names the ``absent`` labels, which are not fitted tasks
    (within :func:`reported_absent`, only those not reported yet)."""
    reported = _REPORTED.get()
    if reported is not None:
        absent = [label for label in absent if label not in reported]
        reported.extend(absent)
        if not absent:
            return
    names = ", ".join(repr(label) for label in absent[:10]) + (", ..." if len(absent) > 10 else "")
    several = len(absent) > 1
    warnings.warn(
        f"the {structure} names task{'s' if several else ''} {names}, which "
        f"{'are' if several else 'is'} not among the fitted tasks {tasks[:10].tolist()}; "
        f"{effect} (the {structure} is restricted to the fitted tasks, as when a split holds "
        "out whole tasks). If a label is a typo or of another type than the task column's "
        "('1' for 1), fix it.",
        TaskSubsetWarning,
        stacklevel=3,
    )
