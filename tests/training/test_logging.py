"""CSV logs across an interrupted and resumed run: same rows as an uninterrupted run."""

import csv

import pytest
import torch
from _training_helpers import CrashAt, Crashed, TwoHeads, loader, regression_data, regression_tasks

from multitask.training import Trainer
from multitask.training.callbacks import CSVLogger


def _fit(tmp, steps, crash=None, resume=False, val_every=None):
    torch.manual_seed(0)
    trainer = Trainer(
        TwoHeads(),
        regression_tasks(),
        lr=0.01,
        max_epochs=10,
        max_steps=steps,
        seed=2,
        checkpoint_dir=tmp / "ckpt",
        checkpoint_every=2,
        log_csv=tmp / "log.csv",
        val_every=val_every,
        callbacks=[CrashAt(crash)] if crash else [],
        device="cpu",
        progress=False,
    )
    # 32 samples / 8 = 4 steps per epoch; validation after steps 4 and 8 (and the last one)
    data, val = regression_data(n=32), regression_data(n=16, seed=1)
    trainer.fit(loader(data, shuffle=True), loader(val), resume=resume)


def _rows(path):
    with path.open(newline="") as f:
        return list(csv.reader(f))


@pytest.mark.parametrize(
    ("crash", "val_every"),
    # after an epoch end, mid-epoch; with val_every=3 (evaluations at 3, 6, 9), a checkpoint
    # at step 6 is written after that step's evaluation, one at step 4 between two
    [(5, None), (7, None), (5, 3), (7, 3), (8, 3)],
)
def test_resumed_csv_log_equals_uninterrupted(tmp_path, crash, val_every):
    # oracle: the log of an uninterrupted 9-step run. The crashed run checkpointed at
    # step crash - 1 and logged rows after it; the resumed run keeps the header and the
    # rows up to its checkpoint, and appends (no second header, no lost or doubled row).
    _fit(tmp_path / "ref", 9, val_every=val_every)
    with pytest.raises(Crashed):
        _fit(tmp_path / "run", 9, crash=crash, val_every=val_every)
    _fit(tmp_path / "run", 9, resume=True, val_every=val_every)
    for name in ("log.csv", "log_val.csv"):
        ref, got = _rows(tmp_path / "ref" / name), _rows(tmp_path / "run" / name)
        assert got[0] == ref[0] and len(got) == len(ref)
        assert [r[:2] for r in got] == [r[:2] for r in ref]  # epoch, step
        for a, b in zip(got[1:], ref[1:], strict=True):
            assert [float(x) for x in a] == pytest.approx([float(x) for x in b], abs=1e-6)
    assert len(_rows(tmp_path / "ref" / "log.csv")) == 1 + 9
    # evaluations at steps 4, 8 and, max_steps ending the run inside an epoch, 9; or 3, 6, 9
    assert len(_rows(tmp_path / "ref" / "log_val.csv")) == 1 + 3


def test_a_logger_reused_for_a_second_fresh_fit_overwrites_its_files(tmp_path):
    # oracle: one fresh fit of 2 steps writes a header and rows for steps 1, 2 (and one
    # evaluation); a second fresh fit with the same CSVLogger used to append 1, 2 again
    log = CSVLogger(tmp_path / "log.csv")
    trainer = Trainer(
        TwoHeads(), regression_tasks(), max_epochs=1, callbacks=[log], device="cpu", progress=False
    )
    data, val = loader(regression_data(n=16)), loader(regression_data(n=8, seed=1))
    for _ in range(2):
        trainer.fit(data, val)
        steps = _rows(tmp_path / "log.csv")
        assert steps[0][:2] == ["epoch", "step"] and [r[1] for r in steps[1:]] == ["1", "2"]
        evals = _rows(tmp_path / "log_val.csv")
        assert evals[0][:2] == ["epoch", "step"] and [r[:2] for r in evals[1:]] == [["0", "2"]]
