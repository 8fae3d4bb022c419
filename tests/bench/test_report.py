"""The HTML report: content from rows, and a real render in headless Chromium."""

import shutil
import tempfile

import numpy as np
import pytest

from multitask.bench import RunResult, render_report
from multitask.bench._suite import Published


def _rows(n_seeds=3):
    rows = []
    for seed in range(n_seeds):
        for method, shift in (("independent", 0.0), ("group_lasso", -0.1), ("trace_norm", -0.05)):
            for task in ("1", "2", "3"):
                rows.append(
                    RunResult(
                        "exam",
                        method,
                        seed,
                        task,
                        "mse",
                        (1 + shift) * (1 + 0.1 * int(task)),
                        "test",
                        "h",
                        1.0,
                    )
                )
            rows.append(
                RunResult("exam", method, seed, "_all", "nmse", 0.8 + shift, "test", "h", 1)
            )
        for method, acc in (("single_task", 0.8), ("hard_sharing", 0.84)):
            for task in ("left", "right"):
                rows.append(
                    RunResult("multi_digits", method, seed, task, "accuracy", acc, "test", "h", 1)
                )
            rows.append(
                RunResult("multi_digits", method, seed, "_all", "accuracy", acc, "test", "h", 1)
            )
    return rows


_ARTIFACTS = {
    ("exam", "group_lasso", 0): {
        "path": [
            {"alpha": a, "val_score": -a, "coef_norms": [1 / (1 + a), 0.5 / (1 + a)]}
            for a in (0.01, 0.1, 1.0)
        ],
        "task_covariance": [[1.0, 0.5, 0.1], [0.5, 1.0, 0.2], [0.1, 0.2, 1.0]],
    },
    ("multi_digits", "hard_sharing", 0): {
        "tasks": ["left", "right"],
        "curves": {"left": [2.0, 1.0, 0.5], "right": [2.1, 1.2, 0.6]},
        "weights": {"left": [1.0, 1.1, 1.2], "right": [1.0, 0.9, 0.8]},
        "cosines": [[1.0, -0.2], [-0.2, 1.0]],
    },
}


def test_report_contents():
    published = [Published("exam", "group_lasso", "nmse", 0.7, "Someone et al., 2020", 0.01)]
    text = render_report(_rows(), _ARTIFACTS, published)
    assert text.count("<table") == 3  # ranking + one results table per dataset
    # delta_m: group_lasso improves mse by 10% on every task -> +10.00%
    assert "+10.00%" in text
    assert "+5.00%" in text  # trace_norm
    assert "Someone et al., 2020" in text and "0.7 ± 0.01" in text
    n_images = text.count("<img ")
    # ranking + 2 per-task bars + path + task similarity + curves + weights + cosines
    assert n_images == 8
    # self-contained: every image inline, no script, stylesheet or link to fetch
    assert text.count('src="data:image/png;base64,') == n_images
    assert "<script" not in text and "<link" not in text and "http" not in text


def _row_of(text: str, method: str, table: int) -> str:
    """The ``<tr>`` of ``method`` in the ``table``-th table of the report."""
    body = text.split("<table")[table + 1].split("</table>")[0]
    return next(tr for tr in body.split("<tr>") if f"<td>{method}</td>" in tr)


def test_one_seed_says_so_and_has_no_error_bars():
    one = render_report(_rows(n_seeds=1), {})
    assert "1 seed" in one and "no error bars" in one and "single seed" in one
    assert "±" not in one.split("<h2>")[1]  # ranking: bare values, no spread
    assert "<td>+10.00%</td>" in _row_of(one, "group_lasso", 0)
    assert ">0.7</td>" in _row_of(one, "group_lasso", 1)  # exam nmse of seed 0
    several = render_report(_rows(n_seeds=3), {})
    assert "3 seeds" in several and "error bars: std over seeds" in several
    assert "+10.00% ± 0.00" in _row_of(several, "group_lasso", 0)
    assert ">0.7 ± 0</td>" in _row_of(several, "group_lasso", 1)


def test_linear_only_and_deep_only_reports():
    rows = _rows()
    linear = render_report([r for r in rows if r.dataset == "exam"], _ARTIFACTS)
    assert "<h2>exam</h2>" in linear and "multi_digits" not in linear
    assert linear.count("<table") == 2  # ranking + exam
    # ranking + per-task bars + path + task similarity
    assert linear.count("<img ") == 4
    deep = render_report([r for r in rows if r.dataset == "multi_digits"], _ARTIFACTS)
    assert "<h2>multi_digits</h2>" in deep and "<h2>exam</h2>" not in deep
    assert "+5.00%" in _row_of(deep, "hard_sharing", 0)  # 0.84 / 0.80 - 1
    # ranking + per-task bars + curves + weights + cosines
    assert deep.count("<img ") == 5


def test_failed_runs_are_listed():
    failures = [{"dataset": "exam", "method": "trace_norm", "seed": 2, "error": "boom: <x>"}]
    rows = [r for r in _rows() if not (r.method == "trace_norm" and r.seed == 2)]
    text = render_report(rows, {}, failures=failures)
    assert "Failed runs (1)" in text and "boom: &lt;x&gt;" in text
    assert "<td>2</td>" in _row_of(text, "trace_norm", 1)  # seeds column: 2 of 3 ran
    only = render_report([], {}, failures=failures)  # every run failed: still a report
    assert "Failed runs (1)" in only
    with pytest.raises(ValueError, match="no result rows"):
        render_report([], {})


def test_published_numbers_sit_beside_ours():
    published = [
        Published("exam", "group_lasso", "nmse", 0.7, "Someone et al., 2020", 0.01, "75/25"),
        Published("exam", "mean_regularized", "nmse", 0.6, "Other, 2004"),
    ]
    text = render_report(_rows(), {}, published)
    header = text.split("<table")[2].split("</thead>")[0]
    assert "nmse (ours)" in header and "nmse (published)" in header
    row = _row_of(text, "group_lasso", 1)
    assert "0.7 ± 0</td>" in row and "0.7 ± 0.01</td>" in row and "Someone et al." in row
    not_run = _row_of(text, "mean_regularized", 1)  # published, but not in our grid
    assert "0.6</td>" in not_run and "not run" in not_run
    assert "(protocol: 75/25)" in text


def _bars_drawn(monkeypatch):
    """Spy on ``Axes.bar`` / ``Axes.scatter``: a list of (axes, method, heights or y, yerr or x)."""
    import matplotlib
    import matplotlib.axes

    matplotlib.use("Agg")
    drawn = []
    bar, scatter = matplotlib.axes.Axes.bar, matplotlib.axes.Axes.scatter

    def spy_bar(ax, x, height, *args, **kw):
        drawn.append((ax, kw.get("label"), list(height), kw.get("yerr")))
        return bar(ax, x, height, *args, **kw)

    def spy_scatter(ax, x, y, *args, **kw):
        drawn.append((ax, kw.get("label"), list(y), list(x)))
        return scatter(ax, x, y, *args, **kw)

    monkeypatch.setattr(matplotlib.axes.Axes, "bar", spy_bar)
    monkeypatch.setattr(matplotlib.axes.Axes, "scatter", spy_scatter)
    return drawn


def test_per_task_bars_plot_one_metric_each_with_its_own_spread(monkeypatch):
    """A binary task reports accuracy, AUC and F1: the bars used to be the mean of all three,
    labelled with the last, with error bars and a seed count that mixed them."""
    from multitask.bench import report

    values = {"accuracy": [0.8, 0.9], "auc": [0.6, 0.7], "f1": [0.1, 0.4]}  # seeds 0 and 1
    rows = [
        RunResult("adult", "hard_sharing", seed, "income", metric, v[seed], "test", "h", 1.0)
        for metric, v in values.items()
        for seed in (0, 1)
    ]
    drawn = _bars_drawn(monkeypatch)
    text = report._per_task_bars("adult", rows, "single_task")
    got = {ax.get_ylabel(): (heights, yerr) for ax, _, heights, yerr in drawn}
    assert set(got) == {"test accuracy", "test auc", "test f1"}
    for metric, v in values.items():
        heights, yerr = got[f"test {metric}"]
        assert heights == pytest.approx([np.mean(v)])
        assert yerr == pytest.approx([np.std(v, ddof=1)])  # the sample std of the seeds
    assert text.count("(2 seeds; error bars: std over seeds)</figcaption>") == 3


def test_per_task_scatter_past_30_tasks_is_one_metric_each(monkeypatch):
    from multitask.bench import report

    rows = [
        RunResult("big", method, 0, str(t), metric, value + t, "test", "h", 1.0)
        for t in range(31)
        for method, level in (("independent", 1.0), ("group_lasso", 2.0))
        for metric, value in (("mse", level), ("mae", 10 * level))
    ]
    drawn = _bars_drawn(monkeypatch)
    text = report._per_task_bars("big", rows, "independent")
    got = {ax.get_ylabel(): (ys, xs) for ax, _, ys, xs in drawn}
    assert got["method: per-task mse"] == (
        [2.0 + t for t in range(31)],
        [1.0 + t for t in range(31)],
    )
    assert got["method: per-task mae"][0] == [20.0 + t for t in range(31)]
    assert text.count("(1 seed; mean)</figcaption>") == 2


def test_a_zero_baseline_value_leaves_its_term_out_of_delta_m_with_a_warning():
    """A baseline F1 of 0 (no positive predicted) made the whole report raise."""
    from multitask.bench import delta_m_by_method

    scores = {
        "single_task": {"accuracy": 0.8, "f1": 0.0},
        "hard_sharing": {"accuracy": 0.88, "f1": 0.3},
    }
    rows = [
        RunResult("adult", method, 0, "income", metric, value, "test", "h", 1.0)
        for method, by_metric in scores.items()
        for metric, value in by_metric.items()
    ]
    with pytest.warns(UserWarning, match="adult seed 0 task 'income' f1"):
        deltas = delta_m_by_method(rows, {"adult": "single_task"})
    assert deltas[("adult", "hard_sharing")] == {0: pytest.approx(0.1)}  # accuracy term only
    with pytest.warns(UserWarning, match="scores 0"):
        text = render_report(rows, {})
    assert "+10.00%" in text


def _chrome_driver():
    chromium = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("Debian chromium and chromium-driver are not installed")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tempfile.mkdtemp()}",
        "--window-size=1200,2000",
    ):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=opts)


def test_report_renders_in_headless_chromium(tmp_path):
    published = [Published("exam", "group_lasso", "nmse", 0.7, "Someone et al., 2020", 0.01)]
    failures = [{"dataset": "exam", "method": "dirty", "seed": 0, "error": "boom"}]
    out = tmp_path / "report.html"
    out.write_text(render_report(_rows(), _ARTIFACTS, published, failures=failures))
    driver = _chrome_driver()
    try:
        driver.get(out.as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth]);"
        )
        tables = driver.execute_script(
            "return Array.from(document.querySelectorAll('table')).map("
            "t => t.querySelectorAll('tbody tr').length);"
        )
        driver.save_screenshot(str(tmp_path / "report.png"))
    finally:
        driver.quit()
    assert len(images) == 8  # ranking, 2 bars, path, similarity, curves, weights, cosines
    assert all(done and width > 0 for done, width in images), images
    assert tables == [3, 3, 2, 1], tables  # ranking, exam, multi_digits, failed runs
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_tasks_left_out_of_nmse_are_said_under_their_dataset():
    """A task with a constant test target has no nMSE (computer survey, chem97): the runner
    leaves it out of the overall nmse and the report says how many, per seed."""
    artifacts = {
        ("exam", "independent", 0): {"nmse_left_out": ["4", "7"]},
        ("exam", "group_lasso", 0): {"nmse_left_out": ["4", "7"]},
        ("exam", "independent", 1): {"nmse_left_out": ["9"]},
    }
    text = render_report(_rows(), artifacts)
    exam = text.split("<h2>exam</h2>")[1].split("<h2>")[0]
    assert "nmse: 1-2 task(s) per seed (2 seeds) have a constant test target" in exam
    assert "constant test target" not in render_report(_rows(), _ARTIFACTS)


def test_spreads_are_the_sample_std_of_the_seeds():
    """Mean ± std cells and delta_m cells use ddof=1, as docs/results_adult.md does (the
    population std, 0.816 here, read 18% low at 3 seeds)."""
    from multitask.bench._report_tables import delta_cell, fmt_seeds

    assert np.std([1.0, 2.0, 3.0], ddof=1) == 1.0
    assert fmt_seeds([1.0, 2.0, 3.0]).endswith("± 1")
    assert delta_cell([0.1, 0.2, 0.3]) == "<td>+20.00% ± 10.00</td>"
