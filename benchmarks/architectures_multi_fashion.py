"""Multi-Fashion: the survey's architectures on a LeNet encoder vs single-task and hard sharing.

Run (full protocol of Lin et al. 2019: 120k/20k images; here 10 epochs, Adam 1e-3)::

    OMP_NUM_THREADS=1 python benchmarks/architectures_multi_fashion.py --n-train 120000 \
        --n-test 20000 --epochs 10

Reduced run (what docs/architectures.md reports)::

    OMP_NUM_THREADS=1 python benchmarks/architectures_multi_fashion.py --n-train 5000 \
        --n-test 2000 --epochs 4 --batch-size 64

Results go to ``benchmarks/results/architectures_multi_fashion.jsonl`` (resumable);
the printed table gives mean ± std over seeds of test accuracy, delta_m (%)
against the two single-task LeNets, and seconds per epoch relative to hard sharing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).parent))

from _multi_fashion import load_multi_fashion
from architectures_common import Results, parser, predict, run_all, train
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


def lenet_blocks() -> list[nn.Module]:
    """LeNet of Sener & Koltun (2018) / Lin et al. (2019): conv9-pool-conv5-pool-fc50."""
    return [
        nn.Sequential(nn.Conv2d(1, 10, 9), nn.MaxPool2d(2), nn.ReLU()),  # (B, 10, 10, 10)
        nn.Sequential(nn.Conv2d(10, 20, 5), nn.MaxPool2d(2), nn.ReLU()),  # (B, 20, 3, 3)
        nn.Sequential(nn.Flatten(), nn.Linear(180, 50), nn.ReLU()),  # (B, 50)
    ]


def conv_part() -> nn.Module:
    return nn.Sequential(*lenet_blocks()[:2], nn.Flatten())  # (B, 180)


def heads(width: int = 50, tasks=TASKS) -> dict[str, nn.Module]:
    return {t: nn.Linear(width, 10) for t in tasks}


def build(name: str, orthogonality: float = 0.01) -> nn.Module:
    if name == "hard_sharing":
        return HardSharing(nn.Sequential(*lenet_blocks()), heads())
    if name == "cross_stitch":
        return CrossStitch(lenet_blocks(), heads())
    if name.startswith("sluice"):
        blocks, out = lenet_blocks(), heads()
        return Sluice(blocks, out, skip_layers=[2], orthogonality=orthogonality, feature_dim=1)
    if name == "mmoe":
        return MMoE([nn.Sequential(*lenet_blocks()) for _ in range(3)], heads(), 784)
    if name == "cgc":
        own = {t: [nn.Sequential(*lenet_blocks())] for t in TASKS}
        return CGC([nn.Sequential(*lenet_blocks())], own, heads(), 784)
    if name == "mtan":
        return MTAN([conv_part(), nn.Sequential(nn.Linear(180, 50), nn.ReLU())], [180, 50], heads())
    if name == "tensor_factorized":
        ident = {t: nn.Identity() for t in TASKS}
        return TensorFactorized(conv_part(), [180, 50, 10], ident, ranks=16)
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


def main() -> None:
    p = parser(__doc__.splitlines()[0], "architectures_multi_fashion")
    p.add_argument("--n-train", type=int, default=120_000)
    p.add_argument("--n-test", type=int, default=20_000)
    p.add_argument("--orthogonality", type=float, default=0.01, help="sluice penalty weight")
    p.set_defaults(epochs=10)
    args = p.parse_args()
    (x, y), (xt, yt) = load_multi_fashion(args.n_train, args.n_test)
    fit = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr}

    def single_task(seed):
        metrics, sec = {}, 0.0
        for t in TASKS:
            model = HardSharing(nn.Sequential(*lenet_blocks()), heads(tasks=(t,)))
            sec += train(model, x, {t: y[t]}, ce, seed=seed, **fit)
            metrics.update(accuracy(model, xt, {t: yt[t]}))
        return metrics, sec

    def grow(model, epoch):  # FAFS: widen one layer (top down) after each of the first epochs
        if isinstance(model, FullyAdaptiveSharing) and model.next_layer_ >= 0:
            with torch.no_grad():
                out = model(x[:2000])
                losses = torch.stack(
                    [F.cross_entropy(out[t], y[t][:2000], reduction="none") for t in TASKS], 1
                )
            model.widen_next(task_affinity(losses))
            print(f"FAFS after epoch {epoch}:\n{model.tree_}")
        if isinstance(model, DeepRelationshipNetwork):
            model.update_covariances()

    def method(name):
        def run(seed):
            model = build(name, args.orthogonality)
            sec = train(model, x, y, ce, seed=seed, on_epoch=grow, **fit)
            return accuracy(model, xt, yt), sec

        return run

    sluice = "sluice" if args.orthogonality == 0.01 else f"sluice_orth{args.orthogonality:g}"
    names = [
        "hard_sharing", "cross_stitch", sluice, "mmoe", "cgc", "mtan",
        "tensor_factorized", "relationship", "fully_adaptive",
    ]  # fmt: skip
    methods = {"single_task": single_task, **{n: method(n) for n in names}}
    run_all(args, methods, Results(args.out), "multi_fashion")


if __name__ == "__main__":
    main()
