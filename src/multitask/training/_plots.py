"""Figures of a :class:`~multitask.training.History`: what a fit did, to look at rather than
read (:meth:`History.plot`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from multitask.training.callbacks import History

__all__ = ["GAP_FACTOR", "moving_average", "plot_history", "training_curve"]

#: A task's training curve breaks where two consecutive steps that trained it lie more than
#: ``GAP_FACTOR`` times its median spacing apart (see :func:`training_curve`).
GAP_FACTOR = 20


def _check_window(window) -> None:
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 1:
        raise ValueError(f"window must be an integer >= 1, got {window!r}")


def moving_average(values, window: int) -> np.ndarray:
    """Mean of the finite values among the last ``window`` positions up to each position
    (fewer at the start).

    NaN entries are left out of every mean and stay NaN in the output. Over a sequence with
    no NaN this is the mean of the last ``window`` values, which is how
    :func:`training_curve` uses it.
    """
    _check_window(window)
    y = np.asarray(values, dtype=float)
    seen = np.isfinite(y)
    if window == 1:  # the values themselves, not differences of running sums
        return np.where(seen, y, np.nan)
    total = np.concatenate([[0.0], np.cumsum(np.where(seen, y, 0.0))])
    count = np.concatenate([[0], np.cumsum(seen)])
    hi = np.arange(1, y.size + 1)
    lo = np.maximum(hi - window, 0)
    n = count[hi] - count[lo]
    out = (total[hi] - total[lo]) / np.maximum(n, 1)
    return np.where(seen, out, np.nan)


def training_curve(steps, values, window: int = 1) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """One task's line in a training panel: its trained steps, joined except across gaps.

    A task trains at the steps where its value is finite: at every step with one loader,
    every ``T``-th step under round robin over ``T`` tasks, at random steps under a
    proportional sampler. Its line joins consecutive trained steps, so it is continuous
    however the steps are spaced, and breaks only at a gap: two consecutive trained steps
    more than :data:`GAP_FACTOR` (20) times the task's median spacing apart. The median is
    the task's usual spacing whatever the sampler (``T`` under round robin, about
    ``ln 2 / p`` for a task drawn with probability ``p``) and a few long absences do not
    move it; under a proportional sampler about one spacing in a million is longer than
    20 medians (``(1 - p)^20`` at ``p = 1/2``, the worst case; 10 medians would break a
    line about once in a thousand), so a line breaks where the task stopped training, not
    by chance.

    Each point is the mean of the task's last ``window`` values within its stretch (fewer
    at the start of the fit and after a gap): the window counts the task's own steps, not
    optimizer steps, so every point of every task averages as many batch losses (a task
    trained one step in ten is as smoothed as one trained at every step), and no mean
    mixes values from both sides of a gap.

    Parameters
    ----------
    steps : sequence of int, shape (n_steps,)
        Increasing optimizer steps.
    values : sequence of float, shape (n_steps,)
        The task's value at each step; NaN where it was not trained.
    window : int, default=1
        Number of values in each mean.

    Returns
    -------
    x, y : ndarray of shape (n_points,)
        What to plot: the trained steps and their means, with one NaN point (at the first
        step of the gap) between two stretches, where matplotlib breaks the line.
    lone : list of int
        Indices into ``x`` of the stretches of a single point, which a line without
        markers would not show (``markevery``).
    """
    _check_window(window)
    x, y = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"{x.size} steps for {y.size} values")
    seen = np.isfinite(y)
    x, y = x[seen], y[seen]
    spacing = np.diff(x)
    starts = []
    if spacing.size:
        starts = (np.flatnonzero(spacing > GAP_FACTOR * np.median(spacing)) + 1).tolist()
    xs, ys, lone, n = [], [], [], 0
    for k, (lo, hi) in enumerate(zip([0, *starts], [*starts, x.size], strict=True)):
        if k:  # a NaN point between two stretches: no segment drawn across the gap
            xs.append([x[lo - 1] + 1])
            ys.append([np.nan])
            n += 1
        xs.append(x[lo:hi])
        ys.append(moving_average(y[lo:hi], window))
        if hi - lo == 1:
            lone.append(n)
        n += hi - lo
    return np.concatenate(xs), np.concatenate(ys), lone


def _panels(history: History) -> list[tuple[str, str, dict, list[int]]]:
    """(title, y label, {line: values}, steps) of each panel, in order."""
    steps = [r.step for r in history.steps]
    panels = [("training loss", "loss", history.losses(), steps)]
    weights = history.weights()
    if weights:
        weighted = [r.step for r in history.steps if r.weights is not None]
        panels.append(("task weights", "weight", weights, weighted))
    evals = [r for r in history.evaluations if r.metrics]
    names = sorted({m for r in evals for per_task in r.metrics.values() for m in per_task})
    for metric in names:
        lines = {
            task: [r.metrics.get(task, {}).get(metric, np.nan) for r in evals]
            for task in dict.fromkeys(t for r in evals for t in r.metrics)
            if any(metric in r.metrics.get(task, {}) for r in evals)
        }
        panels.append((f"validation {metric}", metric, lines, [r.step for r in evals]))
    return panels


def plot_history(history: History, *, window: int = 1, logy: bool = True) -> Figure:
    """One figure of a fit: each task's training loss, the balancer's task weights (when it
    reports them) and each validation metric per task (one panel per metric name).

    Parameters
    ----------
    history : History
        ``trainer.history_`` after ``fit``.
    window : int, default=1
        Each point of a training loss or weight curve is the mean of the task's last
        ``window`` values (a step's batch loss is noisy); a task's curve joins the steps
        that trained it and breaks only where it went untrained for more than
        :data:`GAP_FACTOR` times its usual spacing (:func:`training_curve`). Validation
        metrics are plotted as recorded.
    logy : bool, default=True
        Logarithmic loss axis (when every plotted loss is positive).

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.savefig("curves.png")`` to keep it; the x axis of every panel is the optimizer
        step.
    """
    import matplotlib.pyplot as plt

    if not history.steps and not history.evaluations:
        raise ValueError("the history is empty: nothing to plot (call fit first)")
    panels = _panels(history)
    cols = min(len(panels), 3)
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, (title, ylabel, lines, steps) in zip(axes.flat, panels, strict=False):
        as_recorded = title.startswith("validation")  # (one point per evaluation)
        for name, values in lines.items():
            if as_recorded:
                ax.plot(steps, values, marker="o", markersize=3, label=name)
            else:  # markers only on lone points, which a bare line would not show
                x, y, lone = training_curve(steps, values, window)
                marker = "o" if lone else None
                ax.plot(x, y, marker=marker, markevery=lone, markersize=3, label=name)
        finite = np.concatenate([np.asarray(v, dtype=float) for v in lines.values()] or [[]])
        finite = finite[np.isfinite(finite)]
        if title == "training loss" and logy and finite.size and (finite > 0).all():
            ax.set_yscale("log")
        ax.set_title(title if window == 1 or as_recorded else f"{title} (mean of {window} steps)")
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        if lines:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig
