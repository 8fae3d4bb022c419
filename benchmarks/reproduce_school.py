"""Reproduce the School (ILEA) results of the classical multi-task literature.

Protocols (see ``shared/datasets/README.md``):

* ``ev``: 75% / 25% random split within each school, explained variance
  ``1 - MSE / Var(y_test)`` in % over all test rows (Bakker & Heskes 2003;
  Evgeniou & Pontil, KDD 2004; Argyriou, Evgeniou & Pontil 2008).
* ``nmse``: 10% / 20% / 30% of each school for training, the rest for test,
  nMSE = test MSE / Var(y_test) (MALSAR-era protocol, Zhou, Chen & Ye 2011).

The two continuous columns are standardised with training statistics only; the
constant bias column is a feature of ``W`` (as in MALSAR and Evgeniou & Pontil), so
the task coupling also shrinks the intercepts (``fit_intercept=False``, ``y``
centred by its training mean). Every hyper-parameter is chosen by 3-fold
cross-validation stratified by task on the training rows only (``MultiTaskCV``:
``alpha`` on a warm-started path, the second strength on a grid), never on test rows.

Methods whose penalty shrinks towards ``W = 0`` (L21, trace norm, dirty) also run
"around pooled": the model is ``W = w_pool 1^T + V`` with ``w_pool`` the pooled ridge
fit (its ``alpha`` chosen by CV) and the penalty on ``V``, so that the strongest
regularisation gives back pooled ridge (the decomposition ``w_t = w_0 + v_t`` of
Evgeniou & Pontil 2004, with ``w_0`` fitted first).

Every (protocol, ratio, seed, method) result is cached as JSON under ``--results``;
a rerun skips what exists.

Usage::

    python benchmarks/reproduce_school.py --protocol ev --seeds 10
    python benchmarks/reproduce_school.py --protocol nmse --seeds 10 --methods trace
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from sklearn.model_selection import StratifiedKFold
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).parent))
import multitask.linear as ml
import reproduce_common as rc
from reproduce_school_models import (
    POOLED,
    PooledOffset,  # noqa: F401 (re-exported: the tests reach it through this script)
    build,
    gradient_at_zero,
    limit_edges,
    methods,
    resolve,
)

CONTINUOUS = ["free_meals_pct", "vr1_pct"]
# families run both plain and around pooled; the parametrisation is chosen by inner CV
FAMILIES = ("L21 (group lasso)", "trace norm", "dirty (L1 + L1inf)", "clustered (cMTL, k=3)")


def split(task, ratio, rng):
    """Boolean train mask: ``ratio`` of each task's rows (at least 2 train, 1 test)."""
    train = np.zeros(len(task), bool)
    for t in np.unique(task):
        idx = rng.permutation(np.flatnonzero(task == t))
        k = min(max(2, round(ratio * len(idx))), len(idx) - 1)
        train[idx[:k]] = True
    return train


def standardise(X_tr, X_te, columns):
    X_tr, X_te = X_tr.copy(), X_te.copy()
    mu, sd = X_tr[columns].mean(), X_tr[columns].std()
    X_tr[columns] = (X_tr[columns] - mu) / sd
    X_te[columns] = (X_te[columns] - mu) / sd
    return X_tr, X_te


def inner_folds(task, n_splits, seed):
    """Folds stratified by task; rows of tasks too small to split stay in every training fold.

    Every estimator needs 2 rows per task, so a task with fewer than
    ``2 + n_splits`` training rows (the 10% protocol) is never held out.
    """
    counts = dict(zip(*np.unique(task, return_counts=True), strict=True))
    small = np.array([counts[t] < 2 + n_splits for t in task])
    idx = np.flatnonzero(~small)
    folds = StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(idx, task[idx])
    always = np.flatnonzero(small)
    return [(np.sort(np.concatenate([idx[tr], always])), idx[te]) for tr, te in folds]


SCORING = "neg_mean_squared_error"  # inner CV: larger is better


def fit_predict(spec, X_tr, y_tr, X_te, task_col, seed, tol, pooled_alpha=None):
    """Choose ``alpha`` (warm-started path) and the other parameters by inner 3-fold CV.

    A choice on a grid edge extends that grid (:func:`reproduce_common.search_grid`),
    except at the limits of :func:`limit_edges`. Returns the test predictions, the chosen
    parameters, the final grids searched, the number of extensions per parameter and the
    mean inner-CV score at the chosen point (``SCORING``, as the search saw it).
    """
    _, alphas, extra, around_pooled = spec
    target = y_tr
    if around_pooled:
        pooled = ml.PooledRidge(alpha=pooled_alpha, task_col=task_col, fit_intercept=False)
        target = y_tr - pooled.fit(X_tr, y_tr).predict(X_tr)
    if isinstance(alphas, tuple) or any(isinstance(v, tuple) for v in extra.values()):
        G = gradient_at_zero(X_tr, target, task_col)
        alphas = resolve(alphas, G)
        extra = {k: list(resolve(v, G)) for k, v in extra.items()}
    alphas = np.sort(np.asarray(alphas, float))[::-1]
    folds = inner_folds(X_tr[task_col].to_numpy(), 3, seed)

    def score(values, path_alphas):
        """Mean inner-CV score of the warm-started path over ``path_alphas`` (descending)."""
        est_v = build(spec, values, task_col, tol, pooled_alpha)
        return rc.path_scores(est_v, X_tr, y_tr, path_alphas, folds, SCORING, seed)

    best, grids, extensions, cv_score = rc.search_grid(
        score, {"alpha": alphas, **extra}, limits=limit_edges(spec, around_pooled)
    )
    values = {k: v for k, v in best.items() if k != "alpha"}
    model = build(spec, values, task_col, tol, pooled_alpha).set_params(alpha=best["alpha"])
    model.fit(X_tr, y_tr)
    return model.predict(X_te), best, grids, extensions, cv_score


def load_split(ratio, seed, data=None):
    """Training / test rows of one seed: standardised, bias column added, y not centred."""
    if data is None:
        from multitask.datasets import load

        data = load("school")
    X, y, task_col = data.X, np.asarray(data.y, float), data.task_col
    task = X[task_col].to_numpy()
    X = X.assign(bias=1.0)
    train = split(task, ratio, np.random.default_rng(seed))
    columns = [c for c in CONTINUOUS if c in X.columns]
    X_tr, X_te = standardise(X[train], X[~train], columns)
    return X_tr, X_te, y[train], y[~train], task_col


def evaluate(job, split_data, tol, grid, pooled_alpha=None):
    """One (protocol, ratio, seed, method) result row."""
    X_tr, X_te, y_tr, y_te, task_col = split_data
    spec = methods(grid)[job["method"]]
    t0 = time.perf_counter()
    mu = y_tr.mean()  # centre y with the training mean: penalised intercepts shrink to it
    pred, best, grids, extensions, cv_score = fit_predict(
        spec, X_tr, y_tr - mu, X_te, task_col, job["seed"], tol, pooled_alpha
    )
    nmse = float(np.mean((y_te - pred - mu) ** 2) / np.var(y_te))
    return {
        "dataset": "school",
        "protocol": job["protocol"],
        "train_ratio": job["ratio"],
        "seed": job["seed"],
        "method": job["method"],
        "explained_variance_pct": 100 * (1 - nmse),
        "nmse": nmse,
        "best_params": {k: float(v) for k, v in best.items()},
        "cv_score": cv_score,
        "cv_score_source": "search",
        "grids": grids,
        "edges": {k: rc.edge(best[k], g) for k, g in grids.items()},
        "extensions": extensions,
        "limits": limit_edges(spec, spec[3]),
        "pooled_alpha": pooled_alpha,
        "grid": grid,
        "tol": tol,
        "seconds": time.perf_counter() - t0,
    }


def point_score(row, split_data):
    """Mean inner-CV score of a result row at its ``best_params``: one point x 3 folds.

    Same folds (:func:`inner_folds` of the row's seed, deterministic), scoring, centring
    and estimator as the search; each fold is fitted from a cold start at the chosen
    ``alpha``, where the search had warm-started it along its path (the two agree to the
    solver tolerance). Returns ``(cv_score, test nMSE of the refit at best_params)``.
    """
    X_tr, X_te, y_tr, y_te, task_col = split_data
    spec = methods(row["grid"])[row["method"]]
    values = {k: v for k, v in row["best_params"].items() if k != "alpha"}
    alpha = row["best_params"]["alpha"]
    mu = y_tr.mean()
    folds = inner_folds(X_tr[task_col].to_numpy(), 3, row["seed"])
    est = build(spec, values, task_col, row["tol"], row.get("pooled_alpha"))
    cv = rc.path_scores(est, X_tr, y_tr - mu, [alpha], folds, SCORING, row["seed"])[0]
    pred = est.set_params(alpha=alpha).fit(X_tr, y_tr - mu).predict(X_te)
    return float(cv), float(np.mean((y_te - pred - mu) ** 2) / np.var(y_te))


def backfill(folder, protocol, data=None, names=None):
    """Add ``cv_score`` (:func:`point_score`) to every cached row of ``protocol`` lacking it.

    Rows of one split are done together (the slow clustered MTL rows last); the row
    also gets ``cv_score_source`` and ``backfill_nmse``, the test nMSE of the refit at
    ``best_params``, to check against the stored ``nmse``. Each file is rewritten
    atomically as soon as its score is known, so an interrupted run resumes.
    """
    paths = sorted((Path(folder) / protocol).glob("*.json"))
    rows = [(p, json.loads(p.read_text())) for p in paths]
    todo = [
        (p, r) for p, r in rows if "cv_score" not in r and (names is None or r["method"] in names)
    ]
    todo.sort(key=lambda pr: ("clustered" in pr[1]["method"], pr[1]["seed"], pr[1]["train_ratio"]))
    splits = {}
    for path, row in tqdm(todo, desc=f"backfill {protocol}", mininterval=5):
        key = (row["train_ratio"], row["seed"])
        if key not in splits:
            splits.clear()
            splits[key] = load_split(*key, data=data)
        row["cv_score"], row["backfill_nmse"] = point_score(row, splits[key])
        row["cv_score_source"] = "backfill: one point x 3 folds, cold start"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(row))
        tmp.replace(path)


def run(protocol, ratios, seeds, names, folder, tol, grid, data=None, reuse=None):
    """Every (ratio, seed, method) of ``names`` (pooled ridge first in each seed), cached.

    With ``reuse`` (an older results folder, same grid and tolerance), an old row whose
    choices are all inside their grids (or on a limit edge) is copied instead of
    recomputed: the grid-extension rule would not have changed it.
    """
    if any(name.endswith("around pooled") for name in names) and POOLED not in names:
        names = [POOLED, *names]
    names = sorted(names, key=lambda n: n != POOLED)
    jobs = [
        {"protocol": protocol, "ratio": r, "seed": s, "method": m}
        for s in seeds
        for r in ratios
        for m in names
    ]
    splits, pooled = {}, {}

    def compute(job):
        key = (job["ratio"], job["seed"])
        if key not in splits:
            splits.clear()
            splits[key] = load_split(*key, data=data)
        alpha = None
        if job["method"].endswith("around pooled"):
            path = rc.result_path(folder, protocol, *key, POOLED)
            alpha = pooled.get(key) or json.loads(path.read_text())["best_params"]["alpha"]
        row = evaluate(job, splits[key], tol, grid, alpha)
        if job["method"] == POOLED:
            pooled[key] = row["best_params"]["alpha"]
        return row

    def adopt(row):
        spec = methods(grid)[row["method"]]
        limits = limit_edges(spec, spec[3])
        same = row["grid"] == grid and row["tol"] == tol
        return {**row, "limits": limits} if same and not rc.off_limit_edges(row, limits) else None

    return rc.run_cached(jobs, folder, compute, f"school {protocol}", reuse, adopt)


def cmtl_limit(ratio=0.1, seed=0, alphas=(1e2, 1e3, 1e4, 1e5), betas=(0.1, 1.0, 10.0, 100.0)):
    """Clustered MTL (k=3) towards its limits on one split: test nMSE, penalty, ``W``.

    Prints, along ``alpha`` at ``beta = betas[0]``: the penalty and its ``eta -> 0``
    value ``beta * min_gamma sum sigma_i^2 / gamma_i`` and the relative change of
    ``W``; along ``beta`` at ``alpha = 1e3``: the top singular values of ``W``.
    """
    from multitask.linear.solvers.clustered import optimal_gamma

    X_tr, X_te, y_tr, y_te, tc = load_split(ratio, seed)
    mu = y_tr.mean()

    def fit(alpha, beta):
        est = ml.ClusteredMTLRegressor(
            alpha, beta=beta, n_clusters=3, task_col=tc, fit_intercept=False, tol=1e-6
        )
        est.fit(X_tr, y_tr - mu)
        nmse = np.mean((y_te - est.predict(X_te) - mu) ** 2) / np.var(y_te)
        return est.coef_.T, nmse

    pooled = ml.PooledRidge(1e-3, task_col=tc, fit_intercept=False).fit(X_tr, y_tr - mu)
    print(f"pooled ridge: {np.mean((y_te - pooled.predict(X_te) - mu) ** 2) / np.var(y_te):.4f}")
    previous, beta = None, betas[0]
    for alpha in alphas:
        W, nmse = fit(alpha, beta)
        s, eta = np.linalg.svd(W, compute_uv=False), beta / alpha
        pen = alpha * eta * (1 + eta) * np.sum(s**2 / (eta + optimal_gamma(s, eta, 3)))
        g0 = optimal_gamma(s, 0.0, 3)
        limit = beta * np.sum(s[g0 > 0] ** 2 / g0[g0 > 0])
        change = (
            "" if previous is None else f"{np.linalg.norm(W - previous) / np.linalg.norm(W):.1e}"
        )
        print(
            f"alpha={alpha:g} beta={beta:g}: nMSE {nmse:.4f} "
            f"penalty {pen:.1f} limit {limit:.1f} {change}"
        )
        previous = W
    for beta in betas:
        W, nmse = fit(1e3, beta)
        top = np.round(np.linalg.svd(W, compute_uv=False)[:4], 2)
        print(f"alpha=1000 beta={beta:g}: nMSE {nmse:.4f} singular values {top}")


def tables(folder, protocol, grid):
    """Print the tables of the cached rows, the CV-chosen parametrisation rows included.

    The rows "<family> (centring chosen by CV)" take, per (ratio, seed), the plain or the
    around-pooled row of ``family`` (one of ``FAMILIES``), whichever has the larger
    inner-CV score (:func:`reproduce_common.choose_variant`); the verdict covers them
    and mean-regularised, the MTL models whose class contains pooled ridge.
    """
    rows = rc.load_rows(folder, protocol)
    key = "explained_variance_pct" if protocol == "ev" else "nmse"
    lower = key == "nmse"
    picked = rc.choose_variant(rows, FAMILIES)
    missing = sum("cv_score" not in r for r in rows)
    if missing:
        print(f"{missing} rows have no cv_score (run --backfill): no CV-chosen row for them\n")
    names = list(methods(grid))
    joint = list(dict.fromkeys(r["method"] for r in picked))
    every = rows + picked
    print(rc.summary(every, key, names + joint))
    print()
    print(f"Difference to {POOLED} on the same seeds:")
    print(rc.paired(every, key, names + joint, POOLED, lower_is_better=lower))
    print()
    print("Parametrisation chosen by inner CV:")
    print(rc.variant_counts(picked, rows, key, lower_is_better=lower))
    print()
    print(f"Every CV-chosen MTL model at or above {POOLED}?")
    print(rc.verdict(every, key, [*joint, "mean-regularised"], POOLED, lower_is_better=lower))
    print()
    print(rc.chosen(rows, names))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--protocol", choices=["ev", "nmse"], default="ev")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--grid", choices=["full", "quick", "tiny"], default="full")
    parser.add_argument("--results", default="results/reproduce_school")
    parser.add_argument("--tol", type=float, default=1e-4, help="solver tolerance")
    parser.add_argument("--methods", default="", help="comma-separated substrings of names")
    parser.add_argument("--reuse", default=None, help="older results folder (see run)")
    parser.add_argument("--table", action="store_true", help="only print the cached tables")
    parser.add_argument("--cmtl-limit", action="store_true", help="clustered MTL's limits")
    parser.add_argument(
        "--backfill", action="store_true", help="add cv_score to cached rows lacking it"
    )
    args = parser.parse_args()
    if args.cmtl_limit:
        return cmtl_limit()
    ratios = [0.75] if args.protocol == "ev" else [0.1, 0.2, 0.3]
    only = [m for m in args.methods.split(",") if m]
    names = [n for n in methods(args.grid) if not only or any(k in n for k in only)]
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    if args.backfill:
        backfill(args.results, args.protocol, names=names)
    elif not args.table:
        run(
            args.protocol, ratios, seeds, names, args.results, args.tol, args.grid, None, args.reuse
        )
    tables(args.results, args.protocol, args.grid)


if __name__ == "__main__":
    main()
