"""Shared pieces of the reproduction scripts: cached results, grid-edge checks, tables.

Every (protocol, ratio, seed, method) result is one JSON file under a results folder;
a run skips what exists, so an interrupted run resumes where it stopped.
"""

import json
import re
from pathlib import Path

import numpy as np
from tqdm import tqdm


def result_path(folder, protocol, ratio, seed, method):
    slug = re.sub(r"[^a-z0-9]+", "-", method.lower()).strip("-")
    return Path(folder) / protocol / f"r{ratio:g}_s{seed}_{slug}.json"


def run_cached(jobs, folder, compute, desc):
    """Run ``compute(job) -> row`` for each ``job`` dict not cached yet; return every row.

    ``job`` has keys ``protocol``, ``ratio``, ``seed``, ``method``; the row is written to
    :func:`result_path` as soon as it is computed.
    """
    rows = []
    todo = []
    for job in jobs:
        path = result_path(folder, job["protocol"], job["ratio"], job["seed"], job["method"])
        if path.exists():
            rows.append(json.loads(path.read_text()))
        else:
            todo.append((job, path))
    for job, path in tqdm(todo, desc=desc, mininterval=5):
        row = compute(job)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(row))
        rows.append(row)
    return rows


def edge(value, grid):
    """'low' / 'high' when ``value`` is the smallest / largest grid point, else ''."""
    grid = np.sort(np.asarray(grid, float))
    if len(grid) < 2:
        return ""
    if np.isclose(value, grid[0]):
        return "low"
    if np.isclose(value, grid[-1]):
        return "high"
    return ""


def load_rows(folder, protocol):
    return [json.loads(p.read_text()) for p in sorted((Path(folder) / protocol).glob("*.json"))]


def summary(rows, key, methods, label=None):
    """Markdown table: mean +- std of ``key`` per method and ratio, and seeds per ratio."""
    ratios = sorted({r["train_ratio"] for r in rows})
    label = label or key
    lines = [
        "| method | " + " | ".join(f"{label}, {100 * r:g}% train" for r in ratios) + " | seeds |",
        "|---|" + "---|" * (len(ratios) + 1),
    ]
    for name in methods:
        cells, seeds = [], []
        for ratio in ratios:
            v = [r[key] for r in rows if r["method"] == name and r["train_ratio"] == ratio]
            seeds.append(str(len(v)))
            cells.append(f"{np.mean(v):.4f} +- {np.std(v):.4f}" if v else "not run")
        if any(c != "not run" for c in cells):
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {' / '.join(seeds)} |")
    return "\n".join(lines)


def chosen(rows, methods):
    """Markdown table of the chosen grid points: median value, and how often on an edge."""
    lines = [
        "| method | ratio | parameter | chosen (median) | grid | on an edge |",
        "|---|---|---|---|---|---|",
    ]
    for name in methods:
        for ratio in sorted({r["train_ratio"] for r in rows}):
            sel = [r for r in rows if r["method"] == name and r["train_ratio"] == ratio]
            if not sel:
                continue
            for param, grid in sel[0]["grids"].items():
                vals = [r["best_params"][param] for r in sel]
                edges = [r["edges"][param] for r in sel if r["edges"][param]]
                lines.append(
                    f"| {name} | {ratio:g} | {param} | {np.median(vals):.3g} | "
                    f"{min(grid):.3g} .. {max(grid):.3g} ({len(grid)}) | "
                    f"{len(edges)}/{len(sel)} {' '.join(sorted(set(edges)))} |"
                )
    return "\n".join(lines)
