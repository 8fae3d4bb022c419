"""Reproduce the Landmine (29 tasks) benchmark: mean AUC of the logistic variants.

Protocol (Xue, Liao, Carin & Krishnapuram, JMLR 2007; README of the shared
datasets): per task, a random stratified training subset (``--train-ratio`` of
the rows, default 20%), the rest for test; ROC AUC per task, averaged over the
29 tasks, then mean +- std over seeds. Features are standardised with training
statistics; hyper-parameters are chosen by 3-fold cross-validation stratified
by (task, label) on the training rows only, scored by ROC AUC.

Usage::

    python benchmarks/reproduce_landmine.py --seeds 10
    python benchmarks/reproduce_landmine.py --seeds 2 --quick
"""

import argparse
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold

import multitask.linear as ml
from multitask.datasets import load


def methods(quick):
    """name -> (estimator, parameter grid)."""
    n = 3 if quick else 5
    return {
        "independent logistic": (
            ml.IndependentLogistic(),
            {"alpha": list(np.logspace(-3, 1, n))},
        ),
        "L21 logistic": (ml.GroupLassoClassifier(), {"alpha": list(np.logspace(-4, -1, n))}),
        "trace-norm logistic": (
            ml.TraceNormClassifier(),
            {"alpha": list(np.logspace(-4, -1, n))},
        ),
        "mean-regularised logistic": (
            ml.MeanRegularizedClassifier(),
            {"alpha": list(np.logspace(-3, 1, n)), "beta": [1e-4, 1e-3, 1e-2]},
        ),
        "dirty logistic": (
            ml.DirtyModelClassifier(),
            {"alpha": [1e-3, 1e-2], "beta": [1e-3, 1e-2]},
        ),
        "clustered logistic (k=2)": (
            ml.ClusteredMTLClassifier(n_clusters=2, max_iter=300 if quick else 3000),
            {"alpha": [1e-2] if quick else [1e-3, 1e-2, 1e-1], "beta": [1e-3, 1e-2]},
        ),
    }


def split(task, y, ratio, rng):
    """Stratified per task: ``ratio`` of each task's positives and negatives for training."""
    train = np.zeros(len(task), bool)
    for t in np.unique(task):
        for label in (0, 1):
            idx = rng.permutation(np.flatnonzero((task == t) & (y == label)))
            k = min(max(2, round(ratio * len(idx))), len(idx) - 1)
            train[idx[:k]] = True
    return train


def mean_task_auc(task, y, score):
    return float(np.mean([roc_auc_score(y[task == t], score[task == t]) for t in np.unique(task)]))


def run(ratio, seeds, quick, out, tol):
    data = load("landmine")
    X, y, task_col = data.X, np.asarray(data.y, int), data.task_col
    task = X[task_col].to_numpy()
    features = [c for c in X.columns if c != task_col]
    rows = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        train = split(task, y, ratio, rng)
        X_tr, X_te = X[train].copy(), X[~train].copy()
        mu, sd = X_tr[features].mean(), X_tr[features].std()
        X_tr[features] = (X_tr[features] - mu) / sd
        X_te[features] = (X_te[features] - mu) / sd
        strata = 2 * X_tr[task_col].to_numpy() + y[train]
        folds = list(StratifiedKFold(3, shuffle=True, random_state=seed).split(X_tr, strata))
        for name, (est, grid) in methods(quick).items():
            t0 = time.perf_counter()
            est = est.set_params(task_col=task_col, tol=tol)
            search = GridSearchCV(est, grid, cv=folds, scoring="roc_auc").fit(X_tr, y[train])
            auc = mean_task_auc(task[~train], y[~train], search.decision_function(X_te))
            row = {
                "dataset": "landmine",
                "train_ratio": ratio,
                "seed": seed,
                "method": name,
                "mean_auc": auc,
                "best_params": {k: float(v) for k, v in search.best_params_.items()},
                "seconds": time.perf_counter() - t0,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            with open(out, "a") as f:
                f.write(json.dumps(row) + "\n")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--train-ratio", type=float, default=0.2)
    parser.add_argument("--quick", action="store_true", help="smaller grids")
    parser.add_argument("--out", default="landmine_results.jsonl")
    parser.add_argument("--tol", type=float, default=1e-5, help="solver tolerance")
    args = parser.parse_args()
    rows = run(args.train_ratio, args.seeds, args.quick, args.out, args.tol)
    print(f"\n{'method':28s} {'mean AUC':>18s}  seeds")
    for name in dict.fromkeys(r["method"] for r in rows):
        v = [r["mean_auc"] for r in rows if r["method"] == name]
        print(f"{name:28s} {np.mean(v):8.4f} +- {np.std(v):6.4f}  {len(v)}")


if __name__ == "__main__":
    main()
