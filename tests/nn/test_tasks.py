"""Task: masked losses against hand-computed oracles, metrics, and clear errors."""

import math

import numpy as np
import pytest
import torch

from multitask import metrics
from multitask.nn import Task, task_losses

torch.set_num_threads(1)
NAN = float("nan")


def test_regression_nan_mask_is_mean_over_labelled():
    pred = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    target = torch.tensor([0.0, NAN, 5.0, NAN])
    loss = Task("y").compute_loss(pred, target)
    assert loss.item() == pytest.approx(((1 - 0) ** 2 + (3 - 5) ** 2) / 2)
    loss.backward()
    # d/dpred of mean over 2 labelled: (pred - y); zero (and finite) on masked entries
    np.testing.assert_allclose(pred.grad.numpy(), [1.0, 0.0, -2.0, 0.0])


def test_regression_accepts_column_prediction():
    loss = Task("y").compute_loss(torch.tensor([[1.0], [2.0]]), torch.tensor([0.0, 0.0]))
    assert loss.item() == pytest.approx(2.5)
    loss = Task("y").compute_loss(torch.tensor([1.0, 2.0]), torch.tensor([[0.0], [0.0]]))
    assert loss.item() == pytest.approx(2.5)


def test_binary_default_is_bce_with_logits_masked():
    logits = torch.tensor([0.3, -1.2, 2.0])
    target = torch.tensor([1.0, NAN, 0.0])
    got = Task("b", "binary").compute_loss(logits, target).item()

    def bce(z, y):
        p = 1 / (1 + math.exp(-z))
        return -(y * math.log(p) + (1 - y) * math.log(1 - p))

    assert got == pytest.approx((bce(0.3, 1) + bce(2.0, 0)) / 2, rel=1e-6)


def test_binary_integer_target_uses_ignore_index():
    logits = torch.tensor([0.3, -1.2, 2.0])
    floats = Task("b", "binary").compute_loss(logits, torch.tensor([1.0, NAN, 0.0]))
    ints = Task("b", "binary").compute_loss(logits, torch.tensor([1, -100, 0]))
    assert ints.item() == pytest.approx(floats.item())


def test_multiclass_ignore_index_is_cross_entropy_on_labelled():
    logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0], [2.0, 1.0, 1.0]])
    target = torch.tensor([1, -100, 0])
    got = Task("c", "multiclass").compute_loss(logits, target).item()
    lse = np.log(np.exp(logits.numpy()).sum(1))
    oracle = ((lse[0] - 2.0) + (lse[2] - 2.0)) / 2
    assert got == pytest.approx(oracle, rel=1e-6)
    custom = Task("c", "multiclass", ignore_index=7).compute_loss(logits, torch.tensor([1, 7, 0]))
    assert custom.item() == pytest.approx(oracle, rel=1e-6)


def test_multilabel_masks_entries():
    logits = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    target = torch.tensor([[1.0, NAN], [NAN, 0.0]])
    got = Task("m", "multilabel").compute_loss(logits, target).item()
    oracle = (math.log(2.0) + math.log(1 + math.exp(-1.0))) / 2  # bce(0,1), bce(-1,0)
    assert got == pytest.approx(oracle, rel=1e-6)


def test_dense_segmentation_and_depth():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 5)
    labels = torch.randint(0, 3, (2, 4, 5))
    labels[0, 0, :] = -100
    got = Task("seg", "dense").compute_loss(logits, labels)
    flat = logits.permute(0, 2, 3, 1).reshape(-1, 3)
    keep = labels.reshape(-1) != -100
    oracle = torch.nn.functional.cross_entropy(flat[keep], labels.reshape(-1)[keep])
    assert got.item() == pytest.approx(oracle.item(), rel=1e-6)
    depth = torch.randn(2, 1, 4, 5)
    pred = torch.randn(2, 1, 4, 5)
    depth[1, 0, 2, 3] = NAN
    ok = ~torch.isnan(depth)
    got = Task("depth", "dense").compute_loss(pred, depth)
    assert got.item() == pytest.approx(((pred - depth)[ok] ** 2).mean().item(), rel=1e-6)


def test_no_labelled_sample_gives_zero_loss_in_graph():
    pred = torch.tensor([1.0, 2.0], requires_grad=True)
    loss = Task("y").compute_loss(pred, torch.tensor([NAN, NAN]))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(pred.grad, torch.zeros(2))
    logits = torch.zeros(2, 3, requires_grad=True)
    assert Task("c", "multiclass").compute_loss(logits, torch.tensor([-100, -100])).item() == 0.0


def test_custom_loss_gets_only_labelled_rows():
    seen = {}

    def l1(p, y):
        seen["n"] = p.shape[0]
        return (p - y).abs().mean()

    task = Task("y", loss=l1)
    loss = task.compute_loss(torch.tensor([1.0, 5.0, 2.0]), torch.tensor([0.0, NAN, 4.0]))
    assert seen["n"] == 2 and loss.item() == pytest.approx(1.5)
    empty = task.compute_loss(torch.tensor([1.0], requires_grad=True), torch.tensor([NAN]))
    assert empty.item() == 0.0 and empty.requires_grad


def test_default_metrics_per_kind_match_metrics_module():
    y = torch.tensor([1.0, NAN, 3.0, 0.5])
    p = torch.tensor([1.5, 9.0, 2.0, 0.0])
    got = Task("y").evaluate(p, y)
    yt, yp = np.array([1.0, 3.0, 0.5]), np.array([1.5, 2.0, 0.0])
    assert set(got) == {"mse", "mae"}
    assert got["mse"] == pytest.approx(metrics.mse(yt, yp))
    assert got["mae"] == pytest.approx(metrics.mae(yt, yp))

    logits = torch.tensor([2.0, -1.0, 0.5, -3.0, 1.0])
    yb = torch.tensor([1.0, 1.0, 0.0, 0.0, NAN])
    got = Task("b", "binary").evaluate(logits, yb)
    assert set(got) == {"accuracy", "auc", "f1"}
    labels = np.array([1.0, 0.0, 1.0, 0.0])
    truth = np.array([1.0, 1.0, 0.0, 0.0])
    assert got["accuracy"] == pytest.approx(0.5)
    assert got["f1"] == pytest.approx(metrics.f1(truth, labels))
    assert got["auc"] == pytest.approx(0.75)  # pairs (pos > neg): (2>.5, 2>-3, -1>-3) of 4

    lc = torch.tensor([[0.1, 2.0], [3.0, 0.0], [0.0, 1.0]])
    got = Task("c", "multiclass").evaluate(lc, torch.tensor([1, 1, -100]))
    assert got == {"accuracy": pytest.approx(0.5)}


def test_metric_names_and_callables():
    t = Task("y", metrics=["rmse"])
    assert t.evaluate(torch.tensor([0.0, 0.0]), torch.tensor([3.0, 4.0]))["rmse"] == pytest.approx(
        math.sqrt(12.5)
    )
    t = Task("y", metrics={"max": lambda a, b: float(np.max(np.abs(a - b)))})
    assert t.evaluate(torch.tensor([0.0, 1.0]), torch.tensor([3.0, NAN])) == {"max": 3.0}
    with pytest.raises(ValueError, match=r"unknown metric\(s\) \['nope'\]"):
        Task("y", metrics=["nope"])  # at construction, not at the first evaluation


def test_constructor_checks_its_arguments_early():
    # each of these used to be stored and fail later (or never)
    assert Task("y", metrics="mae").metrics == ("mae",)  # a lone name, not 3 letters
    with pytest.raises(ValueError, match=r"unknown metric\(s\) \['delta_m'\]"):
        Task("y", metrics=["delta_m"])  # a function of multitask.metrics, not a metric
    with pytest.raises(TypeError, match="task 'y': weight must be a real number"):
        Task("y", weight="high")
    with pytest.raises(TypeError, match="weight must be a real number"):
        Task("y", weight=True)  # a flag, not a weight
    with pytest.raises(ValueError, match="weight must be a finite number >= 0"):
        Task("y", weight=math.nan)
    with pytest.raises(ValueError, match=r"lr must be a finite number > 0"):
        Task("y", lr=0.0)
    assert Task("y", weight=torch.tensor(0.5), lr=np.float32(0.25)).lr == 0.25
    with pytest.raises(TypeError, match="task name must be a str"):
        Task(3)
    assert Task("y", "dense").metric_names() == ("accuracy", "mse", "mae")
    assert Task("y", "binary").metric_names() == ("accuracy", "auc", "f1")


@pytest.mark.parametrize(
    ("kind", "pred", "target", "match"),
    [
        ("regression", (4, 3), (4,), r"task 'income': prediction \(B, 3\) vs target \(B,\)"),
        ("binary", (4, 2), (4,), "binary task takes logits"),
        ("multiclass", (4,), (4,), "class"),
        ("multiclass", (4, 3), (4, 3), "class"),
        ("regression", (4,), (5,), "batch sizes differ"),
    ],
)
def test_shape_errors_are_clear(kind, pred, target, match):
    with pytest.raises(ValueError, match=match):
        Task("income", kind).compute_loss(torch.zeros(pred), torch.zeros(target))


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown kind 'ranking'"):
        Task("t", "ranking")


def test_task_losses_errors_name_the_valid_tasks():
    tasks = [Task("a"), Task("b")]
    preds = {"a": torch.zeros(2), "b": torch.zeros(2)}
    targets = {"a": torch.zeros(2), "b": torch.ones(2)}
    losses = task_losses(tasks, preds, targets)
    assert list(losses) == ["a", "b"] and losses["b"].item() == 1.0
    with pytest.raises(
        KeyError, match=r"unknown task\(s\) \['c'\]; valid task names are \['a', 'b'\]"
    ):
        task_losses(tasks, {**preds, "c": torch.zeros(2)}, targets)
    with pytest.raises(KeyError, match="no target for task 'b'"):
        task_losses(tasks, preds, {"a": torch.zeros(2)})
    with pytest.raises(KeyError, match="no prediction for task 'a'"):
        task_losses(tasks, {"b": torch.zeros(2)}, targets)


def test_default_metrics_multilabel_and_dense():
    logits = torch.tensor([[1.0, -1.0], [-2.0, 3.0]])
    target = torch.tensor([[1.0, 1.0], [NAN, 1.0]])
    # labelled entries: (1 vs pred 1), (1 vs pred 0), (1 vs pred 1) -> 2/3
    assert Task("m", "multilabel").evaluate(logits, target) == {"accuracy": pytest.approx(2 / 3)}
    seg = torch.zeros(1, 2, 2, 2)
    seg[0, 1, 0, :] = 1.0  # class 1 predicted on the first row
    labels = torch.tensor([[[1, 0], [0, -100]]])
    assert Task("s", "dense").evaluate(seg, labels) == {"accuracy": pytest.approx(2 / 3)}
    depth = Task("d", "dense").evaluate(
        torch.zeros(1, 1, 2, 2), torch.tensor([[[[1.0, 3.0], [NAN, 2.0]]]])
    )
    assert depth == {"mse": pytest.approx(14 / 3), "mae": pytest.approx(2.0)}


@pytest.mark.parametrize("kind", ["binary", "multilabel"])
@pytest.mark.parametrize("bad", [2.0, -1.0, 1.5])
def test_binary_target_outside_0_1_gives_nan_and_check_target_says_why(kind, bad):
    # {-1, 1} or {1, 2} label encodings used to train on a finite, wrong BCE
    pred = torch.zeros(4) if kind == "binary" else torch.zeros(2, 2)
    target = torch.tensor([0.0, 1.0, NAN, bad])
    target = target if kind == "binary" else target.reshape(2, 2)
    task = Task("y", kind)
    assert math.isnan(task.compute_loss(pred, target).item())
    for soft in (False, True):
        with pytest.raises(ValueError, match=rf"task 'y' \({kind}\): 1 labelled target.*\[{bad}\]"):
            task.check_target(pred, target, soft=soft)
    # valid targets: unchanged loss (oracle: BCE on the labelled entries), no error
    ok = torch.where(target == bad, 1.0, target)
    labelled = ~torch.isnan(ok)
    want = torch.nn.functional.binary_cross_entropy_with_logits(pred[labelled], ok[labelled])
    torch.testing.assert_close(task.compute_loss(pred, ok), want)
    task.check_target(pred, ok)


def test_integer_binary_target_outside_0_1():
    task = Task("y", "binary")
    pred = torch.zeros(4)
    assert math.isfinite(task.compute_loss(pred, torch.tensor([0, 1, -100, 1])).item())
    assert math.isnan(task.compute_loss(pred, torch.tensor([0, 2, -100, 1])).item())
    assert math.isfinite(task.compute_loss(pred, torch.tensor([True, False, True, True])).item())


def test_multiclass_float_or_out_of_range_targets_are_clear_errors():
    task = Task("digit", "multiclass")
    with pytest.raises(TypeError, match=r"task 'digit'.*integer tensor.*target.long\(\)"):
        task.compute_loss(torch.zeros(3, 4), torch.tensor([0.0, 1.5, 2.0]))
    # a class outside [0, C) used to raise torch's bare 'Target 7 is out of bounds'
    with pytest.raises(ValueError, match=r"task 'digit'.*class indices in \[0, 4\).*\[7\]"):
        task.compute_loss(torch.zeros(3, 4), torch.tensor([0, 7, -100]))
    with pytest.raises(ValueError, match=r"task 'digit'.*\[-3\]"):
        task.compute_loss(torch.zeros(3, 4), torch.tensor([0, -3, 1]))


def test_check_target_flags_infinite_regression_targets_only():
    task = Task("y")
    task.check_target(torch.zeros(3), torch.tensor([1.0, NAN, -2.0]))  # NaN = missing
    with pytest.raises(ValueError, match=r"task 'y'.*not finite.*\[inf\]"):
        task.check_target(torch.zeros(3), torch.tensor([1.0, math.inf, NAN]))


def test_zero_dim_prediction_is_a_clear_error():
    with pytest.raises(ValueError, match=r"task 'y'.*batch axis"):
        Task("y").compute_loss(torch.tensor(1.0), torch.tensor(1.0))


def test_loss_and_count_counts_labelled_entries():
    loss, count = Task("y").loss_and_count(torch.zeros(4), torch.tensor([1.0, NAN, 3.0, NAN]))
    assert count.item() == 2 and loss.item() == pytest.approx((1 + 9) / 2)
    _, count = Task("c", "multiclass").loss_and_count(torch.zeros(3, 2), torch.tensor([-100] * 3))
    assert count.item() == 0


def test_a_failing_metric_names_the_task():
    with pytest.raises(ValueError, match=r"task 'churn': metric 'auc' on its 3 labelled.*class"):
        Task("churn", "binary").evaluate(torch.zeros(4), torch.tensor([1.0, 1.0, NAN, 1.0]))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_losses_are_accumulated_in_float32(dtype):
    # 2 x 200 x 200 = 80000 entries: a float16 count or sum overflowed to inf (loss NaN)
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 200, 200, generator=g).to(dtype)
    classes = torch.randint(0, 3, (2, 200, 200), generator=g)
    want = torch.nn.functional.cross_entropy(logits.float(), classes)
    got = Task("seg", "dense").compute_loss(logits, classes)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=1e-2, atol=0)
    pred, target = torch.randn(80000, generator=g), torch.randn(80000, generator=g)
    got = Task("depth").compute_loss(pred.to(dtype), target.to(dtype))
    want = ((pred.to(dtype).float() - target.to(dtype).float()) ** 2).mean()
    torch.testing.assert_close(got, want, rtol=1e-2, atol=0)


def test_evaluate_rejects_invalid_labels():
    # a binary label 2 used to be scored as a third class: accuracy silently wrong
    with pytest.raises(ValueError, match=r"task 'y' \(binary\).*\[2\.0\]"):
        Task("y", "binary").evaluate(torch.zeros(3), torch.tensor([0.0, 2.0, 1.0]))


def test_label_columns_are_accepted_for_binary_and_multiclass():
    # a (B, 1) label column (y[:, None], a one-column frame) used to be a shape error
    logits = torch.tensor([0.3, -1.0, 2.0])
    labels = torch.tensor([1.0, 0.0, NAN])
    binary = Task("y", "binary")
    want = binary.compute_loss(logits, labels)
    torch.testing.assert_close(binary.compute_loss(logits[:, None], labels[:, None]), want)
    torch.testing.assert_close(binary.compute_loss(logits, labels[:, None]), want)
    scores = torch.tensor([[0.1, 2.0, -1.0], [1.0, 0.0, 0.5]])
    classes = torch.tensor([1, -100])
    multi = Task("c", "multiclass")
    torch.testing.assert_close(
        multi.compute_loss(scores, classes[:, None]), multi.compute_loss(scores, classes)
    )
    assert binary.evaluate(logits[:, None], labels[:, None]) == binary.evaluate(logits, labels)


@pytest.mark.parametrize("kind", ["binary", "multilabel"])
def test_soft_binary_labels_train_as_probabilities(kind):
    # label smoothing / distillation: targets in [0, 1] are the probabilities of BCE
    pred = torch.tensor([0.3, -1.0, 2.0, 0.5]).reshape(-1 if kind == "binary" else (2, 2))
    target = torch.tensor([0.75, 0.25, NAN, 0.5]).reshape(pred.shape)
    task = Task("y", kind)
    labelled = ~torch.isnan(target)
    want = torch.nn.functional.binary_cross_entropy_with_logits(pred[labelled], target[labelled])
    torch.testing.assert_close(task.compute_loss(pred, target), want)
    task.check_target(pred, target, soft=True)
    with pytest.raises(ValueError, match=r"not 0 or 1.*\[0\.75"):  # metrics need hard labels
        task.check_target(pred, target)


def test_f1_of_a_multiclass_task_is_macro_over_all_its_classes():
    """``metrics=["f1"]`` on a multiclass task: macro F1 over every class of the prediction,
    an absent class scoring 0 (sklearn's ``f1_score(average="macro", labels=range(C))``); a
    binary task: the F1 of label 1, 0 with no positive at all."""
    from sklearn.metrics import f1_score

    task = Task("c", kind="multiclass", metrics=["f1"])
    target = torch.tensor([0, 1, 1, 0, 1])
    pred = torch.tensor([[2.0, 0, 0, 0], [0, 2, 0, 0], [2, 0, 0, 0], [0, 0, 2, 0], [0, 2, 0, 0]])
    want = f1_score(target, pred.argmax(1), average="macro", labels=range(4), zero_division=0.0)
    assert task.evaluate(pred, target)["f1"] == pytest.approx(want)
    binary = Task("b", kind="binary", metrics=["accuracy", "f1"])
    scores = binary.evaluate(torch.full((4,), -3.0), torch.zeros(4))
    assert scores == {"accuracy": 1.0, "f1": 0.0}


def test_evaluate_keeps_float64_predictions():
    # float32 would round 1e8 + 0.1 to 1e8: an MSE of 0 where the errors are 0.1 .. 0.3
    target = torch.tensor([1e8, 2e8, 3e8], dtype=torch.float64)
    errors = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)
    scores = Task("price").evaluate(target + errors, target)
    assert scores["mse"] == pytest.approx(float(errors.square().mean()), rel=1e-6)
    assert scores["mae"] == pytest.approx(float(errors.abs().mean()), rel=1e-6)


def test_evaluate_takes_bfloat16_predictions():
    target = torch.tensor([0.0, 1.0, 0.0, 1.0])
    pred = torch.tensor([-1.0, 2.0, 2.5, 3.0], dtype=torch.bfloat16)
    scores = Task("c", kind="binary").evaluate(pred, target)
    # negatives score -1 and 2.5, positives 2 and 3: 3 of the 4 pairs are ordered
    assert scores["auc"] == pytest.approx(0.75)


def test_auc_of_a_two_class_task_scores_the_probability_of_class_one():
    """A multiclass (or integer dense) task with metric 'auc' and two classes: the AUC of
    softmax(logits)[:, 1], as a binary task on the logit difference; not of the argmax."""
    from sklearn.metrics import roc_auc_score

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(40, 2, generator=g, dtype=torch.float64)
    y = (logits[:, 1] - logits[:, 0] + torch.randn(40, generator=g, dtype=torch.float64) > 0).long()
    y[3] = -100  # not labelled
    kept = y != -100
    p1 = torch.softmax(logits, -1)[:, 1]
    want = roc_auc_score(y[kept].numpy(), p1[kept].numpy())
    assert want != roc_auc_score(y[kept].numpy(), logits.argmax(1)[kept].numpy())
    got = Task("c", "multiclass", metrics=("auc",)).evaluate(logits, y)["auc"]
    assert got == pytest.approx(want, abs=1e-6)
    binary = Task("b", "binary", metrics=("auc",)).evaluate(
        logits[:, 1] - logits[:, 0], torch.where(kept, y, torch.zeros_like(y)).double()
        .masked_fill(~kept, float("nan"))
    )["auc"]  # fmt: skip
    assert got == pytest.approx(binary, abs=1e-6)
    dense = Task("d", "dense", metrics=("auc",)).evaluate(logits.T[None], y[None])["auc"]
    assert dense == pytest.approx(want, abs=1e-6)


def test_auc_of_more_than_two_classes_is_a_clear_error():
    with pytest.raises(ValueError, match=r"task 'c': metric 'auc' .* predicts 3 classes"):
        Task("c", "multiclass", metrics=("auc",)).evaluate(torch.randn(6, 3), torch.arange(6) % 3)
    with pytest.raises(ValueError, match="AUC is defined for two classes; y_true has 3"):
        metrics.auc([0, 1, 2, 1], [0.1, 0.2, 0.3, 0.4])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_auc_of_confident_predictions_ranks_by_the_logit_without_ties(dtype):
    """A float32 sigmoid is exactly 1 from a logit of about 17, and a float32 softmax of
    float64 logits likewise: perfectly ranked confident predictions tied there (AUC 0.667
    and 0.75 where sklearn on the logits gives 1)."""
    from sklearn.metrics import roc_auc_score

    logits = torch.tensor([30.0, 20.0, 25.0, 18.0, 40.0, -3.0], dtype=dtype)
    y = torch.tensor([1, 0, 1, 0, 1, 0])
    assert roc_auc_score(y.numpy(), logits.numpy()) == 1.0  # the oracle: a perfect ranking
    assert torch.sigmoid(logits.float())[[0, 1]].eq(1).all()  # the trap
    binary = Task("b", "binary", metrics=("auc",)).evaluate(logits, y.to(dtype))
    assert binary["auc"] == 1.0
    multilabel = Task("m", "multilabel", metrics=("auc",))
    assert multilabel.evaluate(logits[:, None], y[:, None].to(dtype))["auc"] == 1.0
    two = torch.stack([torch.zeros_like(logits), logits], 1)  # logit difference = logits
    assert Task("c", "multiclass", metrics=("auc",)).evaluate(two, y)["auc"] == 1.0
    assert Task("d", "dense", metrics=("auc",)).evaluate(two.T[None], y[None])["auc"] == 1.0
    # a metric of one's own named "auc" gets the same float64 scores
    seen = []
    task = Task("b", "binary", metrics={"auc": lambda t, s: seen.append(s) or 0.0})
    task.evaluate(logits, y.to(dtype))
    assert seen[0].dtype == np.float64
    np.testing.assert_array_equal(seen[0], logits.double().numpy())


@pytest.mark.parametrize("kind", ["regression", "binary"])
def test_evaluate_takes_a_bfloat16_target_as_the_loss_does(kind):
    pred = torch.tensor([0.5, -1.0, 2.0, 0.25])
    values = [0.5, 0.0, 1.0, 1.0] if kind == "regression" else [0.0, 0.0, 1.0, 1.0]
    target = torch.tensor(values, dtype=torch.bfloat16)
    task = Task("t", kind)
    assert torch.isfinite(task.compute_loss(pred, target))
    got = task.evaluate(pred, target)
    want = task.evaluate(pred, target.float())
    assert got == want and all(math.isfinite(v) for v in got.values())


def test_an_integer_regression_target_of_minus_100_is_a_value_not_a_missing_label():
    """Only NaN marks a missing regression label (docs/deep.md); -100 is ignore_index, the
    missing class label, and an integer regression target equal to it was dropped."""
    target = torch.tensor([-100, 0, 5])
    task = Task("r")
    pred = torch.tensor([0.0, 1.0, 5.0])
    want = ((pred - target.double()) ** 2).mean()
    assert task.compute_loss(pred, target).item() == pytest.approx(want.item())
    scores = task.evaluate(torch.tensor([-100.0, 1.0, 5.0]), target)
    assert scores["mse"] == pytest.approx(1 / 3)
    # a class target keeps ignore_index as missing
    binary = Task("b", "binary", metrics=("accuracy",))
    assert binary.evaluate(torch.tensor([2.0, -1.0, 3.0]), torch.tensor([1, -100, 0])) == {
        "accuracy": 0.5
    }


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": ""}, ValueError, "non-empty str"),
        ({"name": 3}, TypeError, "task name must be a str"),
        ({"name": "t", "loss": "mse"}, TypeError, "loss must be a callable"),
        ({"name": "t", "loss": 1.0}, TypeError, "loss must be a callable"),
        ({"name": "t", "metrics": {"acc": "accuracy"}}, TypeError, r"not: \{'acc': 'accuracy'\}"),
        ({"name": "t", "metrics": {1: lambda y, p: 0.0}}, TypeError, "metrics given as a dict"),
        ({"name": "t", "ignore_index": 1.5}, TypeError, "ignore_index must be an integer"),
        ({"name": "t", "ignore_index": "-100"}, TypeError, "ignore_index must be an integer"),
        ({"name": "t", "ignore_index": True}, TypeError, "ignore_index must be an integer"),
        ({"name": "t", "ignore_index": float("nan")}, TypeError, "ignore_index"),
        ({"name": "t", "auxiliary": "no"}, TypeError, "task 't': auxiliary must be True or False"),
        ({"name": "t", "auxiliary": 1}, TypeError, "task 't': auxiliary"),
        ({"name": "t", "auxiliary": None}, TypeError, "task 't': auxiliary"),
    ],
)
def test_task_bad_arguments_refused_at_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        Task(**kwargs)


def test_task_valid_edge_arguments_still_work():
    task = Task("c", kind="multiclass", ignore_index=np.int64(-1), loss=None)
    assert task.ignore_index == -1 and type(task.ignore_index) is int
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    assert task.evaluate(logits, torch.tensor([0, -1])) == {"accuracy": 1.0}
    custom = Task("r", loss=torch.nn.functional.l1_loss, metrics={"m": lambda y, p: 1.0})
    assert custom.compute_loss(torch.zeros(2), torch.ones(2)).item() == 1.0
    assert custom.evaluate(torch.zeros(2), torch.ones(2)) == {"m": 1.0}
    flag = Task("a", auxiliary=np.bool_(True))  # a numpy bool is a bool
    assert flag.auxiliary is True and Task("b").auxiliary is False
