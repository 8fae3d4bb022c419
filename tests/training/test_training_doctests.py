"""The ``Examples`` sections of ``multitask.training``'s public docstrings run as written
(doctest)."""

import pytest

from doctest_testutil import run_examples

pytest.importorskip("torch")

#: module -> the objects in it whose docstring has an ``Examples`` section
EXAMPLES = {
    "multitask.training.callbacks": [
        "CSVLogger",
        "Callback",
        "History",
        "ProgressBar",
        "StepRecord",
        "TensorBoardLogger",
    ],
    "multitask.training.checkpoint": ["load_checkpoint", "save_checkpoint"],
    "multitask.training._selection": ["ModelSelector"],
    "multitask.training.samplers": [
        "PeriodicSampler",
        "ProportionalSampler",
        "RoundRobinSampler",
        "TaskSampler",
        "TemperatureSampler",
        "make_sampler",
    ],
}
#: public objects whose Examples run elsewhere, or that have none (a dict)
ELSEWHERE = {
    "Trainer": "tests/nn/test_nn_doctests.py",
    "SAMPLERS": "a dict of the sampler classes",
}


def test_every_public_object_is_listed():
    import multitask.training as training

    listed = {name for names in EXAMPLES.values() for name in names}
    missing = sorted(set(training.__all__) - listed - set(ELSEWHERE))
    assert not missing, f"multitask.training.__all__ has no Examples listed for {missing}"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_examples_run(name):
    run_examples(name, EXAMPLES[name])
