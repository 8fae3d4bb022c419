"""Small models and data for the trainer tests (also imported by the resume subprocess)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from multitask.nn import Task
from multitask.nn.architectures._base import MultiTaskModule
from multitask.training import Callback


class TwoHeads(MultiTaskModule):
    """trunk -> representation -> one linear head per task (optionally an extra head)."""

    def __init__(self, n_features=5, hidden=8, tasks=("a", "b"), dropout=0.0, extra_head=None):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(n_features, hidden), nn.Tanh(), nn.Dropout(dropout))
        names = tuple(tasks) + ((extra_head,) if extra_head else ())
        self.heads = nn.ModuleDict({t: nn.Linear(hidden, 1) for t in names})
        self.task_names = names

    def forward(self, x):
        h = self.trunk(x)
        self.representation = h
        return {t: head(h).squeeze(-1) for t, head in self.heads.items()}

    def shared_parameters(self):
        return self.trunk.parameters()

    def task_parameters(self, task):
        return self.heads[task].parameters()


class DictDataset(Dataset):
    """``(x[i], {task: y[task][i]})`` items; the default collate stacks them."""

    def __init__(self, x, ys):
        self.x, self.ys = x, ys

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], {t: y[i] for t, y in self.ys.items()}


def regression_data(n=64, n_features=5, seed=0, tasks=("a", "b")):
    """Two linear regression tasks sharing a design."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, n_features, generator=g)
    ys = {t: x @ torch.randn(n_features, generator=g) for t in tasks}
    return DictDataset(x, ys)


def loader(ds, batch_size=8, shuffle=False):
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle)


def regression_tasks(names=("a", "b"), **kw):
    return [Task(t, "regression", **kw) for t in names]


def flat_params(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


class Crashed(Exception):
    """What :class:`CrashAt` raises: a crash of the run."""


class CrashAt(Callback):
    """Raise :class:`Crashed` right after optimizer step ``step`` (a crash; a callback listed
    after it, such as the CSV logger, does not see that step)."""

    def __init__(self, step):
        self.step = step

    def on_step(self, record):
        if record.step == self.step:
            raise Crashed


def fit_two_heads(make_loader, checkpoint_dir=None, callbacks=(), resume=False):
    """Parameters after a 2-epoch fit of :class:`TwoHeads` (dropout 0.3: a shifted global
    RNG changes the result) on ``make_loader()``, checkpointing every step when given a
    ``checkpoint_dir``."""
    from multitask.training import Trainer

    torch.manual_seed(0)
    model = TwoHeads(dropout=0.3)
    trainer = Trainer(
        model,
        regression_tasks(),
        lr=0.05,
        max_epochs=2,
        seed=3,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=1 if checkpoint_dir else None,
        callbacks=list(callbacks),
        device="cpu",
        progress=False,
    )
    trainer.fit(make_loader(), resume=resume)
    return flat_params(model)


def crash_and_resume(make_loader, crash, tmp_path):
    """Parameters of an uninterrupted :func:`fit_two_heads` run, and of one crashed after
    step ``crash`` and resumed from its checkpoint in ``tmp_path``: ``(resumed, reference)``."""
    import pytest

    reference = fit_two_heads(make_loader)
    with pytest.raises(Crashed):
        fit_two_heads(make_loader, tmp_path, [CrashAt(crash)])
    return fit_two_heads(make_loader, tmp_path, resume=True), reference
