"""The resumable loader rebuilds the user's DataLoader with the same settings."""

import numpy as np
import pytest
import torch
from _training_helpers import TwoHeads, regression_data, regression_tasks
from torch.utils.data import DataLoader, IterableDataset, RandomSampler

from multitask.training import Trainer
from multitask.training._batches import ResumableLoader


def test_rebuilt_loader_keeps_the_worker_settings():
    # multiprocessing_context (spawn, needed with CUDA in workers), timeout and
    # prefetch_factor used to be dropped: workers were forked with the defaults
    data = regression_data(n=8)
    user = DataLoader(
        data,
        batch_size=4,
        shuffle=True,
        num_workers=2,
        multiprocessing_context="spawn",
        timeout=7.0,
        prefetch_factor=3,
        pin_memory=False,
    )
    rebuilt = ResumableLoader(user, seed=1).rebuild([[0, 1], [2, 3]], epoch=0)
    for name in ("num_workers", "timeout", "prefetch_factor", "collate_fn", "pin_memory"):
        assert getattr(rebuilt, name) == getattr(user, name), name
    assert rebuilt.multiprocessing_context is user.multiprocessing_context
    plain = ResumableLoader(DataLoader(data, batch_size=4), seed=1).rebuild([[0, 1]], epoch=0)
    assert plain.num_workers == 0
    batch = next(iter(plain))
    torch.testing.assert_close(batch[0], data.x[:2])


def _indices(loader, epoch=0, start=0):
    """The sample indices of the batches of ``epoch`` from ``start`` on, in order."""
    resumable = ResumableLoader(loader, seed=3)
    return [i for batch in resumable._order(epoch)[start:] for i in batch]


@pytest.mark.parametrize(
    ("num_samples", "replacement", "n_batches"),
    [(40, False, 8), (10, False, 2), (30, True, 6), (20, True, 4)],
)
def test_random_sampler_num_samples_and_replacement_are_honoured(
    num_samples, replacement, n_batches
):
    # oracle: RandomSampler's own semantics. num_samples draws an epoch; without
    # replacement they are whole permutations of the 20 samples then the head of one
    # more, with replacement they repeat samples. The order used to be one permutation
    # of the dataset, whatever num_samples and replacement said
    data = regression_data(n=20)
    sampler = RandomSampler(data, replacement=replacement, num_samples=num_samples)
    user = DataLoader(data, batch_size=5, sampler=sampler)
    resumable = ResumableLoader(user, seed=3)
    batches = list(resumable.iterate(epoch=0))
    assert len(resumable) == len(user) == len(batches) == n_batches
    drawn = _indices(user)
    assert len(drawn) == num_samples and set(drawn) <= set(range(20))
    counts = np.bincount(drawn, minlength=20)
    if replacement:  # 20 draws from 20 samples: all distinct with probability 2e-8
        assert counts.max() > 1
    else:
        assert counts.min() == num_samples // 20 and counts.max() == -(-num_samples // 20)
    torch.testing.assert_close(torch.cat([b[0] for b in batches]), data.x[drawn])
    # deterministic from (seed, epoch): a resume at batch 1 sees the rest of the same order
    assert _indices(user, start=1) == drawn[5:]
    assert _indices(user, epoch=1) != drawn


def test_random_sampler_with_more_samples_than_the_dataset_trains_num_samples_per_epoch():
    # 40 samples of 20 in batches of 5: 8 steps per epoch (the trainer used to stop
    # on a bare StopIteration after 4)
    data = regression_data(n=20)
    user = DataLoader(data, batch_size=5, sampler=RandomSampler(data, num_samples=40))
    trainer = Trainer(
        TwoHeads(), regression_tasks(), max_epochs=2, device="cpu", progress=False
    ).fit(user)
    assert trainer.step_ == 16


class _Stream(IterableDataset):
    """Says it holds ``n`` samples and yields the first ``n - missing`` in order."""

    def __init__(self, n, missing=0):
        self.data, self.missing = regression_data(n=n), missing

    def __len__(self):
        return len(self.data)

    def __iter__(self):
        return (self.data[i] for i in range(len(self.data) - self.missing))


def test_a_loader_yielding_fewer_batches_than_its_len_is_a_clear_error():
    # len() says 6 batches of 5; 4 come: an error naming the loader, not a bare StopIteration
    trainer = Trainer(TwoHeads(), regression_tasks(), device="cpu", progress=False)
    with pytest.raises(RuntimeError, match=r"training DataLoader yielded 4 batches in epoch 0 but"):
        trainer.fit(DataLoader(_Stream(30, missing=10), batch_size=5))
    trainer = Trainer(TwoHeads(), regression_tasks(), device="cpu", progress=False)
    full = DataLoader(regression_data(n=30), batch_size=5)
    with pytest.raises(RuntimeError, match=r"DataLoader of task 'b' yielded 4 batches in epoch 0"):
        trainer.fit({"a": full, "b": DataLoader(_Stream(30, missing=10), batch_size=5)})


def test_skip_mode_leaves_the_global_rng_and_the_user_generator_alone():
    # creating an IterableDataset's iterator used to draw its base seed from torch's
    # global RNG: a resumed run drew once more than the uninterrupted one
    stream = DataLoader(_Stream(30), batch_size=5)
    state = torch.get_rng_state()
    batches = list(ResumableLoader(stream, seed=3).iterate(epoch=0, start=1))
    assert len(batches) == 5
    assert torch.equal(torch.get_rng_state(), state) and stream.generator is None
    own = torch.Generator().manual_seed(5)
    stream = DataLoader(_Stream(30), batch_size=5, generator=own)
    draw = torch.Generator().manual_seed(5)
    torch.empty((), dtype=torch.int64).random_(generator=draw)  # the DataLoader's one draw
    list(ResumableLoader(stream, seed=3).iterate(epoch=0))
    assert stream.generator is own and torch.equal(own.get_state(), draw.get_state())
