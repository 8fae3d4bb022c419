"""Multi-Fashion: the survey's architectures on a LeNet encoder vs single-task and hard sharing.

Protocol: training, validation and test composites (validation from 10,000
Fashion-MNIST training items held out from the training composites; all drawn
per seed), Adam 1e-3 on the sum of the task losses + ``regularization()``, the
epoch with the best mean validation accuracy is kept and its test accuracy
reported (single-task networks: each selected on its own task's validation
accuracy). ``sluice`` uses the row-normalised orthogonality penalty
(``Sluice(normalize=True)``, weight ``--orthogonality``); ``sluice_paper``
the paper's unnormalised Eq. 4 at weight 0.01 (run on request only).

Run of docs/architectures.md (one process per seed, resumable)::

    OMP_NUM_THREADS=1 python benchmarks/architectures_multi_fashion.py --n-train 20000 \
        --n-val 4000 --n-test 10000 --epochs 10 --seeds 0

Full size of Lin et al. 2019 (120k/20k images), single task and hard sharing::

    OMP_NUM_THREADS=1 python benchmarks/architectures_multi_fashion.py --n-train 120000 \
        --n-val 10000 --n-test 20000 --epochs 10 --methods single_task hard_sharing \
        --seeds 0 --out benchmarks/results/architectures_multi_fashion_full.jsonl

Results go to ``benchmarks/results/architectures_multi_fashion.jsonl``; the
printed table gives mean ± std over seeds of test accuracy, delta_m (%)
against the two single-task LeNets, seconds per epoch relative to hard sharing
and the mean selected epoch.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).parent))

from _multi_fashion import load_multi_fashion_splits
from architectures_common import (
    Results,
    adam_epoch,
    parser,
    predict,
    rows,
    run_seeds,
    summary,
)
from multitask.nn.architectures import (
    CGC,
    MTAN,
    CrossStitch,
    DeepRelationshipNetwork,
    FullyAdaptiveSharing,
    HardSharing,
    MMoE,
    Sluice,
    TensorFactorized,
)
from multitask.nn.architectures.fully_adaptive import task_affinity

TASKS = ("top_left", "bottom_right")


#: flattened conv features of the LeNet and raw input size, per image side: 28x28 inputs give
#: (B, 20, 3, 3) after the two conv blocks; 36x36 (Lin et al.'s code) give (B, 20, 5, 5)
FLAT = {28: 180, 36: 500}
SIDE = {"value": 28}  # set from --image-size in main()


def lenet_blocks() -> list[nn.Module]:
    """LeNet of Sener & Koltun (2018) / Lin et al. (2019): conv9-pool-conv5-pool-fc50."""
    return [
        nn.Sequential(nn.Conv2d(1, 10, 9), nn.MaxPool2d(2), nn.ReLU()),
        nn.Sequential(nn.Conv2d(10, 20, 5), nn.MaxPool2d(2), nn.ReLU()),
        nn.Sequential(nn.Flatten(), nn.Linear(_flat(), 50), nn.ReLU()),  # (B, 50)
    ]


def _flat() -> int:
    return FLAT[SIDE["value"]]


def _pixels() -> int:
    return SIDE["value"] ** 2


def conv_part() -> nn.Module:
    return nn.Sequential(*lenet_blocks()[:2], nn.Flatten())  # (B, _flat())


def heads(width: int = 50, tasks=TASKS) -> dict[str, nn.Module]:
    return {t: nn.Linear(width, 10) for t in tasks}


def build(name: str, orthogonality: float = 0.1) -> nn.Module:
    if name == "hard_sharing":
        return HardSharing(nn.Sequential(*lenet_blocks()), heads())
    if name == "cross_stitch":
        return CrossStitch(lenet_blocks(), heads())
    if name == "sluice":  # penalty / (batch x height x width)^2 (see docs/architectures.md)
        blocks, out = lenet_blocks(), heads()
        return Sluice(
            blocks, out, skip_layers=[2], orthogonality=orthogonality, feature_dim=1, normalize=True
        )
    if name == "sluice_paper":  # Eq. 4 of Ruder et al. as published, weight 0.01
        return Sluice(lenet_blocks(), heads(), skip_layers=[2], orthogonality=0.01, feature_dim=1)
    if name == "mmoe":
        return MMoE([nn.Sequential(*lenet_blocks()) for _ in range(3)], heads(), _pixels())
    if name == "cgc":
        own = {t: [nn.Sequential(*lenet_blocks())] for t in TASKS}
        return CGC([nn.Sequential(*lenet_blocks())], own, heads(), _pixels())
    if name == "mtan":
        flat = _flat()
        top = nn.Sequential(nn.Linear(flat, 50), nn.ReLU())
        return MTAN([conv_part(), top], [flat, 50], heads())
    if name == "tensor_factorized":
        ident = {t: nn.Identity() for t in TASKS}
        return TensorFactorized(conv_part(), [_flat(), 50, 10], ident, ranks=16)
    if name == "relationship":
        return DeepRelationshipNetwork(nn.Sequential(*lenet_blocks()), heads(), prior_weight=1e-3)
    if name == "fully_adaptive":
        return FullyAdaptiveSharing(lenet_blocks(), heads(), complexity_weight=0.05)
    raise KeyError(name)


def ce(out, y):
    return {t: F.cross_entropy(out[t], y[t]) for t in out}


def accuracy(model, x, y):
    out = predict(model, x)
    return {(t, "accuracy"): (out[t].argmax(-1) == y[t]).float().mean().item() for t in out}


@dataclass
class Selected:
    """The model at the epoch with the best validation score (0-based epoch)."""

    model: nn.Module
    epoch: int
    val_scores: list[float]
    sec_per_epoch: float


def train_select(model, x, y, *, score, epochs, batch_size, lr, seed, on_epoch=None) -> Selected:
    """Adam on cross-entropy + ``regularization()``, keeping the epoch of best ``score(model)``.

    ``score`` (validation, higher is better) runs after each epoch and its
    ``on_epoch`` callback. The best model is kept as a deep copy, not a state
    dict: FAFS changes its structure while training. The optimizer is rebuilt
    after the callback, which may add parameters (as ``architectures_common.train``).
    """
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    times, scores, kept = [], [], None
    for epoch in range(epochs):
        times.append(adam_epoch(model, opt, x, y, ce, batch_size, gen)[0])
        if on_epoch is not None:
            on_epoch(model, epoch)
            opt = torch.optim.Adam(model.parameters(), lr=lr)
        scores.append(float(score(model)))  # a no_grad forward: nothing of autograd to copy
        if scores[-1] == max(scores):
            kept = Selected(copy.deepcopy(model), epoch, scores, 0.0)
    kept.sec_per_epoch = float(np.median(times))
    return kept


def mean_accuracy(x, y):
    return lambda model: float(np.mean(list(accuracy(model, x, y).values())))


def table(results: Results) -> str:
    """:func:`summary` on test accuracy (delta_m over it only) plus the mean selected epoch."""
    kept = Results.__new__(Results)
    kept.rows = [r for r in results.rows if r["metric"] in ("accuracy", "sec_per_epoch")]
    lines = summary(kept).splitlines()
    epochs: dict[str, list[float]] = {}
    for r in results.rows:
        if r["metric"] == "best_epoch":
            epochs.setdefault(r["method"], []).append(r["value"] + 1)
    lines[0] += " selected epoch |"
    lines[1] += "---|"
    for i in range(2, len(lines)):
        e = epochs.get(lines[i].split("|")[1].strip().split(" (")[0])
        lines[i] += f" {np.mean(e):.1f} |" if e else " - |"
    return "\n".join(lines)


DEFAULT = [
    "single_task", "hard_sharing", "cross_stitch", "sluice", "mmoe", "cgc", "mtan",
    "tensor_factorized", "relationship", "fully_adaptive",
]  # fmt: skip


def main() -> None:
    p = parser(__doc__.splitlines()[0], "architectures_multi_fashion")
    p.add_argument("--n-train", type=int, default=120_000)
    p.add_argument("--n-val", type=int, default=10_000)
    p.add_argument("--n-test", type=int, default=20_000)
    p.add_argument("--val-items", type=int, default=10_000, help="Fashion items held out")
    p.add_argument("--orthogonality", type=float, default=0.1, help="sluice penalty weight")
    p.add_argument(
        "--image-size",
        type=int,
        choices=sorted(FLAT),
        default=28,
        help="28: canvas resampled (Sener & Koltun); 36: the canvas as in Lin et al.'s code",
    )
    p.set_defaults(epochs=10)
    args = p.parse_args()
    SIDE["value"] = args.image_size
    torch.set_num_threads(args.threads)
    fit = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr}

    @lru_cache(maxsize=1)
    def data(seed):
        return load_multi_fashion_splits(
            args.n_train,
            args.n_val,
            args.n_test,
            seed,
            val_items=args.val_items,
            size=args.image_size,
        )

    def single_task(seed):
        (x, y), (xv, yv), (xt, yt) = data(seed)
        metrics, sec, epochs = {}, 0.0, []
        for t in TASKS:
            model = HardSharing(nn.Sequential(*lenet_blocks()), heads(tasks=(t,)))
            best = train_select(
                model, x, {t: y[t]}, score=mean_accuracy(xv, {t: yv[t]}), seed=seed, **fit
            )
            metrics.update(accuracy(best.model, xt, {t: yt[t]}))
            sec, epochs = sec + best.sec_per_epoch, [*epochs, best.epoch]
        return metrics, sec, float(np.mean(epochs))

    def method(name):
        def run(seed):
            (x, y), (xv, yv), (xt, yt) = data(seed)

            def grow(model, epoch):  # FAFS: widen one layer (top down) after each early epoch
                if isinstance(model, FullyAdaptiveSharing) and model.next_layer_ >= 0:
                    with torch.no_grad():
                        out = model(x[:2000])
                        losses = torch.stack(
                            [F.cross_entropy(out[t], y[t][:2000], reduction="none") for t in TASKS],
                            1,
                        )
                    model.widen_next(task_affinity(losses))
                    print(f"FAFS after epoch {epoch}:\n{model.tree_}", flush=True)
                if isinstance(model, DeepRelationshipNetwork):
                    model.update_covariances()

            model = build(name, args.orthogonality)
            best = train_select(
                model, x, y, score=mean_accuracy(xv, yv), seed=seed, on_epoch=grow, **fit
            )
            return accuracy(best.model, xt, yt), best.sec_per_epoch, float(best.epoch)

        return run

    methods = {"single_task": single_task, **{n: method(n) for n in DEFAULT[1:]}}
    methods["sluice_paper"] = method("sluice_paper")
    results = Results(args.out)

    def record(name, seed, out):
        metrics, sec, epoch = out
        extra = {"dataset": "multi_fashion", "method": name, "seed": seed, "task": "*"}
        chosen_epoch = {**extra, "metric": "best_epoch", "value": epoch, "config": vars(args)}
        return [*rows("multi_fashion", name, seed, metrics, sec, vars(args)), chosen_epoch]

    run_seeds(args, methods, results, record, default=DEFAULT)
    print(table(Results(args.out)))


if __name__ == "__main__":
    main()
