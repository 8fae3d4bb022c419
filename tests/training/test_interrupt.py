"""Ctrl-C (SIGINT) during ``fit``: stop at the next optimizer step, checkpoint, resume exactly."""

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from _training_helpers import TwoHeads, flat_params, loader, regression_data, regression_tasks
from _training_interrupt_run import INTERRUPTED, run

from multitask.training import Callback, Trainer, load_checkpoint
from multitask.training._interrupt import GracefulInterrupt, iter_shielded

SCRIPT = Path(__file__).with_name("_training_interrupt_run.py")


def _interrupted(tmp_path, grad_accumulation, when, at, times=1, workers=0):
    command = [sys.executable, str(SCRIPT), str(tmp_path), str(grad_accumulation), when]
    command += [str(at), str(times), str(workers)]
    # its own session: with workers it signals its whole process group, not pytest's
    proc = subprocess.run(
        command, check=False, capture_output=True, text=True, start_new_session=True
    )
    # the script's exit status when fit lets a KeyboardInterrupt through
    assert proc.returncode == INTERRUPTED, proc.stderr
    return proc.stderr


@pytest.mark.slow  # a subprocess: importing torch takes a few seconds
@pytest.mark.parametrize(
    ("grad_accumulation", "when", "at", "position"),
    [
        # SIGINT inside the forward of step 11 (epoch 1, batch 2): stops after it
        (1, "train", 11, {"epoch": 1, "batch": 3, "step": 11}),
        # 4 steps an epoch; SIGINT in the first micro-batch of step 5: its second one still
        # runs, the step is taken, then the stop
        (2, "train", 9, {"epoch": 1, "batch": 2, "step": 5}),
        # during the first validation (end of epoch 0): stops after it, at the epoch boundary
        (1, "eval", 1, {"epoch": 1, "batch": 0, "step": 8}),
    ],
)
def test_sigint_checkpoints_at_the_next_step_and_resumes_exactly(
    tmp_path, grad_accumulation, when, at, position
):
    # oracle: the same run without interruption (dropout, shuffling, model selection on)
    reference, ref_trainer = run(grad_accumulation=grad_accumulation)
    stderr = _interrupted(tmp_path, grad_accumulation, when, at)
    step = position["step"]
    assert f"KeyboardInterrupt: fit interrupted (SIGINT) after step {step}" in stderr
    assert str(tmp_path / "last.pt") in stderr and "resume=True" in stderr
    # no periodic checkpoint (checkpoint_every None): this one was written by the stop
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["position"] == position
    resumed, trainer = run(tmp_path, grad_accumulation, resume=True)
    assert trainer.step_ == ref_trainer.step_ > step
    assert trainer.best_step_ == ref_trainer.best_step_
    torch.testing.assert_close(flat_params(resumed), flat_params(reference), rtol=0, atol=1e-6)


@pytest.mark.slow
def test_a_terminal_ctrl_c_reaching_dataloader_workers_stops_gracefully(tmp_path):
    # a terminal's Ctrl-C goes to the whole process group: forked DataLoader workers inherit
    # the handler and keep serving batches; the main process stops after step 11
    reference, _ = run()
    stderr = _interrupted(tmp_path, 1, "train", 11, workers=2)
    assert stderr.count("Ctrl-C: the trainer will finish") == 1  # not once per worker too
    assert load_checkpoint(tmp_path / "last.pt")["position"]["step"] == 11
    resumed, _ = run(tmp_path, resume=True)
    torch.testing.assert_close(flat_params(resumed), flat_params(reference), rtol=0, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("grad_accumulation", "when", "at", "position"),
    [
        # the one worker builds batch 5 of epoch 0 (its 45th item), which the main process
        # awaits after step 5: the worker survives, step 6 is taken, then the stop
        (1, "fetch", 8 * 5 + 5, {"epoch": 0, "batch": 6, "step": 6}),
        # 2 micro-batches a step: batch 5 is the second of step 3, awaited in the middle of
        # its accumulation window (a dead worker there failed the step: no checkpoint could
        # be written)
        (2, "fetch", 8 * 5 + 5, {"epoch": 0, "batch": 6, "step": 3}),
        # the validation loader's worker, in the first evaluation (end of epoch 0): that
        # evaluation completes, then the stop at the epoch boundary
        (1, "fetch-val", 5, {"epoch": 1, "batch": 0, "step": 8}),
    ],
)
def test_spawned_workers_survive_a_terminal_ctrl_c(tmp_path, grad_accumulation, when, at, position):
    # spawned workers inherit no handler: the trainer starts them with SIGINT blocked, so a
    # Ctrl-C sent to the whole process group while the main process awaits their batch
    # stops the run at the next step boundary, as without workers
    reference, ref_trainer = run(grad_accumulation=grad_accumulation)
    stderr = _interrupted(tmp_path, grad_accumulation, when, at, workers=1)
    assert f"fit interrupted (SIGINT) after step {position['step']}" in stderr
    assert "exited unexpectedly" not in stderr  # no worker died
    assert load_checkpoint(tmp_path / "last.pt")["position"] == position
    resumed, trainer = run(tmp_path, grad_accumulation, resume=True)
    assert trainer.step_ == ref_trainer.step_ and trainer.best_step_ == ref_trainer.best_step_
    torch.testing.assert_close(flat_params(resumed), flat_params(reference), rtol=0, atol=1e-6)


@pytest.mark.slow
def test_a_worker_dying_of_a_ctrl_c_while_a_batch_is_awaited_stops_at_that_step(tmp_path):
    # a worker that does die of the Ctrl-C (one forked by a forkserver started before fit is
    # not shielded): it sends SIGINT to the main process and kills itself while building
    # batch 5 of epoch 0, which the main process awaits after step 5; the loader's "worker
    # exited unexpectedly" at that step boundary is the stop the Ctrl-C asked for
    reference, _ = run()
    stderr = _interrupted(tmp_path, 1, "fetch-dies", 8 * 5 + 5, workers=1)
    assert "fit interrupted (SIGINT) after step 5" in stderr
    assert load_checkpoint(tmp_path / "last.pt")["position"] == {"epoch": 0, "batch": 5, "step": 5}
    resumed, _ = run(tmp_path, resume=True)
    torch.testing.assert_close(flat_params(resumed), flat_params(reference), rtol=0, atol=1e-6)


@pytest.mark.slow
def test_a_second_sigint_stops_at_once_without_a_checkpoint(tmp_path):
    stderr = _interrupted(tmp_path, 1, "train", 11, times=2)
    assert "a second Ctrl-C" in stderr
    assert not (tmp_path / "last.pt").exists()


class _Handler(Callback):
    """Records the SIGINT handler in force during ``fit``."""

    def __init__(self):
        self.seen = []

    def on_step(self, record):
        self.seen.append(signal.getsignal(signal.SIGINT))


def _fit(callbacks, **kw):
    trainer = Trainer(
        TwoHeads(),
        regression_tasks(),
        max_steps=2,
        device="cpu",
        progress=False,
        callbacks=callbacks,
        **kw,
    )
    trainer.fit(loader(regression_data(n=16)))


def test_the_handler_is_installed_for_fit_only_and_restored():
    def mine(signum, frame):  # a handler of the user's own
        raise AssertionError("not called")

    previous = signal.signal(signal.SIGINT, mine)
    try:
        spy = _Handler()
        _fit([spy])
        assert spy.seen and all(h is not mine and callable(h) for h in spy.seen)
        assert signal.getsignal(signal.SIGINT) is mine

        class Boom(Callback):
            def on_step(self, record):
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            _fit([Boom()])
        assert signal.getsignal(signal.SIGINT) is mine  # restored after an error too
    finally:
        signal.signal(signal.SIGINT, previous)


def test_an_ignored_sigint_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        spy = _Handler()
        _fit([spy])
        assert spy.seen == [signal.SIG_IGN, signal.SIG_IGN]
    finally:
        signal.signal(signal.SIGINT, previous)


def test_outside_the_main_thread_sigint_is_left_alone():
    before = signal.getsignal(signal.SIGINT)
    spy, errors = _Handler(), []

    def target():
        try:
            _fit([spy])
        except Exception as e:  # reported below
            errors.append(e)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    assert not errors
    assert spy.seen == [before, before]


def test_with_several_ranks_sigint_is_left_alone(monkeypatch):
    # ranks could stop at different steps and hang in the next collective: fit leaves SIGINT
    # to its default there (docs/training.md)
    import torch.distributed as dist

    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda group=None: 2)
    monkeypatch.setattr(dist, "get_rank", lambda group=None: 1)  # (the DataLoader asks)
    before = signal.getsignal(signal.SIGINT)
    spy = _Handler()
    _fit([spy])
    assert spy.seen == [before, before]


class _StartingWorkers:
    """A loader whose ``iter`` stands for starting its workers: it records whether SIGINT is
    blocked in the thread that starts them (they inherit that) and, with ``signal_during``,
    receives a Ctrl-C meanwhile."""

    num_workers = 1
    multiprocessing_context = multiprocessing.get_context("fork")  # (no resource tracker)

    def __init__(self, signal_during: bool = False):
        self.signal_during, self.blocked = signal_during, None

    def __iter__(self):
        self.blocked = signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, set())
        if self.signal_during:
            os.kill(os.getpid(), signal.SIGINT)
        return iter(())


def test_workers_start_with_sigint_blocked_and_a_sigint_meanwhile_is_not_lost():
    with GracefulInterrupt("test: stopping") as interrupt:
        if signal.getsignal(signal.SIGINT) != interrupt._handle:
            pytest.skip("SIGINT is not Python's to handle here")
        quiet = _StartingWorkers()
        iter_shielded(quiet)
        assert quiet.blocked  # what the workers inherit
        assert not interrupt.requested
        loud = _StartingWorkers(signal_during=True)
        iter_shielded(loud)
        assert loud.blocked
        assert interrupt.requested  # taken by another thread, or held pending, then handled
        assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, set())  # restored


def test_without_the_trainers_handler_loaders_are_left_alone():
    plain = _StartingWorkers()
    iter_shielded(plain)
    assert plain.blocked is False
