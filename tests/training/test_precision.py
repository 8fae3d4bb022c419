"""``Trainer(precision="bf16-mixed")``: autocast in the training forward only, float32 state.

Run on the CPU (autocast supports bfloat16 there); the same code path is the CUDA one with
another ``device_type``. Oracles: the dtype each layer's output had (a forward hook), the
float32 run of the same seed, and an uninterrupted run for the resume.
"""

from __future__ import annotations

import pytest
import torch
from _training_helpers import TwoHeads, flat_params, loader, regression_data, regression_tasks

from multitask.nn.aggregation import IMTLG, MGDA, NashMTL
from multitask.nn.weighting import FAMO, GradNorm
from multitask.training import Trainer

BALANCERS = {
    "sum": lambda: None,
    "mgda": MGDA,
    "imtl_g": IMTLG,
    "nash_mtl": NashMTL,
    "gradnorm": lambda: GradNorm(2),
    "famo": lambda: FAMO(2),
}


def _fit(precision, balancer=None, *, steps=40, device="cpu", train=None, resume=False, **kw):
    torch.manual_seed(0)
    model = TwoHeads(hidden=16)
    seen = []
    model.trunk[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    trainer = Trainer(
        model,
        regression_tasks(),
        balancer,
        lr=0.01,
        max_steps=steps,
        max_epochs=100,
        device=device,
        progress=False,
        precision=precision,
        **kw,
    )
    trainer.fit(train or loader(regression_data(), shuffle=True), resume=resume)
    return model, trainer, seen


@pytest.mark.parametrize("name", sorted(BALANCERS))
def test_bf16_trains_in_bfloat16_and_keeps_float32_state(name):
    use_rep = True if name == "imtl_g" else None  # one aggregator on the representation
    model, trainer, seen = _fit("bf16-mixed", BALANCERS[name](), use_representation=use_rep)
    assert set(seen) == {torch.bfloat16}  # every training forward ran under autocast
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(torch.isfinite(p).all() for p in model.parameters())
    first, last = trainer.history_.steps[0].losses, trainer.history_.steps[-1].losses
    assert sum(last.values()) < 0.25 * sum(first.values()), (first, last)  # 0.08-0.14
    ref, _, seen32 = _fit("32", BALANCERS[name](), use_representation=use_rep)
    assert set(seen32) == {torch.float32}
    # bfloat16 products (8-bit mantissa): the same run to a few percent, not to rounding
    drift = (flat_params(model) - flat_params(ref)).norm() / flat_params(ref).norm()
    assert 0 < drift < 0.03  # measured 1e-3 to 7e-3


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", sorted(BALANCERS))
def test_bf16_on_cuda(name):
    use_rep = True if name == "imtl_g" else None
    model, trainer, seen = _fit(
        "bf16-mixed", BALANCERS[name](), device="cuda", use_representation=use_rep
    )
    assert set(seen) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 and p.is_cuda for p in model.parameters())
    first, last = trainer.history_.steps[0].losses, trainer.history_.steps[-1].losses
    assert sum(last.values()) < 0.25 * sum(first.values()), (first, last)


def test_evaluation_runs_in_full_precision():
    _, trainer, seen = _fit("bf16-mixed", steps=2)
    seen.clear()
    trainer.evaluate(loader(regression_data(n=16)))
    assert seen and set(seen) == {torch.float32}


def test_bf16_with_a_task_sampler():
    """Tasks not drawn get a zero loss made from the (bfloat16) outputs; oracle: the float32
    run with the same sampler."""
    data = regression_data()
    runs = {
        p: _fit(p, IMTLG(), train={"a": loader(data), "b": loader(data)}, sampler="round_robin")
        for p in ("bf16-mixed", "32")
    }
    (model, trainer, _), (ref, _, _) = runs["bf16-mixed"], runs["32"]
    assert trainer.step_ == 40
    drift = (flat_params(model) - flat_params(ref)).norm() / flat_params(ref).norm()
    assert 0 < drift < 0.03


def test_bf16_resume_is_exact(tmp_path):
    uninterrupted, _, _ = _fit("bf16-mixed", MGDA(), steps=6)
    _fit("bf16-mixed", MGDA(), steps=3, checkpoint_dir=tmp_path, checkpoint_every=1)
    model, _, _ = _fit("bf16-mixed", MGDA(), steps=6, checkpoint_dir=tmp_path, resume=True)
    torch.testing.assert_close(flat_params(model), flat_params(uninterrupted), rtol=0, atol=0)


@pytest.mark.parametrize(("value", "match"), [("16-mixed", "loss scaler"), ("64", "use one of")])
def test_unsupported_precision_is_refused(value, match):
    with pytest.raises(ValueError, match=match):
        Trainer(TwoHeads(), regression_tasks(), precision=value)
