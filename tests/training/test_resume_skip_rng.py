"""ResumableLoader (commit 5e460f8): a skip-mode resume replays randomness drawn in the
dataset exactly; a mid-epoch resume with DataLoader workers warns; ``set_epoch`` is called on
the loader's sampler each epoch, also on resume."""

from __future__ import annotations

import warnings

import pytest
import torch
from _training_helpers import (
    CrashAt,
    Crashed,
    DictDataset,
    TwoHeads,
    crash_and_resume,
    fit_two_heads,
    regression_data,
    regression_tasks,
)
from torch.utils.data import DataLoader, Dataset, IterableDataset
from torch.utils.data.distributed import DistributedSampler

from multitask.training import Trainer

DATA = regression_data(n=24)


class NoisyIterable(IterableDataset):
    """A fixed order, random augmentation from torch's global RNG (resumed by skipping)."""

    def __len__(self):
        return len(DATA)

    def __iter__(self):
        for i in range(len(DATA)):
            x, y = DATA[i]
            yield x + 0.1 * torch.randn_like(x), y


class NoisyMap(Dataset):
    """Random augmentation from torch's RNG inside ``__getitem__``."""

    def __len__(self):
        return len(DATA)

    def __getitem__(self, i):
        x, y = DATA[i]
        return x + 0.1 * torch.randn_like(x), y


def test_skip_resume_replays_dataset_randomness(tmp_path):
    """(A) an IterableDataset drawing augmentation noise from the global RNG: the resume
    re-reads the skipped batches and then restores the RNG, so it matches an uninterrupted
    run (it used to shift every later draw)."""

    def make():
        return DataLoader(NoisyIterable(), batch_size=6)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resumed, ref = crash_and_resume(make, 3, tmp_path)  # mid-epoch 0 (4 batches an epoch)
    assert torch.allclose(resumed, ref, atol=1e-6, rtol=0)


def test_mid_epoch_resume_with_workers_warns_once(tmp_path):
    """(B) shuffled-order resume inside an epoch with num_workers > 0: one warning that the
    workers' randomness is not replayed; none with num_workers=0."""

    def make(workers):
        return lambda: DataLoader(NoisyMap(), batch_size=6, shuffle=True, num_workers=workers)

    for workers, ck in ((0, tmp_path / "w0"), (2, tmp_path / "w2")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(Crashed):
                fit_two_heads(make(workers), ck, [CrashAt(3)])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit_two_heads(make(workers), ck, resume=True)
        hits = [w for w in caught if "not replayed" in str(w.message)]
        if workers == 0:
            assert hits == []
        else:
            assert len(hits) == 1
            assert "num_workers=2" in str(hits[0].message)


def test_mid_epoch_resume_with_workers_pytest_warns(tmp_path):
    """(B) the same warning through ``pytest.warns``, with its wording."""

    def make():
        return DataLoader(NoisyMap(), batch_size=6, shuffle=True, num_workers=1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Crashed):
            fit_two_heads(make, tmp_path, [CrashAt(3)])  # the last checkpoint is step 2's
    with pytest.warns(UserWarning, match=r"resuming .* at batch 2 of epoch 0 with num_workers=1"):
        fit_two_heads(make, tmp_path, resume=True)


SEEN: list[torch.Tensor] = []


class Recording(TwoHeads):
    """Records each batch's first input column (a per-row id) in ``SEEN``."""

    def forward(self, x):
        SEEN.append(x[:, 0].clone())
        return super().forward(x)


N_ROWS, BATCH = 32, 8  # 4 batches an epoch


def _distributed_loader():
    x = torch.randn(N_ROWS, 5, generator=torch.Generator().manual_seed(0))
    x[:, 0] = torch.arange(N_ROWS, dtype=torch.float32)
    ds = DictDataset(x, {"a": x[:, 1], "b": x[:, 2]})
    sampler = DistributedSampler(ds, num_replicas=1, rank=0, shuffle=True, seed=0)
    return DataLoader(ds, batch_size=BATCH, sampler=sampler)


def _fit_recorded(ck=None, crash=None, resume=False, max_epochs=3):
    SEEN.clear()
    torch.manual_seed(0)
    trainer = Trainer(
        Recording(),
        regression_tasks(),
        max_epochs=max_epochs,
        seed=3,
        checkpoint_dir=ck,
        checkpoint_every=1 if ck else None,
        callbacks=[CrashAt(crash)] if crash else [],
        device="cpu",
        progress=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            trainer.fit(_distributed_loader(), resume=resume)
        except Crashed:
            assert crash is not None
    return [row.clone() for row in SEEN]


def test_distributed_sampler_set_epoch_each_epoch():
    """(E) set_epoch(e) before each epoch: a shuffling DistributedSampler visits a new order
    each epoch (it replayed epoch 0's order every epoch)."""
    seen = _fit_recorded()
    epochs = [torch.cat(seen[i * 4 : (i + 1) * 4]) for i in range(3)]
    for order in epochs:
        assert sorted(order.tolist()) == list(range(N_ROWS))
    assert not torch.equal(epochs[0], epochs[1])
    assert not torch.equal(epochs[0], epochs[2])
    assert not torch.equal(epochs[1], epochs[2])
    # the order of epoch e is the DistributedSampler's for set_epoch(e)
    sampler = _distributed_loader().sampler
    for e, order in enumerate(epochs):
        sampler.set_epoch(e)
        assert order.tolist() == [float(i) for i in sampler]


def test_distributed_sampler_resume_mid_epoch_continues_epoch_order(tmp_path):
    """(E) a resume inside epoch 1 continues epoch 1's order (not epoch 0's)."""
    full = _fit_recorded()
    # crash after step 7; the last checkpoint is step 6's: batch 2 of epoch 1 is next
    crashed = _fit_recorded(tmp_path, crash=7)
    assert len(crashed) == 7
    resumed = _fit_recorded(tmp_path, resume=True)
    assert len(resumed) == len(full) - 6
    for got, want in zip(crashed[:6] + resumed, full, strict=True):
        assert torch.equal(got, want)
    sampler = _distributed_loader().sampler
    sampler.set_epoch(1)
    assert torch.cat(resumed[:2]).tolist() == [float(i) for i in sampler][2 * BATCH :]
