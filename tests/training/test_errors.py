"""Bad input: each a clear error, raised before any training happens where possible."""

import copy
import math

import pytest
import torch
from _training_helpers import DictDataset, TwoHeads, loader, regression_data, regression_tasks

from multitask.nn import Task
from multitask.nn.weighting import FAMO, LossWeighting
from multitask.training import Callback, Trainer


def _trainer(model=None, tasks=None, **kw):
    return Trainer(
        model or TwoHeads(), tasks or regression_tasks(), device="cpu", progress=False, **kw
    )


def test_batch_without_target_for_a_task():
    data = regression_data()
    data.ys.pop("b")
    with pytest.raises(ValueError, match=r"no target for tasks \['b'\].*NaN"):
        _trainer().fit(loader(data))


def test_masked_targets_are_fine():
    # b unlabelled but in the last batch: over the first 7 steps no error, b's head does not
    # move, and b is reported as not trained (NaN, as for a task a sampler did not draw), not
    # as a loss of 0. (b unlabelled in the whole data is an error: test_labels.py)
    data = regression_data()
    data.ys["b"][:56] = float("nan")
    model = TwoHeads()
    head_b = [p.detach().clone() for p in model.heads["b"].parameters()]
    t = _trainer(model=model, max_steps=7)
    t.fit(loader(data))
    assert all(math.isnan(r.losses["b"]) for r in t.history_.steps)
    assert all(math.isfinite(r.losses["a"]) for r in t.history_.steps)
    for p, q in zip(model.heads["b"].parameters(), head_b, strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_unlabelled_batches_leave_the_mean_training_loss_unbiased():
    # oracle: with b labelled in batch 2 of 2 only (accumulated into one step), the
    # recorded loss of b is its loss on batch 2 alone, not the mean with a 0 for batch 1
    data = regression_data(n=16)
    data.ys["b"][:8] = float("nan")
    torch.manual_seed(0)
    model = TwoHeads()
    with torch.no_grad():
        expected = torch.mean((model(data.x[8:])["b"] - data.ys["b"][8:]) ** 2).item()
    t = _trainer(model=model, max_steps=1, grad_accumulation=2)
    t.fit(loader(data))
    assert t.history_.steps[0].losses["b"] == pytest.approx(expected, rel=1e-6)


def test_target_of_wrong_shape():
    data = regression_data()
    data.ys["a"] = torch.zeros(64, 3)
    with pytest.raises(ValueError, match="task 'a'"):
        _trainer().fit(loader(data))


def test_head_naming_an_unknown_task():
    with pytest.raises(ValueError, match=r"heads for tasks \['c'\].*not among the Tasks"):
        _trainer(model=TwoHeads(extra_head="c"))
    with pytest.raises(ValueError, match=r"Tasks \['c'\] have no head"):
        _trainer(tasks=regression_tasks(("a", "b", "c")))


def test_output_dict_naming_an_unknown_task():
    class Sneaky(TwoHeads):
        def forward(self, x):
            out = super().forward(x)
            out["z"] = out["a"]
            return out

    with pytest.raises(ValueError, match=r"heads \['z'\] that name no known task"):
        _trainer(model=Sneaky()).fit(loader(regression_data()))


def test_empty_dataset():
    empty = DictDataset(torch.zeros(0, 5), {"a": torch.zeros(0), "b": torch.zeros(0)})
    with pytest.raises(ValueError, match="yields no batch"):
        _trainer().fit(loader(empty))
    with pytest.raises(ValueError, match=r"tasks \['b'\] yield no batch"):
        _trainer().fit({"a": loader(regression_data()), "b": loader(empty)})


def test_per_task_loaders_that_leave_a_task_out():
    from multitask.training import RoundRobinSampler

    data = regression_data(n=16)
    with pytest.warns(UserWarning, match=r"tasks \['b'\] have no training DataLoader"):
        _trainer(max_steps=1).fit({"a": loader(data)})
    with pytest.raises(ValueError, match=r"sampler never draws tasks \['b'\]"):
        _trainer(sampler=RoundRobinSampler(["a"])).fit({"a": loader(data), "b": loader(data)})


def test_task_weights_ignored_by_a_balancer_warn():
    from multitask.nn.weighting import UncertaintyWeighting

    tasks = [Task("a", weight=0.1), Task("b")]
    with pytest.warns(UserWarning, match=r"Task.weight \{'a': 0.1\} is ignored with a balancer"):
        _trainer(tasks=tasks, balancer=UncertaintyWeighting(2))


def test_bad_settings():
    with pytest.raises(ValueError, match="grad_accumulation"):
        _trainer(grad_accumulation=0)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        _trainer(checkpoint_every=5)
    with pytest.raises(ValueError, match="unknown optimizer"):
        _trainer(optimizer="adagrad?").fit(loader(regression_data()))
    with pytest.raises(ValueError, match="task_lr names unknown"):
        _trainer(task_lr={"q": 0.1}).fit(loader(regression_data()))
    with pytest.raises(ValueError, match="unique"):
        _trainer(tasks=[Task("a"), Task("a")])
    # these were truncated (1.5 -> 1) or accepted and meant nothing (0: never, -1: 0);
    # a non-integer is a TypeError, as for every other constructor (multitask._params)
    for name, value, error in [
        ("grad_accumulation", 1.5, TypeError),
        ("grad_accumulation", True, TypeError),
        ("max_steps", -1, ValueError),
        ("max_epochs", -2, ValueError),
        ("max_epochs", 2.0, TypeError),
        ("checkpoint_every", 0, ValueError),
        ("early_stopping", 1.5, TypeError),
    ]:
        kw = {"checkpoint_dir": "ckpt"} if name == "checkpoint_every" else {}
        with pytest.raises(error, match=f"Trainer: {name} must be an integer >= "):
            _trainer(**{name: value}, **kw)
    with pytest.raises(TypeError, match=r"tasks must be multitask.nn.Task objects.*\['a', 'b'\]"):
        _trainer(tasks=["a", "b"])  # was: 'str' object has no attribute 'name'


def test_a_batch_that_is_not_a_pair_names_the_batch():
    # was: 'too many values to unpack (expected 2)'
    x = torch.randn(8, 5)
    with pytest.raises(TypeError, match=r"epoch 0, batch 1: a training batch must be a pair"):
        _trainer().fit([(x, {"a": x[:, 0], "b": x[:, 1]}), x])


def test_numpy_batches_train_like_tensors():
    # a list of numpy batches (no collate) used to fail inside Task with a bare TypeError
    data = regression_data(n=16)
    as_tensor = [(data.x, data.ys)]
    as_numpy = [(data.x.numpy(), {t: y.numpy() for t, y in data.ys.items()})]
    models = []
    for batches in (as_tensor, as_numpy):
        torch.manual_seed(0)
        models.append(TwoHeads())
        _trainer(model=models[-1], max_epochs=2).fit(batches)
    for p, q in zip(*(m.parameters() for m in models), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_model_and_data_of_different_dtypes():
    data = regression_data(n=16)
    trainer = _trainer(model=TwoHeads().double(), max_epochs=1)
    with pytest.raises(TypeError, match=r"inputs are \['torch.float32'\].*torch.float64"):
        trainer.fit([(data.x, data.ys)])
    with pytest.raises(TypeError, match=r"inputs are \['torch.float32'\].*torch.float64"):
        trainer.evaluate([(data.x, data.ys)])
    # float64 throughout trains and evaluates
    x64 = data.x.double()
    ys64 = {t: y.double() for t, y in data.ys.items()}
    trainer.fit([(x64, ys64)])
    assert math.isfinite(trainer.evaluate([(x64, ys64)])["a"]["mse"])


def test_selection_survives_a_zero_first_validation_value():
    """An untrained multiclass head can score accuracy 0 at the first evaluation: delta_m
    against it is undefined, so that pair counts by its absolute change and the epoch with
    the best accuracy still wins (it used to stop training with 'relative change undefined')."""
    from multitask.training._selection import ModelSelector

    sel = ModelSelector("delta")
    history = [
        {"a": {"accuracy": 0.0}, "b": {"mse": 2.0}},
        {"a": {"accuracy": 0.5}, "b": {"mse": 2.0}},
        {"a": {"accuracy": 0.4}, "b": {"mse": 2.0}},
    ]
    for step, metrics in enumerate(history):
        sel.update(metrics, step, {})
    assert sel.best_step == 1
    # absolute change for the zero pair, relative for the other: epoch 1 scores
    # (0.5 - 0) / 2 pairs shifted by the constant -1/2 of the substituted reference
    assert sel.best_score == pytest.approx(((0.5 - 1.0) + 0.0) / 2)


def test_binary_target_outside_0_1_stops_with_task_step_and_values():
    x = torch.randn(16, 5)
    y = torch.tensor([0.0, 1.0] * 8)
    y_bad = y.clone()
    y_bad[11] = 2.0  # batch 1 (samples 8-15) -> step 2
    tasks = [Task("a", "binary"), Task("b", "binary")]
    data = DictDataset(x, {"a": y, "b": y_bad})
    with pytest.raises(ValueError, match=r"task 'b' \(binary\).*\[2\.0\].*at step 2"):
        _trainer(tasks=tasks).fit(loader(data))


class _NaNWeights(LossWeighting):
    """A loss weighting whose weights turn NaN at its second call (a broken balancer)."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, losses):
        self.calls += 1
        self.w = torch.ones_like(losses) * (math.nan if self.calls == 2 else 1.0)
        return (self.w * losses).sum()

    def weights(self):
        return self.w.detach()

    def reset(self):
        self.calls = 0


class _Snapshot(Callback):
    def __init__(self, model):
        self.model, self.params = model, None

    def on_step(self, record):
        self.params = [p.detach().clone() for p in self.model.parameters()]


def test_non_finite_balancer_weights_stop_before_the_update():
    # the NaN weights of step 2 used to reach the parameters; the error then came a step
    # later and blamed a task's loss
    model = TwoHeads()
    snapshot = _Snapshot(model)
    trainer = _trainer(model=model, balancer=_NaNWeights(), max_epochs=1, callbacks=[snapshot])
    with pytest.raises(FloatingPointError, match=r"balancer _NaNWeights gave task weights.*step 2"):
        trainer.fit(loader(regression_data()))
    for p, q in zip(model.parameters(), snapshot.params, strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)  # as after step 1


@pytest.mark.parametrize(
    ("tasks", "monitor", "match"),
    [
        (None, ("zz", "mse"), r"'zz' is not a task"),
        ([Task("a"), Task("b", auxiliary=True)], ("b", "mse"), r"'b' is auxiliary"),
        (None, ("a", "auc"), r"task 'a' reports only \('mse', 'mae'\)"),
        ([Task("a", metrics={"mine": lambda y, p: 0.0}), Task("b")], "delta", r"\['mine'\]"),
    ],
)
def test_a_monitor_that_cannot_score_fails_before_training(tasks, monitor, match):
    # these used to fail at the end of the first epoch, after a full epoch of training
    model = TwoHeads()
    before = [p.detach().clone() for p in model.parameters()]
    trainer = _trainer(model=model, tasks=tasks, monitor=monitor, max_epochs=2)
    with pytest.raises(ValueError, match=match):
        trainer.fit(loader(regression_data()), loader(regression_data(n=16, seed=1)))
    for p, q in zip(model.parameters(), before, strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_early_stopping_without_validation_data_warns():
    with pytest.warns(UserWarning, match="early_stopping is ignored without validation"):
        _trainer(early_stopping=2, max_steps=1).fit(loader(regression_data()))


def test_selection_skips_a_task_without_validation_labels_and_knows_custom_directions():
    from multitask.training._selection import ModelSelector

    # b has no labelled validation entry (NaN metrics): it used to make every delta NaN,
    # so no epoch was ever best and nothing was restored
    sel = ModelSelector("delta", higher_is_better={"hit": True})
    history = [
        {"a": {"mse": 2.0, "hit": 0.5}, "b": {"mse": math.nan}},
        {"a": {"mse": 1.0, "hit": 0.5}, "b": {"mse": math.nan}},
        {"a": {"mse": 1.5, "hit": 0.6}, "b": {"mse": math.nan}},
    ]
    for step, metrics in enumerate(history):
        sel.update(metrics, step, {})
    # oracle: delta_m by hand over the two finite pairs against the first evaluation
    scores = [((2.0 - m) / 2.0 + (h - 0.5) / 0.5) / 2 for m, h in [(2.0, 0.5), (1.0, 0.5)]]
    scores.append(((2.0 - 1.5) / 2.0 + (0.6 - 0.5) / 0.5) / 2)
    assert sel.best_step == max(range(3), key=scores.__getitem__) == 1
    assert sel.best_score == pytest.approx(scores[1])


def test_an_iterable_dataset_without_length_is_a_clear_error():
    from torch.utils.data import DataLoader, IterableDataset

    class Stream(IterableDataset):
        def __iter__(self):
            data = regression_data(n=8)
            for i in range(8):
                yield data.x[i], {t: y[i] for t, y in data.ys.items()}

    # was: "object of type 'Stream' has no len()"
    with pytest.raises(TypeError, match=r"no length \(its Stream has no __len__\)"):
        _trainer().fit(DataLoader(Stream(), batch_size=4))


def _negative_task(name: str) -> Task:
    """A regression task whose loss is the MSE minus 10: negative once the fit is close."""
    return Task(name, "regression", loss=lambda p, y: ((p - y) ** 2).mean() - 10.0)


def test_a_loss_below_the_balancers_floor_stops_before_any_update():
    """FAMO takes log(L - min_losses): a negative loss is named with its task and step
    (the trainer checks on every device, from the losses it reads anyway)."""
    torch.manual_seed(0)
    model = TwoHeads()
    tasks = [Task("a", "regression"), _negative_task("b")]
    trainer = _trainer(model, tasks, balancer=FAMO(2), max_epochs=1)
    start = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match=r"task 'b': -\d.*< 0.*at step 1 \(epoch 0, batch 0\)"):
        trainer.fit(loader(regression_data()))
    for k, v in model.state_dict().items():
        assert torch.equal(v, start[k]), k  # the model was not updated
    assert torch.equal(trainer.balancer.logits, torch.zeros(2))  # nor the balancer


def test_targets_given_as_python_lists_are_a_type_error_naming_the_task():
    # was: AttributeError: 'list' object has no attribute 'ndim'
    x = torch.randn(8, 5)
    batches = [(x, {"a": x[:, 0], "b": x[:, 1].tolist()})]
    with pytest.raises(TypeError, match=r"target of task 'b' is a list.*expected a Tensor"):
        _trainer().fit(batches)
    # a dataset giving a list per sample: the default collate makes it a list of tensors
    data = DictDataset(x, {"a": x[:, 0], "b": [[1.0, 2.0]] * 8})
    with pytest.raises(TypeError, match=r"task 'b' is a list.*torch.tensor\(y\) per sample"):
        _trainer().fit(loader(data))
