"""The HTML report: content from rows, and a real render in headless Chromium."""

import shutil
import tempfile

import pytest

from multitask.bench import RunResult, render_report, write_report
from multitask.bench._suite import Published


def _rows():
    rows = []
    for seed in range(3):
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
    out = write_report(_rows(), tmp_path / "report.html")
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
    assert len(images) >= 3
    assert all(done and width > 0 for done, width in images), images
    assert tables and all(n > 0 for n in tables), tables
    assert (tmp_path / "report.png").stat().st_size > 10_000
