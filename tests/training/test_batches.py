"""The resumable loader rebuilds the user's DataLoader with the same settings."""

import torch
from _training_helpers import regression_data
from torch.utils.data import DataLoader

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
