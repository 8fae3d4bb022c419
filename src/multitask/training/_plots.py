"""Figures of a :class:`~multitask.training.History`: what a fit did, to look at rather than
read (:meth:`History.plot`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from multitask.training.callbacks import History

__all__ = ["moving_average", "plot_history"]


def moving_average(values, window: int) -> np.ndarray:
    """Mean of the last ``window`` finite values up to each position (fewer at the start).

    NaN entries (a task not trained at that step) are left out of every mean and stay NaN
    in the output, so a curve shows a gap where the task was not trained.
    """
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 1:
        raise ValueError(f"window must be an integer >= 1, got {window!r}")
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
        Training losses and weights are averaged over the last ``window`` steps
        (:func:`moving_average`); a step's batch loss is noisy. Validation metrics are
        plotted as recorded.
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
            y = np.asarray(values, dtype=float) if as_recorded else moving_average(values, window)
            ax.plot(steps, y, marker="o" if as_recorded else None, markersize=3, label=name)
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
