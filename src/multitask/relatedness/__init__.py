"""Task relatedness: how much tasks help each other, and which to train together.

- :func:`gradient_affinity`: mean cosine of the task gradients on the shared
  parameters.
- :func:`lookahead_affinity`: TAG's inter-task affinity (Fifty et al., NeurIPS
  2021, eq. 3), a one-step lookahead on a functional copy of the model.
- :func:`group_tasks`: the partition of the tasks maximising the within-group
  affinity (exhaustive search, small task counts).

The affinity measures need PyTorch (``multitask.nn``); :func:`group_tasks`
and :func:`group_score` need only numpy.
"""

from multitask.relatedness._grouping import MAX_EXHAUSTIVE_TASKS, group_score, group_tasks

__all__ = [
    "MAX_EXHAUSTIVE_TASKS",
    "gradient_affinity",
    "group_score",
    "group_tasks",
    "lookahead_affinity",
]


def __getattr__(name: str):
    # the affinity measures import torch lazily, so grouping works without it
    if name == "gradient_affinity":
        from multitask.relatedness._gradient import gradient_affinity

        return gradient_affinity
    if name == "lookahead_affinity":
        from multitask.relatedness._lookahead import lookahead_affinity

        return lookahead_affinity
    raise AttributeError(f"module 'multitask.relatedness' has no attribute {name!r}")
