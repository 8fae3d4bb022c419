"""Validation targets that are a list of tensors (what the default collate makes of a list
per sample) fail with the TypeError training gives, naming the task; torch's raw error
("only one element tensors can be converted to Python scalars") named neither."""

from __future__ import annotations

import pytest
import torch
from _training_helpers import TwoHeads, regression_tasks
from torch.utils.data import DataLoader

from multitask.training import Trainer

X = torch.randn(32, 5, generator=torch.Generator().manual_seed(0))
TRAIN = [(X[i : i + 8], {"a": X[i : i + 8, 0], "b": X[i : i + 8, 1]}) for i in range(0, 32, 8)]
ROWS = [(X[i], {"a": [X[i, 0], X[i, 2]], "b": X[i, 1]}) for i in range(16)]  # a: a list per row


def _trainer():
    torch.manual_seed(0)
    return Trainer(TwoHeads(), regression_tasks(), max_epochs=2, device="cpu", progress=False)


MESSAGE = r"target of task 'a' is a list, .*a list of tensors is what the default collate makes"


def test_training_data_wording():
    """The wording the validation error follows."""
    bad = [(x, {"a": [y["a"], y["a"]], "b": y["b"]}) for x, y in TRAIN]
    with pytest.raises(TypeError, match=MESSAGE):
        _trainer().fit(bad)


def test_validation_list_of_tensors_names_task():
    with pytest.raises(TypeError, match=MESSAGE):
        _trainer().fit(TRAIN, DataLoader(ROWS, batch_size=8))


def test_evaluate_list_of_tensors_names_task():
    with pytest.raises(TypeError, match="batch 0 of the data to evaluate: the " + MESSAGE):
        _trainer().evaluate(DataLoader(ROWS, batch_size=8))


def test_unconvertible_target_names_task():
    val = [(X[:8], {"a": ["x"] * 8, "b": X[:8, 1]})]
    with pytest.raises(TypeError, match=r"target of task 'a' is a list.*torch.tensor\(y\)"):
        _trainer().evaluate(val)


def test_numbers_and_arrays_still_scored():
    """A list of numbers and a numpy array stay accepted as validation targets."""
    val = [(X[:8], {"a": X[:8, 0].tolist(), "b": X[:8, 1].numpy()})]
    scores = _trainer().evaluate(val)
    assert set(scores) == {"a", "b"}
