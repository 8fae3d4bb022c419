"""School as deep regression (139 tasks): MRN and DMTRL vs hard sharing and independent networks.

Protocol (a) of the School README: 75% / 25% of each school's students for
training / test (one split per seed), continuous features 3-4 standardised on
the training rows, targets standardised for training. Metric: explained
variance ``1 - MSE / Var(y)`` on the test rows (in the original units), over
all schools, and the MSE. Each student belongs to one task: the loss is the
mean squared error of each student's own-school prediction (tasks weighted
by their number of students).

Models (a shared 27 -> 32 ReLU layer unless said otherwise; per-task layers 32 -> 8 -> 1):

- ``single_task``: 139 independent networks 27 -> 16 -> 1 (the delta_m baseline);
- ``hard_sharing``: shared layer, per-task towers;
- ``relationship``: same towers under MRN's tensor-normal prior, covariances
  updated after each epoch (Long et al., NIPS 2017);
- ``tensor_factorized`` / ``tensor_factorized_tt``: towers whose stacked
  weights are a Tucker / tensor-train factorisation (Yang & Hospedales, ICLR 2017).

Run::

    MULTITASK_DATA=... OMP_NUM_THREADS=1 python benchmarks/architectures_school.py --epochs 30

Reduced run (docs/architectures.md)::

    MULTITASK_DATA=... OMP_NUM_THREADS=1 python benchmarks/architectures_school.py \
        --epochs 8 --batch-size 1024 --lr 3e-3
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))

from architectures_common import Results, parser, predict, run_all, train
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


def build(name: str, n_tasks: int, prior_weight: float = 1e-4) -> nn.Module:
    names = [f"s{i}" for i in range(n_tasks)]
    if name == "single_task":
        heads = {t: nn.Sequential(nn.Linear(27, 16), nn.ReLU(), nn.Linear(16, 1)) for t in names}
        return HardSharing(nn.Identity(), heads)
    if name == "hard_sharing":
        return HardSharing(trunk(), {t: tower() for t in names})
    if name.startswith("relationship"):
        heads = {t: tower() for t in names}
        return DeepRelationshipNetwork(trunk(), heads, prior_weight=prior_weight)
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
    p.add_argument("--prior-weight", type=float, default=1e-4, help="MRN's lambda (per batch)")
    p.set_defaults(epochs=30, batch_size=256)
    args = p.parse_args()
    mrn = "relationship" if args.prior_weight == 1e-4 else f"relationship_pw{args.prior_weight:g}"
    fit = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr}

    def method(name):
        def run(seed):
            (x, y), (xt, yt), n_tasks, (ym, ys) = arrays(seed)
            model = build(name, n_tasks, args.prior_weight)
            sec = train(model, x, y, loss_fn, seed=seed, on_epoch=after_epoch, **fit)
            pred = own_prediction(predict(model, xt), yt["task"]) * ys + ym
            mse = float((pred - yt["y"]).pow(2).mean())
            ev = 1 - mse / float(yt["y"].var(unbiased=False))
            return {("all", "explained_variance"): ev, ("all", "mse"): mse}, sec

        return run

    names = ("single_task", "hard_sharing", mrn, "tensor_factorized")
    names += ("tensor_factorized_tt",)
    run_all(args, {n: method(n) for n in names}, Results(args.out), "school")


if __name__ == "__main__":
    main()
