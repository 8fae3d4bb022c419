"""HTML tables and text of the benchmark report (see :mod:`multitask.bench.report`).

Numbers are the mean ± std over seeds only where there is more than one seed;
one seed gives the bare value, and the text says "1 seed".
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from multitask.bench._results import RunResult

__all__ = [
    "delta_cell",
    "failures_section",
    "fmt",
    "fmt_seeds",
    "html_table",
    "intro",
    "overall_values",
    "results_section",
    "seed_words",
]

ALL = "_all"


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def fmt(mean: float, std: float | None = None) -> str:
    text = f"{mean:.4g}"
    return text if std is None or np.isnan(std) else f"{text} ± {std:.2g}"


def fmt_seeds(values: Sequence[float]) -> str:
    """Mean ± sample std (ddof=1) over seeds; the bare value for one seed (no spread)."""
    return fmt(float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else None)


def seed_words(counts: Sequence[int]) -> str:
    """How many seeds a set of numbers comes from, in words."""
    distinct = sorted(set(counts))
    if distinct == [1]:
        return "1 seed"
    if len(distinct) == 1:
        return f"{distinct[0]} seeds"
    return f"{distinct[0]}-{distinct[-1]} seeds"


def overall_values(rows: Sequence[RunResult]):
    """(dataset, method, metric) -> list of per-seed overall values on test."""
    out = defaultdict(list)
    for r in rows:
        if r.split == "test" and r.task == ALL:
            out[(r.dataset, r.method, r.metric)].append(r.value)
    return out


def results_section(dataset, rows, overall, published, deltas) -> str:
    from multitask.metrics import HIGHER_IS_BETTER

    pub = {(p.method, p.metric): p for p in published if p.dataset == dataset}
    ran = {r.method for r in rows if r.dataset == dataset}
    methods = sorted(ran) + sorted({m for m, _ in pub} - ran)  # published-only rows last
    metrics = sorted({m for (d, _, m) in overall if d == dataset} | {k for _, k in pub})
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
            text = fmt_seeds(vals) if vals else "-"
            cls = ' class="best"' if best.get(metric) == method else ""
            cells.append(f"<td{cls}>{text}</td>")
            if not pub:
                continue
            p = pub.get((method, metric))
            cells.append(
                f'<td class="pub" title="{html.escape(p.citation)}">{fmt(p.value, p.std)}</td>'
                if p
                else '<td class="pub">-</td>'
            )
        d = deltas.get((dataset, method))
        cells.append(delta_cell(list(d.values())) if d else "<td>-</td>")
        n_seeds = len({r.seed for r in rows if r.dataset == dataset and r.method == method})
        cells.append(f"<td>{n_seeds if method in ran else 'not run'}</td>")
        body.append(cells)
    header = ["method"]
    for metric in metrics:
        header += [f"{metric} (ours)", f"{metric} (published)"] if pub else [metric]
    header += ["Δm vs single-task", "seeds"]
    cites = sorted({(p.citation, p.protocol) for p in pub.values()})
    note = "".join(
        f"<li>{html.escape(c)}" + (f" (protocol: {html.escape(pr)})" if pr else "") + "</li>"
        for c, pr in cites
    )
    return html_table(header, body, "results") + (f"<ul class='pub'>{note}</ul>" if note else "")


def delta_cell(values: Sequence[float]) -> str:
    if len(values) == 1:
        return f"<td>{100 * values[0]:+.2f}%</td>"
    return f"<td>{100 * np.mean(values):+.2f}% ± {100 * np.std(values, ddof=1):.2f}</td>"


def failures_section(failures: Sequence[dict]) -> str:
    rows = [
        [f"<td>{html.escape(str(f.get(k, '')))}</td>" for k in ("dataset", "method", "seed")]
        + [f"<td style='text-align:left'>{html.escape(str(f.get('error', '')))}</td>"]
        for f in failures
    ]
    return (
        f"<h2>Failed runs ({len(failures)})</h2><p>These runs raised an error and have no "
        "numbers in the tables above; running the suite again retries them.</p>"
        + html_table(["dataset", "method", "seed", "error"], rows, "failures")
    )


def intro(rows: Sequence[RunResult], n_datasets: int) -> str:
    seeds = defaultdict(set)
    for r in rows:
        seeds[(r.dataset, r.method)].add(r.seed)
    words = seed_words([len(v) for v in seeds.values()]) if seeds else "no seed"
    spread = (
        "the value of that single seed (no error bars)"
        if words == "1 seed"
        else f"mean ± std over seeds ({words}; the 'seeds' column gives each method's count)"
    )
    n_runs = len({(r.dataset, r.method, r.seed) for r in rows})
    return (
        f"<p>{n_runs} runs over {n_datasets} datasets, {words}. Hyper-parameters and models "
        f"were chosen on validation data only; numbers are test metrics, {spread}. "
        "Δm: mean relative change over the single-task baseline across tasks and "
        "metrics, positive is better (Maninis et al. 2019).</p>"
    )
