"""The :class:`~multitask.training.Trainer`'s exact resume: its state, the checkpoint it writes
and reads, and the stop a Ctrl-C asks for (at a step boundary, checkpointed)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from multitask.training._interrupt import GracefulInterrupt
from multitask.training.checkpoint import (
    get_rng_state,
    load_checkpoint,
    load_module_state,
    save_checkpoint,
    set_rng_state,
)

__all__ = ["Checkpointing"]


class Checkpointing:
    """Mixin of :class:`~multitask.training.Trainer`: ``state_dict``, ``load_state_dict``,
    ``checkpoint_dir / "last.pt"``, resume, and Ctrl-C. It reads the trainer's attributes
    (``model``, ``optimizer_``, ``scheduler_``, ``balancer``, ``_src``, ``_selector``, ``_labels``,
    and the position ``epoch_``, ``_batch``, ``step_``) and adds ``_interrupt`` and
    ``_resumable`` (the checkpoint this fit would resume from: the one it resumed from or
    last wrote; None before, when ``last.pt`` may still be an earlier run's, which a fresh
    fit leaves in place until its first checkpoint)."""

    @property
    def checkpoint_path(self) -> Path | None:
        """``checkpoint_dir / "last.pt"`` (None without a checkpoint_dir)."""
        return None if self.checkpoint_dir is None else self.checkpoint_dir / "last.pt"

    def state_dict(self) -> dict:
        """Everything an exact resume needs (tensors and primitive containers only)."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer_.state_dict(),
            "balancer": {} if self.balancer is None else self.balancer.state_dict(),
            "rng": get_rng_state(),
            "source": self._src.state_dict(),
            "position": {"epoch": self.epoch_, "batch": self._batch, "step": self.step_},
            "selection": self._selector.state_dict(),
            "labels": self._labels.state_dict(),
            "scheduler": None if self.scheduler_ is None else self.scheduler_.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a state from :meth:`state_dict` (after ``_setup``)."""
        self.model.load_state_dict(state["model"])
        self.optimizer_.load_state_dict(state["optimizer"])
        if self.balancer is not None:
            load_module_state(self.balancer, state["balancer"])
        self._src.load_state_dict(state["source"])
        pos = state["position"]
        self.epoch_, self._batch, self.step_ = pos["epoch"], pos["batch"], pos["step"]
        self._selector.load_state_dict(state["selection"])
        self._labels.load_state_dict(state.get("labels"))  # (absent from older checkpoints)
        self._load_scheduler(state.get("scheduler"))
        set_rng_state(state["rng"])

    def _load_scheduler(self, saved: dict | None) -> None:
        """The learning-rate scheduler's position; the checkpoint and this trainer must both
        have one or both have none (else the learning rates would not continue the run)."""
        if (saved is None) != (self.scheduler_ is None):
            had = "no scheduler" if saved is None else "a scheduler"
            has = "none" if self.scheduler_ is None else "one"
            raise ValueError(
                f"the checkpoint was written by a fit with {had} and this trainer has {has}: "
                "resume with the scheduler settings of the run that wrote it"
            )
        if saved is not None:
            self.scheduler_.load_state_dict(saved)

    def _check_parameters(self) -> None:
        """A non-finite gradient with finite losses (the loss guards pass) makes the
        parameters non-finite at the update: a FloatingPointError before a checkpoint would
        keep them, and at the end of ``fit`` (one pass over the parameters)."""
        bad = [name for name, p in self.model.named_parameters() if not p.isfinite().all()]
        if bad:
            with self._stopping():
                raise FloatingPointError(
                    f"parameters {bad[:5]} became non-finite by step {self.step_} (a non-finite "
                    "gradient with finite losses); lower the learning rate or clip the gradients "
                    "(Trainer(clip_grad_norm=...))"
                )

    def _save(self) -> None:
        if self.checkpoint_path is None:
            return
        self._check_parameters()  # rather than overwrite the last good checkpoint
        save_checkpoint(self.state_dict(), self.checkpoint_path)
        self._resumable = self.checkpoint_path

    def _evaluate_or_keep(self, loader) -> dict:
        """``self.evaluate(loader)`` inside ``fit``. If it fails (validation data the first
        evaluation refuses, a loader that breaks), the checkpoint is written first, with the
        RNG state from before the evaluation, at the step that awaits it: ``resume=True``
        with mended data evaluates that step, then continues exactly (nothing is lost)."""
        rng = None if self.checkpoint_path is None else get_rng_state()
        try:
            return self.evaluate(loader)
        except Exception as e:
            self._keep_work(e, rng)
            raise

    def _keep_work(self, e: Exception, rng) -> None:
        """On a failed evaluation, or a model selection that fails after it (a monitored
        metric the data does not report, nothing labelled): the checkpoint of the step that
        awaits its evaluation, with ``rng`` (the RNG state from before the evaluation; None:
        no checkpoint path, nothing written), and a note on ``e`` naming it. The selection is
        unchanged by a failed update, so ``resume=True`` with mended data evaluates that step
        again."""
        if rng is None:
            return
        state = self.state_dict()
        state["rng"] = rng
        self._check_parameters()
        save_checkpoint(state, self.checkpoint_path)
        self._resumable = self.checkpoint_path
        e.add_note(
            f"checkpoint {self.checkpoint_path} written at step {self.step_}, before this "
            f"evaluation: fit(..., resume=True) with mended validation data evaluates "
            f"step {self.step_} and continues exactly"
        )

    def _evaluation_pending(self) -> bool:
        """A run resumed at a ``val_every`` step whose evaluation is not done (it failed, see
        :meth:`_evaluate_or_keep`): it is evaluated before the next step. (An epoch's end
        and the last step need no such test: their evaluation follows the position.)"""
        return (
            self.val_every is not None
            and self._val is not None
            and self.step_ > 0
            and self.step_ % self.val_every == 0
            and self._selector.last_step != self.step_
        )

    def _stop_if_interrupted(self) -> None:
        """After a SIGINT (:class:`GracefulInterrupt`), at an optimizer-step boundary or after
        an epoch's evaluation: write the checkpoint and raise KeyboardInterrupt."""
        if not self._interrupt.requested:
            return
        self._save()
        where = f"after step {self.step_} (epoch {self.epoch_}, batch {self._batch})"
        if self.checkpoint_path is None:
            raise KeyboardInterrupt(
                f"fit interrupted (SIGINT) {where}; no checkpoint_dir, so nothing was written: "
                f"the model holds its parameters after step {self.step_}"
            )
        raise KeyboardInterrupt(
            f"fit interrupted (SIGINT) {where}; checkpoint {self.checkpoint_path} written at "
            f"step {self.step_}: fit(..., resume=True) continues exactly from it"
        )

    def _interruptible(self) -> GracefulInterrupt:
        what = "write its checkpoint" if self.checkpoint_path is not None else "return"
        self._interrupt = GracefulInterrupt(
            f"Ctrl-C: the trainer will finish its optimizer step, {what} and stop"
        )
        return self._interrupt

    def _resume(self, resume) -> None:
        self._resumable = None
        if resume is False or resume is None:
            return
        path = self.checkpoint_path if resume is True else Path(resume)
        if path is None:
            raise ValueError("resume=True needs a checkpoint_dir; or pass resume=<path>")
        if resume is True and not path.is_file():
            return  # nothing to resume yet: a fresh run
        self.load_state_dict(load_checkpoint(path))
        self._resumable = path

    @contextlib.contextmanager
    def _stopping(self):
        """A guard's error (``_guards``) says which checkpoint a resume would start from."""
        try:
            yield
        except (ValueError, FloatingPointError) as e:
            path = getattr(self, "_resumable", None)
            if path is not None:
                raise type(e)(f"{e}; the last checkpoint {path} is kept") from None
            other = self.checkpoint_path
            if other is None or not other.is_file():
                raise
            raise type(e)(
                f"{e}; this fit wrote no checkpoint yet: {other} is an earlier run's, left "
                "as it was"
            ) from None

    def _where(self) -> str:
        return f"at step {self.step_ + 1} (epoch {self.epoch_}, batch {self._batch})"
