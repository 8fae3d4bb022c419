"""CSVLogger: a fresh (not resumed) run starts both CSV files afresh; an earlier run's
``_val.csv`` rows remained when the new run evaluated nothing, or crashed before its first
evaluation and was resumed."""

from __future__ import annotations

import csv
import warnings

import pytest
import torch
from _training_helpers import CrashAt, Crashed, TwoHeads, regression_tasks

from multitask.training import Trainer

X = torch.randn(64, 5, generator=torch.Generator().manual_seed(0))
TRAIN = [(X[i : i + 16], {"a": X[i : i + 16, 0], "b": X[i : i + 16, 1]}) for i in range(0, 64, 16)]
VAL = [(X[:16], {"a": X[:16, 0], "b": X[:16, 1]})]


def _trainer(log, **kw):
    torch.manual_seed(0)
    return Trainer(
        TwoHeads(),
        regression_tasks(),
        max_epochs=2,
        device="cpu",
        progress=False,
        log_csv=log,
        **kw,
    )


def _steps(path):
    with path.open(newline="") as f:
        return [int(row["step"]) for row in csv.DictReader(f)]


def test_fresh_run_without_val_removes_old_val_csv(tmp_path):
    log = tmp_path / "log.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _trainer(log, val_every=1).fit(TRAIN, VAL)  # evaluates at steps 1..8
        assert _steps(tmp_path / "log_val.csv") == list(range(1, 9))
        _trainer(log).fit(TRAIN)  # fresh, no validation
    assert not (tmp_path / "log_val.csv").exists()
    assert _steps(log) == list(range(1, 9))


def test_fresh_run_crashed_then_resumed_has_only_its_own_val_rows(tmp_path):
    log, ck = tmp_path / "log.csv", tmp_path / "ck"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _trainer(log, val_every=1).fit(TRAIN, VAL)
        with pytest.raises(Crashed):  # fresh, evaluates per epoch (steps 4, 8)
            _trainer(log, checkpoint_dir=ck, checkpoint_every=1, callbacks=[CrashAt(3)]).fit(
                TRAIN, VAL
            )
        assert not (tmp_path / "log_val.csv").exists()
        _trainer(log, checkpoint_dir=ck, checkpoint_every=1).fit(TRAIN, VAL, resume=True)
    assert _steps(tmp_path / "log_val.csv") == [4, 8]
    assert _steps(log) == list(range(1, 9))
