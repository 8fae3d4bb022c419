"""MMoE's synthetic experiment: hard sharing vs MMoE as the task correlation drops.

Ma et al. (KDD 2018, Sec. 3.2 and Fig. 4) generate two regression tasks whose
correlation is controlled (:func:`multitask.datasets.make_mmoe`) and report
that the gap between MMoE and a shared-bottom (hard sharing) model grows as the
correlation decreases (1.0, 0.9, 0.5), averaging many runs, each with its own
random data *and* model initialisation. Protocol here:

- every repeat ``r`` draws a fresh data set (``make_mmoe(..., seed=r)``: new
  task directions, sine parameters, inputs and noise) and initialises the
  models with seed ``r``; one row per (correlation, method, repeat);
- train / validation / test rows drawn from the same generator; Adam; the
  epoch with the lowest validation loss (sum of the two MSEs) is kept and
  evaluated on the test rows;
- the paper's parameter budget: MMoE has 8 experts, each one ReLU layer of 16
  units, towers one ReLU layer of 8 units (100 x 16 x 8 + 16 x 8 x 2 = 13,056
  weights); the shared bottom is one ReLU layer of 113 units with the same
  towers (113 x (100 + 8 x 2) = 13,108 weights); the gates (2 x 100 x 8) come on
  top, as in the paper. CGC (4 shared + 2 x 2 task experts of 16 units) is
  available with ``--methods``; single task (2 x (100 -> 64 -> 8 -> 1)) is the
  ``delta_m`` baseline.

Run (the run reported in docs/architectures.md)::

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/architectures_mmoe_synthetic.py \
        --repeats 10 --epochs 30 > mmoe.log 2>&1

Results (one file per correlation) go to
``benchmarks/results/architectures_mmoe_synthetic_p{correlation}.jsonl``; the
summary table and ``docs/img/architectures_mmoe_synthetic.png`` are made from
those files only (``--plot-only`` redraws them without training).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).parent))

from architectures_common import (
    Results,
    merge_infos,
    parser,
    predict,
    run_all_selected,
    train_selected,
)
from multitask.datasets import make_mmoe
from multitask.nn.architectures import CGC, HardSharing, MMoE

TASKS = ("task1", "task2")
D = 100
SHARED_BOTTOM = 113  # 13,056 / (100 + 8 x 2), the paper's matched budget
PLOT = "docs/img/architectures_mmoe_synthetic.png"


def mlp(i: int, o: int) -> nn.Module:
    return nn.Sequential(nn.Linear(i, o), nn.ReLU())


def tower(width: int) -> nn.Module:
    return nn.Sequential(nn.Linear(width, 8), nn.ReLU(), nn.Linear(8, 1))


def build(name: str) -> nn.Module:
    if name == "hard_sharing":
        return HardSharing(mlp(D, SHARED_BOTTOM), {t: tower(SHARED_BOTTOM) for t in TASKS})
    if name == "mmoe":
        return MMoE([mlp(D, 16) for _ in range(8)], {t: tower(16) for t in TASKS}, D)
    if name == "cgc":
        own = {t: [mlp(D, 16) for _ in range(2)] for t in TASKS}
        return CGC([mlp(D, 16) for _ in range(4)], own, {t: tower(16) for t in TASKS}, D)
    raise KeyError(name)


def mse_losses(out, y):
    return {t: F.mse_loss(out[t].squeeze(-1), y[t]) for t in out}


def data(sizes: tuple[int, int, int], correlation: float, seed: int):
    """``(train, validation, test)`` pairs ``(X, {task: y})`` from one draw of the generator."""
    X, Y = make_mmoe(sum(sizes), D, correlation, seed=seed)
    X, Y = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(Y, dtype=torch.float32)
    ends = np.cumsum(sizes)
    parts = []
    for lo, hi in zip((0, *ends[:-1]), ends, strict=True):
        parts.append((X[lo:hi], {t: Y[lo:hi, k] for k, t in enumerate(TASKS)}))
    return parts


def run_correlation(args, corr: float) -> None:
    fit = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr}
    sizes = (args.n_train, args.n_val, args.n_test)

    def mse(model, test, tasks):
        out = predict(model, test[0])
        return {(t, "mse"): F.mse_loss(out[t].squeeze(-1), test[1][t]).item() for t in tasks}

    def single_task(seed):
        (x, y), (xv, yv), test = data(sizes, corr, seed)
        metrics, infos = {}, []
        for t in TASKS:
            model = HardSharing(mlp(D, 64), {t: tower(64)})
            val = (xv, {t: yv[t]})
            infos.append(train_selected(model, x, {t: y[t]}, mse_losses, val, seed=seed, **fit))
            metrics.update(mse(model, test, [t]))
        return metrics, merge_infos(infos)

    def method(name):
        def run(seed):
            (x, y), val, test = data(sizes, corr, seed)
            model = build(name)
            info = train_selected(model, x, y, mse_losses, val, seed=seed, **fit)
            return mse(model, test, TASKS), info

        return run

    names = ("hard_sharing", "mmoe", "cgc")
    methods = {"single_task": single_task, **{n: method(n) for n in names}}
    print(f"--- correlation {corr:g} ---", flush=True)
    run_all_selected(args, methods, Results(out_path(args, corr)), f"mmoe_synthetic_p{corr:g}")


def out_path(args, corr: float) -> str:
    return args.out.replace(".jsonl", f"_p{corr:g}.jsonl")


def per_repeat(results: Results) -> dict:
    """``{method: {seed: mean test MSE over the two tasks}}`` and the validation curves."""
    mse, curves = defaultdict(dict), defaultdict(list)
    for r in results.rows:
        if r["metric"] == "mse":
            mse[r["method"]].setdefault(r["seed"], []).append(r["value"])
        if r["metric"] == "val_curve":
            curves[r["method"]].append(np.asarray(r["value"]) / len(TASKS))
    return {m: {s: float(np.mean(v)) for s, v in d.items()} for m, d in mse.items()}, curves


def gap_table(args) -> str:
    """Markdown: mean test MSE (+- std, standard error) per method, and the gap to hard
    sharing paired by repeat, absolute and relative to hard sharing's MSE."""
    lines = [
        "| correlation | method | repeats | test MSE, mean ± std (± s.e.) "
        "| hard − method (± s.e.) | (hard − method) / hard, % (± s.e.) | better in |",
        "|---|---|---|---|---|---|---|",
    ]
    for corr in args.correlations:
        mse, _ = per_repeat(Results(out_path(args, corr)))
        hard = mse.get("hard_sharing", {})
        for m, by_seed in mse.items():
            v = np.array(list(by_seed.values()))
            cell = f"{v.mean():.4f} ± {v.std():.4f} (± {_se(v):.4f})"
            common = sorted(set(hard) & set(by_seed))
            gap, rel, wins = "-", "-", "-"
            if m != "hard_sharing" and len(common) > 1:
                d = np.array([hard[s] - by_seed[s] for s in common])
                r = 100 * d / np.array([hard[s] for s in common])
                gap = f"{d.mean():+.4f} (± {_se(d):.4f})"
                rel = f"{r.mean():+.1f} (± {_se(r):.1f})"
                wins = f"{int((d > 0).sum())} / {len(d)}"
            lines.append(f"| {corr:g} | {m} | {len(v)} | {cell} | {gap} | {rel} | {wins} |")
    return "\n".join(lines)


def _se(v: np.ndarray) -> float:
    return float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")


def plot(args, path: str = PLOT) -> None:
    """Left: test-MSE reduction relative to hard sharing, paired by repeat (mean +- s.e.)
    against correlation; right: validation MSE per epoch averaged over repeats (the
    analogue of the paper's Fig. 4 curves)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.8))
    styles = {1.0: "-", 0.9: "--", 0.5: ":"}
    rel = defaultdict(dict)
    for corr in args.correlations:
        mse, curves = per_repeat(Results(out_path(args, corr)))
        hard = mse.get("hard_sharing", {})
        for m, by_seed in mse.items():
            common = sorted(set(hard) & set(by_seed))
            if m != "hard_sharing" and common:
                r = np.array([100 * (hard[s] - by_seed[s]) / hard[s] for s in common])
                rel[m][corr] = (r.mean(), _se(r) if len(r) > 1 else 0.0, len(r))
        for k, m in enumerate(("hard_sharing", "mmoe")):
            if curves.get(m):
                c = np.mean(curves[m], axis=0)
                bx.plot(
                    np.arange(1, len(c) + 1),
                    c,
                    styles.get(corr, "-"),
                    color=f"C{k}",
                    label=f"{m}, p={corr:g} ({len(curves[m])} runs)",
                )
    for k, m in enumerate(("mmoe", "cgc", "single_task"), start=1):
        if m in rel:
            cs = sorted(rel[m])
            n = min(rel[m][c][2] for c in cs)
            ax.errorbar(
                cs,
                [rel[m][c][0] for c in cs],
                [rel[m][c][1] for c in cs],
                marker="o",
                capsize=3,
                color=f"C{k}",
                label=f"{m} (>= {n} repeats)",
            )
    ax.axhline(0, color="C0", lw=1, label="hard_sharing")
    ax.set(
        xlabel="task correlation p",
        ylabel="test MSE reduction vs hard sharing (%)",
        title="selected epoch, paired by repeat, mean ± s.e.",
    )
    ax.invert_xaxis()
    ax.legend(fontsize=8)
    bx.set(
        xlabel="epoch",
        ylabel="validation MSE (mean of 2 tasks)",
        yscale="log",
        title="validation curves, mean over repeats",
    )
    bx.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print("wrote", path)


def main() -> None:
    p = parser(__doc__.splitlines()[0], "architectures_mmoe_synthetic")
    p.add_argument("--n-train", type=int, default=10_000)
    p.add_argument("--n-val", type=int, default=2_000)
    p.add_argument("--n-test", type=int, default=2_000)
    p.add_argument("--repeats", type=int, default=None, help="seeds 0..repeats-1 (data + model)")
    p.add_argument("--correlations", type=float, nargs="+", default=[1.0, 0.9, 0.5])
    p.add_argument("--plot-only", action="store_true", help="redraw table and PNG, no training")
    p.set_defaults(epochs=30, methods=["single_task", "hard_sharing", "mmoe"])
    args = p.parse_args()
    if args.repeats is not None:
        args.seeds = list(range(args.repeats))
    if not args.plot_only:
        # one repeat at a time across correlations, so that a stopped run is balanced
        for seed in args.seeds:
            for corr in args.correlations:
                run_correlation(argparse_copy(args, seeds=[seed]), corr)
    print(gap_table(args))
    plot(args)


def argparse_copy(args, **changes):
    import argparse

    return argparse.Namespace(**{**vars(args), **changes})


if __name__ == "__main__":
    main()
