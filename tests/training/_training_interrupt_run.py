"""One training run for the SIGINT tests; run as a script (DIR GA WHEN AT TIMES [WORKERS]), it
sends itself SIGINT ``TIMES`` times at the ``AT``-th forward call in ``WHEN`` ("train" or
"eval"); with DataLoader ``WORKERS``, to its whole process group, as a terminal's Ctrl-C does.
``WHEN`` "fetch" ("fetch-val"): a spawned worker of the training (validation) loader sends it
to the group while building a batch the main process waits for (:class:`SignallingData`);
"fetch-dies": the worker sends it to the main process alone and dies, as an unshielded
worker dies of a Ctrl-C."""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _training_helpers import TwoHeads, loader, regression_data, regression_tasks
from torch.utils.data import DataLoader, Dataset

from multitask.training import Trainer

INTERRUPTED = 128 + signal.SIGINT  # the shell's exit status for a SIGINT


def interrupt_at(model, when: str, at: int, times: int, group: bool = False) -> None:
    """SIGINT this process (or its ``group``) ``times`` times at the ``at``-th forward call in
    ``when`` mode: in the middle of a micro-batch (train) or of an evaluation (eval)."""
    calls = {"train": 0, "eval": 0}

    def hook(module, args):
        mode = "train" if module.training else "eval"
        calls[mode] += 1
        if mode == when and calls[mode] == at:
            for _ in range(times):
                if group:
                    os.killpg(os.getpgid(0), signal.SIGINT)
                else:
                    os.kill(os.getpid(), signal.SIGINT)

    model.register_forward_pre_hook(hook)


class SignallingData(Dataset):
    """``data``; its ``at``-th item read in a worker process first sleeps (the main process is
    then waiting for that batch), then sends SIGINT to the process group, or with ``dies`` to
    the main process alone, then kills itself."""

    def __init__(self, at: int, data=None, dies: bool = False):
        self.data = regression_data() if data is None else data
        self.at, self.dies, self.calls = at, dies, 0

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i):
        self.calls += 1  # (in the worker's copy: one worker, spawned anew each epoch)
        if self.calls == self.at:
            time.sleep(1.0)
            if self.dies:
                os.kill(os.getppid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGKILL)
            os.killpg(os.getpgid(0), signal.SIGINT)
        return self.data[i]


def _spawned(data, shuffle: bool) -> DataLoader:
    """One spawned worker, one batch ahead."""
    return DataLoader(
        data,
        batch_size=8,
        shuffle=shuffle,
        num_workers=1,
        prefetch_factor=1,
        multiprocessing_context="spawn",
        persistent_workers=False,
    )


def run(
    checkpoint_dir=None, grad_accumulation=1, resume=False, when=None, at=0, times=1, workers=0
):
    """3 epochs of 8 shuffled batches, dropout, Adam, validation with model selection, no
    periodic checkpoint; returns the model and the trainer."""
    torch.set_num_threads(1)
    torch.manual_seed(123)
    model = TwoHeads(dropout=0.3)
    if when in ("train", "eval"):
        interrupt_at(model, when, at, times, group=workers > 0)
    trainer = Trainer(
        model,
        regression_tasks(),
        lr=0.01,
        max_epochs=3,
        seed=5,
        grad_accumulation=grad_accumulation,
        checkpoint_dir=checkpoint_dir,
        device="cpu",
        progress=False,
    )
    val = loader(regression_data(n=16, seed=9))
    if when in ("fetch", "fetch-dies"):
        train = _spawned(SignallingData(at, dies=when == "fetch-dies"), shuffle=True)
    else:
        train = DataLoader(regression_data(), batch_size=8, shuffle=True, num_workers=workers)
    if when == "fetch-val":
        val = _spawned(SignallingData(at, data=val.dataset), shuffle=False)
    trainer.fit(train, val, resume=resume)
    return model, trainer


if __name__ == "__main__":
    directory, ga, when, at, times, *workers = sys.argv[1:]
    workers = int(workers[0]) if workers else 0
    try:
        run(directory, int(ga), when=when, at=int(at), times=int(times), workers=workers)
    except KeyboardInterrupt:
        # fit let the interrupt through. Exit with the shell's status for it ourselves: how
        # the process ends on an uncaught one varies (here CPython kills itself with SIGINT;
        # on the H100 machine, Python 3.12 with torch 2.11, this script exited with status 1
        # although a bare `raise KeyboardInterrupt` died by SIGINT there)
        traceback.print_exc()
        sys.exit(INTERRUPTED)
