"""One training run for the resume test; run as a script (DIR KILL_AT), it SIGKILLs itself."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _training_helpers import TwoHeads, loader, regression_data, regression_tasks

from multitask.training import Callback, Trainer


class KillAt(Callback):
    """SIGKILL the process right after optimizer step ``step`` (no cleanup at all)."""

    def __init__(self, step):
        self.step = step

    def on_step(self, record):
        if record.step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def run(checkpoint_dir=None, kill_at=None, resume=False, device="cpu"):
    """8 batches per epoch, shuffled, dropout, Adam; returns the model."""
    torch.set_num_threads(1)
    torch.manual_seed(123)
    model = TwoHeads(dropout=0.3)
    trainer = Trainer(
        model,
        regression_tasks(),
        lr=0.01,
        max_epochs=3,
        seed=5,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=3 if checkpoint_dir else None,
        callbacks=[KillAt(kill_at)] if kill_at else [],
        device=device,
        progress=False,
    )
    trainer.fit(loader(regression_data(), batch_size=8, shuffle=True), resume=resume)
    return model, trainer


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]), device=sys.argv[3] if len(sys.argv) > 3 else "cpu")
