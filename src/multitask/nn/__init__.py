"""Deep multi-task learning in PyTorch (never imports numba).

- :class:`Task`: a task's kind, masked loss and metrics;
  :func:`task_losses` computes every task's loss on a batch.
- :func:`mtl_backward`: the one place where per-task gradients are built and
  ``.grad`` written, with a loss weighting or a gradient aggregator.
- :mod:`multitask.nn.architectures`, :mod:`multitask.nn.weighting`,
  :mod:`multitask.nn.aggregation`.
"""

from multitask.nn.backward import StepInfo, mtl_backward, task_jacobian
from multitask.nn.tasks import KINDS, Task, task_losses

__all__ = ["KINDS", "StepInfo", "Task", "mtl_backward", "task_jacobian", "task_losses"]
