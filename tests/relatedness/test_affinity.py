"""Affinity measures against hand computations on a tiny linear model."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from multitask.nn import Task  # noqa: E402
from multitask.relatedness import gradient_affinity, lookahead_affinity  # noqa: E402


class _Linear(nn.Module):
    """Shared ``w`` (no bias); task ``t`` predicts ``s_t * x @ w`` with a fixed scale."""

    shared_through_representation = True

    def __init__(self, w, scales):
        super().__init__()
        self.trunk = nn.Linear(len(w), 1, bias=False)
        with torch.no_grad():
            self.trunk.weight.copy_(torch.as_tensor(w, dtype=torch.float64)[None])
        self.trunk.double()
        self.scales = dict(scales)
        self.task_names = tuple(scales)
        self.representation = None

    def forward(self, x):
        z = self.trunk(x)[:, 0]
        self.representation = z
        return {t: s * z for t, s in self.scales.items()}

    def shared_parameters(self):
        return self.trunk.parameters()

    def task_parameters(self, task):
        return iter(())


def _data(n=12, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    Y = {"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n)}
    return X, Y


def _batch(X, Y):
    return torch.as_tensor(X), {t: torch.as_tensor(y) for t, y in Y.items()}


def _tasks(names):
    return [Task(t, kind="regression") for t in names]


def _hand_grad(X, y, w, s):
    # L = mean((s X w - y)^2), dL/dw = 2/n s X^T (s X w - y)
    return 2.0 / len(y) * s * X.T @ (s * X @ w - y)


def _hand_loss(X, y, w, s):
    return np.mean((s * X @ w - y) ** 2)


def test_identical_tasks_have_maximal_gradient_affinity():
    torch.set_num_threads(1)
    X, Y = _data()
    Y["b"] = Y["a"].copy()
    model = _Linear([0.3, -0.2, 0.5], {"a": 1.0, "b": 1.0, "c": 1.0})
    A = gradient_affinity(model, _tasks("abc"), [_batch(X, Y)])
    assert A[0, 1] == pytest.approx(1.0, abs=1e-12)
    assert A[0, 1] >= A.max() - 1e-12
    assert A[0, 2] < 1.0 - 1e-3


def test_gradient_affinity_matches_hand_cosines_over_batches():
    X1, Y1 = _data(seed=1)
    X2, Y2 = _data(seed=2)
    w = np.array([0.3, -0.2, 0.5])
    scales = {"a": 1.0, "b": -2.0, "c": 0.5}
    model = _Linear(w, scales)
    A = gradient_affinity(model, _tasks("abc"), [_batch(X1, Y1), _batch(X2, Y2)])
    expected = np.zeros((3, 3))
    for X, Y in ((X1, Y1), (X2, Y2)):
        G = np.stack([_hand_grad(X, Y[t], w, scales[t]) for t in "abc"])
        U = G / np.linalg.norm(G, axis=1, keepdims=True)
        expected += U @ U.T / 2
    np.testing.assert_allclose(A, expected, atol=1e-12)


def test_lookahead_equals_closed_form_and_leaves_model_unchanged():
    X1, Y1 = _data(seed=3)
    X2, Y2 = _data(seed=4)
    w = np.array([0.1, 0.4, -0.3])
    scales = {"a": 1.0, "b": 0.7, "c": -1.5}
    lr = 0.05
    model = _Linear(w, scales)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    Z = lookahead_affinity(model, _tasks("abc"), [_batch(X1, Y1), _batch(X2, Y2)], lr=lr)
    expected = np.zeros((3, 3))
    for X, Y in ((X1, Y1), (X2, Y2)):
        for i, ti in enumerate("abc"):
            w_i = w - lr * _hand_grad(X, Y[ti], w, scales[ti])
            for j, tj in enumerate("abc"):
                ratio = _hand_loss(X, Y[tj], w_i, scales[tj]) / _hand_loss(X, Y[tj], w, scales[tj])
                expected[i, j] += (1.0 - ratio) / 2
    np.testing.assert_allclose(Z, expected, atol=1e-12)
    assert np.all(np.diag(Z) > 0)  # a small step on a task lowers its own loss
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert all(p.grad is None for p in model.parameters())


def test_identical_tasks_have_equal_lookahead_rows():
    X, Y = _data(seed=5)
    Y["b"] = Y["a"].copy()
    model = _Linear([0.3, -0.2, 0.5], {"a": 1.0, "b": 1.0, "c": 1.0})
    Z = lookahead_affinity(model, _tasks("abc"), [_batch(X, Y)], lr=0.01)
    # a step on a identical task b helps b exactly as much as a step on b itself
    assert Z[0, 1] == pytest.approx(Z[1, 1], abs=1e-12)
    assert Z[0, 1] >= Z[2, 1] - 1e-12


def test_errors_say_what_to_do():
    X, Y = _data()
    model = _Linear([0.3, -0.2, 0.5], {"a": 1.0, "b": 1.0, "c": 1.0})
    with pytest.raises(ValueError, match="at least two tasks"):
        gradient_affinity(model, _tasks("a"), [_batch(X, Y)])
    with pytest.raises(ValueError, match="batches is empty"):
        lookahead_affinity(model, _tasks("ab"), [], lr=0.1)
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        lookahead_affinity(model, _tasks("ab"), [_batch(X, Y)], lr=0.0)
    without_b = _batch(X, {"a": Y["a"], "c": Y["c"]})
    for measure, kw in ((gradient_affinity, {}), (lookahead_affinity, {"lr": 0.1})):
        with pytest.raises(KeyError, match=r"no target for tasks \['b'\] .* NaN or ignore_index"):
            measure(model, _tasks("abc"), [_batch(X, Y), without_b], **kw)


def test_lookahead_on_hard_sharing_matches_a_stepped_copy():
    import copy

    from multitask.nn.architectures import HardSharing

    torch.manual_seed(0)
    trunk = nn.Sequential(nn.Linear(4, 6), nn.Tanh())
    heads = {"u": nn.Linear(6, 1), "v": nn.Linear(6, 3)}
    model = HardSharing(trunk, heads).double()
    tasks = [Task("u", kind="regression"), Task("v", kind="multiclass")]
    x = torch.randn(16, 4, dtype=torch.float64)
    batch = (x, {"u": torch.randn(16, 1, dtype=torch.float64), "v": torch.randint(0, 3, (16,))})
    before = copy.deepcopy(model.state_dict())
    Z = lookahead_affinity(model, tasks, [batch], lr=0.3)
    assert model.representation is None  # restored after the forward passes

    def losses(m):
        out = m(x)
        return [t.compute_loss(out[t.name], batch[1][t.name]) for t in tasks]

    base = [v.item() for v in losses(model)]
    model.representation = None  # a graph tensor cannot be deep-copied
    for i in range(2):  # oracle: an SGD step on a deep copy, on the trunk only
        stepped = copy.deepcopy(model)
        opt = torch.optim.SGD(stepped.trunk.parameters(), lr=0.3)
        losses(stepped)[i].backward()
        opt.step()
        after = [v.item() for v in losses(stepped)]
        for j in range(2):
            assert Z[i, j] == pytest.approx(1 - after[j] / base[j], abs=1e-10)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert all(p.grad is None for p in model.parameters())


class _Noisy(nn.Module):
    """A trunk with BatchNorm and dropout, linear heads: forward passes in training mode change
    BatchNorm's running statistics and draw dropout masks."""

    shared_through_representation = True

    def __init__(self, names):
        super().__init__()
        torch.manual_seed(0)
        self.trunk = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.Dropout(0.3))
        self.heads = nn.ModuleDict({t: nn.Linear(8, 1) for t in names})
        self.task_names = tuple(names)
        self.double()

    def forward(self, x):
        self.representation = self.trunk(x)
        return {t: h(self.representation)[:, 0] for t, h in self.heads.items()}

    def shared_parameters(self):
        return self.trunk.parameters()

    def task_parameters(self, task):
        return self.heads[task].parameters()


@pytest.mark.parametrize("measure", ["lookahead", "gradient"])
def test_affinity_leaves_buffers_and_random_state_and_shares_dropout_draws(measure):
    """Training mode: the measures moved BatchNorm's running statistics (1 + T forwards per
    batch) and, with dropout, compared L_j(theta) and L_j(theta - lr g_i) under different
    masks, so Z did not vanish with lr (its diagonal even came out negative). Oracle: Z is
    lr <g_i, g_j> / L_j + O(lr^2), so at lr = 1e-8 it is below 1e-6 in absolute value."""
    X, Y = _data()
    model = _Noisy("abc").train()
    batches = [_batch(X, Y), _batch(*_data(seed=1))]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    if measure == "lookahead":
        Z = lookahead_affinity(model, _tasks("abc"), batches, lr=1e-8)
        assert np.abs(Z).max() < 1e-6 and (np.diag(Z) > 0).all()
    else:
        gradient_affinity(model, _tasks("abc"), batches)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert torch.equal(torch.get_rng_state(), rng)


@pytest.mark.parametrize("measure", ["lookahead", "gradient"])
def test_a_batch_without_labels_for_a_task_is_left_out_of_its_pairs(measure):
    """Task c has no label in the extra batch (loss 0): its column was NaN for good (0 / 0)
    and its gradient cosines pulled towards 0. Oracle: the measure on the labelled batches
    alone, for every pair with c; the pairs without c average over all three batches."""
    X, Y = _data()
    labelled = [_batch(X, Y), _batch(*_data(seed=1))]
    X3, Y3 = _data(seed=2)
    partial = _batch(X3, {**Y3, "c": np.full(len(Y3["c"]), np.nan)})
    model = _Linear([0.3, -0.2, 0.5], {"a": 1.0, "b": -0.5, "c": 2.0})
    tasks = _tasks("abc")
    if measure == "lookahead":
        run = lambda bs, ts=tasks: lookahead_affinity(model, ts, bs, lr=0.05)  # noqa: E731
    else:
        run = lambda bs, ts=tasks: gradient_affinity(model, ts, bs)  # noqa: E731
    got, without = run([*labelled, partial]), run(labelled)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got[2], without[2], rtol=1e-12)
    np.testing.assert_allclose(got[:, 2], without[:, 2], rtol=1e-12)
    third = run([partial], tasks[:2])
    np.testing.assert_allclose(got[:2, :2], (2 * without[:2, :2] + third) / 3, rtol=1e-12)
    with pytest.raises(ValueError, match=r"\('a', 'c'\).* were never measured"):
        run([partial])


def _measure(name):
    if name == "lookahead":
        return lambda *args: lookahead_affinity(*args, lr=0.05)
    return gradient_affinity


@pytest.mark.parametrize("measure", ["lookahead", "gradient"])
@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
def test_affinity_under_no_grad_equals_affinity_outside(measure, mode):
    """Under torch.no_grad() (as for an evaluation) the task gradients were zero, and every
    affinity with them: an all-zero matrix, without a word. Oracle: the measure outside."""
    X, Y = _data()
    model = _Linear([0.3, -0.2, 0.5], {"a": 1.0, "b": -0.5, "c": 2.0})
    run = _measure(measure)
    batches = [_batch(X, Y)]  # (tensors made in inference mode cannot enter autograd at all)
    expected = run(model, _tasks("abc"), batches)
    with mode():
        got = run(model, _tasks("abc"), batches)
    assert np.abs(expected).min() > 1e-3
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert torch.is_grad_enabled()  # the caller's mode is back after the with block


@pytest.mark.parametrize("measure", ["lookahead", "gradient"])
def test_a_non_finite_loss_is_an_error_naming_the_batch_and_tasks(measure):
    """A NaN input made every gradient cosine NaN; the lookahead dropped the batch silently
    (its base loss NaN is not > 0) and averaged the other batches."""
    X, Y = _data()
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    model = _Linear([0.3, -0.2, 0.5], {"a": 1.0, "b": -0.5, "c": 2.0})
    with pytest.raises(ValueError, match=r"batch 1: the losses of tasks \{'a': nan, 'b': nan"):
        _measure(measure)(model, _tasks("abc"), [_batch(X, Y), _batch(X_nan, Y)])


def test_a_lookahead_step_that_overflows_asks_for_a_lower_lr():
    X, Y = _data()
    model = _Linear([0.3, -0.2, 0.5], {"a": 1.0, "b": -0.5, "c": 2.0})
    with pytest.raises(
        ValueError, match=r"batch 0, after a step of lr=1e\+300 on task 'a' \(lower"
    ):
        lookahead_affinity(model, _tasks("abc"), [_batch(X, Y)], lr=1e300)


@pytest.mark.parametrize("measure", ["lookahead", "gradient"])
def test_tasks_must_be_distinct_tasks(measure):
    """Strings failed with "'str' object has no attribute 'name'"; a repeated task gave a
    repeated row and column."""
    X, Y = _data()
    model = _Linear([0.3, -0.2, 0.5], {"a": 1.0, "b": 1.0, "c": 1.0})
    run = _measure(measure)
    with pytest.raises(TypeError, match=r"Task objects, got \['a', 'b'\]"):
        run(model, ["a", "b"], [_batch(X, Y)])
    with pytest.raises(ValueError, match=r"names a task more than once: \['a'\]"):
        run(model, _tasks("aba"), [_batch(X, Y)])


@pytest.mark.parametrize("lr", [True, "0.1", None])
def test_lookahead_lr_must_be_a_number(lr):
    """lr=True ran as lr=1; a string failed with "'<' not supported"."""
    X, Y = _data()
    model = _Linear([0.3, -0.2, 0.5], {"a": 1.0, "b": 1.0, "c": 1.0})
    with pytest.raises(TypeError, match="lookahead_affinity: lr must be a real number"):
        lookahead_affinity(model, _tasks("abc"), [_batch(X, Y)], lr=lr)


@pytest.mark.parametrize("measure", ["lookahead", "gradient"])
def test_a_model_without_representation_is_left_without_one(measure):
    """The forward passes set model.representation (a tensor holding a graph); it was restored
    only when the model had the attribute before, else left behind."""
    X, Y = _data()
    model = _Noisy("abc").eval()
    assert not hasattr(model, "representation")
    _measure(measure)(model, _tasks("abc"), [_batch(X, Y)])
    assert not hasattr(model, "representation")


@pytest.mark.parametrize("measure", ["lookahead", "gradient"])
def test_batches_are_read_as_the_trainer_reads_them(measure):
    """numpy targets (which the Trainer moves to tensors) failed with "'numpy.ndarray' object
    has no attribute 'to'"; a batch that is not a pair with "too many values to unpack"."""
    X, Y = _data()
    model = _Linear([0.3, -0.2, 0.5], {"a": 1.0, "b": -0.5, "c": 2.0})
    run = _measure(measure)
    x, targets = _batch(X, Y)
    expected = run(model, _tasks("abc"), [(x, targets)])
    got = run(model, _tasks("abc"), [(x, {t: y.numpy() for t, y in targets.items()})])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    with pytest.raises(TypeError, match=r"a training batch must be a pair \(inputs"):
        run(model, _tasks("abc"), [x])
