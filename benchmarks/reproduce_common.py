"""Shared pieces of the reproduction scripts: cached results, grid-edge checks, tables.

Every (protocol, ratio, seed, method) result is one JSON file under a results folder;
a run skips what exists, so an interrupted run resumes where it stopped.
"""

import itertools
import json
import re
from pathlib import Path

import numpy as np
from tqdm import tqdm

from multitask.linear._cv import search_alpha


def result_path(folder, protocol, ratio, seed, method):
    slug = re.sub(r"[^a-z0-9]+", "-", method.lower()).strip("-")
    return Path(folder) / protocol / f"r{ratio:g}_s{seed}_{slug}.json"


def run_cached(jobs, folder, compute, desc, reuse=None, adopt=None):
    """Run ``compute(job) -> row`` for each ``job`` dict not cached yet; return every row.

    ``job`` has keys ``protocol``, ``ratio``, ``seed``, ``method``; the row is written to
    :func:`result_path` as soon as it is computed. With ``reuse`` (an older results
    folder), a job missing here whose old row is accepted by ``adopt(row) -> row | None``
    is copied instead of computed (marked ``reused_from``, with zero grid extensions).
    A job whose file appears while the run goes on (another process on the same
    folder, e.g. on other seeds) is read, not recomputed.
    """
    rows = []
    todo = []
    for job in jobs:
        path = result_path(folder, job["protocol"], job["ratio"], job["seed"], job["method"])
        old = reuse and result_path(
            reuse, job["protocol"], job["ratio"], job["seed"], job["method"]
        )
        if not path.exists() and old and old.exists():
            row = adopt(json.loads(old.read_text()))
            if row is not None:
                row.update(extensions=dict.fromkeys(row["grids"], 0), reused_from=str(reuse))
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(row))
        if path.exists():
            rows.append(json.loads(path.read_text()))
        else:
            todo.append((job, path))
    for job, path in tqdm(todo, desc=desc, mininterval=5):
        if path.exists():  # written meanwhile by another process on the same folder
            rows.append(json.loads(path.read_text()))
            continue
        row = compute(job)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(row))
        rows.append(row)
    return rows


def off_limit_edges(row, limits):
    """The parameters of a result row whose choice is on a grid edge other than a limit."""
    return [p for p, side in row["edges"].items() if side and limits.get(p) != side]


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


def paired(rows, key, methods, reference, lower_is_better=False, rtol=1e-4):
    """Markdown table: ``key`` minus the ``reference`` method's on the same seeds.

    Per method and ratio: mean +- std of the per-seed difference, and on how many of
    those seeds the method is worse than the reference by more than ``rtol`` relative
    (default 1e-4, the solvers' tolerance: the pooled part of an "around pooled" model
    at ``V = 0`` differs from the pooled ridge row by about 1e-5 nMSE for that reason).
    """
    ratios = sorted({r["train_ratio"] for r in rows})
    value = {(r["method"], r["train_ratio"], r["seed"]): r[key] for r in rows}
    lines = [
        f"| method | {' | '.join(f'{100 * r:g}% train' for r in ratios)} |",
        "|---|" + "---|" * len(ratios),
    ]
    for name in methods:
        if name == reference:
            continue
        cells = []
        for ratio in ratios:
            seeds = sorted(
                s for (m, q, s) in value if m == name and q == ratio and (reference, q, s) in value
            )
            d = np.array([value[name, ratio, s] - value[reference, ratio, s] for s in seeds])
            tol = rtol * np.abs([value[reference, ratio, s] for s in seeds])
            worse = int(np.sum(d > tol if lower_is_better else d < -tol))
            cells.append(
                f"{d.mean():+.4f} +- {d.std():.4f} (worse {worse}/{len(d)})" if len(d) else "-"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def chosen(rows, methods):
    """Markdown table of the chosen grid points.

    Per method, ratio and parameter: the median choice, the range of the final grids
    (union over seeds), how many seeds needed a grid extension (and the most
    extensions), and how many choices are on an edge of the final grid, "limit" marking
    a documented limit edge (``alpha_max`` or unregularised pooled ridge) that is never
    extended; an edge without "limit" is one where the extensions stopped (flat score, or
    the maximum number of extensions).
    """
    lines = [
        "| method | ratio | parameter | chosen (median) | final grids | extended (max) "
        "| on an edge |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in methods:
        for ratio in sorted({r["train_ratio"] for r in rows}):
            sel = [r for r in rows if r["method"] == name and r["train_ratio"] == ratio]
            if not sel:
                continue
            for param in sel[0]["grids"]:
                vals = [r["best_params"][param] for r in sel]
                grid = np.concatenate([r["grids"][param] for r in sel])
                ext = [r.get("extensions", {}).get(param, 0) for r in sel]
                edges = [
                    r["edges"][param] + (" limit" if _is_limit(r, param) else "")
                    for r in sel
                    if r["edges"][param]
                ]
                counts = " ".join(f"{e}: {edges.count(e)}" for e in sorted(set(edges)))
                lines.append(
                    f"| {name} | {ratio:g} | {param} | {np.median(vals):.3g} | "
                    f"{grid.min():.3g} .. {grid.max():.3g} | "
                    f"{sum(e > 0 for e in ext)}/{len(sel)} ({max(ext)}) | "
                    f"{len(edges)}/{len(sel)} {counts} |"
                )
    return "\n".join(lines)


def _is_limit(row, param):
    return row.get("limits", {}).get(param) == row["edges"][param]


MAX_EXTENSIONS = 3  # per parameter
FLAT_RTOL = 1e-4  # an extension improving the best mean CV score by less is flat (~ solver tol)


def extend(grid, side):
    """One more decade beyond the ``side`` edge of the log-spaced ``grid``.

    Returns the new points only, ascending: at the grid's own log step when it is finer
    than a decade (as many points as fill the decade), else one point a decade away.
    """
    logs = np.log10(np.sort(np.asarray(grid, float)))
    step = min((logs[-1] - logs[0]) / (len(logs) - 1), 1.0)
    offsets = step * np.arange(1, int(np.ceil(1.0 / step - 1e-9)) + 1)
    new = logs[-1] + offsets if side == "high" else logs[0] - offsets[::-1]
    return [float(v) for v in 10.0**new]


def _best(scores):
    """Key of the largest mean CV score; ties go to the first key inserted."""
    best = None
    for key, value in scores.items():
        if best is None or value > scores[best]:
            best = key
    return best


def search_grid(score_path, grids, limits=None, max_extensions=None, rtol=FLAT_RTOL):
    """Grid search over ``alpha`` (a path) and the other parameters, extending edge choices.

    Parameters
    ----------
    score_path : callable
        ``score_path(values, alphas) -> ndarray (len(alphas),)``: mean inner-CV score
        (higher is better) of the path over ``alphas`` with the other parameters fixed to
        the dict ``values``.
    grids : dict
        ``{"alpha": values, other: values, ...}``.
    limits : dict, optional
        ``{param: "high" | "low"}``: edges that are the model's limit (``alpha_max``, the
        zero or the pooled model), never extended.
    max_extensions : int, optional
        At most this many extensions per parameter (default: ``MAX_EXTENSIONS``).
    rtol : float
        An extension whose best score improves on the previous best by less than
        ``rtol * |previous best|`` is flat (the model's limit is reached): no further
        extension in that direction.

    Returns
    -------
    best : dict
        The chosen value of every parameter.
    grids : dict
        The final grids (ascending), extensions included.
    extensions : dict
        Number of extensions per parameter.
    score : float
        The mean inner-CV score at ``best``, as the search saw it (on the warm-started
        path that scored it).

    Notes
    -----
    Rule: when the best point is the first / last point of a grid (other than a limit
    edge), the grid gets one more decade at its own log spacing in that direction
    (:func:`extend`) and the new points are scored; repeated while the choice is on such
    an edge, the last extension was not flat, and ``max_extensions`` is not reached.
    """
    limits = dict(limits or {})
    if max_extensions is None:
        max_extensions = MAX_EXTENSIONS
    order = {k: [float(v) for v in g] for k, g in grids.items()}  # the caller's order
    grids = {k: sorted(g) for k, g in order.items()}
    others = [k for k in grids if k != "alpha"]
    scores = {}

    def score(combos, alphas):
        for values in combos:
            path = score_path(dict(zip(others, values, strict=True)), alphas)
            for a, s in zip(alphas, path, strict=True):
                scores[(*values, float(a))] = float(s)

    combos = list(itertools.product(*(order[k] for k in others)))
    score(combos, sorted(grids["alpha"], reverse=True))
    extensions = dict.fromkeys(grids, 0)
    flat = set()
    while True:
        key = _best(scores)
        best = dict(zip([*others, "alpha"], key, strict=True))
        todo = [
            (p, side)
            for p in grids
            if (side := edge(best[p], grids[p]))
            and limits.get(p) != side
            and (p, side) not in flat
            and extensions[p] < max_extensions
        ]
        if not todo:
            return best, grids, extensions, scores[key]
        param, side = todo[0]
        new = extend(grids[param], side)
        before = scores[key]
        if param == "alpha":
            score(combos, sorted(new, reverse=True))
        else:
            fresh = list(itertools.product(*(new if k == param else grids[k] for k in others)))
            score(fresh, sorted(grids["alpha"], reverse=True))
            combos += fresh
        grids[param] = sorted(grids[param] + new)
        extensions[param] += 1
        if scores[_best(scores)] - before <= rtol * abs(before):
            flat.add((param, side))


def path_scores(est, X, y, path_alphas, folds, scoring, random_state=None):
    """Mean inner-CV score of ``est``'s warm-started path over ``path_alphas`` (descending).

    One value per alpha: the mean over ``folds`` of ``scoring`` (higher is better), from
    :func:`multitask.linear._cv.search_alpha` on exactly these alphas.
    """
    got, scores = search_alpha(
        est,
        X,
        y,
        None,
        alphas=path_alphas,
        n_alphas=None,
        eps=None,
        cv=folds,
        scoring=scoring,
        n_jobs=1,
        random_state=random_state,
    )
    assert np.allclose(got, path_alphas)
    return scores.mean(0)


def choose_variant(rows, families, suffix=" around pooled", label="{} (centring chosen by CV)"):
    """Rows of a joint search over two parametrisations, from the rows of each.

    For every ``family`` in ``families`` and every (protocol, ratio, seed) holding both
    the ``family`` row and the ``family + suffix`` row with a ``cv_score``, the row with
    the larger inner-CV score (ties: the plain one) is copied under the method name
    ``label.format(family)``, with ``family``, ``variant`` ("plain" / the suffix without
    its space) and ``cv_margin`` (the suffixed row's ``cv_score`` minus the plain one's). This is
    the inner CV over ``{plain} x grid U {suffix} x grid``: both searches use the same
    folds and scoring on training rows only, so no test value enters the choice.
    """
    by = {(r["protocol"], r["method"], r["train_ratio"], r["seed"]): r for r in rows}
    out = []
    for family in families:
        for (protocol, method, ratio, seed), plain in sorted(by.items()):
            other = by.get((protocol, family + suffix, ratio, seed))
            if method != family or other is None:
                continue
            if "cv_score" not in plain or "cv_score" not in other:
                continue
            margin = other["cv_score"] - plain["cv_score"]
            pick, variant = (other, suffix.strip()) if margin > 0 else (plain, "plain")
            name = label.format(family)
            out.append(
                {**pick, "method": name, "family": family, "variant": variant, "cv_margin": margin}
            )
    return out


def variant_counts(chosen_rows, rows, key, suffix=" around pooled", lower_is_better=False):
    """Markdown table: how often each parametrisation was chosen, per method and ratio.

    Also the median ``cv_margin`` and on how many seeds the choice is the variant with
    the better test ``key`` (the test values are read here, after the choice, only to
    report how good the choice was).
    """
    value = {(r["method"], r["train_ratio"], r["seed"]): r[key] for r in rows}
    lines = [
        "| method | ratio | plain chosen | around pooled chosen | median CV margin "
        "(around pooled - plain) | choice has the better test score |",
        "|---|---|---|---|---|---|",
    ]
    for name in dict.fromkeys(r["method"] for r in chosen_rows):
        for ratio in sorted({r["train_ratio"] for r in chosen_rows if r["method"] == name}):
            sel = [r for r in chosen_rows if r["method"] == name and r["train_ratio"] == ratio]
            n_plain = sum(r["variant"] == "plain" for r in sel)
            good = 0
            for r in sel:
                family = r["family"]
                plain = value[family, ratio, r["seed"]]
                around = value[family + suffix, ratio, r["seed"]]
                best = min(plain, around) if lower_is_better else max(plain, around)
                good += r[key] == best
            lines.append(
                f"| {name} | {ratio:g} | {n_plain}/{len(sel)} | {len(sel) - n_plain}/{len(sel)} "
                f"| {np.median([r['cv_margin'] for r in sel]):+.4g} | {good}/{len(sel)} |"
            )
    return "\n".join(lines)


def verdict(rows, key, methods, reference, lower_is_better=False, rtol=1e-4):
    """Markdown table: per ratio, is every one of ``methods`` at or above ``reference``?

    "Mean": the mean of ``key`` over the common seeds is not worse than the reference's
    beyond ``rtol`` relative; "paired": no seed is worse beyond ``rtol`` relative (the
    rule of :func:`paired`). Lists the methods that fail either.
    """
    value = {(r["method"], r["train_ratio"], r["seed"]): r[key] for r in rows}
    sign = -1.0 if lower_is_better else 1.0
    lines = [
        "| ratio | all at or above on the mean | all at or above on every seed |",
        "|---|---|---|",
    ]
    for ratio in sorted({r["train_ratio"] for r in rows}):
        below_mean, below_seed = [], []
        for name in methods:
            seeds = [
                s for (m, q, s) in value if m == name and q == ratio and (reference, q, s) in value
            ]
            if not seeds:
                continue
            ref = np.array([value[reference, ratio, s] for s in seeds])
            d = sign * (np.array([value[name, ratio, s] for s in seeds]) - ref)
            if d.mean() < -rtol * np.abs(ref.mean()):
                below_mean.append(f"{name} ({sign * d.mean():+.4f})")
            worse = int(np.sum(d < -rtol * np.abs(ref)))
            if worse:
                below_seed.append(f"{name} ({worse}/{len(seeds)} seeds)")
        lines.append(
            f"| {ratio:g} | {'yes' if not below_mean else 'no: ' + ', '.join(below_mean)} "
            f"| {'yes' if not below_seed else 'no: ' + ', '.join(below_seed)} |"
        )
    return "\n".join(lines)
