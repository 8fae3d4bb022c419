"""The small long-format problem the audit tests share: ``T`` tasks of ``N / T`` rows.

``y = X w + 0.3 noise + task``, one ``w`` for all tasks (drawn after ``X``), so the tasks
differ by their intercepts; ``XL`` is ``X`` with the task id as column 0.
"""

import numpy as np


def task_problem(seed: int, n: int, p: int, n_tasks: int, shift: float = 0.0):
    """``(rng, X, task, y, XL)``; ``rng`` continues the stream for a test's further draws.

    ``shift`` is added to every feature (a mean away from 0).
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) + shift
    task = np.repeat(np.arange(n_tasks), n // n_tasks)
    y = X @ rng.standard_normal(p) + 0.3 * rng.standard_normal(n) + task
    return rng, X, task, y, np.column_stack([task, X])
