"""Seeded, resumable batch orders for the trainer.

The trainer never relies on a DataLoader's internal state to resume: it reads
the loader's dataset, batch size, collate function and sampler (whether it
shuffles, its ``num_samples`` and ``replacement``), and builds the batch order
of epoch ``e`` itself from ``(seed, e)``. Resuming at ``(epoch, batch)``
rebuilds that order and starts at ``batch``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
)

from multitask.training._interrupt import iter_shielded
from multitask.training._setup import split_batch
from multitask.training.checkpoint import get_rng_state, set_rng_state
from multitask.training.samplers import TaskSampler

#: one part of a micro-step: the tasks it trains, inputs, targets
Part = tuple[tuple[str, ...], Any, Any]


_END = object()


class _IndexBatches:
    """A batch sampler over a fixed list of index lists (what DataLoader accepts)."""

    def __init__(self, batches: list[list[int]]):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def _batch_targets(batches: Sequence, tasks: Sequence[str]) -> dict[str, Tensor]:
    """Each task's targets over a list of batches, flattened and joined; ``{}`` when a
    batch is not ``(inputs, {task: target})`` (the step that reads it says what is wrong)."""
    found: dict[str, list] = {t: [] for t in tasks}
    for batch in batches:
        targets = batch[1] if isinstance(batch, (tuple, list)) and len(batch) == 2 else None
        if not isinstance(targets, Mapping):
            return {}
        for t in list(found):
            y = targets.get(t)
            if isinstance(y, (Tensor, np.ndarray)):
                found[t].append(torch.as_tensor(y).reshape(-1))
            else:
                del found[t]
    try:
        return {t: torch.cat(ys) for t, ys in found.items() if ys}
    except RuntimeError:  # batches on different devices: counted while training
        return {}


def _dataset_targets(dataset, tasks: Sequence[str]) -> dict[str, Tensor]:
    """Each task's targets from a dataset (or a ``Subset`` of one) whose ``targets`` maps
    task names to all its targets, flattened; ``{}`` for any other dataset."""
    rows = None
    if isinstance(dataset, Subset):
        dataset, rows = dataset.dataset, list(dataset.indices)
    targets = getattr(dataset, "targets", None)
    if not isinstance(targets, Mapping):
        return {}
    found = {}
    for t in tasks:
        y = targets.get(t)
        if isinstance(y, (Tensor, np.ndarray)) and len(y) == len(dataset):
            y = torch.as_tensor(y)
            found[t] = (y if rows is None else y[rows]).reshape(-1)
    return found


def targets_at_hand(loader, tasks: Sequence[str]) -> dict[str, Tensor]:
    """The targets of ``tasks`` that one pass over ``loader`` would read, when they can be
    had without loading the data, each flattened: a list of batches' own, or those of a
    dataset with a ``targets`` mapping read whole, in order or shuffled without
    replacement. ``{}`` for anything else (a custom sampler, an iterable dataset)."""
    if not isinstance(loader, DataLoader):
        return _batch_targets(loader, tasks) if isinstance(loader, Sequence) else {}
    batches = loader.batch_sampler
    if isinstance(loader.dataset, IterableDataset) or type(batches) is not BatchSampler:
        return {}
    sampler = batches.sampler
    whole = isinstance(sampler, SequentialSampler) or (
        isinstance(sampler, RandomSampler)
        and not sampler.replacement
        and sampler.num_samples == len(loader.dataset)
    )
    return _dataset_targets(loader.dataset, tasks) if whole else {}


class ResumableLoader:
    """Iterate a DataLoader (or a list of batches) from any ``(epoch, batch)``.

    Parameters
    ----------
    loader : DataLoader or sequence of batches
        A DataLoader with a map-style dataset and a ``RandomSampler`` (its
        ``num_samples`` and ``replacement`` are honoured, its own generator is
        not: ``seed`` decides) or ``SequentialSampler``, batched by the DataLoader
        (``batch_size``) or by a plain ``BatchSampler`` passed as ``batch_sampler``,
        resumes exactly. A plain sequence of batches is replayed in order. Other
        loaders are iterated as they are and resumed by skipping batches, which is
        exact only if their order is deterministic: a custom sampler or batch
        sampler, or unbatched (``batch_size=None``) random sampling, is warned
        about; an iterable dataset is not (its order is its own).
    seed : int
        Seed of the shuffled order; epoch ``e`` uses ``(seed, e)``.
    name : str
        How errors name the loader.
    """

    def __init__(
        self, loader: DataLoader | Sequence, seed: int = 0, name: str = "the training DataLoader"
    ):
        self.loader = loader
        self.seed = int(seed)
        self.name = name
        self._mode = self._pick_mode(loader)
        self._warned_workers = False
        try:
            len(loader)
        except TypeError:
            raise TypeError(
                f"the training DataLoader has no length (its {type(loader.dataset).__name__} "
                "has no __len__); the trainer counts epochs and resume positions in batches: "
                "give the dataset a __len__"
            ) from None

    @staticmethod
    def _pick_mode(loader) -> str:
        if not isinstance(loader, DataLoader):
            if not isinstance(loader, Sequence):
                raise TypeError(
                    f"training data must be a DataLoader, a list of batches or a dict of "
                    f"those; got {type(loader).__name__}"
                )
            return "sequence"
        if isinstance(loader.dataset, IterableDataset):
            return "skip"
        batches = loader.batch_sampler  # the DataLoader's own BatchSampler under batch_size
        if batches is None:  # batch_size=None: each item of the sampler is a batch
            if isinstance(loader.sampler, SequentialSampler):
                return "skip"
            what = f"a {type(loader.sampler).__name__} and batch_size=None"
        elif type(batches) is not BatchSampler:  # a subclass may order batches its own way
            what = f"a custom batch_sampler, {type(batches).__name__}"
        elif isinstance(batches.sampler, (RandomSampler, SequentialSampler)):
            return "indices"
        else:
            what = f"a {type(batches.sampler).__name__}"
        warnings.warn(
            f"DataLoader with {what}: resume skips batches, exact only if its order is "
            "deterministic (not if it shuffles with torch's global RNG); batch_size with a "
            "RandomSampler or SequentialSampler resumes exactly",
            stacklevel=3,
        )
        return "skip"

    def __len__(self) -> int:
        return len(self.loader)

    def whole_targets(self, tasks: Sequence[str]) -> dict[str, Tensor]:
        """All the targets of those ``tasks`` that can be had without loading the data, each
        flattened into one tensor: a list of batches' own, or those of a dataset (or a
        ``Subset`` of one) whose ``targets`` maps task names to all its targets, under a
        random or sequential sampler (which read the whole dataset)."""
        if self._mode == "sequence":
            return _batch_targets(self.loader, tasks)
        if self._mode != "indices":
            return {}
        return _dataset_targets(self.loader.dataset, tasks)

    def _generator(self, epoch: int) -> torch.Generator:
        # a private generator: creating a DataLoader iterator draws its workers' base
        # seed from it, and drawing from torch's global RNG instead would shift a
        # resumed run's dropout masks (the uninterrupted run drew before the checkpoint)
        return torch.Generator().manual_seed(self.seed + 7919 * epoch)

    def _order(self, epoch: int) -> list[list[int]]:
        # read from the BatchSampler, which is the DataLoader's own (over loader.sampler)
        # under batch_size and the user's under batch_sampler
        batches = self.loader.batch_sampler
        sampler = batches.sampler
        n = len(self.loader.dataset)
        m = len(sampler)  # RandomSampler: its num_samples, may differ from n
        rng = np.random.default_rng([self.seed, epoch])
        if not isinstance(sampler, RandomSampler):
            idx = np.arange(n)
        elif sampler.replacement:
            idx = rng.integers(n, size=m) if n else np.arange(0)
        else:  # like RandomSampler: whole permutations, then the head of one more
            idx = np.concatenate([rng.permutation(n) for _ in range(-(-m // max(n, 1)))])[:m]
        b = batches.batch_size
        stop = m - m % b if batches.drop_last else m
        return [idx[i : i + b].tolist() for i in range(0, stop, b)]

    def iterate(self, epoch: int, start: int = 0) -> Iterator[Any]:
        """Batches of ``epoch`` from batch index ``start`` on.

        Raises
        ------
        RuntimeError
            If the loader yields fewer batches than its ``len()`` (the trainer
            counts an epoch in ``len()`` batches).
        """
        expected, count = len(self) - start, 0
        for batch in self._batches(epoch, start):
            count += 1
            yield batch
        if count < expected:
            raise RuntimeError(
                f"{self.name} yielded {start + count} batches in epoch {epoch} but its len() "
                f"is {len(self)}; the trainer counts an epoch in len() batches: make its "
                "sampler, batch sampler or dataset yield as many batches as len() says"
            )

    def _batches(self, epoch: int, start: int) -> Iterator[Any]:
        if self._mode == "sequence":
            yield from self.loader[start:]
            return
        self._set_epoch(epoch)
        if self._mode == "skip":
            yield from self._skipped(epoch, start)
            return
        if start > 0:
            self._warn_workers(epoch, start)
        order = self._order(epoch)[start:]
        if order:
            yield from iter_shielded(self.rebuild(order, epoch))

    def _skipped(self, epoch: int, start: int) -> Iterator[Any]:
        """The batches of ``epoch`` from ``start`` on, the ones before it read and dropped.
        Loading them may draw random numbers in this process (a dataset's augmentation with
        ``num_workers=0``); the uninterrupted run drew them before the checkpoint whose RNG
        state the resume restored, so the RNG state is put back after the skip."""
        it = self._skip_iterator(epoch)
        rng = get_rng_state() if start > 0 else None
        for _ in range(start):
            if next(it, _END) is _END:
                break
        if rng is not None:
            set_rng_state(rng)
        yield from it

    def _set_epoch(self, epoch: int) -> None:
        """``set_epoch(epoch)`` on the loader's sampler and batch sampler (and the batch
        sampler's sampler) that have one, as a training script calls it before each epoch:
        a ``DistributedSampler`` shuffles from ``(seed, epoch)`` and would otherwise replay
        epoch 0's order every epoch."""
        batches = self.loader.batch_sampler
        found = [self.loader.sampler, batches, getattr(batches, "sampler", None)]
        done = []
        for obj in found:
            if obj is None or any(obj is d for d in done):
                continue
            done.append(obj)
            set_epoch = getattr(obj, "set_epoch", None)
            if callable(set_epoch):
                set_epoch(epoch)

    def _warn_workers(self, epoch: int, start: int) -> None:
        """Once: a resume inside an epoch with DataLoader workers does not replay the random
        numbers drawn inside the workers (a dataset's augmentation): their streams start
        afresh at the resume batch, where the uninterrupted run's had run on."""
        if self.loader.num_workers == 0 or self._warned_workers:
            return
        self._warned_workers = True
        warnings.warn(
            f"resuming {self.name} at batch {start} of epoch {epoch} with num_workers="
            f"{self.loader.num_workers}: random numbers drawn inside DataLoader workers (a "
            "dataset's random augmentation in __getitem__ or collate_fn) are not replayed, "
            "so from here the run differs from an uninterrupted one; the batch order, the "
            "model and every other random stream resume exactly (num_workers=0 replays them)",
            UserWarning,
            stacklevel=2,
        )

    def _skip_iterator(self, epoch: int) -> Iterator[Any]:
        """``iter(loader)``, drawing the workers' base seed from a private generator.

        A user's own ``generator`` is kept. Without one the DataLoader would draw
        from torch's global RNG; it is lent a private one for the call only (the
        iterator reads it when it is created) and given back unchanged.
        """
        loader = self.loader
        if loader.generator is not None:
            return iter_shielded(loader)
        loader.generator = self._generator(epoch)
        try:
            return iter_shielded(loader)
        finally:
            loader.generator = None

    def rebuild(self, order: list[list[int]], epoch: int) -> DataLoader:
        """The loader's DataLoader settings over the batches ``order`` of ``epoch``."""
        loader = self.loader
        workers = {}
        if loader.num_workers > 0:
            workers = {
                "prefetch_factor": loader.prefetch_factor,
                "multiprocessing_context": loader.multiprocessing_context,
                "timeout": loader.timeout,
            }
        return DataLoader(
            loader.dataset,
            batch_sampler=_IndexBatches(order),
            collate_fn=loader.collate_fn,
            num_workers=loader.num_workers,
            pin_memory=loader.pin_memory,
            worker_init_fn=loader.worker_init_fn,
            generator=self._generator(epoch),
            **workers,
        )


class SingleSource:
    """Every batch carries targets for every task: one part per micro-step."""

    def __init__(self, loader, tasks: Sequence[str], seed: int):
        self.loader = ResumableLoader(loader, seed)
        self.tasks = tuple(tasks)
        if len(self.loader) == 0:
            raise ValueError(
                "the training DataLoader yields no batch (empty dataset, or fewer samples "
                "than batch_size with drop_last=True); give it at least one sample"
            )

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def trained(self) -> tuple[str, ...]:
        """The tasks that have training data."""
        return self.tasks

    def whole_targets(self) -> dict[str, Tensor]:
        """See :meth:`ResumableLoader.whole_targets`."""
        return self.loader.whole_targets(self.tasks)

    def read_once(self, epoch: int, batch: int) -> tuple[str, ...]:
        """The tasks whose data has been read at least once by position ``(epoch, batch)``."""
        return self.tasks if epoch > 0 or batch >= len(self) else ()

    def iterate(self, epoch: int, start: int) -> Iterator[list[Part]]:
        for i, batch in enumerate(self.loader.iterate(epoch, start)):
            inputs, targets = split_batch(batch, f"epoch {epoch}, batch {start + i}")
            yield [(self.tasks, inputs, targets)]

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: Mapping) -> None:
        pass


class SampledSource:
    """One DataLoader per task; a :class:`TaskSampler` picks the tasks of each step.

    An epoch is ``sum(len(loader_t))`` micro-steps. Each task's loader cycles on
    its own (its own epoch counter and shuffled order), so a small task is
    revisited while a large one is still in its first pass.
    """

    def __init__(self, loaders: Mapping[str, Any], sampler: TaskSampler, seed: int):
        unknown = set(sampler.tasks) - set(loaders)
        if unknown:
            raise ValueError(f"the task sampler names tasks {sorted(unknown)} with no DataLoader")
        never = set(loaders) - set(sampler.tasks)
        if never:
            raise ValueError(
                f"the task sampler never draws tasks {sorted(never)}, which have a DataLoader; "
                f"build it on every task of the dict (it has {list(sampler.tasks)})"
            )
        self.loaders = {
            t: ResumableLoader(dl, seed + i, f"the DataLoader of task {t!r}")
            for i, (t, dl) in enumerate(loaders.items())
        }
        empty = [t for t, dl in self.loaders.items() if len(dl) == 0]
        if empty:
            raise ValueError(f"the DataLoaders of tasks {empty} yield no batch; drop those tasks")
        self.sampler = sampler
        self.position = {t: [0, 0] for t in self.loaders}  # task -> [epoch, batch]
        self._iters: dict[str, Iterator] = {}

    def __len__(self) -> int:
        return sum(len(dl) for dl in self.loaders.values())

    @property
    def trained(self) -> tuple[str, ...]:
        """The tasks that have training data (a loader)."""
        return tuple(self.loaders)

    def whole_targets(self) -> dict[str, Tensor]:
        """See :meth:`ResumableLoader.whole_targets` (each task from its own loader)."""
        found = {}
        for t, dl in self.loaders.items():
            found.update(dl.whole_targets([t]))
        return found

    def read_once(self, epoch: int, batch: int) -> tuple[str, ...]:
        """The tasks whose loader has been read through at least once (each cycles on its
        own: the trainer's position says nothing)."""
        return tuple(t for t, (e, b) in self.position.items() if e > 0 or b >= len(self.loaders[t]))

    def _next_batch(self, task: str):
        pos = self.position[task]
        if task not in self._iters:
            self._iters[task] = self.loaders[task].iterate(pos[0], pos[1])
        try:
            batch = next(self._iters[task])
        except StopIteration:
            pos[0], pos[1] = pos[0] + 1, 0
            self._iters[task] = self.loaders[task].iterate(pos[0], 0)
            batch = next(self._iters[task])
        pos[1] += 1
        return batch

    def iterate(self, epoch: int, start: int) -> Iterator[list[Part]]:
        for _ in range(start, len(self)):
            parts = []
            for task in self.sampler.next():
                inputs, targets = split_batch(self._next_batch(task), f"task {task!r}")
                parts.append(((task,), inputs, targets))
            yield parts

    def state_dict(self) -> dict:
        return {
            "sampler": self.sampler.state_dict(),
            "position": {t: list(p) for t, p in self.position.items()},
        }

    def load_state_dict(self, state: Mapping) -> None:
        self.sampler.load_state_dict(state["sampler"])
        self.position = {t: [int(e), int(b)] for t, (e, b) in state["position"].items()}
        self._iters = {}
