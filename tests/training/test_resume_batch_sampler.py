"""Resuming a DataLoader given a ``batch_sampler``: a plain ``BatchSampler`` over a random or
sequential sampler resumes exactly (oracle: the same loader built with ``batch_size``, and an
uninterrupted run); any other batch sampler is resumed by skipping batches, with a warning
that names it."""

import warnings

import pytest
import torch
from _training_helpers import crash_and_resume, fit_two_heads, regression_data
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, Sampler, SequentialSampler

from multitask.training._batches import ResumableLoader


class Buckets(Sampler):
    """Batches of a fresh ``torch.randperm`` each epoch: an order no resume can replay."""

    def __init__(self, n, batch_size):
        self.n, self.batch_size = n, batch_size

    def __iter__(self):
        idx = torch.randperm(self.n).tolist()
        return iter([idx[i : i + self.batch_size] for i in range(0, self.n, self.batch_size)])

    def __len__(self):
        return -(-self.n // self.batch_size)


class MyBatchSampler(BatchSampler):
    """A BatchSampler subclass: it may order batches its own way."""


def test_a_custom_batch_sampler_is_warned_about_by_name():
    data = regression_data(n=24)
    with pytest.warns(UserWarning, match=r"custom batch_sampler, Buckets: resume skips batches"):
        ResumableLoader(DataLoader(data, batch_sampler=Buckets(24, 6)))
    subclass = MyBatchSampler(SequentialSampler(data), 6, drop_last=False)
    with pytest.warns(UserWarning, match=r"custom batch_sampler, MyBatchSampler"):
        ResumableLoader(DataLoader(data, batch_sampler=subclass))


def test_the_fit_of_the_bug_report_warns_once_per_fit():
    data = regression_data(n=24)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit_two_heads(lambda: DataLoader(data, batch_sampler=Buckets(24, 6)))
    messages = [str(w.message) for w in caught if "batch_sampler" in str(w.message)]
    assert len(messages) == 1 and "Buckets" in messages[0]


def test_unbatched_random_sampling_is_warned_about_and_unbatched_sequential_is_not():
    data = regression_data(n=12)
    with pytest.warns(UserWarning, match=r"a RandomSampler and batch_size=None"):
        ResumableLoader(DataLoader(data, batch_size=None, shuffle=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ResumableLoader(DataLoader(data, batch_size=None))


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("shuffle", [False, True])
def test_a_plain_batch_sampler_resumes_like_batch_size_without_a_warning(shuffle, drop_last):
    # oracle: the same loader built with batch_size, whose order the trainer draws from
    # (seed, epoch); resuming at batch 2 is that order from batch 2 on
    data = regression_data(n=23)
    inner = RandomSampler(data) if shuffle else SequentialSampler(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        given = ResumableLoader(
            DataLoader(data, batch_sampler=BatchSampler(inner, 5, drop_last)), seed=4
        )
        built = ResumableLoader(
            DataLoader(data, batch_size=5, shuffle=shuffle, drop_last=drop_last), seed=4
        )
        for epoch in (0, 1):
            whole = [x for x, _ in built.iterate(epoch)]
            assert len(whole) == (4 if drop_last else 5)
            for start in (0, 2):
                got = [x for x, _ in given.iterate(epoch, start)]
                assert len(got) == len(whole) - start
                for a, b in zip(got, whole[start:], strict=True):
                    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("crash", [3, 6])  # 4 steps per epoch: mid-epoch 0 and mid-epoch 1
def test_a_plain_batch_sampler_over_a_random_sampler_resumes_exactly(tmp_path, crash):
    # oracle: the uninterrupted run. The BatchSampler's RandomSampler draws from torch's
    # global RNG; skipping batches after a resume used to replay another permutation
    data = regression_data(n=24)

    def make_loader():
        return DataLoader(data, batch_sampler=BatchSampler(RandomSampler(data), 6, False))

    resumed, reference = crash_and_resume(make_loader, crash, tmp_path)
    torch.testing.assert_close(resumed, reference, rtol=0, atol=1e-6)
