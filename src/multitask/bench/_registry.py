"""Name tables of the benchmark: problems (datasets as splits) and methods."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from multitask._cli._catalogue import DEEP_NAMES
from multitask.bench._deep import DEEP_PROBLEM_LOADERS, DeepMethod
from multitask.bench._images import load_multi_fashion_problem
from multitask.bench._linear import LinearMethod, load_linear_problem

__all__ = ["METHODS", "PROBLEMS", "ProblemSpec", "baseline_for", "check_names"]


@dataclass(frozen=True)
class ProblemSpec:
    """How to build a benchmark problem from a dataset for one seed."""

    name: str
    half: str  # "linear" or "deep"
    loader: Callable[..., Any]
    description: str = ""

    def load(self, seed: int, options: dict):
        return self.loader(seed, options)


def _linear_loader(name: str, **kw) -> Callable[[int, dict], Any]:
    def load(seed: int, options: dict):
        return load_linear_problem(name, seed, **kw)

    return load


PROBLEMS: dict[str, ProblemSpec] = {
    p.name: p
    for p in [
        ProblemSpec("exam", "linear", _linear_loader("exam"), "mlmRev Exam: 65 schools"),
        ProblemSpec("hsb82", "linear", _linear_loader("hsb82"), "mlmRev Hsb82: 160 schools"),
        ProblemSpec(
            "school",
            "linear",
            _linear_loader("school", protocol="school"),
            "ILEA School, 75/25 per school (Evgeniou & Pontil 2004)",
        ),
        *(
            ProblemSpec(
                f"school_{pct}",
                "linear",
                _linear_loader("school", protocol=f"school_{pct}"),
                f"ILEA School, {pct}% training per school (MALSAR protocol)",
            )
            for pct in (10, 20, 30)
        ),
        ProblemSpec(
            "landmine",
            "linear",
            _linear_loader("landmine", protocol="landmine"),
            "Landmine: 29 fields, 20/80 stratified",
        ),
        ProblemSpec(
            "computer_survey",
            "linear",
            # the published metric: test RMSE averaged over people (Argyriou et al. 2008)
            _linear_loader("computer_survey", protocol="computer_survey", reported=("rmse",)),
            "Computer survey: 190 people, profiles 1-8 train / 17-20 test",
        ),
        ProblemSpec("parkinsons", "linear", _linear_loader("parkinsons"), "42 patients"),
        ProblemSpec(
            "chem97", "linear", _linear_loader("chem97", min_task_size=10), "Chem97, 10+ students"
        ),
    ]
}
PROBLEMS.update(
    {
        "multi_digits": ProblemSpec(
            "multi_digits",
            "deep",
            DEEP_PROBLEM_LOADERS["multi_digits"],
            "two scikit-learn digits side by side; tasks: left and right digit",
        ),
        "adult": ProblemSpec(
            "adult", "deep", DEEP_PROBLEM_LOADERS["adult"], "Adult: income > 50K, never married"
        ),
        "census_kdd_test": ProblemSpec(
            "census_kdd_test",
            "deep",
            DEEP_PROBLEM_LOADERS["census_kdd_test"],
            "Census-Income KDD test split, own 50/25/25 split: income, never married",
        ),
        "multi_fashion": ProblemSpec(
            "multi_fashion",
            "deep",
            load_multi_fashion_problem,
            "Multi-Fashion (Lin et al. 2019): two Fashion-MNIST items overlaid; "
            "tasks: top-left and bottom-right class (LeNet trunk)",
        ),
    }
)

_REG_GRID = [float(a) for a in np.logspace(-4, 0, 9)]
#: mean-regularised MTL needs stronger coupling: its optimum sat at the edge of _REG_GRID
_COUPLING_GRID = [float(a) for a in np.logspace(-3, 2, 11)]
_BETA_GRID = [1e-3, 1e-2, 1e-1]


def _linear(module_attr: tuple[str, str], **fixed) -> Callable[..., Any]:
    """Factory of a regressor / classifier pair ``(RegressorName, ClassifierName)``."""

    def make(kind: str, task_col: str, **params):
        import multitask.linear as L

        cls = getattr(L, module_attr[0] if kind == "regression" else module_attr[1])
        return cls(task_col=task_col, **fixed, **params)

    return make


def _pooled(kind: str, task_col: str, alpha: float):
    """One model for all tasks (the task column is ignored)."""
    return _Pooled(kind, task_col, alpha)


class _Pooled:
    """Ridge or L2-logistic regression fitted on the rows of every task together."""

    def __init__(self, kind: str, task_col: str, alpha: float):
        self.kind, self.task_col, self.alpha = kind, task_col, alpha

    def _features(self, X):
        return X.drop(columns=[self.task_col]).to_numpy(float)

    def fit(self, X, y):
        from sklearn.linear_model import LogisticRegression, Ridge

        Xf = self._features(X)
        if self.kind == "regression":
            self.model_ = Ridge(alpha=self.alpha * len(Xf)).fit(Xf, y)
        else:
            self.model_ = LogisticRegression(C=1.0 / (self.alpha * len(Xf))).fit(Xf, y)
        self.coef_ = np.atleast_2d(self.model_.coef_)
        return self

    def predict(self, X):
        return self.model_.predict(self._features(X))

    def decision_function(self, X):
        return self.model_.decision_function(self._features(X))


METHODS: dict[str, Any] = {
    m.name: m
    for m in [
        LinearMethod(
            "independent",
            _linear(("IndependentRidge", "IndependentLogistic")),
            {"alpha": _REG_GRID},
            "single-task baseline",
            0,
        ),
        LinearMethod("pooled", _pooled, {"alpha": _REG_GRID}, "one model for all tasks", 0),
        LinearMethod(
            "group_lasso",
            _linear(("GroupLassoRegressor", "GroupLassoClassifier")),
            {"alpha": _REG_GRID},
            "Obozinski, Taskar & Jordan, Stat. Comput.",
            2010,
        ),
        LinearMethod(
            "trace_norm",
            _linear(("TraceNormRegressor", "TraceNormClassifier")),
            {"alpha": _REG_GRID},
            "Pong, Tseng, Ji & Ye, SIAM J. Optim.",
            2010,
        ),
        LinearMethod(
            "dirty",
            _linear(("DirtyModelRegressor", "DirtyModelClassifier")),
            {"alpha": _REG_GRID[::2], "beta": _REG_GRID[::2]},
            "Jalali, Ravikumar, Sanghavi & Ruan, NIPS",
            2010,
        ),
        LinearMethod(
            "mean_regularized",
            _linear(("MeanRegularizedRegressor", "MeanRegularizedClassifier")),
            {"alpha": _COUPLING_GRID, "beta": _BETA_GRID},
            "Evgeniou & Pontil, KDD",
            2004,
        ),
        LinearMethod(
            "clustered",
            _linear(("ClusteredMTLRegressor", "ClusteredMTLClassifier")),
            {"alpha": _REG_GRID[::2], "beta": _BETA_GRID},
            "Zhou, Chen & Ye, NIPS",
            2011,
        ),
    ]
}


def _weighting(name: str) -> Callable[[int], Any]:
    def make(n_tasks: int):
        from multitask.nn.weighting import WEIGHTINGS

        return WEIGHTINGS[name](n_tasks)

    return make


def _aggregator(name: str) -> Callable[[int], Any]:
    def make(n_tasks: int):
        from multitask.nn.aggregation import AGGREGATORS

        return AGGREGATORS[name]()

    return make


def _deep_methods() -> list[DeepMethod]:
    """Single-task networks, hard sharing, and hard sharing with every balancer."""
    methods = [
        DeepMethod("single_task", single_task=True, paper="one network per task"),
        DeepMethod("hard_sharing", paper="Caruana, ICML", year=1993),
    ]
    for name, (paper, year) in DEEP_NAMES["weighting"].items():
        if name not in ("equal", "static"):
            methods.append(DeepMethod(name, balancer=_weighting(name), paper=paper, year=year))
    for name, (paper, year) in DEEP_NAMES["aggregation"].items():
        if name != "sum":
            methods.append(DeepMethod(name, balancer=_aggregator(name), paper=paper, year=year))
    return methods


METHODS.update({m.name: m for m in _deep_methods()})

_BASELINES = {"linear": "independent", "deep": "single_task"}


def baseline_for(half: str) -> str:
    """Name of the single-task baseline method of a half."""
    return _BASELINES[half]


def check_names(datasets: Sequence[str], methods: Sequence[str]) -> None:
    """Raise a ValueError naming every unknown dataset or method, with the valid names."""
    bad_d = [d for d in datasets if d not in PROBLEMS]
    if bad_d:
        raise ValueError(f"unknown dataset(s) {bad_d}; valid datasets: {sorted(PROBLEMS)}")
    bad_m = [m for m in methods if m not in METHODS]
    if bad_m:
        raise ValueError(f"unknown method(s) {bad_m}; valid methods: {sorted(METHODS)}")
