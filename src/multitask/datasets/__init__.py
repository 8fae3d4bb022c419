"""Multi-task datasets: real benchmarks (cached, checksummed), splits, synthetic data.

``load(name)`` returns :class:`MultiTaskData` (long format: one row per
(task, sample), the task id a column of ``X``) for tabular multi-task data,
and :class:`MultiOutputData` (one design, several targets) for census and
image data. Files are read from the cache directory (``MULTITASK_DATA``, else
a per-user cache) and downloaded from their original source when missing.
"""

from multitask.datasets._cache import ChecksumError, DatasetNotFoundError, cache_dir
from multitask.datasets._convert import from_arrays, from_wide
from multitask.datasets._data import MultiOutputData, MultiTaskData
from multitask.datasets._load import list_datasets, load
from multitask.datasets.multi_fashion import make_multi_fashion
from multitask.datasets.splits import protocol_split, task_groups, train_test_split_per_task
from multitask.datasets.synthetic import (
    make_clustered,
    make_low_rank,
    make_mmoe,
    make_row_sparse,
    make_task_covariance,
)

__all__ = [
    "ChecksumError",
    "DatasetNotFoundError",
    "MultiOutputData",
    "MultiTaskData",
    "cache_dir",
    "from_arrays",
    "from_wide",
    "list_datasets",
    "load",
    "make_clustered",
    "make_low_rank",
    "make_mmoe",
    "make_multi_fashion",
    "make_row_sparse",
    "make_task_covariance",
    "protocol_split",
    "task_groups",
    "train_test_split_per_task",
]
