"""Per-step cost of every balancer, relative to equal weighting and to torchjd.

Setup (the brief's): a shared MLP trunk 100 -> 256 -> 256 (ReLU), one linear head per task,
batch 256, regression (MSE), T = 2, 5, 10 tasks. A step is forward, task losses,
:func:`multitask.nn.mtl_backward` and ``zero_grad``. Every loss weighting of
``multitask.nn.weighting.WEIGHTINGS``, every aggregator of
``multitask.nn.aggregation.AGGREGATORS``, every linear aggregator on the representation
(``use_representation=True``, MGDA-UB style, suffix ``+ub``), and torchjd's
``mtl_backward`` + ``jac_to_grad`` with its own aggregator of the same name (prefix ``tjd:``)
where torchjd has one whose optional solver is installed. GradNorm also runs with each choice of
its ``W`` named: ``gradnorm_all`` (every shared parameter) and ``gradnorm_last`` (the last
shared layer, the paper's); ``gradnorm`` is its default.

Single-threaded CPU time (``time.process_time``), interleaved: each round runs ``--steps``
steps of every method in turn, and a method's time is the median over rounds of its mean step
time in the round. Ratios to ``equal`` (same T) are medians over rounds of the method's time
over that of ``--steps`` equal-weighting steps run right before it (paired: robust to the
background load changing within a round, which on a shared machine moves a ratio by 0.1-0.3
when the two are measured a round's length apart); ratios to another base (MGDA, for CAGrad and
Nash-MTL) are medians of the ratio within a round. ``tjd`` is ours / torchjd's (ratio of
medians). The goals printed next to the ratios are the brief's. Writes JSON (``--out``).

    OMP_NUM_THREADS=1 python benchmarks/balancer_speed.py --rounds 15 --out balancer_speed.json
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from multitask.nn import mtl_backward
from multitask.nn.aggregation import AGGREGATORS, NashMTL
from multitask.nn.architectures import HardSharing
from multitask.nn.weighting import WEIGHTINGS, GradNorm

TASK_COUNTS = (2, 5, 10)
PER_TASK_GRADIENT = {"mgda", "pcgrad", "upgrad", "gradvac", "imtl_g", "aligned_mtl", "graddrop"}
TORCHJD = {  # our name -> torchjd class name and keyword arguments
    "mean": ("Mean", {}),
    "sum": ("Sum", {}),
    "mgda": ("MGDA", {}),
    "pcgrad": ("PCGrad", {}),
    "upgrad": ("UPGrad", {}),
    "cagrad": ("CAGrad", {"c": 0.5}),
    "imtl_g": ("IMTLG", {}),
    "aligned_mtl": ("AlignedMTL", {}),
    "graddrop": ("GradDrop", {}),
    "gradvac": ("GradVac", {"beta": 0.01}),
    "nash_mtl": ("NashMTL", {"max_norm": 0.0}),
}


def build_model(n_tasks: int, seed: int = 0) -> HardSharing:
    torch.manual_seed(seed)
    trunk = nn.Sequential(nn.Linear(100, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU())
    heads = {f"t{i}": nn.Linear(256, 1) for i in range(n_tasks)}
    return HardSharing(trunk, heads)


def _losses(model, x, y) -> dict[str, torch.Tensor]:
    out = model(x)
    return {t: nn.functional.mse_loss(out[t][:, 0], y[:, i]) for i, t in enumerate(out)}


def our_step(model, balancer, use_rep: bool) -> Callable:
    def step(x, y):
        mtl_backward(_losses(model, x, y), model, balancer, use_representation=use_rep)
        model.zero_grad(set_to_none=True)

    return step


def torchjd_step(model, aggregator) -> Callable:
    from torchjd.autojac import jac_to_grad
    from torchjd.autojac import mtl_backward as tjd_mtl_backward

    shared = list(model.shared_parameters())

    def step(x, y):
        losses = list(_losses(model, x, y).values())
        tjd_mtl_backward(losses, features=model.representation)
        jac_to_grad(shared, aggregator)
        model.zero_grad(set_to_none=True)

    return step


def _torchjd_aggregator(name: str, n_tasks: int):
    """torchjd's aggregator of that name, or None when it or its solver is not installed."""
    if name not in TORCHJD:
        return None
    try:
        import torchjd.aggregation as tjd

        cls_name, kwargs = TORCHJD[name]
        kwargs = {"n_tasks": n_tasks, **kwargs} if cls_name == "NashMTL" else kwargs
        agg = getattr(tjd, cls_name)(**kwargs)
        agg(torch.randn(n_tasks, 8))  # fails here when quadprog / ecos are missing
        if hasattr(agg, "reset"):
            agg.reset()
        return agg
    except ImportError:
        return None


def methods(n_tasks: int, with_torchjd: bool) -> dict[str, tuple[Callable, str]]:
    """name -> (step function, group). Groups decide the goal."""
    out = {}
    for name, cls in WEIGHTINGS.items():
        bal = cls(torch.ones(n_tasks)) if name == "static" else cls(n_tasks)
        group = "per-task" if bal.needs_jacobian else "weighting"  # GradNorm, DB-MTL
        out[name] = (our_step(build_model(n_tasks), bal, False), group)
    for suffix, where in (("all", None), ("last", "last")):  # GradNorm's W: both choices
        bal = GradNorm(n_tasks, shared_params=where)
        out[f"gradnorm_{suffix}"] = (our_step(build_model(n_tasks), bal, False), "per-task")
    for name, cls in AGGREGATORS.items():
        agg = cls()
        group = "per-task" if name in PER_TASK_GRADIENT else name
        out[name] = (our_step(build_model(n_tasks), agg, False), group)
        if agg.linear:
            ub = NashMTL() if name == "nash_mtl" else cls()
            out[f"{name}+ub"] = (our_step(build_model(n_tasks), ub, True), "ub")
        if with_torchjd:
            tjd_agg = _torchjd_aggregator(name, n_tasks)
            if tjd_agg is not None:
                out[f"tjd:{name}"] = (torchjd_step(build_model(n_tasks), tjd_agg), "torchjd")
    return out


def measure(
    n_tasks: int, rounds: int, steps: int, with_torchjd: bool, only: list[str] | None = None
) -> tuple[dict[str, float], dict[str, str], dict[str, list[float]]]:
    """Median over rounds of the mean CPU seconds per step, every method interleaved.

    Also returns every round's time per method (for ratios taken within a round).
    """
    g = torch.Generator().manual_seed(n_tasks)
    x = torch.randn(256, 100, generator=g)
    y = torch.randn(256, n_tasks, generator=g)
    todo = methods(n_tasks, with_torchjd)
    if only:  # keep the baselines the ratios need
        keep = {"equal", "mgda", *only}
        todo = {k: v for k, v in todo.items() if k.removeprefix("tjd:").split("+")[0] in keep}
    for step, _ in todo.values():  # warm up
        for _ in range(3):
            step(x, y)
    times: dict[str, list[float]] = {name: [] for name in todo}
    paired: dict[str, list[float]] = {name: [] for name in todo}  # equal, right before
    equal = todo["equal"][0]
    for _ in range(rounds):
        for name, (step, _) in todo.items():
            paired[name].append(_step_time(equal, x, y, steps) if name != "equal" else 0.0)
            times[name].append(_step_time(step, x, y, steps))
    paired["equal"] = times["equal"]
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    return medians, {name: group for name, (_, group) in todo.items()}, times, paired


def _step_time(step: Callable, x, y, steps: int) -> float:
    """Mean CPU seconds of ``steps`` calls of ``step``."""
    start = time.process_time()
    for _ in range(steps):
        step(x, y)
    return (time.process_time() - start) / steps


def round_ratio(times: dict[str, list[float]], name: str, base: str | list[float]) -> float:
    """Median over rounds of ``time[name] / time[base]`` within the same round.

    ``base`` is a method's name or, for the paired equal-weighting times, the list itself.
    Within a round the two ran seconds apart, so a change of background load between rounds
    cancels out of the ratio (the ratio of the two medians does not have that property).
    """
    ref = times[base] if isinstance(base, str) else base
    return statistics.median(a / b for a, b in zip(times[name], ref, strict=True))


def goal(group: str, n_tasks: int) -> tuple[str, float] | None:
    """The brief's goal for a method: (what it is relative to, the bound)."""
    if group == "weighting":
        return ("equal", 1.1)
    if group == "per-task":
        return ("equal", 0.35 * n_tasks + 1)
    if group == "ub":
        return ("equal", 1.5)
    if group in ("cagrad", "nash_mtl"):
        return ("mgda", 1.1 if group == "cagrad" else 1.3)
    return None


def table(results: dict) -> str:
    lines = [
        f"{'method':<16}"
        + "".join(
            f"{'T=' + str(T) + ' ms':>10}{'x equal':>9}{'x tjd':>7}{'goal':>12}"
            for T in TASK_COUNTS
            if str(T) in results
        )
    ]
    names = list(next(iter(results.values()))["seconds"])
    for name in names:
        if name.startswith("tjd:"):
            continue
        row = f"{name:<16}"
        for T in TASK_COUNTS:
            r = results.get(str(T))
            if r is None:
                continue
            s = r["seconds"][name]
            tjd = r["seconds"].get(f"tjd:{name}")
            g = r["goals"].get(name)
            ok = "" if g is None else ("ok" if r["ratio_to_goal_base"][name] <= g[1] else "MISS")
            goal_s = "" if g is None else f"{g[1]:.2g}x{g[0][:4]} {ok}"
            row += f"{1e3 * s:>10.2f}{r['ratio_to_equal'][name]:>9.2f}"
            row += f"{(s / tjd if tjd else float('nan')):>7.2f}{goal_s:>12}"
        lines.append(row)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--tasks", type=int, nargs="+", default=list(TASK_COUNTS))
    parser.add_argument("--no-torchjd", action="store_true")
    parser.add_argument("--only", nargs="+", help="methods to time (with equal and mgda)")
    parser.add_argument("--out", default="balancer_speed.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {}
    for T in args.tasks:
        seconds, groups, times, paired = measure(
            T, args.rounds, args.steps, not args.no_torchjd, args.only
        )
        goals = {n: goal(grp, T) for n, grp in groups.items() if goal(grp, T)}
        to_equal = {n: round_ratio(times, n, paired[n]) for n in times}
        base = {
            n: to_equal[n] if goals[n][0] == "equal" else round_ratio(times, n, goals[n][0])
            for n in goals
        }
        results[str(T)] = {
            "seconds": seconds,
            "groups": groups,
            "goals": goals,
            "ratio_to_goal_base": base,
            "ratio_to_equal": to_equal,
            "round_seconds": times,
            "paired_equal_seconds": paired,
        }
    print(table(results))
    meta = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "rounds": args.rounds,
        "steps": args.steps,
        "clock": "process_time",
        "ratio_to_equal": "paired: equal-weighting steps run right before each method",
        "loadavg": os.getloadavg(),
    }
    with open(args.out, "w") as fh:
        json.dump({"meta": meta, "results": results}, fh, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
