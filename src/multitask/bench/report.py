"""The benchmark report: one self-contained HTML file with embedded PNG plots.

Everything is made from result rows (``results.jsonl``) and the cached run
artifacts next to them; nothing is recomputed. Plots are matplotlib PNGs
embedded as base64, so the file reads offline.
"""

from __future__ import annotations

import base64
import html
import io
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from multitask.bench._report_tables import (
    delta_cell,
    failures_section,
    html_table,
    intro,
    overall_values,
    results_section,
    seed_words,
)
from multitask.bench._results import RunResult, atomic_write_text, delta_m_by_method

__all__ = ["render_report", "write_report"]

ALL = "_all"

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{border-bottom:2px solid #444} h2{margin-top:2em;border-bottom:1px solid #bbb}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th{background:#f0f0f0} td:first-child,th:first-child{text-align:left}
.best{font-weight:bold;background:#e8f5e9} .pub{color:#555;font-style:italic}
figure{display:inline-block;margin:.5em} figcaption{font-size:.85em;color:#555}
img{max-width:520px}
"""


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _figure(fig, caption: str) -> str:
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{_png(fig)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _delta_ranking(deltas) -> tuple[str, str]:
    import matplotlib.pyplot as plt

    items = sorted(
        ((ds, m, list(v.values())) for (ds, m), v in deltas.items()),
        key=lambda x: -np.mean(x[2]),
    )
    words = seed_words([len(v) for _, _, v in items])
    rows = [
        [
            f"<td>{i + 1}</td>",
            f"<td>{html.escape(m)}</td>",
            f"<td>{html.escape(ds)}</td>",
            delta_cell(v),
            f"<td>{len(v)}</td>",
        ]
        for i, (ds, m, v) in enumerate(items)
    ]
    spread = " (mean ± std over seeds)" if words != "1 seed" else " (1 seed)"
    header = ["rank", "method", "dataset", f"Δm{spread}", "seeds"]
    ranking = html_table(header, rows, "ranking")
    fig, ax = plt.subplots(figsize=(6, 0.35 * max(len(items), 3) + 1))
    labels = [f"{m} ({ds})" for ds, m, _ in items]
    means = [100 * float(np.mean(v)) for _, _, v in items]
    stds = [100 * float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for _, _, v in items]
    ax.barh(
        labels[::-1],
        means[::-1],
        xerr=stds[::-1] if any(stds) else None,
        color=["#4caf50" if x >= 0 else "#e57373" for x in means][::-1],
    )
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("Δm vs single-task (%)")
    bars = "error bars: std over seeds" if any(stds) else "no error bars"
    caption = f"Δm ranking: mean relative change over single-task baselines ({words}; {bars})"
    return ranking, _figure(fig, caption)


def _per_task_values(dataset, rows) -> dict[str, dict[tuple[str, str], list[float]]]:
    """Metric -> (method, task) -> the test values over seeds, metrics in order of appearance."""
    per: dict[str, dict[tuple[str, str], list[float]]] = {}
    for r in rows:
        if r.dataset == dataset and r.split == "test" and r.task != ALL:
            per.setdefault(r.metric, defaultdict(list))[(r.method, r.task)].append(r.value)
    return per


def _per_task_bars(dataset, rows, baseline: str) -> str:
    """One plot per metric of each method's per-task test value (mean over seeds).

    A task reports several metrics (accuracy, AUC and F1 of a binary task): each
    gets its own plot, over the tasks that report it, so a bar is one metric's
    mean over seeds and its error bar that metric's std over seeds.
    """
    return "".join(
        _metric_bars(dataset, metric, values, baseline)
        for metric, values in _per_task_values(dataset, rows).items()
    )


def _metric_bars(dataset, metric: str, per: dict, baseline: str) -> str:
    """Bars of ``per`` ((method, task) -> values over seeds), or a scatter past 30 tasks."""
    import matplotlib.pyplot as plt

    methods = sorted({m for m, _ in per})
    tasks = sorted({t for _, t in per}, key=lambda t: (len(t), t))
    if len(tasks) > 30:  # too many tasks for bars: compare each method to the first, task by task
        base = baseline if baseline in methods else methods[0]
        fig, ax = plt.subplots(figsize=(5, 5))
        for m in (m for m in methods if m != base):
            xs = [np.mean(per[(base, t)]) for t in tasks if per[(m, t)] and per[(base, t)]]
            ys = [np.mean(per[(m, t)]) for t in tasks if per[(m, t)] and per[(base, t)]]
            ax.scatter(xs, ys, s=8, label=m)
        lo, hi = ax.get_xlim()
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel(f"{base}: per-task {metric}")
        ax.set_ylabel(f"method: per-task {metric}")
        ax.legend(fontsize=7)
        words = seed_words([len(v) for v in per.values() if v])
        caption = f"{dataset}: per-task test {metric}, each method against {base} ({words}; mean)"
        return _figure(fig, caption)
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(tasks) * len(methods) / 3), 3.5))
    width = 0.8 / len(methods)
    x = np.arange(len(tasks))
    multi = any(len(v) > 1 for v in per.values())  # error bars only over several seeds
    for i, m in enumerate(methods):
        means = [np.mean(per[(m, t)]) if per[(m, t)] else np.nan for t in tasks]
        stds = [np.std(per[(m, t)], ddof=1) if len(per[(m, t)]) > 1 else 0 for t in tasks]
        ax.bar(x + i * width, means, width, yerr=stds if multi else None, label=m, capsize=2)
    ax.set_xticks(x + 0.4 - width / 2, tasks, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel(f"test {metric}")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    words = seed_words([len(v) for v in per.values() if v])
    bars = "error bars: std over seeds" if multi else "no error bars"
    return _figure(fig, f"{dataset}: per-task test {metric} ({words}; {bars})")


def _heatmap(matrix, title: str, labels=None, vmin=-1.0, vmax=1.0) -> str:
    import matplotlib.pyplot as plt

    m = np.asarray(matrix, float)
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    im = ax.imshow(m, cmap="RdBu_r", vmin=vmin, vmax=vmax)
    fig.colorbar(im, ax=ax, shrink=0.8)
    if labels is not None and len(labels) <= 12:
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_title(title, fontsize=9)
    return _figure(fig, title)


def _curves(series: dict[str, list[float]], title: str, ylabel: str, logy=False) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name, ys in series.items():
        ax.plot(np.arange(1, len(ys) + 1), ys, label=name)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    return _figure(fig, title)


def _path_plot(path: list[dict], title: str) -> str:
    import matplotlib.pyplot as plt

    if not path or "alpha" not in path[0]:
        return ""
    alphas = sorted({p["alpha"] for p in path})
    best = {a: max(p["val_score"] for p in path if p["alpha"] == a) for a in alphas}
    norms = {a: next(p["coef_norms"] for p in path if p["alpha"] == a) for a in alphas}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3))
    ax1.semilogx(alphas, [best[a] for a in alphas], "o-")
    ax1.set_xlabel("alpha")
    ax1.set_ylabel("validation score")
    ax2.semilogx(alphas, np.array([norms[a] for a in alphas]))
    ax2.set_xlabel("alpha")
    ax2.set_ylabel("feature norm across tasks")
    fig.suptitle(title, fontsize=9)
    return _figure(fig, title)


def _nmse_note(dataset, artifacts) -> str:
    """Which tasks the overall nMSE of ``dataset`` leaves out (constant test target), if any."""
    per_seed = {
        seed: len(art["nmse_left_out"])
        for (ds, _, seed), art in artifacts.items()
        if ds == dataset and art.get("nmse_left_out")
    }
    if not per_seed:
        return ""
    lo, hi = min(per_seed.values()), max(per_seed.values())
    count = str(lo) if lo == hi else f"{lo}-{hi}"
    seeds = "1 seed" if len(per_seed) == 1 else f"{len(per_seed)} seeds"
    return (
        f"<p class='note'>nmse: {count} task(s) per seed ({seeds}) have a constant test target, "
        "so no nMSE; they are left out of the overall nmse (their MSE is in the per-task "
        "numbers).</p>"
    )


def _artifact_section(dataset, artifacts) -> str:
    parts = []
    for (ds, method, seed), art in sorted(artifacts.items()):
        if ds != dataset or seed != min(s for d, m, s in artifacts if d == ds and m == method):
            continue
        if "path" in art:
            parts.append(_path_plot(art["path"], f"{dataset} / {method}: regularisation path"))
        if "task_covariance" in art:
            parts.append(_heatmap(art["task_covariance"], f"{dataset} / {method}: task similarity"))
        if "curves" in art:
            parts.append(
                _curves(
                    art["curves"], f"{dataset} / {method}: training loss per task", "loss", True
                )
            )
        if art.get("weights") and np.ptp(np.concatenate(list(art["weights"].values()))) > 0:
            parts.append(_curves(art["weights"], f"{dataset} / {method}: loss weights", "weight"))
        if "cosines" in art:
            parts.append(
                _heatmap(
                    art["cosines"],
                    f"{dataset} / {method}: gradient cosine between tasks",
                    art.get("tasks"),
                )
            )
        if "affinity" in art:
            parts.append(
                _heatmap(art["affinity"], f"{dataset} / {method}: task affinity", art.get("tasks"))
            )
    return "".join(p for p in parts if p)


def render_report(
    rows: Sequence[RunResult],
    artifacts: dict | None = None,
    published=(),
    title="multitask benchmark report",
    failures: Sequence[dict] = (),
) -> str:
    """The report as an HTML string (see :func:`write_report`).

    Parameters
    ----------
    rows : sequence of RunResult
    artifacts : dict (dataset, method, seed) -> dict, optional
    published : sequence of Published
        Shown beside our numbers in each dataset's table.
    title : str
    failures : sequence of dict
        Failed runs (``dataset``, ``method``, ``seed``, ``error``), listed at the end.

    Raises
    ------
    ValueError
        With neither a row nor a failed run to report.
    """
    from multitask.bench._registry import PROBLEMS, baseline_for

    if not rows and not failures:
        raise ValueError("no result rows to report")
    artifacts = artifacts or {}
    datasets = sorted({r.dataset for r in rows})
    baselines = {d: baseline_for(PROBLEMS[d].half) if d in PROBLEMS else "" for d in datasets}
    all_deltas = delta_m_by_method(rows, baselines)
    deltas = {key: v for key, v in all_deltas.items() if key[1] != baselines[key[0]]}
    overall = overall_values(rows)
    out = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
        intro(rows, len(datasets)),
    ]
    if deltas:
        table, fig = _delta_ranking(deltas)
        out.append(f"<h2>Δm ranking</h2>{table}{fig}")
    for dataset in datasets:
        out.append(f"<h2>{html.escape(dataset)}</h2>")
        out.append(results_section(dataset, rows, overall, published, deltas))
        out.append(_nmse_note(dataset, artifacts))
        out.append(_per_task_bars(dataset, rows, baselines[dataset]))
        out.append(_artifact_section(dataset, artifacts))
    if failures:
        out.append(failures_section(failures))
    out.append("</body></html>")
    return "\n".join(out)


def write_report(
    results: str | Path | Sequence[RunResult],
    out: str | Path,
    *,
    published=(),
    title="multitask benchmark report",
    artifacts: dict | None = None,
) -> Path:
    """Write the HTML report for result rows (or a ``results.jsonl`` path) to ``out``.

    When a path is given, the files the runner wrote next to ``results.jsonl``
    are read too: artifacts (curves, paths, heatmaps) of the runs whose rows are
    in the file (matched on ``config_hash``) from ``runs/``, failed
    runs from ``failures.jsonl``, and, unless ``published`` is given, the
    suite's published numbers from ``suite.json``. ``artifacts`` adds plots
    for rows given in memory: ``{(dataset, method, seed): {"curves": ...}}``.
    The file is written atomically.
    """
    from multitask.bench._results import read_results
    from multitask.bench._runner import load_artifacts, read_failures
    from multitask.bench._suite import read_suite_record

    artifacts, failures = dict(artifacts or {}), []
    if isinstance(results, str | Path):
        path = Path(results)
        rows = read_results(path)
        # only the runs of these rows: runs/ also caches earlier invocations' runs
        artifacts.update(load_artifacts(path.parent, {r.config_hash for r in rows}))
        failures = read_failures(path.parent)
        record = read_suite_record(path.parent)
        if not published and record is not None:
            published = record.published
    else:
        rows = list(results)
    text = render_report(rows, artifacts, published, title, failures)
    out = Path(out)
    atomic_write_text(out, text)
    return out
