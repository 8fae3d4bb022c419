"""MMoE's synthetic experiment: hard sharing vs MMoE (and CGC) as the task correlation drops.

Ma et al. (KDD 2018, Sec. 3.2 and Fig. 4) generate two regression tasks whose
correlation is controlled (:func:`multitask.datasets.make_mmoe`) and show that
the gap between MMoE and a shared-bottom (hard sharing) model grows as the
correlation decreases (1.0, 0.9, 0.5). Models have similar parameter counts:
shared bottom 100 -> 128 units; MMoE 8 experts of 16 units with two gates;
CGC 4 shared + 2 x 2 task experts of 16 units; single task 2 x (100 -> 64).

Run::

    OMP_NUM_THREADS=1 python benchmarks/architectures_mmoe_synthetic.py \
        --n-train 10000 --n-test 2000 --epochs 20

Results (one file per correlation) go to
``benchmarks/results/architectures_mmoe_synthetic_p{correlation}.jsonl``; metric: test MSE.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).parent))

from architectures_common import Results, parser, predict, run_all, train
from multitask.datasets import make_mmoe
from multitask.nn.architectures import CGC, HardSharing, MMoE

TASKS = ("task1", "task2")
D = 100


def mlp(i: int, o: int) -> nn.Module:
    return nn.Sequential(nn.Linear(i, o), nn.ReLU())


def tower(width: int) -> nn.Module:
    return nn.Sequential(nn.Linear(width, 8), nn.ReLU(), nn.Linear(8, 1))


def build(name: str) -> nn.Module:
    if name == "hard_sharing":
        return HardSharing(mlp(D, 128), {t: tower(128) for t in TASKS})
    if name == "mmoe":
        return MMoE([mlp(D, 16) for _ in range(8)], {t: tower(16) for t in TASKS}, D)
    if name == "cgc":
        own = {t: [mlp(D, 16) for _ in range(2)] for t in TASKS}
        return CGC([mlp(D, 16) for _ in range(4)], own, {t: tower(16) for t in TASKS}, D)
    raise KeyError(name)


def mse_losses(out, y):
    return {t: F.mse_loss(out[t].squeeze(-1), y[t]) for t in out}


def data(n_train: int, n_test: int, correlation: float, seed: int = 0):
    X, Y = make_mmoe(n_train + n_test, D, correlation, seed=seed)
    X, Y = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(Y, dtype=torch.float32)
    ys = {t: Y[:, k] for k, t in enumerate(TASKS)}
    tr = (X[:n_train], {t: v[:n_train] for t, v in ys.items()})
    te = (X[n_train:], {t: v[n_train:] for t, v in ys.items()})
    return tr, te


def run_correlation(args, corr: float) -> None:
    fit = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr}
    (x, y), (xt, yt) = data(args.n_train, args.n_test, corr)

    def mse(model, targets):
        out = predict(model, xt)
        return {(t, "mse"): F.mse_loss(out[t].squeeze(-1), targets[t]).item() for t in out}

    def single_task(seed):
        metrics, sec = {}, 0.0
        for t in TASKS:
            model = HardSharing(mlp(D, 64), {t: tower(64)})
            sec += train(model, x, {t: y[t]}, mse_losses, seed=seed, **fit)
            metrics.update(mse(model, {t: yt[t]}))
        return metrics, sec

    def method(name):
        def run(seed):
            model = build(name)
            sec = train(model, x, y, mse_losses, seed=seed, **fit)
            return mse(model, yt), sec

        return run

    names = ("hard_sharing", "mmoe", "cgc")
    methods = {"single_task": single_task, **{n: method(n) for n in names}}
    out = args.out.replace(".jsonl", f"_p{corr:g}.jsonl")
    print(f"--- correlation {corr:g} ---")
    run_all(args, methods, Results(out), f"mmoe_synthetic_p{corr:g}")
    params = {n: sum(q.numel() for q in build(n).parameters()) for n in names}
    print("parameters:", params, "| test target variance:", float(np.var(yt[TASKS[0]].numpy())))


def main() -> None:
    p = parser(__doc__.splitlines()[0], "architectures_mmoe_synthetic")
    p.add_argument("--n-train", type=int, default=10_000)
    p.add_argument("--n-test", type=int, default=2_000)
    p.add_argument("--correlations", type=float, nargs="+", default=[1.0, 0.9, 0.5])
    p.set_defaults(epochs=20)
    args = p.parse_args()
    for corr in args.correlations:
        run_correlation(args, corr)


if __name__ == "__main__":
    main()
