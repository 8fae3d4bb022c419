"""MMoE's synthetic experiment: hard sharing vs OMoE vs MMoE as the task correlation drops.

Ma et al. (KDD 2018, Sec. 3.2 and Sec. 5.2, Fig. 4) generate two regression
tasks whose correlation is controlled (:func:`multitask.datasets.make_mmoe`)
and report that MMoE's advantage over a shared-bottom (hard sharing) model
grows as the correlation decreases (1.0, 0.9, 0.5), averaging 200 runs, each
with its own random data *and* model initialisation. Protocol here:

- repeat ``r`` (seed ``r``) draws a fresh data set, ``make_mmoe(n_train +
  n_val + n_test, seed=r)`` (task directions, sine parameters, inputs, noise;
  the inputs, directions and sine parameters of one seed are the same at every
  correlation, so repeats are paired across correlations *and* models), and
  initialises each model with ``torch.manual_seed(r)``;
- the ``R`` repeats of one (correlation, model, learning rate) are trained *at
  once*: ``_vmap_train.fit_selected`` stacks the ``R`` copies of the library's
  architecture and runs ``vmap`` over them, each copy on its own data and
  minibatch order (seed ``r``), one Adam over the stack (= ``R`` independent
  Adams); repeats are processed in blocks of ``--block`` to bound memory;
- Adam, batch 128; each copy keeps the epoch of lowest validation loss (sum
  of the two MSEs) and is scored on its own test rows; the per-step training
  loss (the paper's Fig. 4 quantity), the per-epoch training and validation
  curves of every repeat are kept;
- the paper's parameter budget: MMoE 8 experts, each one ReLU layer of 16
  units, towers one ReLU layer of 8 units (100 x 16 x 8 + 16 x 8 x 2 = 13,056
  weights); the shared bottom one ReLU layer of 113 units with the same towers
  (113 x (100 + 8 x 2) = 13,108 weights); OMoE is the same MMoE with one gate
  shared by both tasks (the library's ``MMoE`` with ``gates["task2"]`` tied to
  ``gates["task1"]``); gates (100 x 8 each) come on top, as in the paper.

Learning rate: the paper grid-searches {1e-4, 1e-3, 1e-2}. The full grid at
200 repeats is beyond this machine's CPU budget, so the rate of each model is
chosen on a *pilot* (other seeds, ``--seed-offset 1000``, fewer repeats), by
the mean over pilot repeats of the best validation loss; see
``docs/architectures.md`` for the exact runs.

Run (the runs reported in docs/architectures.md)::

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/architectures_mmoe_synthetic.py \
        --pilot --seed-offset 1000 --repeats 10 --block 10 --epochs 12 \
        --correlations 1.0 0.5 --lrs 1e-4 1e-3 1e-2 > mmoe_pilot.log 2>&1
    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/architectures_mmoe_synthetic.py \
        --repeats 200 --block 100 --epochs 15 --lrs 1e-2 > mmoe.log 2>&1

(about 70 min of one loaded core for the second; ``--models`` / ``--correlations``
restrict a run, ``--lr-of mmoe=1e-3`` sets one model's rate).

Every finished (block, correlation, model, lr) chunk is one JSON line of
``benchmarks/results/architectures_mmoe_synthetic[_pilot].jsonl``; a rerun
skips the chunks already there. The tables and
``docs/img/architectures_mmoe_synthetic.png`` are made from that file only
(``--plot-only`` redraws them without training).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).parent))

from _vmap_train import evaluate, fit_selected
from multitask.datasets import make_mmoe
from multitask.nn.architectures import HardSharing, MMoE

TASKS = ("task1", "task2")
D = 100
SHARED_BOTTOM = 113  # 13,056 / (100 + 8 x 2), the paper's matched budget
MODELS = ("hard_sharing", "omoe", "mmoe")
OUT = "benchmarks/results/architectures_mmoe_synthetic.jsonl"
PLOT = "docs/img/architectures_mmoe_synthetic.png"


def mlp(i: int, o: int) -> nn.Module:
    return nn.Sequential(nn.Linear(i, o), nn.ReLU())


def tower(width: int) -> nn.Module:
    return nn.Sequential(nn.Linear(width, 8), nn.ReLU(), nn.Linear(8, 1))


def build(name: str) -> nn.Module:
    """One model of the paper's budget: ``hard_sharing``, ``omoe`` or ``mmoe``."""
    if name == "hard_sharing":
        return HardSharing(mlp(D, SHARED_BOTTOM), {t: tower(SHARED_BOTTOM) for t in TASKS})
    if name in ("mmoe", "omoe"):
        model = MMoE([mlp(D, 16) for _ in range(8)], {t: tower(16) for t in TASKS}, D)
        if name == "omoe":  # one gate for both tasks (Ma et al. Eq. 5): tie the second to the first
            model.gates[TASKS[1]] = model.gates[TASKS[0]]
        return model
    raise KeyError(f"unknown model {name!r}; choose from {MODELS}")


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


def stacked_data(sizes, correlation: float, seeds):
    """:func:`data` of every seed, stacked: three pairs ``(X (R, n, D), {task: (R, n)})``."""
    per_seed = [data(sizes, correlation, s) for s in seeds]
    out = []
    for part in range(3):
        xs = torch.stack([p[part][0] for p in per_seed])
        ys = {t: torch.stack([p[part][1][t] for p in per_seed]) for t in TASKS}
        out.append((xs, ys))
    return out


def rounded(a, digits: int = 6) -> list:
    return [float(f"{v:.{digits}g}") for v in np.asarray(a, dtype=float).ravel()]


def run_chunk(args, corr: float, name: str, lr: float, seeds: list[int], bar=None) -> dict:
    """Train the repeats ``seeds`` of one (correlation, model, lr) at once; one JSON row."""
    start = time.perf_counter()
    train, val, test = stacked_data((args.n_train, args.n_val, args.n_test), corr, seeds)
    models = []
    for s in seeds:
        torch.manual_seed(s)
        models.append(build(name))
    model, info = fit_selected(
        models,
        train,
        val,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=lr,
        seeds=seeds,
        on_epoch=(lambda e: bar.set_postfix(epoch=e + 1)) if bar is not None else None,
    )
    test_mse = evaluate(model, test)
    return {
        "correlation": corr,
        "model": name,
        "lr": lr,
        "seeds": list(seeds),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "sizes": [args.n_train, args.n_val, args.n_test],
        "test_mse": {t: rounded(v) for t, v in test_mse.items()},
        "best_epoch": info["best_epoch"].tolist(),
        "train_curve": [rounded(c) for c in info["train_curve"].T],  # R x epochs
        "val_curve": [rounded(c) for c in info["val_curve"].T],
        "step_loss_mean": rounded(info["step_loss"].double().mean(dim=1)),
        "sec_per_epoch": info["sec_per_epoch"],
        "wall_s": time.perf_counter() - start,
        "threads": torch.get_num_threads(),
    }


def load(path: str) -> list[dict]:
    p = Path(path)
    return [json.loads(line) for line in p.read_text().splitlines() if line] if p.exists() else []


def chunks(args) -> list[tuple]:
    """``(seeds, correlation, model, lr)`` in run order: block by block, so that a stopped
    run holds whole blocks of paired repeats."""
    seeds = list(range(args.seed_offset, args.seed_offset + args.repeats))
    blocks = [seeds[i : i + args.block] for i in range(0, len(seeds), args.block)]
    out = []
    for block in blocks:
        for corr in args.correlations:
            for name in args.models:
                for lr in args.lr_of.get(name, args.lrs):
                    out.append((block, corr, name, lr))
    return out


def run(args) -> None:
    from tqdm import tqdm

    torch.set_num_threads(args.threads)
    done = {(r["correlation"], r["model"], r["lr"], r["seeds"][0]) for r in load(args.out)}
    todo = [c for c in chunks(args) if (c[1], c[2], c[3], c[0][0]) not in done]
    bar = tqdm(todo, desc="chunks", file=sys.stdout, mininterval=30)
    for seeds, corr, name, lr in bar:
        bar.set_description(f"p={corr:g} {name} lr={lr:g} seeds {seeds[0]}-{seeds[-1]}")
        row = run_chunk(args, corr, name, lr, seeds, bar)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")
        mse = np.mean([np.mean(v) for v in row["test_mse"].values()])
        print(f"  done: test MSE {mse:.4f}, {row['wall_s']:.0f}s", flush=True)


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=200, help="seeds offset..offset+repeats-1")
    p.add_argument("--seed-offset", type=int, default=0)
    p.add_argument("--block", type=int, default=100, help="repeats trained at once")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lrs", type=float, nargs="+", default=[1e-3])
    p.add_argument("--lr-of", nargs="*", default=[], help="per-model learning rate, e.g. mmoe=1e-2")
    p.add_argument("--correlations", type=float, nargs="+", default=[1.0, 0.9, 0.5])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--n-train", type=int, default=10_000)
    p.add_argument("--n-val", type=int, default=5_000)
    p.add_argument("--n-test", type=int, default=10_000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--pilot", action="store_true", help="write to the _pilot results file")
    p.add_argument("--out", default=None)
    p.add_argument("--plot-only", action="store_true", help="tables and PNG only, no training")
    args = p.parse_args(argv)
    args.lr_of = {k: [float(v)] for k, v in (s.split("=") for s in args.lr_of)}
    if args.out is None:
        args.out = OUT.replace(".jsonl", "_pilot.jsonl") if args.pilot else OUT
    return args


def main(argv=None) -> None:
    args = parse(argv)
    if not args.plot_only:
        run(args)
    report(load(args.out), None if args.pilot else PLOT)


# --- tables and figure (from the JSON lines only) ---


def merged(rows: list[dict]) -> dict:
    """``{(correlation, model, lr): per-repeat arrays}`` with the blocks of one key joined
    (ordered by seed): ``seeds``, ``test`` (mean of the two tasks' test MSE),
    ``train_curve`` / ``val_curve`` (R, epochs, per-task means), ``best_epoch``,
    ``step_loss`` (mean over repeats per step, per-task mean), ``wall_s``."""
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["correlation"], r["model"], r["lr"]), []).append(r)
    out = {}
    for key, rs in groups.items():
        rs = sorted(rs, key=lambda r: r["seeds"][0])
        n = np.array([len(r["seeds"]) for r in rs], dtype=float)
        out[key] = {
            "seeds": np.concatenate([r["seeds"] for r in rs]),
            "test": np.concatenate([np.mean(list(r["test_mse"].values()), axis=0) for r in rs]),
            "train_curve": np.concatenate([r["train_curve"] for r in rs]) / len(TASKS),
            "val_curve": np.concatenate([r["val_curve"] for r in rs]) / len(TASKS),
            "best_epoch": np.concatenate([r["best_epoch"] for r in rs]),
            "step_loss": np.average([r["step_loss_mean"] for r in rs], axis=0, weights=n)
            / len(TASKS),
            "wall_s": sum(r["wall_s"] for r in rs),
            "epochs": rs[0]["epochs"],
        }
    return out


def selected(runs: dict) -> dict:
    """``{(correlation, model): run}`` at the learning rate of lowest mean best validation
    loss (when a key was run at several rates)."""
    best: dict = {}
    for (corr, model, lr), run in runs.items():
        score = run["val_curve"].min(axis=1).mean()
        if (corr, model) not in best or score < best[(corr, model)][0]:
            best[(corr, model)] = (score, {**run, "lr": lr})
    return {k: v[1] for k, v in best.items()}


def _se(v) -> float:
    v = np.asarray(v, dtype=float)
    return float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")


def _paired(a: dict, b: dict, what) -> np.ndarray:
    """``what(a) - what(b)`` per repeat, over the seeds both hold."""
    common, ia, ib = np.intersect1d(a["seeds"], b["seeds"], return_indices=True)
    return what(a)[ia] - what(b)[ib], common


def seeds_of(a: dict, b: dict) -> np.ndarray:
    return np.intersect1d(a["seeds"], b["seeds"])


def _test(run):
    return run["test"]


def _final_train(run):
    return run["train_curve"][:, -1]


def lr_table(runs: dict) -> str:
    lines = [
        "| correlation | model | lr | repeats | best validation MSE, mean (± s.e.) "
        "| final-epoch training loss | best epoch |",
        "|---|---|---|---|---|---|---|",
    ]
    for (corr, model, lr), run in sorted(runs.items(), key=lambda kv: (-kv[0][0], kv[0][1:])):
        v = run["val_curve"].min(axis=1)
        lines.append(
            f"| {corr:g} | {model} | {lr:g} | {len(v)} | {v.mean():.4f} (± {_se(v):.4f}) "
            f"| {_final_train(run).mean():.4f} | {run['best_epoch'].mean():.1f} |"
        )
    return "\n".join(lines)


def model_table(sel: dict) -> str:
    lines = [
        "| correlation | model | lr | repeats | test MSE, mean (± s.e.) | median "
        "| final-epoch training loss (± s.e.) | best epoch | runs stuck (best epoch ≤ 3) "
        "| wall time |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (corr, model), run in sorted(sel.items(), key=lambda kv: (-kv[0][0], kv[0][1])):
        t, f = run["test"], _final_train(run)
        lines.append(
            f"| {corr:g} | {model} | {run['lr']:g} | {len(t)} | {t.mean():.4f} (± {_se(t):.4f}) "
            f"| {np.median(t):.4f} | {f.mean():.4f} (± {_se(f):.4f}) "
            f"| {run['best_epoch'].mean():.1f} | {int((run['best_epoch'] <= 3).sum())} "
            f"| {run['wall_s'] / 60:.0f} min |"
        )
    return "\n".join(lines)


PAIRS = (("hard_sharing", "mmoe"), ("hard_sharing", "omoe"), ("omoe", "mmoe"))


def _gap(ra: dict, rb: dict, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-repeat gap ``a - b`` and its seeds: ``test`` (MSE), ``rel`` (test, % of a's
    MSE) or ``train`` (final-epoch training loss)."""
    if kind == "train":
        return _paired(ra, rb, _final_train)
    d, seeds = _paired(ra, rb, _test)
    if kind == "rel":
        _, _, ia = np.intersect1d(seeds, ra["seeds"], return_indices=True)
        d = 100 * d / ra["test"][ia]
    return d, seeds


def gap_table(sel: dict) -> str:
    """Markdown: gaps ``a - b`` paired by repeat (test MSE, relative test MSE, final
    training loss) and their growth from the largest correlation, paired by repeat too."""
    corrs = sorted({c for c, _ in sel}, reverse=True)
    lines = [
        "| gap a − b | p | repeats | b better in | test MSE gap (± s.e.) | growth from p = "
        f"{corrs[0]:g} | relative gap, % of a | growth (points) | training-loss gap "
        "| growth | median test gap | median growth |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for a, b in PAIRS:
        if not all((c, m) in sel for c in corrs for m in (a, b)):
            continue
        base = {
            k: _gap(sel[(corrs[0], a)], sel[(corrs[0], b)], k) for k in ("test", "rel", "train")
        }
        for corr in corrs:
            cells = []
            for kind, fmt in (("test", "+.4f"), ("rel", "+.1f"), ("train", "+.4f")):
                d, seeds = _gap(sel[(corr, a)], sel[(corr, b)], kind)
                d0, s0 = base[kind]
                _, i, j = np.intersect1d(seeds, s0, return_indices=True)
                g = d[i] - d0[j]
                cells.append(f"{d.mean():{fmt}} (± {_se(d):{fmt[1:]}})")
                cells.append(
                    "-" if corr == corrs[0] else f"{g.mean():{fmt}} (± {_se(g):{fmt[1:]}})"
                )
                if kind == "test":
                    wins = f"{int((d > 0).sum())} / {len(d)}"
                    medians = f"{np.median(d):+.4f} | " + (
                        "-" if corr == corrs[0] else f"{np.median(g):+.4f}"
                    )
            lines.append(
                f"| {a} − {b} | {corr:g} | {len(d)} | {wins} | "
                + " | ".join(cells)
                + f" | {medians} |"
            )
    return "\n".join(lines)


def growth_tests(sel: dict) -> str:
    """Markdown: distribution-free checks of the growth of each gap from the largest to the
    smallest correlation (paired by repeat): share of repeats where it grows, and the
    two-sided Wilcoxon signed-rank p-value, for the absolute and the relative test gap."""
    from scipy.stats import wilcoxon

    corrs = sorted({c for c, _ in sel}, reverse=True)
    hi, lo = corrs[0], corrs[-1]
    lines = [
        f"| gap a − b | growth p = {hi:g} → {lo:g} of | repeats | grows in | median | Wilcoxon p |",
        "|---|---|---|---|---|---|",
    ]
    for a, b in PAIRS:
        if not all((c, m) in sel for c in (hi, lo) for m in (a, b)):
            continue
        for kind in ("test", "rel"):
            d1, s1 = _gap(sel[(hi, a)], sel[(hi, b)], kind)
            d0, s0 = _gap(sel[(lo, a)], sel[(lo, b)], kind)
            _, i, j = np.intersect1d(s1, s0, return_indices=True)
            g = d0[j] - d1[i]
            what = "absolute test gap" if kind == "test" else "relative test gap (points)"
            lines.append(
                f"| {a} − {b} | {what} | {len(g)} | {int((g > 0).sum())} / {len(g)} "
                f"| {np.median(g):+.4g} | {wilcoxon(g).pvalue:.2g} |"
            )
    return "\n".join(lines)


def degradation_table(sel: dict) -> str:
    """Markdown: each model's loss at correlation p minus its loss at the largest
    correlation, paired by repeat (test MSE and final training loss): how much a model
    suffers from less related tasks, the spread the paper compares across models."""
    corrs = sorted({c for c, _ in sel}, reverse=True)
    lines = [
        f"| model | correlation | test MSE − test MSE at p = {corrs[0]:g} (± s.e.) "
        "| relative, % (± s.e.) | training loss − training loss at p = 1 (± s.e.) |",
        "|---|---|---|---|---|",
    ]
    for m in MODELS:
        if (corrs[0], m) not in sel:
            continue
        ref = sel[(corrs[0], m)]
        for corr in corrs[1:]:
            if (corr, m) not in sel:
                continue
            d, seeds = _paired(sel[(corr, m)], ref, _test)
            _, _, i = np.intersect1d(seeds, ref["seeds"], return_indices=True)
            rel = 100 * d / ref["test"][i]
            dt, _ = _paired(sel[(corr, m)], ref, _final_train)
            lines.append(
                f"| {m} | {corr:g} | {d.mean():+.4f} (± {_se(d):.4f}) "
                f"| {rel.mean():+.1f} (± {_se(rel):.1f}) | {dt.mean():+.4f} (± {_se(dt):.4f}) |"
            )
    return "\n".join(lines)


def generator_stats(seed: int, corr: float, n: int = 4000) -> tuple[float, float]:
    """Of one repeat's generator: the Pearson correlation of the two *labels* (not of their
    linear parts, which is ``corr``) and the share of label variance (R²) that the linear
    part explains (mean over the two tasks; low means strongly nonlinear tasks)."""
    X, Y, truth = make_mmoe(n, D, corr, seed=int(seed), return_truth=True)
    Z = X @ truth["W"]
    r2 = np.mean([np.corrcoef(Z[:, k], Y[:, k])[0, 1] ** 2 for k in range(2)])
    return float(np.corrcoef(Y.T)[0, 1]), float(r2)


def label_correlations(seeds, corrs, n: int = 4000) -> str:
    """Markdown: :func:`generator_stats` over the repeats, per correlation."""
    lines = [
        "| p | label correlation, mean (5 %-95 % over repeats) | R² of the linear part |",
        "|---|---|---|",
    ]
    for corr in corrs:
        rho, r2 = np.array([generator_stats(s, corr, n) for s in seeds]).T
        q = np.percentile(rho, [5, 95])
        lines.append(
            f"| {corr:g} | {np.mean(rho):.2f} ({q[0]:.2f} to {q[1]:.2f}) | {np.mean(r2):.2f} |"
        )
    return "\n".join(lines)


def growth_by_nonlinearity(sel: dict, a="hard_sharing", b="mmoe", groups: int = 3) -> str:
    """Markdown: the growth of the test gap ``a - b`` from the largest to the smallest
    correlation, paired by repeat, in groups of repeats by how nonlinear their tasks are
    (R² of the linear part, :func:`generator_stats`): each repeat draws its own sine
    parameters, so this asks whether the trend appears for some draws and not others."""
    corrs = sorted({c for c, _ in sel}, reverse=True)
    hi, lo = corrs[0], corrs[-1]
    d_hi, s_hi = _paired(sel[(hi, a)], sel[(hi, b)], _test)
    d_lo, s_lo = _paired(sel[(lo, a)], sel[(lo, b)], _test)
    seeds, i, j = np.intersect1d(s_hi, s_lo, return_indices=True)
    growth = d_lo[j] - d_hi[i]
    r2 = np.array([generator_stats(s, hi)[1] for s in seeds])
    edges = np.quantile(r2, np.linspace(0, 1, groups + 1))
    lines = [
        f"| R² of the linear part | repeats | gap {a} − {b} at p = {hi:g} | at p = {lo:g} "
        "| growth (± s.e.) |",
        "|---|---|---|---|---|",
    ]
    for k in range(groups):
        m = (r2 >= edges[k]) & ((r2 < edges[k + 1]) | (k == groups - 1))
        lines.append(
            f"| {edges[k]:.2f} to {edges[k + 1]:.2f} | {m.sum()} | {d_hi[i][m].mean():+.4f} "
            f"| {d_lo[j][m].mean():+.4f} | {growth[m].mean():+.4f} (± {_se(growth[m]):.4f}) |"
        )
    rho = np.corrcoef(r2, growth)[0, 1]
    lines.append(f"\nPearson correlation of growth and R² over repeats: {rho:+.2f}")
    return "\n".join(lines)


def report(rows: list[dict], plot_path: str | None) -> None:
    if not rows:
        print("no results yet")
        return
    runs = merged(rows)
    print(lr_table(runs), "\n")
    sel = selected(runs)
    print(model_table(sel), "\n")
    print(gap_table(sel), "\n")
    print(degradation_table(sel), "\n")
    print(growth_tests(sel), "\n")
    if plot_path is not None:
        seeds = next(iter(sel.values()))["seeds"]
        print(label_correlations(seeds, sorted({c for c, _ in sel}, reverse=True)), "\n")
        print(growth_by_nonlinearity(sel), "\n")
        plot(sel, plot_path)


def plot(sel: dict, path: str) -> None:
    """Per correlation, the mean training loss over steps of each model (the paper's Fig. 4,
    moving average over 20 steps); last panel, the relative test-MSE gaps of the model pairs
    against correlation (paired by run, mean +- s.e.)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    corrs = sorted({c for c, _ in sel}, reverse=True)
    fig, axes = plt.subplots(1, len(corrs) + 1, figsize=(3.6 * (len(corrs) + 1), 3.6))
    colors = {"hard_sharing": "C0", "omoe": "C2", "mmoe": "C1"}
    for ax, corr in zip(axes, corrs, strict=False):
        for m in MODELS:
            if (corr, m) in sel:
                run = sel[(corr, m)]
                c = np.convolve(run["step_loss"], np.ones(20) / 20, mode="valid")
                ax.plot(
                    np.arange(20, len(c) + 20),
                    c,
                    color=colors[m],
                    label=f"{m} (lr {run['lr']:g}, {len(run['seeds'])} runs)",
                )
        ax.set(title=f"correlation {corr:g}", xlabel="training step", yscale="log")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("training loss (per-task MSE), mean over runs")
    ax = axes[-1]
    styles = {"hard_sharing": "-o", "omoe": "--s"}
    for a, b in PAIRS:
        if not all((c, m) in sel for c in corrs for m in (a, b)):
            continue
        pts = [(c, _gap(sel[(c, a)], sel[(c, b)], "rel")[0]) for c in corrs]
        ax.errorbar(
            corrs,
            [d.mean() for _, d in pts],
            [_se(d) for _, d in pts],
            fmt=styles[a],
            capsize=3,
            color={"mmoe": "C1", "omoe": "C2"}[b] if a == "hard_sharing" else "C3",
            label=f"{a} − {b} ({min(len(d) for _, d in pts)} runs)",
        )
    ax.axhline(0, color="grey", lw=0.8)
    ax.invert_xaxis()
    ax.set(
        xlabel="task correlation p",
        ylabel="(a − b) / a, test MSE, % (mean ± s.e.)",
        title="relative gap, paired by run",
    )
    ax.legend(fontsize=6)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print("wrote", path)


if __name__ == "__main__":
    main()
