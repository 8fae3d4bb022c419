"""History.plot under samplers that train one task per step: each task's loss curve joins the
steps that trained it (round robin, proportional, periodic) and breaks only where the task went
untrained for far longer than usual. Oracles: brute-force means over each task's own values, and
the segments matplotlib can draw (two consecutive finite points)."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest

from multitask.training import History, PeriodicSampler, ProportionalSampler, StepRecord


def _history(losses, weights=None):
    """A History whose step ``i + 1`` records ``losses[t][i]`` (NaN: task ``t`` not trained)."""
    h = History()
    n = len(next(iter(losses.values())))
    for i in range(n):
        w = None if weights is None else {t: v[i] for t, v in weights.items()}
        h.on_step(StepRecord(0, i + 1, {t: v[i] for t, v in losses.items()}, w))
    return h


def _lines(fig, panel="training loss"):
    ax = next(ax for ax in fig.axes if ax.get_title().startswith(panel))
    return {ln.get_label(): ln for ln in ax.get_lines()}


def _segments(line):
    """How many segments matplotlib draws: pairs of consecutive finite points."""
    y = np.asarray(line.get_ydata(), dtype=float)
    return int(np.sum(np.isfinite(y[:-1]) & np.isfinite(y[1:])))


def _oracle(steps, values, window, breaks=()):
    """Trained steps and the mean of the last ``window`` trained values of each, restarting
    after every step of ``breaks`` (the first trained step after a gap)."""
    xs, ys, stretch = [], [], []
    for s, v in zip(steps, values, strict=True):
        if not math.isfinite(v):
            continue
        if s in breaks:
            stretch = []
        stretch.append(v)
        xs.append(s)
        ys.append(sum(stretch[-window:]) / len(stretch[-window:]))
    return xs, ys


def _round_robin(n_steps, tasks, rng):
    return {
        t: [rng.uniform(0.5, 2.0) if s % len(tasks) == k else math.nan for s in range(n_steps)]
        for k, t in enumerate(tasks)
    }


@pytest.mark.parametrize("n_tasks", [2, 3])
@pytest.mark.parametrize("window", [1, 4])
def test_round_robin_curves_are_continuous_and_average_each_tasks_own_values(n_tasks, window):
    tasks = ["a", "b", "c"][:n_tasks]
    losses = _round_robin(60, tasks, np.random.default_rng(n_tasks))
    fig = _history(losses).plot(window=window)
    lines = _lines(fig)
    steps = list(range(1, 61))
    for t in tasks:
        line = lines[t]
        x, y = _oracle(steps, losses[t], window)
        assert len(x) == 60 // n_tasks
        assert _segments(line) == len(x) - 1  # one unbroken line through every trained step
        np.testing.assert_array_equal(line.get_xdata(), x)
        np.testing.assert_allclose(line.get_ydata(), y, rtol=1e-12)
    plt.close(fig)


def test_the_round_robin_fit_of_the_bug_report_draws_its_loss_curves():
    torch = pytest.importorskip("torch")
    from torch import nn
    from torch.utils.data import DataLoader

    from multitask.nn import Task
    from multitask.nn.architectures import HardSharing
    from multitask.training import Trainer

    g = torch.Generator().manual_seed(0)
    x = {t: torch.randn(32, 3, generator=g) for t in "ab"}
    loaders = {
        t: DataLoader([(xi, {t: xi[k]}) for xi in x[t]], batch_size=8) for k, t in enumerate("ab")
    }
    torch.manual_seed(0)
    heads = {t: nn.Sequential(nn.Linear(4, 1), nn.Flatten(0)) for t in "ab"}
    model = HardSharing(nn.Sequential(nn.Linear(3, 4), nn.ReLU()), heads)
    trainer = Trainer(
        model, [Task("a"), Task("b")], max_epochs=2, progress=False, sampler="round_robin"
    )
    history = trainer.fit(loaders).history_
    steps = [r.step for r in history.steps]
    for window in (1, 3):
        fig = history.plot(window=window)
        lines = _lines(fig)
        for t, values in history.losses().items():
            xs, ys = _oracle(steps, values, window)
            assert len(xs) == 8 and _segments(lines[t]) == 7
            np.testing.assert_allclose(lines[t].get_ydata(), ys, rtol=1e-12)
        plt.close(fig)


def test_a_task_absent_for_a_long_stretch_shows_one_gap_and_its_means_restart_after_it():
    # round robin for 40 steps, then only "a" for 60 steps, then round robin again: "b" is
    # spaced 2 apart except once, 61 apart
    rng = np.random.default_rng(0)
    alone = range(40, 100)  # (0-based) the stretch where only "a" trains
    a = [rng.uniform(0.5, 2.0) if s % 2 == 0 or s in alone else math.nan for s in range(140)]
    b = [rng.uniform(0.5, 2.0) if s % 2 == 1 and s not in alone else math.nan for s in range(140)]
    steps = list(range(1, 141))
    fig = _history({"a": a, "b": b}).plot(window=3)
    lines = _lines(fig)
    ya = lines["a"].get_ydata()
    assert np.isfinite(ya).all() and _segments(lines["a"]) == ya.size - 1  # spaced 1 or 2
    yb, xb = np.asarray(lines["b"].get_ydata()), np.asarray(lines["b"].get_xdata())
    gap = np.flatnonzero(~np.isfinite(yb))
    assert gap.size == 1 and 40 < xb[gap[0]] < 101  # one break, inside the stretch
    assert _segments(lines["b"]) == yb.size - 3  # 20 + 20 points: 19 + 19 segments
    x, y = _oracle(steps, b, 3, breaks={102})  # the first step of b after the gap
    np.testing.assert_array_equal(np.delete(xb, gap), x)
    np.testing.assert_allclose(np.delete(yb, gap), y, rtol=1e-12)
    plt.close(fig)


def test_the_gap_rule_is_twenty_median_spacings():
    from multitask.training._plots import GAP_FACTOR

    assert GAP_FACTOR == 20
    # every 3rd step, then one spacing of exactly 60 (joined) or 61 (broken)
    for spacing, broken in [(60, False), (61, True)]:
        trained = [*range(0, 60, 3), 57 + spacing, *range(57 + spacing + 3, 200, 3)]
        values = [1.0 if s in trained else math.nan for s in range(200)]
        fig = _history({"a": values}).plot()
        y = _lines(fig)["a"].get_ydata()
        assert np.isnan(y).sum() == int(broken), spacing
        plt.close(fig)


def test_proportional_and_periodic_samplers_give_continuous_curves():
    # a proportional draw at p = 1/2 is the worst case of the rule: median spacing 1, so a
    # run of twenty draws of the other task breaks the line (probability 2^-20 per spacing)
    sampler = ProportionalSampler({"a": 100, "b": 100}, seed=0)
    draws = [sampler.next()[0] for _ in range(2000)]
    losses = {t: [1.0 if d == t else math.nan for d in draws] for t in "ab"}
    fig = _history(losses).plot(window=8)
    for t, line in _lines(fig).items():
        n = int(np.isfinite(losses[t]).sum())
        assert _segments(line) == n - 1, t  # no break in ~1000 spacings
    plt.close(fig)
    sampler = PeriodicSampler({"main": 1, "aux": 3})
    draws = [sampler.next() for _ in range(90)]
    losses = {t: [1.0 if t in d else math.nan for d in draws] for t in ("main", "aux")}
    fig = _history(losses).plot(window=2)
    lines = _lines(fig)
    assert _segments(lines["main"]) == 89 and _segments(lines["aux"]) == 29
    plt.close(fig)


def test_a_lone_value_is_marked_and_continuous_lines_have_no_markers():
    values = [1.0 if s % 2 == 0 else math.nan for s in range(60)]
    values += [math.nan] * 99 + [2.0]  # trained once more, 101 steps later
    fig = _history({"a": values, "b": [1.0] * len(values)}).plot()
    lines = _lines(fig)
    ya = lines["a"].get_ydata()
    assert ya[-1] == 2.0 and np.isnan(ya[-2])  # a stretch of one point after the gap
    assert lines["a"].get_marker() == "o" and lines["a"].get_markevery() == [ya.size - 1]
    assert lines["b"].get_marker() == "None"
    plt.close(fig)


def test_a_task_trained_at_every_step_but_one_is_one_line_of_its_own_means():
    # the history of test_history_plot: a single missed step is the usual spacing of a task
    # drawn at random, not a gap
    losses = {"a": [4.0, 2.0, math.nan, 1.0, 0.5], "b": [1.0, math.nan, 0.8, 0.7, 0.6]}
    weights = {"a": [0.0, 0.2, 0.4, 0.6, 0.8], "b": [1.0, 0.8, 0.6, 0.4, 0.2]}
    h = _history(losses, weights)
    fig = h.plot()
    lines = _lines(fig)
    np.testing.assert_array_equal(lines["a"].get_xdata(), [1, 2, 4, 5])
    np.testing.assert_array_equal(lines["a"].get_ydata(), [4.0, 2.0, 1.0, 0.5])
    np.testing.assert_array_equal(lines["b"].get_xdata(), [1, 3, 4, 5])
    assert {t: list(ln.get_ydata()) for t, ln in _lines(fig, "task weights").items()} == weights
    plt.close(fig)
    fig = h.plot(window=2)
    lines = _lines(fig, "training loss (mean of 2 steps)")
    np.testing.assert_allclose(lines["a"].get_ydata(), [4.0, 3.0, 1.5, 0.75])
    np.testing.assert_allclose(lines["b"].get_ydata(), [1.0, 0.9, 0.75, 0.65])
    plt.close(fig)


@pytest.mark.parametrize("window", [0, 2.0, True])
def test_a_bad_window_is_an_error_even_for_a_task_never_trained(window):
    h = _history({"a": [1.0, 2.0], "b": [math.nan, math.nan]})
    with pytest.raises(ValueError, match="window must be an integer >= 1"):
        h.plot(window=window)
