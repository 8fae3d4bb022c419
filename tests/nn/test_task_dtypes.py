"""Task losses and masks on narrow dtypes: unsigned class targets, half-precision
predictions, masked entries whose prediction overflows; and the errors of a 0-d output and a
floating dense class-index target. Oracles: torch.nn.functional on the labelled entries."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from multitask.nn import Task
from multitask.nn.architectures import HardSharing
from multitask.training import Trainer
from multitask.training._labels import classes_in, presence


def test_uint8_class_targets_keep_class_156_with_the_default_ignore_index():
    # -100 wraps to 156 in uint8: class 156 used to be read as unlabelled
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(2, 182, 4, 4, generator=g)
    target = torch.randint(0, 182, (2, 4, 4), generator=g, dtype=torch.int64)
    target[0, :2] = 156
    task = Task("seg", kind="dense")
    loss, count = task.loss_and_count(pred, target.to(torch.uint8))
    assert count.item() == 32
    torch.testing.assert_close(loss, F.cross_entropy(pred, target))
    hit = pred.argmax(1) == target
    assert task.evaluate(pred, target.to(torch.uint8))["accuracy"] == pytest.approx(
        hit.float().mean().item()
    )
    # the trainer's label checks read the same mask
    mc = Task("c", kind="multiclass")
    y = torch.tensor([156, 3, 156], dtype=torch.uint8)
    assert classes_in(mc, y) == (3, {3, 156})
    counts = presence(mc, torch.zeros(3, 200), y)
    assert counts[156].item() == 2 and counts.sum().item() == 3


def test_uint8_label_outside_the_classes_is_an_error_not_unlabelled():
    task = Task("c", kind="multiclass")
    pred = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"156"):
        task.evaluate(pred, torch.tensor([156, 1], dtype=torch.uint8))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_predictions_do_not_round_the_targets(dtype):
    pred = torch.tensor([300.0, 1.0, -2.0, 64.0], dtype=dtype)
    target = torch.tensor([300.7, 1.003, -2.006, 64.2])
    loss = Task("r").compute_loss(pred, target)
    torch.testing.assert_close(loss, F.mse_loss(pred.float(), target))
    assert loss.item() > 0.1  # rounded to the prediction's dtype the targets gave 0
    soft = torch.tensor([0.3, 0.7])
    logits = torch.tensor([0.5, -1.0], dtype=dtype)
    torch.testing.assert_close(
        Task("b", kind="binary").compute_loss(logits, soft),
        F.binary_cross_entropy_with_logits(logits.float(), soft),
    )


def test_a_masked_entry_with_an_overflowing_prediction_adds_no_nan():
    pred = torch.tensor([300.0, 300.0, 10.0], dtype=torch.float16, requires_grad=True)
    target = torch.tensor([math.nan, 300.0, 11.0])
    loss = Task("r").compute_loss(pred, target)
    assert loss.item() == pytest.approx(0.5)
    loss.backward()
    assert pred.grad.tolist() == [0.0, 0.0, -1.0]
    inf = torch.tensor([math.inf, 1.0], requires_grad=True)
    loss = Task("r").compute_loss(inf, torch.tensor([math.nan, 1.0]))
    loss.backward()
    assert loss.item() == 0.0 and inf.grad.tolist() == [0.0, 0.0]
    logits = torch.tensor([math.inf, 0.0], requires_grad=True)
    loss = Task("b", kind="binary").compute_loss(logits, torch.tensor([math.nan, 1.0]))
    assert loss.item() == pytest.approx(math.log(2))


class _Squeeze(nn.Module):
    def forward(self, z):
        return z.squeeze()  # 0-d for a batch of one sample


def test_a_0d_output_in_evaluate_and_predict_names_the_task_and_batch():
    torch.manual_seed(0)
    x, y = torch.randn(17, 4), torch.randn(17)
    heads = {"a": nn.Sequential(nn.Linear(6, 1), _Squeeze())}
    model = HardSharing(nn.Sequential(nn.Linear(4, 6), nn.Tanh()), heads)
    trainer = Trainer(model, [Task("a")], max_epochs=1, device="cpu", progress=False)
    batches = [(x[i : i + 8], {"a": y[i : i + 8]}) for i in range(0, 17, 8)]  # 8, 8, 1
    for call in (trainer.evaluate, trainer.predict):
        with pytest.raises(ValueError, match=r"batch 2 .* task 'a' is 0-d"):
            call(batches)


def test_a_floating_dense_class_index_target_says_to_use_integers():
    pred = torch.zeros(2, 3, 4, 4)
    with pytest.raises(TypeError, match=r"dense target of class indices must be an integer"):
        Task("seg", kind="dense").compute_loss(pred, torch.zeros(2, 4, 4))
    # a one-channel dense regression (a depth map) keeps the shape error
    with pytest.raises(ValueError, match="same shape"):
        Task("depth", kind="dense").compute_loss(torch.zeros(2, 1, 4, 4), torch.zeros(2, 4, 4))
