"""Shared pieces of the architecture benchmarks: training loop, resumable results, summaries.

Every ``benchmarks/architectures_*.py`` script trains each (method, seed) once,
appends one JSON line per (method, seed, task, metric) to its results file and
skips the pairs already there, so an interrupted run resumes where it stopped.
Training is plain Adam on the sum of the task losses plus the architecture's
``regularization()``; the comparison is between architectures, not balancers.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from multitask.metrics import delta_m

LossFn = Callable[[Mapping[str, Tensor], Mapping[str, Tensor]], dict[str, Tensor]]


def parser(description: str, out: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--methods", nargs="+", default=None, help="subset of methods to run")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=f"benchmarks/results/{out}.jsonl")
    return p


class Results:
    """Append-only JSON-lines store; ``done(method, seed)`` makes runs resumable."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows = []
        if self.path.exists():
            self.rows = [json.loads(line) for line in self.path.read_text().splitlines() if line]

    def done(self, method: str, seed: int) -> bool:
        return any(r["method"] == method and r["seed"] == seed for r in self.rows)

    def add(self, rows: Iterable[dict]) -> None:
        rows = list(rows)
        with self.path.open("a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        self.rows += rows


def batches(x: Tensor, y: Mapping[str, Tensor], batch_size: int, gen: torch.Generator | None):
    n = len(x)
    order = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    for i in range(0, n, batch_size):
        idx = order[i : i + batch_size]
        yield x[idx], {k: v[idx] for k, v in y.items()}


def adam_epoch(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    x: Tensor,
    y: Mapping[str, Tensor],
    loss_fn: LossFn,
    batch_size: int,
    gen: torch.Generator,
) -> tuple[float, float]:
    """One epoch of ``opt`` on ``sum(losses) + model.regularization()`` in train mode.

    Returns ``(seconds, mean over batches of the summed task losses)``.
    """
    model.train()
    start, seen = time.perf_counter(), []
    for xb, yb in batches(x, y, batch_size, gen):
        task_sum = sum(loss_fn(model(xb), yb).values())
        total = task_sum + model.regularization()
        opt.zero_grad()
        total.backward()
        opt.step()
        seen.append(task_sum.detach())
    seconds = time.perf_counter() - start
    return seconds, float(torch.stack(seen).double().mean())


def train(
    model: nn.Module,
    x: Tensor,
    y: Mapping[str, Tensor],
    loss_fn: LossFn,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    on_epoch: Callable[[nn.Module, int], None] | None = None,
) -> float:
    """Adam on ``sum(losses) + model.regularization()``; returns the median seconds per epoch."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    times = []
    for epoch in range(epochs):
        times.append(adam_epoch(model, opt, x, y, loss_fn, batch_size, gen)[0])
        if on_epoch is not None:
            on_epoch(model, epoch)
            opt = torch.optim.Adam(model.parameters(), lr=lr)  # the callback may add parameters
    return float(np.median(times))


@torch.no_grad()
def predict(model: nn.Module, x: Tensor, batch_size: int = 1024) -> dict[str, Tensor]:
    model.eval()
    parts = defaultdict(list)
    for i in range(0, len(x), batch_size):
        for k, v in model(x[i : i + batch_size]).items():
            parts[k].append(v)
    return {k: torch.cat(v) for k, v in parts.items()}


def rows(dataset: str, method: str, seed: int, metrics: Mapping, sec_per_epoch: float, config):
    """One row per (task, metric), plus the time per epoch."""
    base = {"dataset": dataset, "method": method, "seed": seed, "config": config}
    out = [{**base, "task": t, "metric": m, "value": float(v)} for (t, m), v in metrics.items()]
    out.append({**base, "task": "*", "metric": "sec_per_epoch", "value": sec_per_epoch})
    return out


def summary(results: Results, baseline: str = "single_task", time_ref: str = "hard_sharing"):
    """Markdown table: mean +- std over seeds of each metric, delta_m (%) and relative time."""
    by = defaultdict(dict)  # (method, seed) -> {(task, metric): value}
    for r in results.rows:
        by[(r["method"], r["seed"])][(r["task"], r["metric"])] = r["value"]
    methods = list(dict.fromkeys(m for m, _ in by))
    keys = sorted({k for v in by.values() for k in v if k[1] != "sec_per_epoch"}, key=str)
    lines = [
        "| method | " + " | ".join(f"{t} {m}" for t, m in keys) + " | delta_m (%) | time/epoch |",
        "|---" * (len(keys) + 3) + "|",
    ]
    ref_time = np.mean(
        [v[("*", "sec_per_epoch")] for (m, _), v in by.items() if m == time_ref] or [np.nan]
    )
    for method in methods:
        seeds = sorted(s for m, s in by if m == method)
        cells = []
        for k in keys:
            vals = [by[(method, s)][k] for s in seeds if k in by[(method, s)]]
            cells.append(f"{np.mean(vals):.4f} ± {np.std(vals):.4f}" if vals else "-")
        deltas = [
            100
            * delta_m(
                {k: by[(method, s)][k] for k in keys}, {k: by[(baseline, s)][k] for k in keys}
            )
            for s in seeds
            if (baseline, s) in by and all(k in by[(method, s)] for k in keys)
        ]
        dm = f"{np.mean(deltas):+.2f} ± {np.std(deltas):.2f}" if deltas else "-"
        t = np.mean([by[(method, s)][("*", "sec_per_epoch")] for s in seeds])
        lines.append(
            f"| {method} ({len(seeds)} seeds) | "
            + " | ".join(cells)
            + f" | {dm} | {t / ref_time:.2f}x |"
        )
    return "\n".join(lines)


def run_seeds(
    args,
    methods: Mapping[str, Callable[[int], tuple]],
    results: Results,
    record: Callable[[str, int, tuple], list[dict]],
    default: Iterable[str] | None = None,
) -> None:
    """Run every chosen method (``args.methods``, else ``default``, else all) for every seed
    not yet in ``results``; ``record(name, seed, output)`` turns a method's output (metrics
    first) into the rows appended to ``results``, so a killed run resumes where it stopped."""
    torch.set_num_threads(args.threads)
    chosen = args.methods or list(default or methods)
    unknown = set(chosen) - set(methods)
    if unknown:
        raise SystemExit(f"unknown methods {sorted(unknown)}; choose from {list(methods)}")
    for seed in args.seeds:
        for name in chosen:
            if results.done(name, seed):
                continue
            torch.manual_seed(seed)
            start = time.perf_counter()
            out = methods[name](seed)
            results.add(record(name, seed, out))
            took = time.perf_counter() - start
            print(f"{name} seed={seed}: {dict(out[0])} ({took:.1f}s)", flush=True)


# --- validation-based model selection (added for the MMoE / Adult / School benchmarks) ---


def split_validation(x: Tensor, y: Mapping[str, Tensor], fraction: float, seed: int):
    """Random ``fraction`` of the rows held out for validation: ``(train, validation)`` pairs."""
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_val = round(fraction * len(x))
    va, tr = order[:n_val], order[n_val:]
    return (x[tr], {k: v[tr] for k, v in y.items()}), (x[va], {k: v[va] for k, v in y.items()})


def train_selected(
    model: nn.Module,
    x: Tensor,
    y: Mapping[str, Tensor],
    loss_fn: LossFn,
    validation: tuple[Tensor, Mapping[str, Tensor]],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    on_epoch: Callable[[nn.Module, int], None] | None = None,
) -> dict:
    """Adam as :func:`train`, keeping the weights of the epoch with the lowest validation loss.

    The validation loss is the sum over tasks of ``loss_fn`` on the whole
    validation set (no regulariser), evaluated after every epoch (after
    ``on_epoch``). At the end the model holds the best epoch's parameters and
    buffers. Returns ``{"sec_per_epoch", "best_epoch", "val_curve", "train_curve"}``
    (epochs counted from 1; curves hold one value per epoch: the summed
    validation loss, and the mean summed training loss over the epoch's batches).
    """
    xv, yv = validation
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    times, val_curve, train_curve = [], [], []
    best, best_state = float("inf"), None
    for epoch in range(epochs):
        seconds, train_loss = adam_epoch(model, opt, x, y, loss_fn, batch_size, gen)
        times.append(seconds)
        if on_epoch is not None:
            on_epoch(model, epoch)
        with torch.no_grad():
            val = float(sum(loss_fn(predict(model, xv), yv).values()))
        val_curve.append(val)
        train_curve.append(train_loss)
        if val < best:
            best = val
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best_epoch = epoch + 1
    model.load_state_dict(best_state)
    return {
        "sec_per_epoch": float(np.median(times)),
        "best_epoch": best_epoch,
        "val_curve": val_curve,
        "train_curve": train_curve,
    }


def summary_selected(results: Results, baseline: str = "single_task", time_ref="hard_sharing"):
    """:func:`summary` over the task metrics only (rows with task ``"*"`` are bookkeeping),
    plus the mean validation-selected epoch of each method."""
    kept = Results.__new__(Results)
    kept.path = results.path
    kept.rows = [r for r in results.rows if r["task"] != "*" or r["metric"] == "sec_per_epoch"]
    table = summary(kept, baseline, time_ref).splitlines()
    epochs = defaultdict(list)
    for r in results.rows:
        if r["metric"] == "best_epoch":
            epochs[r["method"]].append(r["value"])
    table[0] += " best epoch |"
    table[1] += "---|"
    for i, line in enumerate(table[2:], start=2):
        method = line.split("|")[1].strip().split(" (")[0]
        e = epochs.get(method)
        table[i] += f" {np.mean(e):.1f} |" if e else " - |"
    return "\n".join(table)


def selected_rows(dataset: str, method: str, seed: int, metrics: Mapping, info: Mapping, config):
    """:func:`rows` plus the selected epoch and the per-epoch curves (task ``"*"``)."""
    out = rows(dataset, method, seed, metrics, info["sec_per_epoch"], config)
    base = {"dataset": dataset, "method": method, "seed": seed, "config": config, "task": "*"}
    out.append({**base, "metric": "best_epoch", "value": info["best_epoch"]})
    for key in ("val_curve", "train_curve"):
        out.append({**base, "metric": key, "value": list(info[key])})
    return out


def merge_infos(infos: Iterable[Mapping]) -> dict:
    """One info for several separately trained networks (single-task baselines): summed
    times and curves, mean selected epoch."""
    infos = list(infos)
    return {
        "sec_per_epoch": float(sum(i["sec_per_epoch"] for i in infos)),
        "best_epoch": float(np.mean([i["best_epoch"] for i in infos])),
        "val_curve": np.sum([i["val_curve"] for i in infos], axis=0).tolist(),
        "train_curve": np.sum([i["train_curve"] for i in infos], axis=0).tolist(),
    }


def run_all_selected(args, methods: Mapping[str, Callable[[int], tuple]], results, dataset: str):
    """:func:`run_seeds` for methods returning ``(metrics, info)`` from :func:`train_selected`."""

    def record(name, seed, out):
        return selected_rows(dataset, name, seed, *out, vars(args))

    run_seeds(args, methods, results, record)
    print(summary_selected(results))
