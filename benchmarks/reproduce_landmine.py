"""Reproduce the Landmine (29 tasks) benchmark: mean AUC of the logistic variants.

Protocol (Xue, Liao, Carin & Krishnapuram, JMLR 2007; README of the shared
datasets): per task, a random stratified training subset (``--train-ratio`` of
the rows, default 20%), the rest for test; ROC AUC per task, averaged over the
29 tasks, then mean +- std over seeds. Features are standardised with training
statistics; every hyper-parameter is chosen by 3-fold cross-validation stratified
by (task, label) on the training rows only (``MultiTaskCV``: ``alpha`` on a
warm-started path, the second strength on a grid), scored by the mean per-task AUC.

Every (ratio, seed, method) result is cached as JSON under ``--results``; a rerun
skips what exists.

Usage::

    python benchmarks/reproduce_landmine.py --seeds 10
    python benchmarks/reproduce_landmine.py --seeds 2 --grid tiny
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

sys.path.insert(0, str(Path(__file__).parent))
import multitask.linear as ml
import reproduce_common as rc


class PooledLogistic(ClassifierMixin, BaseEstimator):
    """One L2-regularised logistic model for all tasks (the pooled baseline).

    ``IndependentLogistic`` fitted with every row in one task: minimises
    ``1/n sum_i log(1 + exp(-y_i (x_i . w + b))) + alpha ||w||^2`` over all ``n`` rows,
    ignoring the task id (which stays in ``X`` for the per-task scorer).

    References
    ----------
    Xue, Liao, Carin & Krishnapuram, "Multi-task learning for classification with
    Dirichlet process priors", JMLR 8, 2007, pp. 35-63: the "pooling of data across
    all tasks" baseline of its experiments (abstract; Landmine is one of its data sets).
    """

    def __init__(self, alpha=0.01, *, task_col=None, tol=1e-8, warm_start=False):
        self.alpha = alpha
        self.task_col = task_col
        self.tol = tol
        self.warm_start = warm_start

    def _one_task(self, X):
        return X.assign(**{self.task_col: 0})

    def fit(self, X, y, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("PooledLogistic takes no sample_weight; pass None.")
        if not (self.warm_start and hasattr(self, "model_")):
            self.model_ = ml.IndependentLogistic(task_col=self.task_col)
        params = dict(alpha=self.alpha, tol=self.tol, warm_start=self.warm_start)
        self.model_.set_params(**params).fit(self._one_task(X), y)
        self.classes_ = self.model_.classes_
        return self

    def decision_function(self, X):
        check_is_fitted(self)
        return self.model_.decision_function(self._one_task(X))


def methods(grid="full"):
    """name -> (estimator, alphas, {second parameter: values})."""
    n = {"full": 7, "quick": 5, "tiny": 3}[grid]
    nb = {"full": 3, "quick": 2, "tiny": 2}[grid]
    return {
        "pooled logistic": (PooledLogistic(), np.logspace(-4, 1, n), {}),
        "independent logistic": (ml.IndependentLogistic(), np.logspace(-4, 1, n), {}),
        "L21 logistic": (ml.GroupLassoClassifier(), np.logspace(-4, 0, n), {}),
        "trace-norm logistic": (ml.TraceNormClassifier(), np.logspace(-4, 0, n), {}),
        "dirty logistic": (
            ml.DirtyModelClassifier(),
            np.logspace(-3, 0, n - 2),
            {"beta": list(np.logspace(-3, 0, nb + 1))},
        ),
        "mean-regularised logistic": (
            ml.MeanRegularizedClassifier(),
            np.logspace(-3, 2, n),
            {"beta": list(np.logspace(-5, -1, nb + 1))},
        ),
        "clustered logistic (k=2)": (
            ml.ClusteredMTLClassifier(n_clusters=2, max_iter=20000),
            np.logspace(-3, 2, n),
            {"beta": list(np.logspace(-5, -1, nb + 1))},
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
    """ROC AUC per task (tasks with one class skipped), averaged."""
    aucs = [
        roc_auc_score(y[task == t], score[task == t])
        for t in np.unique(task)
        if len(np.unique(y[task == t])) == 2
    ]
    return float(np.mean(aucs))


def task_auc_scorer(task_col):
    def score(est, X, y):
        return mean_task_auc(X[task_col].to_numpy(), np.asarray(y), est.decision_function(X))

    return score


def load_split(ratio, seed, data=None):
    """Standardised training / test rows of one seed."""
    if data is None:
        from multitask.datasets import load

        data = load("landmine")
    X, y, task_col = data.X, np.asarray(data.y, int), data.task_col
    task = X[task_col].to_numpy()
    features = [c for c in X.columns if c != task_col]
    train = split(task, y, ratio, np.random.default_rng(seed))
    X_tr, X_te = X[train].copy(), X[~train].copy()
    mu, sd = X_tr[features].mean(), X_tr[features].std()
    X_tr[features] = (X_tr[features] - mu) / sd
    X_te[features] = (X_te[features] - mu) / sd
    return X_tr, X_te, y[train], y[~train], task_col


def fit_score(spec, X_tr, y_tr, X_te, task_col, seed, tol):
    """Choose the parameters by inner CV; return test scores, chosen parameters, grids.

    A choice on a grid edge extends that grid by a decade and re-runs the CV on the new
    points (:func:`reproduce_common.search_grid`; every grid here is absolute, so no edge
    is a limit). Returns the test decision values, the chosen parameters, the final
    grids, the number of extensions per parameter and the mean inner-CV AUC at the choice.
    """
    est, alphas, extra = spec
    est = clone(est).set_params(task_col=task_col, tol=tol)
    strata = 2 * X_tr[task_col].to_numpy() + y_tr
    folds = list(StratifiedKFold(3, shuffle=True, random_state=seed).split(X_tr, strata))

    def score(values, path_alphas):
        """Mean inner-CV AUC of the warm-started path over ``path_alphas`` (descending)."""
        est_v = clone(est).set_params(**values)
        return rc.path_scores(est_v, X_tr, y_tr, path_alphas, folds, task_auc_scorer(task_col))

    best, grids, extensions, cv_score = rc.search_grid(score, {"alpha": alphas, **extra})
    values = {k: v for k, v in best.items() if k != "alpha"}
    model = clone(est).set_params(**values, alpha=best["alpha"]).fit(X_tr, y_tr)
    return model.decision_function(X_te), best, grids, extensions, cv_score


def evaluate(job, split_data, tol, grid):
    X_tr, X_te, y_tr, y_te, task_col = split_data
    t0 = time.perf_counter()
    spec = methods(grid)[job["method"]]
    score, best, grids, extensions, cv_score = fit_score(
        spec, X_tr, y_tr, X_te, task_col, job["seed"], tol
    )
    return {
        "dataset": "landmine",
        "protocol": job["protocol"],
        "train_ratio": job["ratio"],
        "seed": job["seed"],
        "method": job["method"],
        "mean_auc": mean_task_auc(X_te[task_col].to_numpy(), y_te, score),
        "best_params": {k: float(v) for k, v in best.items()},
        "cv_score": cv_score,
        "grids": grids,
        "edges": {k: rc.edge(best[k], g) for k, g in grids.items()},
        "extensions": extensions,
        "limits": {},
        "grid": grid,
        "tol": tol,
        "seconds": time.perf_counter() - t0,
    }


def run(ratio, seeds, names, folder, tol, grid, data=None, reuse=None):
    """Every (seed, method), cached; ``reuse``: an older results folder whose rows with
    every choice inside its grid are copied (the extension rule would not change them)."""
    jobs = [
        {"protocol": "auc", "ratio": ratio, "seed": s, "method": m} for s in seeds for m in names
    ]
    splits = {}

    def compute(job):
        key = (job["ratio"], job["seed"])
        if key not in splits:
            splits.clear()
            splits[key] = load_split(*key, data=data)
        return evaluate(job, splits[key], tol, grid)

    def adopt(row):
        same = row["grid"] == grid and row["tol"] == tol
        return {**row, "limits": {}} if same and not rc.off_limit_edges(row, {}) else None

    return rc.run_cached(jobs, folder, compute, "landmine", reuse, adopt)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--train-ratio", type=float, default=0.2)
    parser.add_argument("--grid", choices=["full", "quick", "tiny"], default="full")
    parser.add_argument("--results", default="results/reproduce_landmine")
    parser.add_argument("--tol", type=float, default=1e-4, help="solver tolerance")
    parser.add_argument("--methods", default="", help="comma-separated substrings of names")
    parser.add_argument("--reuse", default=None, help="older results folder (see run)")
    parser.add_argument("--table", action="store_true", help="only print the cached tables")
    args = parser.parse_args()
    only = [m for m in args.methods.split(",") if m]
    names = [n for n in methods(args.grid) if not only or any(k in n for k in only)]
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    if not args.table:
        run(args.train_ratio, seeds, names, args.results, args.tol, args.grid, reuse=args.reuse)
    rows = rc.load_rows(args.results, "auc")
    names = list(methods(args.grid))
    print(rc.summary(rows, "mean_auc", names))
    print()
    for reference in ("independent logistic", "pooled logistic"):
        print(f"Difference to {reference} on the same seeds:")
        print(rc.paired(rows, "mean_auc", names, reference))
        print()
    mtl = [n for n in names if n not in ("independent logistic", "pooled logistic")]
    print("Every MTL model at or above pooled logistic?")
    print(rc.verdict(rows, "mean_auc", mtl, "pooled logistic"))
    print()
    print(rc.chosen(rows, names))


if __name__ == "__main__":
    main()
