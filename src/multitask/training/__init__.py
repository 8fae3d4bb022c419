"""Training: the multi-task :class:`Trainer`, task samplers, callbacks and checkpoints."""

from multitask.training._selection import ModelSelector
from multitask.training._trainer import Trainer
from multitask.training.callbacks import (
    Callback,
    CSVLogger,
    History,
    ProgressBar,
    StepRecord,
    TensorBoardLogger,
)
from multitask.training.checkpoint import load_checkpoint, save_checkpoint
from multitask.training.samplers import (
    SAMPLERS,
    PeriodicSampler,
    ProportionalSampler,
    RoundRobinSampler,
    TaskSampler,
    TemperatureSampler,
    make_sampler,
)

__all__ = [
    "SAMPLERS",
    "CSVLogger",
    "Callback",
    "History",
    "ModelSelector",
    "PeriodicSampler",
    "ProgressBar",
    "ProportionalSampler",
    "RoundRobinSampler",
    "StepRecord",
    "TaskSampler",
    "TemperatureSampler",
    "TensorBoardLogger",
    "Trainer",
    "load_checkpoint",
    "make_sampler",
    "save_checkpoint",
]
