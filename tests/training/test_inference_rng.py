"""Evaluation and prediction leave torch's global RNG as found: a DataLoader without its own
generator draws its base seed from it, so passing val to ``fit`` changed the later dropout
masks, and ``trainer.evaluate`` the caller's random stream."""

from __future__ import annotations

import warnings

import torch
from _training_helpers import TwoHeads, regression_data, regression_tasks
from torch.utils.data import DataLoader

from multitask.training import Trainer


def _val():
    return DataLoader(regression_data(n=16, seed=2), batch_size=8)  # no generator of its own


def test_evaluate_and_predict_leave_global_rng():
    torch.manual_seed(0)
    trainer = Trainer(TwoHeads(dropout=0.5), regression_tasks(), device="cpu", progress=False)
    for run in (trainer.evaluate, trainer.predict):
        state = torch.get_rng_state().clone()
        run(_val())
        assert torch.equal(state, torch.get_rng_state()), run.__name__


def _losses(val):
    torch.manual_seed(0)
    model = TwoHeads(dropout=0.5)
    trainer = Trainer(
        model, regression_tasks(), device="cpu", progress=False, max_epochs=3, seed=1, lr=0.02
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(DataLoader(regression_data(n=32), batch_size=8, shuffle=True), val)
    return trainer.history_.losses()


def test_validation_does_not_change_training():
    """Training losses of a model with dropout are identical with and without a val loader
    (evaluated after each epoch: 4 steps)."""
    without, with_val = _losses(None), _losses(_val())
    assert set(without) == {"a", "b"}
    for t in without:
        assert len(without[t]) == 12
        assert without[t] == with_val[t], t
