"""Every balancer on Adult (income > 50K, never-married): AUC per task and delta_m.

Protocol: the published train/test split; validation is a fixed 20% carved from
train (the same for every run); features are one-hot categoricals plus
standardised numerics (log1p for capital gain/loss); the model is a small
hard-sharing MLP (trunk d -> 64 -> 32, one linear head per task); Adam,
lr 1e-3, batch 256, at most ``--epochs`` epochs, the epoch with the best
validation delta (mean relative AUC change) is restored. Single-task baselines
are the same network with one head, trained alone. ``delta_m`` (Maninis et al.
2019, eq. 5) compares each method with the single-task AUCs of the same seed.

Rows are JSON lines ``{dataset, method, seed, task, metric, value, config_hash}``
appended to ``--out``; finished (method, seed) pairs are skipped on a rerun, so
the script resumes. ``--report`` writes the markdown table from the rows.

    OMP_NUM_THREADS=1 python benchmarks/adult_balancers.py --report docs/results_adult.md
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from multitask.datasets import load
from multitask.metrics import delta_m
from multitask.nn import Task
from multitask.nn.aggregation import AGGREGATORS
from multitask.nn.architectures import HardSharing
from multitask.nn.weighting import WEIGHTINGS
from multitask.training import Trainer

TASKS = ("income", "never_married")
CONFIG = {"hidden": (64, 32), "lr": 1e-3, "batch_size": 256, "val_fraction": 0.2}


class _Batches(Dataset):
    """Tensors indexed a whole batch at a time (``__getitems__``: no per-row collate)."""

    def __init__(self, x, ys):
        self.x, self.ys = x, ys

    def __len__(self):
        return len(self.x)

    def __getitems__(self, idx):
        idx = torch.as_tensor(idx)
        return self.x[idx], {t: y[idx] for t, y in self.ys.items()}


def _identity(batch):
    return batch


def _loader(x, ys, shuffle, batch_size):
    return DataLoader(_Batches(x, ys), batch_size=batch_size, shuffle=shuffle, collate_fn=_identity)


def adult_tensors():
    """One-hot design and targets, with train / val / test row indices."""
    data = load("adult")
    X = data.X.copy()
    train = np.flatnonzero(data.split == "train")
    test = np.flatnonzero(data.split == "test")
    rng = np.random.default_rng(0)  # one carve for every run
    perm = rng.permutation(train)
    n_val = int(CONFIG["val_fraction"] * len(train))
    val, train = perm[:n_val], perm[n_val:]
    for c in ("capital_gain", "capital_loss"):
        X[c] = np.log1p(X[c])
    num = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
    mu, sd = X[num].iloc[train].mean(), X[num].iloc[train].std()
    X[num] = (X[num] - mu) / sd
    X = pd.get_dummies(X, dtype=np.float32).fillna(0.0)
    x = torch.tensor(X.to_numpy(np.float32))
    ys = {t: torch.tensor(data.targets[t], dtype=torch.float32) for t in TASKS}
    return x, ys, {"train": train, "val": val, "test": test}


def build_balancer(name: str):
    """Every balancer with its defaults (static: the equal weights 1, 1)."""
    if name in ("single_task", "none"):
        return None
    if name == "static":
        return WEIGHTINGS["static"](torch.ones(len(TASKS)))
    if name in WEIGHTINGS:
        return WEIGHTINGS[name](len(TASKS))
    return AGGREGATORS[name]()


def _model(n_features, names, seed):
    torch.manual_seed(seed)
    h1, h2 = CONFIG["hidden"]
    trunk = nn.Sequential(nn.Linear(n_features, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU())
    heads = {t: nn.Sequential(nn.Linear(h2, 1), nn.Flatten(0)) for t in names}
    return HardSharing(trunk, heads)


def train_eval(x, ys, idx, names, balancer, seed, epochs):
    """Fit on train, select on val, return test AUC per task."""
    sub = {t: ys[t] for t in names}
    bs = CONFIG["batch_size"]

    def part(key, shuffle, batch):
        i = torch.as_tensor(idx[key])
        return _loader(x[i], {t: y[i] for t, y in sub.items()}, shuffle, batch)

    tasks = [Task(t, "binary", metrics=["auc"]) for t in names]
    trainer = Trainer(
        _model(x.shape[1], names, seed), tasks, balancer, lr=CONFIG["lr"], max_epochs=epochs,
        early_stopping=3, seed=seed, device="cpu", progress=False,
    )  # fmt: skip
    trainer.fit(part("train", True, bs), part("val", False, 8192))
    return {t: m["auc"] for t, m in trainer.evaluate(part("test", False, 8192)).items()}


def _config_hash(method, epochs):
    blob = json.dumps({"method": method, "epochs": epochs, **CONFIG}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _done(out: Path) -> set[tuple[str, int, str]]:
    if not out.is_file():
        return set()
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    return {(r["method"], r["seed"], r["config_hash"]) for r in rows}


def run(methods, seeds, epochs, out: Path) -> None:
    """Train every (method, seed) not yet in ``out``; append its rows."""
    x, ys, idx = adult_tensors()
    done = _done(out)
    for seed in seeds:
        for method in methods:
            h = _config_hash(method, epochs)
            if (method, seed, h) in done:
                continue
            t0, c0 = time.perf_counter(), time.process_time()
            if method == "single_task":
                auc = {}
                for t in TASKS:
                    auc.update(train_eval(x, ys, idx, [t], None, seed, epochs))
            else:
                auc = train_eval(x, ys, idx, list(TASKS), build_balancer(method), seed, epochs)
            secs, cpu = time.perf_counter() - t0, time.process_time() - c0
            rows = [
                {"dataset": "adult", "method": method, "seed": seed, "task": t, "metric": "auc",
                 "value": v, "config_hash": h, "seconds": secs, "cpu_seconds": cpu}
                for t, v in auc.items()
            ]  # fmt: skip
            with out.open("a") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows)
            print(f"{method:>14s} seed {seed}: " + ", ".join(f"{t} {v:.4f}" for t, v in auc.items())
                  + f"  ({secs:.1f} s, {cpu:.1f} s CPU)", flush=True)  # fmt: skip


def report(out: Path) -> str:
    """Markdown table: mean (sample std, ddof=1) AUC per task, delta_m vs single-task, CPU
    seconds per run."""
    df = pd.DataFrame([json.loads(line) for line in out.read_text().splitlines() if line.strip()])
    df = df.drop_duplicates(["method", "seed", "task"], keep="last")
    auc = df.pivot_table(index=["method", "seed"], columns="task", values="value")
    secs = df.groupby("method")["cpu_seconds"].mean()
    stl = auc.loc["single_task"]
    rows = []
    for method in auc.index.get_level_values(0).unique():
        per_seed = auc.loc[method]
        deltas = [
            delta_m({(t, "auc"): per_seed.loc[s, t] for t in TASKS},
                    {(t, "auc"): stl.loc[s, t] for t in TASKS})
            for s in per_seed.index if s in stl.index
        ]  # fmt: skip
        rows.append((method, per_seed, np.array(deltas), secs[method]))
    rows.sort(key=lambda r: -r[2].mean())
    lines = [
        "| method | income AUC | never-married AUC | delta_m (%) | seeds | CPU s / run |",
        "|---|---|---|---|---|---|",
    ]
    for method, per_seed, d, s in rows:
        cells = [f"{per_seed[t].mean():.4f} ({per_seed[t].std(ddof=1):.4f})" for t in TASKS]
        dm = f"{100 * d.mean():+.2f} ({100 * d.std(ddof=1):.2f})"
        lines.append(f"| {method} | {cells[0]} | {cells[1]} | {dm} | {len(per_seed)} | {s:.1f} |")
    return "\n".join(lines)


BEGIN, END = "<!-- table: begin -->", "<!-- table: end -->"


def write_report(path: Path, table: str) -> None:
    """Put ``table`` between the markers of an existing document, else write it alone."""
    text = path.read_text() if path.is_file() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = f"{head}{BEGIN}\n{table}\n{END}{rest.split(END, 1)[1]}"
    else:
        text = f"{BEGIN}\n{table}\n{END}\n"
    path.write_text(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--methods", nargs="*", default=None, help="default: every balancer")
    p.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--out", type=Path, default=Path("adult_balancers.jsonl"))
    p.add_argument("--report", type=Path, default=None, help="write the markdown table here")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("MULTITASK_DATA", str(Path(__file__).parents[2] / "shared" / "datasets"))
    methods = args.methods or ["single_task", *WEIGHTINGS, *AGGREGATORS]
    run(methods, args.seeds, args.epochs, args.out)
    table = report(args.out)
    print(table)
    if args.report is not None:
        write_report(args.report, table)


if __name__ == "__main__":
    main()
