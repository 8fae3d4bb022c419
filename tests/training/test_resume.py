"""Exact resume after SIGKILL, checkpoint format, and the NaN stop."""

import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _training_helpers import (
    CrashAt,
    Crashed,
    TwoHeads,
    crash_and_resume,
    flat_params,
    loader,
    regression_data,
    regression_tasks,
)
from _training_resume_run import run
from torch.utils.data import DataLoader, IterableDataset, RandomSampler

from multitask.training import Callback, Trainer, load_checkpoint, save_checkpoint
from multitask.training.checkpoint import get_rng_state, set_rng_state

SCRIPT = Path(__file__).with_name("_training_resume_run.py")


class Evil:
    """Not a tensor nor a primitive: a weights_only load must refuse it."""


@pytest.mark.slow  # a subprocess: importing torch takes a few seconds
@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param(
            "cuda",
            marks=[
                pytest.mark.gpu,
                pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
            ],
        ),
    ],
)
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path, device):
    # oracle: the same run without interruption (24 steps: 3 epochs x 8 batches); on CUDA
    # the dropout masks come from the CUDA generator, whose state the checkpoint must carry
    reference, ref_trainer = run(device=device)
    assert ref_trainer.step_ == 24
    # killed right after step 11 (epoch 1, batch 3); the last checkpoint is step 9
    command = [sys.executable, str(SCRIPT), str(tmp_path), "11", device]
    proc = subprocess.run(command, check=False)
    assert proc.returncode == -signal.SIGKILL
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["position"] == {"epoch": 1, "batch": 1, "step": 9}
    resumed, trainer = run(checkpoint_dir=tmp_path, resume=True, device=device)
    assert trainer.step_ == 24 and trainer.history_.steps[0].step == 10
    torch.testing.assert_close(flat_params(resumed), flat_params(reference), rtol=0, atol=1e-6)
    # dropout and shuffling make the run random: the checkpoint is far from the end
    assert (flat_params(reference).cpu() - state_params(state).cpu()).abs().max() > 1e-3


def state_params(state):
    return torch.cat([v.reshape(-1) for v in state["model"].values()])


def test_rng_state_round_trip():
    state = get_rng_state()
    first = (random.random(), np.random.rand(), torch.rand(3))  # noqa: NPY002
    set_rng_state(state)
    again = (random.random(), np.random.rand(), torch.rand(3))  # noqa: NPY002
    assert first[:2] == again[:2] and torch.equal(first[2], again[2])


def test_checkpoint_is_atomic_and_weights_only(tmp_path):
    path = tmp_path / "c" / "last.pt"
    save_checkpoint({"a": torch.ones(2), "meta": {"step": 3, "names": ["x"]}}, path)
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temp file left

    with pytest.raises(Exception):  # noqa: B017 - pickling fails before the rename
        save_checkpoint({"a": lambda: 0}, path)
    assert load_checkpoint(path)["meta"]["step"] == 3  # the old one is intact
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]
    torch.save({"x": Evil}, tmp_path / "evil.pt")
    with pytest.raises(Exception, match=r"[Ww]eights"):
        load_checkpoint(tmp_path / "evil.pt")


def _checkpointed(tmp_path, callbacks=(), model=None) -> Trainer:
    """One epoch of 8 steps, a checkpoint every 2."""
    return Trainer(
        model or TwoHeads(),
        regression_tasks(),
        max_epochs=1,
        checkpoint_dir=tmp_path,
        checkpoint_every=2,
        callbacks=list(callbacks),
        device="cpu",
        progress=False,
    )


def test_nan_loss_stops_with_task_and_step_and_keeps_checkpoint(tmp_path):
    trainer = _checkpointed(tmp_path, model=_FailsOnce(at=6, how="nan"))  # at step 6
    with pytest.raises(FloatingPointError, match=r"task 'a' is nan at step 6.*last checkpoint"):
        trainer.fit(loader(regression_data()))
    assert load_checkpoint(tmp_path / "last.pt")["position"]["step"] == 4


def test_nan_loss_before_a_fresh_fits_first_checkpoint_does_not_claim_an_earlier_runs(
    tmp_path,
):
    """A fresh fit (resume=False) into a checkpoint_dir that holds an earlier run's last.pt:
    a NaN loss before this fit's first checkpoint must not call that file "the last
    checkpoint" (resuming from it would continue the other run). It is left untouched."""
    earlier = _checkpointed(tmp_path, model=_FailsOnce(at=5, how="nan"))
    with pytest.raises(FloatingPointError, match=r"at step 5\b.*last checkpoint .* is kept"):
        earlier.fit(loader(regression_data()))  # it stops at step 5; its last.pt is step 4's
    before = (tmp_path / "last.pt").read_bytes()
    trainer = _checkpointed(tmp_path, model=_FailsOnce(at=1, how="nan"))
    with pytest.raises(FloatingPointError, match=r"at step 1\b") as info:
        trainer.fit(loader(regression_data()))
    assert "is kept" not in str(info.value)
    assert "wrote no checkpoint yet" in str(info.value) and "earlier run" in str(info.value)
    assert (tmp_path / "last.pt").read_bytes() == before
    # a fit resumed from it: that checkpoint is the one a resume starts from again
    trainer = _checkpointed(tmp_path, model=_FailsOnce(at=1, how="nan"))
    with pytest.raises(FloatingPointError, match=r"at step 5\b.*last checkpoint .* is kept"):
        trainer.fit(loader(regression_data()), resume=True)
    assert load_checkpoint(tmp_path / "last.pt")["position"]["step"] == 4


def test_non_finite_parameters_stop_before_overwriting_the_checkpoint(tmp_path):
    """A non-finite gradient with finite losses passes the loss guards and makes parameters
    non-finite at the update; the next checkpoint would have kept them as "the last
    checkpoint". Here a callback makes one non-finite at step 4 (as such an update would)."""

    class Poison(Callback):
        def on_step(self, record):
            if record.step == 4:
                with torch.no_grad():
                    next(trainer.model.parameters())[0] = float("nan")

    trainer = _checkpointed(tmp_path, [Poison()])
    with pytest.raises(FloatingPointError, match=r"non-finite by step 4.*last checkpoint"):
        trainer.fit(loader(regression_data()))
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["position"]["step"] == 2
    assert all(v.isfinite().all() for v in state["model"].values() if v.is_floating_point())


def _sampled(steps, checkpoint_dir=None, resume=False):
    torch.manual_seed(0)
    model = TwoHeads(dropout=0.2)
    a, b = regression_data(n=24, seed=0), regression_data(n=40, seed=1)
    trainer = Trainer(
        model,
        regression_tasks(),
        max_steps=steps,
        max_epochs=100,
        seed=3,
        sampler="proportional",
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=1 if checkpoint_dir else None,
        device="cpu",
    )
    trainer.fit({"a": loader(a, 8, shuffle=True), "b": loader(b, 8, shuffle=True)}, resume=resume)
    return model, trainer


def test_sampled_training_resumes_exactly(tmp_path):
    # oracle: 13 uninterrupted steps (each task's loader wraps around mid-run)
    reference, ref = _sampled(13)
    drawn = [t for r in ref.history_.steps for t, v in r.losses.items() if v == v]
    assert set(drawn) == {"a", "b"}
    _sampled(5, tmp_path)
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["source"]["sampler"] == {"step": 5}
    resumed, _ = _sampled(13, tmp_path, resume=True)
    torch.testing.assert_close(flat_params(resumed), flat_params(reference), rtol=0, atol=1e-6)


def _make_balancer(name):
    from multitask.nn.aggregation import NashMTL
    from multitask.nn.weighting import DWA, FAMO

    # Nash-MTL keeps its last weights and the solver's start and handles the steps where the
    # sampler leaves task b out; DWA (its period sums and absent-call counts, here across
    # the checkpoint) and FAMO (its logits and last log losses) run on the drawn tasks then
    return {"nash_mtl": NashMTL, "dwa": lambda: DWA(2, period=5), "famo": lambda: FAMO(2)}[name]()


def _periodic(steps, checkpoint_dir=None, resume=False, balancer="nash_mtl", crash=None):
    from multitask.training import PeriodicSampler

    torch.manual_seed(0)
    model = TwoHeads(dropout=0.2)
    trainer = Trainer(
        model,
        regression_tasks(),
        _make_balancer(balancer),
        lr=0.01,
        max_steps=steps,
        max_epochs=100,
        seed=1,
        grad_accumulation=3,
        sampler=PeriodicSampler({"a": 1, "b": 2}),
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=1 if checkpoint_dir else None,
        callbacks=[] if crash is None else [CrashAt(crash)],
        device="cpu",
    )
    a, b = regression_data(n=24, seed=0), regression_data(n=40, seed=1)
    val = loader(regression_data(n=16, seed=2))
    trainer.fit(
        {"a": loader(a, 8, shuffle=True), "b": loader(b, 8, shuffle=True)}, val, resume=resume
    )
    return model


@pytest.mark.parametrize("balancer", ["nash_mtl", "dwa", "famo"])
@pytest.mark.parametrize("stop", [3, 4])  # 3 + 5 = 8 micro-batches: windows 3, 3, 2
def test_resume_at_an_epoch_boundary_with_sampler_accumulation_and_state(tmp_path, stop, balancer):
    # oracle: 7 uninterrupted steps; stop at the end of epoch 0 (step 3: max_steps, whose
    # final evaluation is the epoch's own) or just after it (a crash at step 5, the last
    # checkpoint at step 4: a max_steps of 4 would evaluate step 4, a candidate the
    # uninterrupted run does not have), then resume
    reference = _periodic(7, balancer=balancer)
    if stop == 3:
        _periodic(stop, tmp_path, balancer=balancer)
    else:
        with pytest.raises(Crashed):
            _periodic(7, tmp_path, balancer=balancer, crash=stop + 1)
    resumed = _periodic(7, tmp_path, resume=True, balancer=balancer)
    torch.testing.assert_close(flat_params(resumed), flat_params(reference), rtol=0, atol=1e-6)


class _Stream(IterableDataset):
    """The samples of a dataset in order: resumed by skipping batches."""

    def __init__(self, data):
        self.data = data

    def __len__(self):
        return len(self.data)

    def __iter__(self):
        return (self.data[i] for i in range(len(self.data)))


@pytest.mark.parametrize("crash", [3, 6])  # 4 steps per epoch: mid-epoch 0 and mid-epoch 1
def test_iterable_dataset_with_dropout_resumes_exactly(tmp_path, crash):
    # oracle: the uninterrupted run. Creating the IterableDataset's iterator used to
    # draw from torch's global RNG again after the resumed run restored it, shifting
    # every later dropout mask
    data = regression_data(n=24)
    resumed, reference = crash_and_resume(
        lambda: DataLoader(_Stream(data), batch_size=6), crash, tmp_path
    )
    torch.testing.assert_close(resumed, reference, rtol=0, atol=1e-6)


@pytest.mark.parametrize("replacement", [False, True])
@pytest.mark.parametrize("crash", [4, 9])  # 36 draws of 24 samples: 6 steps per epoch
def test_random_sampler_with_num_samples_resumes_exactly(tmp_path, replacement, crash):
    # oracle: the uninterrupted run (num_samples > len(dataset) used to stop the
    # trainer on a bare StopIteration)
    data = regression_data(n=24)

    def make_loader():
        sampler = RandomSampler(data, replacement=replacement, num_samples=36)
        return DataLoader(data, batch_size=6, sampler=sampler)

    resumed, reference = crash_and_resume(make_loader, crash, tmp_path)
    torch.testing.assert_close(resumed, reference, rtol=0, atol=1e-6)


class _FailsOnce(TwoHeads):
    """Fails once, at its ``at``-th training forward: raises :class:`Crashed`, or predicts NaN
    (the NaN-loss guard then stops the step)."""

    def __init__(self, at, how):
        super().__init__(dropout=0.2)
        self.at, self.how, self.calls = at, how, 0

    def forward(self, x):
        out = super().forward(x)
        if self.training:
            self.calls += 1
            if self.calls == self.at and self.how == "raise":
                raise Crashed
            if self.calls == self.at:
                out = {t: o * float("nan") for t, o in out.items()}
        return out


@pytest.mark.parametrize("balancer", [None, "uncertainty"])  # with learnable parameters
@pytest.mark.parametrize(("how", "error"), [("raise", Crashed), ("nan", FloatingPointError)])
def test_a_step_stopped_mid_window_leaks_no_gradient_into_the_resumed_fit(
    tmp_path, how, error, balancer
):
    # oracle: the uninterrupted run. The stop comes in the second micro-batch of step 4
    # (forward 8), after the first one's backward; its gradient used to stay in .grad (the
    # model's and the balancer's) and be added to the first step of the resumed fit on the
    # same objects
    from multitask.nn.weighting import UncertaintyWeighting

    def trainer(model, checkpoint_dir=None):
        return Trainer(
            model,
            regression_tasks(),
            None if balancer is None else UncertaintyWeighting(2),
            lr=0.05,
            max_epochs=2,
            seed=3,
            grad_accumulation=2,
            checkpoint_dir=checkpoint_dir,
            checkpoint_every=1 if checkpoint_dir else None,
            device="cpu",
            progress=False,
        )

    data = loader(regression_data(), batch_size=8, shuffle=True)
    torch.manual_seed(0)
    reference = _FailsOnce(at=0, how=how)
    ref = trainer(reference).fit(data)
    torch.manual_seed(0)
    model = _FailsOnce(at=8, how=how)
    interrupted = trainer(model, tmp_path)
    with pytest.raises(error):
        interrupted.fit(data)
    assert load_checkpoint(tmp_path / "last.pt")["position"]["step"] == 3
    interrupted.fit(data, resume=True)
    assert interrupted.step_ == 8
    torch.testing.assert_close(flat_params(model), flat_params(reference), rtol=0, atol=1e-6)
    if balancer is not None:
        torch.testing.assert_close(
            flat_params(interrupted.balancer), flat_params(ref.balancer), rtol=0, atol=1e-6
        )


def test_the_mps_generator_state_round_trips_through_a_checkpoint(tmp_path, monkeypatch):
    # no Apple GPU here: its availability and generator are stand-ins (a byte state)
    mps = {"state": torch.arange(16, dtype=torch.uint8)}
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.mps, "get_rng_state", lambda *a, **k: mps["state"].clone())
    monkeypatch.setattr(torch.mps, "set_rng_state", lambda s, *a, **k: mps.update(state=s.clone()))
    save_checkpoint({"rng": get_rng_state()}, tmp_path / "c.pt")
    saved = mps["state"].clone()
    mps["state"] = torch.zeros(16, dtype=torch.uint8)  # the generator moves on
    set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    assert torch.equal(mps["state"], saved)
    # a checkpoint from a machine without MPS (or from before) leaves the generator alone
    mps["state"] = torch.ones(16, dtype=torch.uint8)
    without = get_rng_state()
    without.pop("mps", None)
    set_rng_state(without)
    assert torch.equal(mps["state"], torch.ones(16, dtype=torch.uint8))
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert get_rng_state()["mps"] is None
