"""Trainer settings checked as Task's are: task_lr (finite, > 0, a real number)."""

import math

import pytest
import torch
from _training_helpers import TwoHeads, regression_tasks

from multitask.training import Trainer


def _batches():
    torch.manual_seed(0)
    x = torch.randn(32, 5)
    y = x.sum(1)
    return [(x[i : i + 16], {"a": y[i : i + 16], "b": -y[i : i + 16]}) for i in (0, 16)]


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (-0.05, ValueError),
        (math.inf, ValueError),
        (math.nan, ValueError),
        ("0.1", TypeError),
        (True, TypeError),
    ],
)
def test_task_lr_refused_naming_the_task(value, error):
    trainer = Trainer(
        TwoHeads(),
        regression_tasks(),
        task_lr={"a": value},
        max_epochs=1,
        device="cpu",
        progress=False,
    )
    with pytest.raises(error, match=r"task_lr\['a'\]"):
        trainer.fit(_batches())


def test_task_lr_accepted():
    trainer = Trainer(
        TwoHeads(),
        regression_tasks(),
        task_lr={"a": 0.1},
        max_epochs=1,
        device="cpu",
        progress=False,
    ).fit(_batches())
    assert 0.1 in [g["lr"] for g in trainer.optimizer_.param_groups]
