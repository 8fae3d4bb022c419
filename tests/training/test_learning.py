"""Hard sharing learns: it reaches the single-task baselines (MMoE synthetic, Adult subset)."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from multitask.datasets import load
from multitask.datasets.synthetic import make_mmoe
from multitask.nn import Task
from multitask.nn.architectures import HardSharing
from multitask.training import Trainer


def _loader(x, ys, batch_size=64, shuffle=False):
    names = list(ys)
    ds = TensorDataset(x, *(ys[t] for t in names))

    def collate(items):
        cols = list(zip(*items, strict=True))
        targets = {t: torch.stack(c) for t, c in zip(names, cols[1:], strict=True)}
        return torch.stack(cols[0]), targets

    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, collate_fn=collate)


def _model(n_features, names, hidden=32):
    torch.manual_seed(0)
    trunk = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU())
    heads = {t: nn.Sequential(nn.Linear(hidden, 1), nn.Flatten(0)) for t in names}
    return HardSharing(trunk, heads)


def _fit_eval(names, kind, train, val, test, n_features, epochs, metric):
    tasks = [Task(t, kind, metrics=[metric]) for t in names]
    trainer = Trainer(
        _model(n_features, names),
        tasks,
        lr=3e-3,
        max_epochs=epochs,
        monitor="delta",
        device="cpu",
        progress=False,
    )
    trainer.fit(train, val)
    return {t: m[metric] for t, m in trainer.evaluate(test).items()}


def _compare(x, ys, kind, metric, epochs, splits):
    tr, va, te = splits
    names = list(ys)

    def sub(idx, keep, shuffle=False):
        return _loader(x[idx], {t: ys[t][idx] for t in keep}, shuffle=shuffle)

    mtl = _fit_eval(
        names,
        kind,
        sub(tr, names, True),
        sub(va, names),
        sub(te, names),
        x.shape[1],
        epochs,
        metric,
    )
    stl = {}
    for t in names:
        stl.update(
            _fit_eval(
                [t],
                kind,
                sub(tr, [t], True),
                sub(va, [t]),
                sub(te, [t]),
                x.shape[1],
                epochs,
                metric,
            )
        )
    return mtl, stl


@pytest.mark.slow
def test_hard_sharing_matches_single_task_on_mmoe_synthetic():
    """Highly related tasks (p = 0.9), little data: sharing should not hurt.

    One run's test MSE ratio (hard sharing / single task) moves by up to 0.1 with the data seed
    (0.82-1.08 over seeds 0-3), so the claim is on the mean ratio over four data seeds (0.999
    and 0.970 when written); the benchmark's 20 repeats on 10,000 samples
    (benchmarks/results/architectures_mmoe_synthetic_p0.9.jsonl) read 0.92 and 1.11.
    """
    ratios = []
    for seed in range(4):
        X, Y = make_mmoe(1500, n_features=20, correlation=0.9, seed=seed)
        x = torch.tensor(X, dtype=torch.float32)
        ys = {f"y{k}": torch.tensor(Y[:, k], dtype=torch.float32) for k in range(2)}
        idx = np.arange(1500)
        splits = (idx[:800], idx[800:1000], idx[1000:])
        mtl, stl = _compare(x, ys, "regression", "mse", 25, splits)
        ratios.append([mtl[t] / stl[t] for t in ys])
    mean = np.mean(ratios, axis=0)
    assert (mean <= 1.03).all(), ratios


def _adult_subset(n_train=4000, n_test=3000, seed=0):
    data = load("adult")
    X = data.X.copy()
    num = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
    for c in ("capital_gain", "capital_loss"):
        X[c] = np.log1p(X[c])
    X[num] = (X[num] - X[num].mean()) / X[num].std()
    X = pd.get_dummies(X, dtype=np.float32).fillna(0.0)
    rng = np.random.default_rng(seed)
    tr_all = np.flatnonzero(data.split == "train")
    te_all = np.flatnonzero(data.split == "test")
    tr = rng.choice(tr_all, n_train + n_train // 4, replace=False)
    te = rng.choice(te_all, n_test, replace=False)
    x = torch.tensor(X.to_numpy(np.float32))
    ys = {t: torch.tensor(v, dtype=torch.float32) for t, v in data.targets.items()}
    return x, ys, (tr[:n_train], tr[n_train:], te)


@pytest.mark.slow
def test_hard_sharing_matches_single_task_auc_on_adult_subset(real_data):
    x, ys, splits = _adult_subset()
    mtl, stl = _compare(x, ys, "binary", "auc", 6, splits)
    assert stl["income"] > 0.85 and stl["never_married"] > 0.9  # published range of Adult
    for t in ys:
        assert mtl[t] >= stl[t] - 0.005, (mtl, stl)
