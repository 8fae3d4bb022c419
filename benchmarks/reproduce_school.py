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
centred by its training mean);
every hyper-parameter is chosen by 3-fold cross-validation stratified by task
on the training rows only (``MultiTaskCV``: ``alpha`` on a warm-started path,
other parameters on a small grid), never on test rows.

Usage::

    python benchmarks/reproduce_school.py --protocol ev --seeds 10
    python benchmarks/reproduce_school.py --protocol nmse --seeds 10 --quick

Prints a table (mean +- std over seeds) and writes JSON lines to ``--out``.
"""

import argparse
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid, StratifiedKFold

import multitask.linear as ml
from multitask.datasets import load

CONTINUOUS = ["free_meals_pct", "vr1_pct"]


def methods(quick):
    """name -> (estimator, alphas, {other parameter: values}); ``alpha`` runs on a path."""
    n = 4 if quick else 7
    return {
        "independent ridge": (ml.IndependentRidge(), np.logspace(-4, 1, n), {}),
        "pooled ridge": (ml.PooledRidge(), np.logspace(-5, 0, n), {}),
        "L21 (group lasso)": (ml.GroupLassoRegressor(), np.logspace(-2, 2, n), {}),
        "trace norm": (ml.TraceNormRegressor(), np.logspace(-2, 2, n), {}),
        "dirty (L1 + L1inf)": (
            ml.DirtyModelRegressor(),
            np.logspace(-2, 2, n),
            {"beta": [0.3, 3.0] if quick else [0.1, 0.3, 1.0, 3.0]},
        ),
        "mean-regularised": (
            ml.MeanRegularizedRegressor(),
            np.logspace(-2, 2, n),
            {"beta": [1e-4, 1e-3] if quick else [1e-5, 1e-4, 1e-3]},
        ),
        "clustered (cMTL, k=3)": (
            ml.ClusteredMTLRegressor(n_clusters=3, max_iter=300 if quick else 3000),
            [1.0, 0.1] if quick else np.logspace(-2, 1, 4),
            {"beta": [1e-2] if quick else [1e-3, 1e-2, 1e-1]},
        ),
    }


def split(task, ratio, rng):
    """Boolean train mask: ``ratio`` of each task's rows (at least 2 train, 1 test)."""
    train = np.zeros(len(task), bool)
    for t in np.unique(task):
        idx = rng.permutation(np.flatnonzero(task == t))
        k = min(max(2, round(ratio * len(idx))), len(idx) - 1)
        train[idx[:k]] = True
    return train


def standardise(X_tr, X_te):
    X_tr, X_te = X_tr.copy(), X_te.copy()
    mu, sd = X_tr[CONTINUOUS].mean(), X_tr[CONTINUOUS].std()
    X_tr[CONTINUOUS] = (X_tr[CONTINUOUS] - mu) / sd
    X_te[CONTINUOUS] = (X_te[CONTINUOUS] - mu) / sd
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


def fit_predict(est, alphas, extra, X_tr, y_tr, X_te, task_col, seed, tol):
    """Choose ``alpha`` (warm-started path) and the other parameters by inner 3-fold CV."""
    # the bias is a feature of W (MALSAR's and Evgeniou & Pontil's setting), so that the
    # task coupling also shrinks the intercepts; no separate unpenalised intercept
    est = est.set_params(task_col=task_col, tol=tol, fit_intercept=False)
    folds = inner_folds(X_tr[task_col].to_numpy(), 3, seed)
    best = None
    for values in ParameterGrid(extra):
        cv = ml.MultiTaskCV(
            clone(est).set_params(**values),
            alphas=alphas,
            cv=folds,
            scoring="neg_mean_squared_error",
            random_state=seed,
        ).fit(X_tr, y_tr)
        score = cv.cv_scores_.mean(0).max()
        if best is None or score > best[0]:
            best = (score, cv, {**values, "alpha": cv.alpha_})
    return best[1].predict(X_te), best[2]


def run(protocol, ratios, seeds, quick, out, tol, only=()):
    data = load("school")
    X, y, task_col = data.X, np.asarray(data.y, float), data.task_col
    task = X[task_col].to_numpy()
    X = X.assign(bias=1.0)
    rows = []
    for ratio in ratios:
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            train = split(task, ratio, rng)
            X_tr, X_te = standardise(X[train], X[~train])
            y_tr, y_te = y[train], y[~train]
            for name, (est, alphas, extra) in methods(quick).items():
                if only and not any(key in name for key in only):
                    continue
                t0 = time.perf_counter()
                # centre y with the training mean: penalised intercepts shrink towards it
                mu = y_tr.mean()
                pred, best = fit_predict(
                    est, alphas, extra, X_tr, y_tr - mu, X_te, task_col, seed, tol
                )
                pred = pred + mu
                nmse = float(np.mean((y_te - pred) ** 2) / np.var(y_te))
                row = {
                    "dataset": "school",
                    "protocol": protocol,
                    "train_ratio": ratio,
                    "seed": seed,
                    "method": name,
                    "explained_variance_pct": 100 * (1 - nmse),
                    "nmse": nmse,
                    "best_params": {k: float(v) for k, v in best.items()},
                    "seconds": time.perf_counter() - t0,
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
                with open(out, "a") as f:
                    f.write(json.dumps(row) + "\n")
    return rows


def table(rows):
    key = "explained_variance_pct" if rows[0]["protocol"] == "ev" else "nmse"
    print(f"\n{'method':28s} {'ratio':>6s} {key:>24s}  seeds")
    for ratio in sorted({r["train_ratio"] for r in rows}):
        for name in dict.fromkeys(r["method"] for r in rows):
            v = [r[key] for r in rows if r["method"] == name and r["train_ratio"] == ratio]
            print(f"{name:28s} {ratio:6.2f} {np.mean(v):16.4f} +- {np.std(v):6.4f}  {len(v)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--protocol", choices=["ev", "nmse"], default="ev")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="smaller grids")
    parser.add_argument("--out", default="school_results.jsonl")
    parser.add_argument("--tol", type=float, default=1e-5, help="solver tolerance")
    parser.add_argument("--methods", default="", help="comma-separated substrings of names")
    args = parser.parse_args()
    ratios = [0.75] if args.protocol == "ev" else [0.1, 0.2, 0.3]
    only = [m for m in args.methods.split(",") if m]
    table(run(args.protocol, ratios, args.seeds, args.quick, args.out, args.tol, only))


if __name__ == "__main__":
    main()
