"""Time per training step of each architecture relative to hard sharing (Multi-Fashion LeNet).

The epoch times printed by ``architectures_multi_fashion.py`` come from runs
made at different moments on a shared machine; this script measures the cost
of one training step (forward, sum of losses + regularisation, backward,
Adam step) for every architecture of that benchmark on the same random batch,
interleaving the models round by round, and prints the median time of each
and its ratio to hard sharing. Time per epoch is proportional (same batches).
``single_task`` is the two independent LeNets of the baseline, stepped together.

Run::

    OMP_NUM_THREADS=1 python benchmarks/architectures_timing.py --rounds 15 --steps 5 \
        --batch-size 128
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).parent))

from architectures_multi_fashion import TASKS, build, heads, lenet_blocks
from multitask.nn.architectures import HardSharing

NAMES = [
    "single_task", "hard_sharing", "cross_stitch", "sluice", "mmoe", "cgc", "mtan",
    "tensor_factorized", "relationship", "fully_adaptive",
]  # fmt: skip


class Independent(nn.Module):
    """The single-task baseline: one LeNet per task, run one after the other."""

    def __init__(self):
        super().__init__()
        self.nets = nn.ModuleDict(
            {t: HardSharing(nn.Sequential(*lenet_blocks()), heads(tasks=(t,))) for t in TASKS}
        )

    def forward(self, x):
        return {t: net(x)[t] for t, net in self.nets.items()}

    def regularization(self):
        return 0.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.rand(args.batch_size, 1, 28, 28)
    y = {t: torch.randint(0, 10, (args.batch_size,)) for t in TASKS}
    models = {n: Independent() if n == "single_task" else build(n) for n in NAMES}
    fafs = models["fully_adaptive"]  # fully grown (one branch per task at every layer)
    for _ in range(fafs.n_layers):
        fafs.widen_next(torch.eye(len(TASKS)))
    opts = {n: torch.optim.Adam(m.parameters(), 1e-3) for n, m in models.items()}
    times = {n: [] for n in NAMES}
    for r in range(args.rounds + 1):
        for n in NAMES if r % 2 == 0 else NAMES[::-1]:
            model, opt = models[n], opts[n]
            start = time.perf_counter()
            for _ in range(args.steps):
                out = model(x)
                loss = sum(F.cross_entropy(out[t], y[t]) for t in TASKS) + model.regularization()
                opt.zero_grad()
                loss.backward()
                opt.step()
            if r > 0:  # round 0 warms up
                times[n].append((time.perf_counter() - start) / args.steps)
    ref = np.median(times["hard_sharing"])
    print(f"batch {args.batch_size}, {args.rounds} rounds x {args.steps} steps, interleaved")
    print("| architecture | ms / step (median) | relative to hard sharing |")
    print("|---|---|---|")
    for n in NAMES:
        med = np.median(times[n])
        print(f"| {n} | {1000 * med:.2f} | {med / ref:.2f}x |")


if __name__ == "__main__":
    main()
