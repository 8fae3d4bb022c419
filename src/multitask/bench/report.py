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


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _fmt(mean: float, std: float | None = None) -> str:
    text = f"{mean:.4g}"
    return text if std is None or np.isnan(std) else f"{text} ± {std:.2g}"


def _overall(rows: Sequence[RunResult]):
    """(dataset, method, metric) -> list of per-seed overall values on test."""
    out = defaultdict(list)
    for r in rows:
        if r.split == "test" and r.task == ALL:
            out[(r.dataset, r.method, r.metric)].append(r.value)
    return out


def _results_section(dataset, rows, overall, published, deltas) -> str:
    from multitask.metrics import HIGHER_IS_BETTER

    methods = sorted({r.method for r in rows if r.dataset == dataset})
    metrics = sorted({m for (d, _, m) in overall if d == dataset})
    pub = {(p.method, p.metric): p for p in published if p.dataset == dataset}
    best = {}
    for metric in metrics:
        means = {
            m: np.mean(overall[(dataset, m, metric)])
            for m in methods
            if overall[(dataset, m, metric)]
        }
        if means:
            pick = max if HIGHER_IS_BETTER.get(metric, True) else min
            best[metric] = pick(means, key=means.get)
    body = []
    for method in methods:
        cells = [f"<td>{html.escape(method)}</td>"]
        for metric in metrics:
            vals = overall.get((dataset, method, metric), [])
            text = _fmt(np.mean(vals), np.std(vals)) if vals else "-"
            cls = ' class="best"' if best.get(metric) == method else ""
            cells.append(f"<td{cls}>{text}</td>")
            if not pub:
                continue
            p = pub.get((method, metric))
            cells.append(
                f'<td class="pub" title="{html.escape(p.citation)}">{_fmt(p.value, p.std)}</td>'
                if p
                else '<td class="pub">-</td>'
            )
        d = deltas.get((dataset, method))
        cells.append(f"<td>{100 * np.mean(list(d.values())):+.2f}%</td>" if d else "<td>-</td>")
        n_seeds = len({r.seed for r in rows if r.dataset == dataset and r.method == method})
        cells.append(f"<td>{n_seeds}</td>")
        body.append(cells)
    header = ["method"]
    for metric in metrics:
        header += [f"{metric} (ours)", f"{metric} (published)"] if pub else [metric]
    header += ["Δm vs single-task", "seeds"]
    cites = sorted({p.citation for p in pub.values()})
    note = "".join(f"<li>{html.escape(c)}</li>" for c in cites)
    return _table(header, body, "results") + (f"<ul class='pub'>{note}</ul>" if note else "")


def _delta_ranking(deltas) -> tuple[str, str]:
    import matplotlib.pyplot as plt

    items = sorted(
        (
            (ds, m, np.mean(list(v.values())), np.std(list(v.values())))
            for (ds, m), v in deltas.items()
        ),
        key=lambda x: -x[2],
    )
    rows = [
        [
            f"<td>{i + 1}</td>",
            f"<td>{html.escape(m)}</td>",
            f"<td>{html.escape(ds)}</td>",
            f"<td>{100 * mu:+.2f}% ± {100 * sd:.2f}</td>",
        ]
        for i, (ds, m, mu, sd) in enumerate(items)
    ]
    table = _table(["rank", "method", "dataset", "Δm (mean ± std over seeds)"], rows, "ranking")
    fig, ax = plt.subplots(figsize=(6, 0.35 * max(len(items), 3) + 1))
    labels = [f"{m} ({ds})" for ds, m, _, _ in items]
    ax.barh(
        labels[::-1],
        [100 * x[2] for x in items][::-1],
        xerr=[100 * x[3] for x in items][::-1],
        color=["#4caf50" if x[2] >= 0 else "#e57373" for x in items][::-1],
    )
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("Δm vs single-task (%)")
    return table, _figure(fig, "Δm ranking: mean relative change over single-task baselines")


def _per_task_bars(dataset, rows, baseline: str) -> str:
    import matplotlib.pyplot as plt

    per = defaultdict(list)
    metric_name = None
    for r in rows:
        if r.dataset == dataset and r.split == "test" and r.task != ALL:
            per[(r.method, r.task)].append(r.value)
            metric_name = r.metric
    if not per:
        return ""
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
        ax.set_xlabel(f"{base}: per-task {metric_name}")
        ax.set_ylabel(f"method: per-task {metric_name}")
        ax.legend(fontsize=7)
        return _figure(fig, f"{dataset}: per-task test {metric_name}, each method against {base}")
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(tasks) * len(methods) / 3), 3.5))
    width = 0.8 / len(methods)
    x = np.arange(len(tasks))
    for i, m in enumerate(methods):
        means = [np.mean(per[(m, t)]) if per[(m, t)] else np.nan for t in tasks]
        stds = [np.std(per[(m, t)]) if per[(m, t)] else 0 for t in tasks]
        ax.bar(x + i * width, means, width, yerr=stds, label=m, capsize=2)
    ax.set_xticks(x + 0.4 - width / 2, tasks, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel(f"test {metric_name}")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _figure(fig, f"{dataset}: per-task test {metric_name} (error bars: std over seeds)")


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
) -> str:
    """The report as an HTML string (see :func:`write_report`)."""
    from multitask.bench._registry import PROBLEMS, baseline_for

    if not rows:
        raise ValueError("no result rows to report")
    artifacts = artifacts or {}
    datasets = sorted({r.dataset for r in rows})
    baselines = {d: baseline_for(PROBLEMS[d].half) if d in PROBLEMS else "" for d in datasets}
    all_deltas = delta_m_by_method(rows, baselines)
    deltas = {key: v for key, v in all_deltas.items() if key[1] != baselines[key[0]]}
    overall = _overall(rows)
    out = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
    ]
    n_runs = len({(r.dataset, r.method, r.seed) for r in rows})
    out.append(
        f"<p>{n_runs} runs over {len(datasets)} datasets. Hyper-parameters and models "
        "were chosen on validation data only; numbers are test metrics, mean ± std over "
        "seeds. Δm: mean relative change over the single-task baseline across tasks and "
        "metrics, positive is better (Maninis et al. 2019).</p>"
    )
    if deltas:
        table, fig = _delta_ranking(deltas)
        out.append(f"<h2>Δm ranking</h2>{table}{fig}")
    for dataset in datasets:
        out.append(f"<h2>{html.escape(dataset)}</h2>")
        out.append(_results_section(dataset, rows, overall, published, deltas))
        out.append(_per_task_bars(dataset, rows, baselines[dataset]))
        out.append(_artifact_section(dataset, artifacts))
    out.append("</body></html>")
    return "\n".join(out)


def write_report(
    results: str | Path | Sequence[RunResult],
    out: str | Path,
    *,
    published=(),
    title="multitask benchmark report",
) -> Path:
    """Write the HTML report for result rows (or a ``results.jsonl`` path) to ``out``.

    Artifacts (curves, paths, heatmaps) are read from the ``runs/`` folder next to
    ``results.jsonl`` when a path is given. The file is written atomically.
    """
    from multitask.bench._results import read_results
    from multitask.bench._runner import load_artifacts

    artifacts = {}
    if isinstance(results, str | Path):
        path = Path(results)
        rows = read_results(path)
        artifacts = load_artifacts(path.parent)
    else:
        rows = list(results)
    text = render_report(rows, artifacts, published, title)
    out = Path(out)
    atomic_write_text(out, text)
    return out
