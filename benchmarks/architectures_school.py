"""School as deep regression (139 tasks): MRN and DMTRL vs hard sharing and independent networks.

Protocol (a) of the School README: 75% / 25% of each school's students for
training / test (one split per seed), continuous features 3-4 standardised on
the training rows, targets standardised for training. A random
``--val-fraction`` (20 %) of the training rows is held out for validation; each
model keeps the epoch with the lowest validation MSE. Metric: explained
variance ``1 - MSE / Var(y)`` on the test rows (in the original units), over
all schools, and the MSE. Each student belongs to one task: the loss is the
mean squared error of each student's own-school prediction (tasks weighted
by their number of students).

Models (a shared 27 -> 32 ReLU layer unless said otherwise; per-task layers 32 -> 8 -> 1):

- ``single_task``: 139 independent networks 27 -> 16 -> 1 (the delta_m baseline);
- ``hard_sharing``: shared layer, per-task towers;
- ``relationship``: same towers under MRN's tensor-normal prior, covariances
  updated after each epoch (Long et al., NIPS 2017), the prior scaled as the
  paper's MAP objective (``n_samples`` = training rows, ``prior_weight`` 1);
  ``relationship_lam{x}``: the same with ``prior_weight`` x (``--mrn-lambdas``);
- ``tensor_factorized`` / ``tensor_factorized_tt``: towers whose stacked
  weights are a Tucker / tensor-train factorisation (Yang & Hospedales, ICLR 2017).

Run (the run reported in docs/architectures.md)::

    MULTITASK_DATA=... OMP_NUM_THREADS=1 nice -n 19 python benchmarks/architectures_school.py \
        --epochs 20 --batch-size 512 --lr 3e-3 > school.log 2>&1

The summary also lists ``relationship_valsel``: for each seed, the MRN run
(over ``prior_weight`` 1 and ``--mrn-lambdas``) with the lowest validation MSE.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))

from architectures_common import (
    Results,
    parser,
    predict,
    run_all_selected,
    split_validation,
    summary_selected,
    train_selected,
)
from multitask.datasets import load, train_test_split_per_task
from multitask.nn.architectures import DeepRelationshipNetwork, HardSharing, TensorFactorized

CONTINUOUS = [3, 4]


def arrays(seed: int):
    data = load("school")
    tr, te = train_test_split_per_task(data, 0.75, seed=seed)
    tasks = sorted(data.X[data.task_col].unique())
    index = {t: i for i, t in enumerate(tasks)}

    def xy(d):
        X = d.X.drop(columns=d.task_col).to_numpy(np.float32, copy=True)
        return X, d.y.astype(np.float32), d.X[d.task_col].map(index).to_numpy(np.int64, copy=True)

    (X, y, t), (Xt, yt, tt) = xy(tr), xy(te)
    mu, sd = X[:, CONTINUOUS].mean(0), X[:, CONTINUOUS].std(0)
    X[:, CONTINUOUS] = (X[:, CONTINUOUS] - mu) / sd
    Xt[:, CONTINUOUS] = (Xt[:, CONTINUOUS] - mu) / sd
    ym, ys = y.mean(), y.std()
    as_t = torch.as_tensor
    train_set = (as_t(X), {"y": as_t((y - ym) / ys), "task": as_t(t)})
    test_set = (as_t(Xt), {"y": as_t(yt), "task": as_t(tt)})
    return train_set, test_set, len(tasks), (float(ym), float(ys))


def tower() -> nn.Module:
    return nn.Sequential(nn.Linear(32, 8), nn.ReLU(), nn.Linear(8, 1))


def trunk() -> nn.Module:
    return nn.Sequential(nn.Linear(27, 32), nn.ReLU())


def build(name: str, n_tasks: int, n_samples: int | None = None) -> nn.Module:
    names = [f"s{i}" for i in range(n_tasks)]
    if name == "single_task":
        heads = {t: nn.Sequential(nn.Linear(27, 16), nn.ReLU(), nn.Linear(16, 1)) for t in names}
        return HardSharing(nn.Identity(), heads)
    if name == "hard_sharing":
        return HardSharing(trunk(), {t: tower() for t in names})
    if name.startswith("relationship"):
        heads = {t: tower() for t in names}
        lam = float(name.removeprefix("relationship_lam")) if "_lam" in name else 1.0
        return DeepRelationshipNetwork(trunk(), heads, prior_weight=lam, n_samples=n_samples)
    if name in ("tensor_factorized", "tensor_factorized_tt"):
        method = "tt" if name.endswith("tt") else "tucker"
        ranks = [(8, 8, 16), (8, 1, 16)] if method == "tucker" else [(8, 16), (8, 16)]
        ident = {t: nn.Identity() for t in names}
        return TensorFactorized(trunk(), [32, 8, 1], ident, ranks=ranks, method=method)
    raise KeyError(name)


def own_prediction(out: dict, task: torch.Tensor) -> torch.Tensor:
    preds = torch.cat([v.reshape(len(task), 1) for v in out.values()], 1)  # (B, T)
    return preds.gather(1, task[:, None]).squeeze(1)


def loss_fn(out, y):
    return {"all": (own_prediction(out, y["task"]) - y["y"]).pow(2).mean()}


def after_epoch(model, epoch):
    if isinstance(model, DeepRelationshipNetwork):
        model.update_covariances()


def main() -> None:
    p = parser(__doc__.splitlines()[0], "architectures_school")
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--mrn-lambdas", type=float, nargs="*", default=[0.1, 0.01])
    p.set_defaults(epochs=30, batch_size=256, lr=3e-3)
    args = p.parse_args()
    fit = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr}

    def method(name):
        def run(seed):
            (x_all, y_all), (xt, yt), n_tasks, (ym, ys) = arrays(seed)
            (x, y), val = split_validation(x_all, y_all, args.val_fraction, seed)
            model = build(name, n_tasks, n_samples=len(x))
            info = train_selected(model, x, y, loss_fn, val, seed=seed, on_epoch=after_epoch, **fit)
            pred = own_prediction(predict(model, xt), yt["task"]) * ys + ym
            mse = float((pred - yt["y"]).pow(2).mean())
            ev = 1 - mse / float(yt["y"].var(unbiased=False))
            return {("all", "explained_variance"): ev, ("all", "mse"): mse}, info

        return run

    mrn = ["relationship"] + [f"relationship_lam{lam:g}" for lam in args.mrn_lambdas]
    names = ["single_task", "hard_sharing", *mrn, "tensor_factorized", "tensor_factorized_tt"]
    results = Results(args.out)
    run_all_selected(args, {n: method(n) for n in names}, results, "school")
    add_validation_selected(results, mrn)
    print(summary_selected(results))


def add_validation_selected(results: Results, candidates: list[str]) -> None:
    """Rows of ``relationship_valsel`` (in memory only): per seed, the MRN candidate with
    the lowest validation loss."""
    best = {}
    for r in results.rows:
        if r["method"] in candidates and r["metric"] == "val_curve":
            score = min(r["value"])
            if r["seed"] not in best or score < best[r["seed"]][0]:
                best[r["seed"]] = (score, r["method"])
    for seed, (_, chosen) in sorted(best.items()):
        print(f"relationship_valsel seed={seed}: {chosen}")
        results.rows += [
            {**r, "method": "relationship_valsel"}
            for r in results.rows
            if r["method"] == chosen and r["seed"] == seed
        ]


if __name__ == "__main__":
    main()
