"""History.plot: the figure shows exactly the recorded curves (checked line by line), with the
moving average checked against a brute-force one."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest

from multitask.training import History, StepRecord
from multitask.training._plots import moving_average


def _brute(values, window):
    out = []
    for i, v in enumerate(values):
        last = [u for u in values[max(0, i - window + 1) : i + 1] if math.isfinite(u)]
        out.append(np.mean(last) if math.isfinite(v) else math.nan)
    return np.array(out)


@pytest.mark.parametrize("window", [1, 2, 3, 7, 50])
def test_moving_average_matches_brute_force(window):
    rng = np.random.default_rng(window)
    values = rng.standard_normal(40)
    values[rng.random(40) < 0.3] = math.nan
    np.testing.assert_allclose(moving_average(values, window), _brute(values, window))


@pytest.mark.parametrize("window", [0, -1, 1.5, True, "3"])
def test_moving_average_rejects_a_bad_window(window):
    with pytest.raises(ValueError, match="window must be an integer >= 1"):
        moving_average([1.0, 2.0], window)


def _history(weights=True, losses=None):
    h = History()
    losses = losses or {"a": [4.0, 2.0, math.nan, 1.0, 0.5], "b": [1.0, math.nan, 0.8, 0.7, 0.6]}
    for i in range(5):
        w = {"a": 0.2 * i, "b": 1 - 0.2 * i} if weights else None
        h.on_step(StepRecord(0, i + 1, {t: v[i] for t, v in losses.items()}, w))
        if i % 2 == 1:
            metrics = {"a": {"mse": 1.0 / (i + 1), "mae": 0.5}, "b": {"auc": 0.6 + 0.1 * i}}
            h.on_evaluate(StepRecord(0, i + 1, {}, None, (), metrics))
    return h


def _panels(fig):
    return {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}


def test_every_panel_holds_the_recorded_values():
    h = _history()
    fig = h.plot()
    axes = _panels(fig)
    assert list(axes) == [
        "training loss",
        "task weights",
        "validation auc",
        "validation mae",
        "validation mse",
    ]
    lines = {ln.get_label(): ln for ln in axes["training loss"].get_lines()}
    for task, values in h.losses().items():
        # one line through the steps that trained the task: a missed step is no gap
        trained = [i + 1 for i, v in enumerate(values) if math.isfinite(v)]
        np.testing.assert_array_equal(lines[task].get_xdata(), trained)
        np.testing.assert_array_equal(
            lines[task].get_ydata(), [v for v in values if math.isfinite(v)]
        )
    assert axes["training loss"].get_yscale() == "log"
    weights = {ln.get_label(): list(ln.get_ydata()) for ln in axes["task weights"].get_lines()}
    assert weights == h.weights()
    auc = axes["validation auc"].get_lines()
    assert [ln.get_label() for ln in auc] == ["b"]  # only the task that reports it
    np.testing.assert_array_equal(auc[0].get_xdata(), [2, 4])
    np.testing.assert_allclose(auc[0].get_ydata(), [0.7, 0.9])
    mse = {ln.get_label(): ln.get_ydata() for ln in axes["validation mse"].get_lines()}
    assert list(mse) == ["a"]
    np.testing.assert_allclose(mse["a"], [0.5, 0.25])
    plt.close(fig)


def test_window_smooths_the_training_curves_only():
    h = _history()
    fig = h.plot(window=2)
    axes = _panels(fig)
    loss = next(t for t in axes if t.startswith("training loss"))
    assert loss == "training loss (mean of 2 steps)"
    lines = {ln.get_label(): ln.get_ydata() for ln in axes[loss].get_lines()}
    for task, values in h.losses().items():
        trained = [v for v in values if math.isfinite(v)]  # a task's own last 2 values
        np.testing.assert_allclose(lines[task], _brute(trained, 2))
    auc = axes["validation auc"].get_lines()[0].get_ydata()
    np.testing.assert_allclose(auc, [0.7, 0.9])  # evaluations as recorded
    plt.close(fig)


def test_no_weights_panel_without_weights_and_linear_axis_for_non_positive_losses():
    h = _history(weights=False, losses={"a": [1.0, -0.5, 0.2, 0.1, 0.0]})
    fig = h.plot()
    axes = _panels(fig)
    assert "task weights" not in axes
    assert axes["training loss"].get_yscale() == "linear"
    plt.close(fig)


def test_an_empty_history_is_an_error():
    with pytest.raises(ValueError, match="the history is empty"):
        History().plot()


def test_the_figure_of_a_real_fit(tmp_path):
    torch = pytest.importorskip("torch")
    from torch import nn

    from multitask.nn import Task
    from multitask.nn.architectures import HardSharing
    from multitask.nn.weighting import DWA
    from multitask.training import Trainer

    torch.manual_seed(0)
    x = torch.randn(128, 4)
    y = {"r": x[:, 0], "c": (x[:, 1] > 0).float()}
    batches = [(x[i : i + 32], {t: v[i : i + 32] for t, v in y.items()}) for i in range(0, 128, 32)]
    heads = {t: nn.Sequential(nn.Linear(8, 1), nn.Flatten(0)) for t in y}
    model = HardSharing(nn.Sequential(nn.Linear(4, 8), nn.ReLU()), heads)
    tasks = [Task("r"), Task("c", "binary")]
    trainer = Trainer(model, tasks, DWA(2), max_epochs=3, progress=False)
    trainer.fit(batches, batches)
    fig = trainer.history_.plot(window=2)
    axes = _panels(fig)
    assert "task weights (mean of 2 steps)" in axes
    assert "validation auc" in axes and "validation mse" in axes
    assert len(axes["training loss (mean of 2 steps)"].get_lines()) == 2
    fig.savefig(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 1000
    plt.close(fig)
