"""NaN / infinite inputs and infinite targets: a ValueError naming the tensor and the step,
before the step updates anything."""

import pytest
import torch
from _training_helpers import (
    TwoHeads,
    flat_params,
    loader,
    regression_data,
    regression_tasks,
)

from multitask.nn import Task
from multitask.training import Callback, Trainer, load_checkpoint
from multitask.training._finite import check_probes, probes


def _trainer(model=None, tasks=None, **kw):
    kw = {"max_epochs": 1, "device": "cpu", "progress": False, **kw}
    return Trainer(model or TwoHeads(), tasks or regression_tasks(), **kw)


class _Snapshot(Callback):
    """The parameters after each step."""

    def __init__(self, model):
        self.model, self.params = model, None

    def on_step(self, record):
        self.params = flat_params(self.model).clone()


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_a_non_finite_input_stops_its_own_step_before_any_update(value):
    # one entry of sample 42 = batch 5, row 2 -> step 6. With the Tanh trunk an infinite
    # feature gives a finite loss but NaN gradients: fit used to return a NaN model silently
    data = regression_data()
    data.x[42, 3] = value
    model = TwoHeads()
    snapshot = _Snapshot(model)
    trainer = _trainer(model, callbacks=[snapshot])
    match = r"inputs holds 1 non-finite value\(s\) \(\[.*\]\) at step 6 \(epoch 0, batch 5\)"
    with pytest.raises(ValueError, match=match + ", first in sample 2 of the batch"):
        trainer.fit(loader(data))
    assert trainer.step_ == 5
    torch.testing.assert_close(flat_params(model), snapshot.params, rtol=0, atol=0)


def test_an_infinite_input_is_blamed_at_its_own_step_and_the_checkpoint_kept(tmp_path):
    # its NaN gradients used to make the parameters NaN, and the next (clean) batch's loss was
    # reported instead: "loss of task 'a' is nan at step 7"
    data = regression_data()
    data.x[42, 3] = float("inf")
    trainer = _trainer(checkpoint_dir=tmp_path, checkpoint_every=2)
    with pytest.raises(ValueError, match=r"inputs holds .* at step 6 .*last checkpoint"):
        trainer.fit(loader(data))
    assert load_checkpoint(tmp_path / "last.pt")["position"]["step"] == 4


class _DictInputs(TwoHeads):
    def forward(self, inputs):
        return super().forward(inputs["x"] * inputs["scale"][:, None])


def test_dict_inputs_name_the_entry_and_integer_entries_are_skipped():
    data = regression_data(n=16)
    x = {"x": data.x, "scale": torch.ones(16), "ids": torch.arange(16)}
    x["scale"][9] = float("nan")  # batch 1, row 1 -> step 2
    rows = [slice(0, 8), slice(8, 16)]
    batches = [
        ({k: v[r] for k, v in x.items()}, {t: y[r] for t, y in data.ys.items()}) for r in rows
    ]
    with pytest.raises(ValueError, match=r"inputs\['scale'\] holds 1 .* at step 2 .*sample 1"):
        _trainer(_DictInputs()).fit(batches)


def test_per_task_loaders_name_the_task_whose_batch_it_is():
    a, b = regression_data(n=16, seed=0), regression_data(n=16, seed=1)
    b.x[3, 0] = float("nan")  # b's first batch: step 2 of the round robin
    with pytest.raises(ValueError, match=r"inputs \(the batch of task 'b'\) .* at step 2"):
        _trainer().fit({"a": loader(a), "b": loader(b)})


def _clamped(name):
    """A loss that clamps the target: finite on an infinite target, so the loss guard, which
    explains a non-finite loss by its targets, never sees it."""
    return Task(name, loss=lambda p, y: ((p - y.clamp(-10, 10)) ** 2).mean())


def test_an_infinite_target_is_an_error_and_nan_stays_a_label_mask():
    data = regression_data()
    data.ys["b"][:20] = float("nan")  # missing labels: fine
    data.ys["b"][21] = float("-inf")  # batch 2, row 5 -> step 3
    tasks = [_clamped("a"), _clamped("b")]
    match = r"the target of task 'b' holds 1 infinite value\(s\) \(\[-inf\]\) at step 3"
    with pytest.raises(ValueError, match=match + r".*sample 5.*mask it with NaN"):
        _trainer(tasks=tasks).fit(loader(data))
    data.ys["b"][21] = 1.0
    _trainer(tasks=tasks).fit(loader(data))


def test_an_infinite_target_under_a_default_loss_is_named_by_the_loss_guard():
    # the default loss turns it into an inf loss, which the guard explains from the targets
    data = regression_data()
    data.ys["a"][21] = float("inf")
    with pytest.raises(ValueError, match=r"task 'a' \(regression\).*\[inf\].*at step 3"):
        _trainer().fit(loader(data))


def test_an_overflowing_sum_of_finite_inputs_is_no_error():
    data = regression_data(n=16)
    data.x[:, 0] = 3e38  # float32: the sum is inf, every entry finite
    probe = probes(data.x, data.ys, ["a"])
    assert probe[0].total.isinf()
    check_probes(probe, [p.total.item() for p in probe], "here")


def test_the_read_on_an_accelerator_names_the_tensor():
    # what the trainer does with the sums it reads with the losses (a device's batch): the
    # same check, on the values read
    x = {"a": torch.ones(4, 2), "b": torch.ones(4)}
    x["b"][3] = float("inf")
    y = {"t": torch.tensor([1.0, float("nan"), 2.0, 3.0])}
    found = probes(x, y, ["t"])
    assert [p.name for p in found] == ["inputs['a']", "inputs['b']", "the target of task 't'"]
    values = torch.stack([p.total for p in found]).tolist()  # one read
    with pytest.raises(ValueError, match=r"inputs\['b'\] holds 1 .*\(\[inf\]\) at step 9.*3"):
        check_probes(found, values, "at step 9")
    check_probes(found[2:], values[2:], "at step 9")  # a NaN target is a missing label


def test_half_precision_inputs_are_summed_without_overflow():
    x = torch.full((64, 64), 60000.0, dtype=torch.float16)  # sum 2.5e8 > float16's 65504
    (probe,) = probes(x, {}, [])
    assert probe.total.dtype == torch.float32 and probe.total.isfinite()


def test_a_non_finite_model_is_an_error_at_the_end_of_fit_without_a_checkpoint_dir():
    # a non-finite gradient from finite inputs and losses makes the parameters non-finite at
    # the update; without a checkpoint_dir fit used to return such a model silently
    model = TwoHeads()

    class Poison(Callback):
        def on_step(self, record):
            if record.step == 8:
                with torch.no_grad():
                    model.heads["a"].bias.fill_(float("nan"))

    with pytest.raises(FloatingPointError, match=r"\['heads.a.bias'\] became non-finite"):
        _trainer(model, callbacks=[Poison()]).fit(loader(regression_data()))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_an_infinite_input_stops_its_step_from_the_loss_read():
    data = regression_data()
    data.x[42, 3] = float("inf")
    model = TwoHeads()
    snapshot = _Snapshot(model)
    trainer = _trainer(model, device="cuda", callbacks=[snapshot])
    with pytest.raises(ValueError, match=r"inputs holds 1 .* at step 6 .*sample 2"):
        trainer.fit(loader(data))
    torch.testing.assert_close(flat_params(model), snapshot.params, rtol=0, atol=0)
    cuda = [(x.cuda(), {t: y.cuda() for t, y in ys.items()}) for x, ys in loader(data)]
    trainer = _trainer(model, device="cuda")
    with pytest.raises(ValueError, match=r"inputs holds 1 .* at step 6"):
        trainer.fit(cuda)  # batches already on the device
    assert trainer.step_ == 5
