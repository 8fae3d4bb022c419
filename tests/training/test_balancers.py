"""Every balancer of the name tables trains through the Trainer and resumes exactly."""

import pytest
import torch
from _training_helpers import TwoHeads, flat_params, loader, regression_data, regression_tasks

from multitask.nn.aggregation import AGGREGATORS
from multitask.nn.weighting import WEIGHTINGS
from multitask.training import Trainer


def _balancer(name):
    if name == "static":
        return WEIGHTINGS[name](torch.tensor([1.0, 2.0]))
    if name in WEIGHTINGS:
        return WEIGHTINGS[name](2)
    return AGGREGATORS[name]()


def _run(name, steps, checkpoint_dir=None, resume=False, **kw):
    torch.manual_seed(0)
    model = TwoHeads()
    trainer = Trainer(
        model,
        regression_tasks(),
        _balancer(name),
        **kw,
        lr=0.01,
        max_epochs=10,
        max_steps=steps,
        seed=1,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=1 if checkpoint_dir else None,
        device="cpu",
    )
    trainer.fit(loader(regression_data(n=32), shuffle=True), resume=resume)
    return model, trainer


@pytest.mark.parametrize("name", sorted(WEIGHTINGS) + sorted(AGGREGATORS))
def test_balancer_trains_and_resumes(name, tmp_path):
    # oracle: 6 uninterrupted steps; the other run stops at 3, then resumes to 6
    reference, ref = _run(name, 6)
    losses = ref.history_.losses()
    assert all(torch.isfinite(torch.tensor(v)).all() for v in losses.values())
    _run(name, 3, tmp_path)
    resumed, _ = _run(name, 6, tmp_path, resume=True)
    torch.testing.assert_close(flat_params(resumed), flat_params(reference), rtol=0, atol=1e-6)


def test_graddrop_trains_on_the_representation_by_default():
    """Trainer's use_representation=None is GradDrop's own placement: the same run as an
    explicit True, and not the run on the shared parameters' Jacobian."""
    default, trainer = _run("graddrop", 4)
    assert trainer.use_representation is None
    on_rep, _ = _run("graddrop", 4, use_representation=True)
    on_params, _ = _run("graddrop", 4, use_representation=False)
    torch.testing.assert_close(flat_params(default), flat_params(on_rep), rtol=0, atol=0)
    assert not torch.allclose(flat_params(default), flat_params(on_params))
