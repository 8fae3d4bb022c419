import numpy as np
import pytest
import torch
from torch import nn

from multitask.nn.architectures.fully_adaptive import (
    FullyAdaptiveSharing,
    branch_affinity,
    task_affinity,
)

TASKS = ("a", "b", "c", "d")
# a~b and c~d are close; b is a bit closer to c than a is
AFFINITY = torch.tensor(
    [
        [1.00, 0.95, 0.30, 0.20],
        [0.95, 1.00, 0.40, 0.30],
        [0.30, 0.40, 1.00, 0.90],
        [0.20, 0.30, 0.90, 1.00],
    ]
)


def _model(weight=0.1):
    torch.manual_seed(0)
    layers = [nn.Sequential(nn.Linear(3, 4), nn.ReLU()) for _ in range(2)]
    layers[1] = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    return FullyAdaptiveSharing(layers, {t: nn.Linear(4, 1) for t in TASKS}, weight)


def test_task_affinity_is_probability_of_agreeing_on_hard_examples():
    rng = np.random.default_rng(0)
    losses = rng.exponential(size=(50, 3))
    hard = losses >= losses.mean(0)
    expected = np.array([[np.mean(hard[:, i] == hard[:, j]) for j in range(3)] for i in range(3)])
    np.testing.assert_allclose(task_affinity(torch.tensor(losses)).numpy(), expected)


def test_branch_affinity_bruteforce():
    branches = [[0, 1], [2], [3]]
    got = branch_affinity(AFFINITY.double(), branches)
    a = AFFINITY.numpy()

    def ab(k, l):
        return np.mean([min(a[i, j] for j in l) for i in k])

    for k, bk in enumerate(branches):
        for l, bl in enumerate(branches):
            assert got[k, l].item() == pytest.approx((ab(bk, bl) + ab(bl, bk)) / 2)


def test_grows_the_expected_tree():
    model = _model(weight=0.1)
    print(model.tree_)
    model.widen_next(AFFINITY)  # top layer: cost of d=2 {ab}{cd}: (0.05+0.1)/2 + 0.1 = 0.175
    assert model.tree_.levels == [[TASKS], [("a", "b"), ("c", "d")]]
    model.widen_next(AFFINITY)  # bottom layer: the two branches are far apart (0.25 + 0.1 < 0.7)
    assert model.tree_.levels == [[("a", "b"), ("c", "d")], [("a", "b"), ("c", "d")]]
    assert str(model.tree_) == "layer 0: [a b] [c d]\nlayer 1: [a b] [c d]"
    with pytest.raises(RuntimeError, match="every layer"):
        model.widen_next(AFFINITY)


def test_complexity_weight_controls_the_number_of_branches():
    heavy = _model(weight=10.0)
    heavy.widen_next(AFFINITY)
    assert heavy.tree_.levels[1] == [TASKS]
    free = _model(weight=0.0)
    free.widen_next(AFFINITY)
    assert free.tree_.levels[1] == [("a",), ("b",), ("c",), ("d",)]


def test_new_branches_copy_the_parent_and_forward_is_unchanged():
    model = _model()
    x = torch.randn(7, 3)
    before = model(x)
    model.widen_next(AFFINITY)
    after = model(x)
    for t in TASKS:
        torch.testing.assert_close(before[t], after[t])
    a_node, c_node = model.nodes["l1_g0"], model.nodes["l1_g1"]
    assert a_node[0].weight is not c_node[0].weight
    # the shared/task split follows the tree
    n_shared = sum(p.numel() for p in model.shared_parameters())
    assert n_shared == 3 * 4 + 4 + 2 * (4 * 4 + 4)


def test_a_widened_checkpoint_loads_into_a_thin_model(tmp_path):
    """The tree was not in state_dict: a widened model's checkpoint failed to load into the
    model rebuilt from the same arguments ("Unexpected key(s) nodes.l1_g1.weight"), so a
    Trainer run could not resume after a widening. Oracle: the widened model's outputs."""
    from multitask.training.checkpoint import load_checkpoint, save_checkpoint

    grown = _model()
    grown.widen_next(AFFINITY)
    grown.widen_next(AFFINITY)
    save_checkpoint({"model": grown.state_dict()}, tmp_path / "last.pt")
    thin = _model()
    thin.load_state_dict(load_checkpoint(tmp_path / "last.pt")["model"])  # weights_only
    assert str(thin.tree_) == str(grown.tree_) and thin.next_layer_ == grown.next_layer_ == -1
    x = torch.randn(5, 3)
    want, got = grown(x), thin(x)
    for t in TASKS:
        torch.testing.assert_close(got[t], want[t])
    assert {id(p) for p in thin.parameters()} >= {id(p) for p in thin.shared_parameters()}
    other = FullyAdaptiveSharing(
        [nn.Linear(3, 4), nn.Linear(4, 4)], {t: nn.Linear(4, 1) for t in "xyzw"}
    )
    with pytest.raises(ValueError, match="checkpoint's tree"):
        other.load_state_dict(grown.state_dict())


def _affinity_by_hand(losses):
    """Lu et al.'s A(i, j) = P(e_i = 1, e_j = 1) + P(e_i = 0, e_j = 0) on the rows labelled for
    both tasks, e_i = [loss >= the task's mean over its own labelled rows] (NaN = no label)."""
    n_tasks = losses.shape[1]
    out = np.empty((n_tasks, n_tasks))
    for i in range(n_tasks):
        for j in range(n_tasks):
            rows = [n for n in range(len(losses)) if not np.isnan(losses[n, [i, j]]).any()]
            mean_i = np.mean([v for v in losses[:, i] if not np.isnan(v)])
            mean_j = np.mean([v for v in losses[:, j] if not np.isnan(v)])
            e_i = [losses[n, i] >= mean_i for n in rows]
            e_j = [losses[n, j] >= mean_j for n in rows]
            both_hard = sum(a and b for a, b in zip(e_i, e_j, strict=True)) / len(rows)
            both_easy = sum(not a and not b for a, b in zip(e_i, e_j, strict=True)) / len(rows)
            out[i, j] = both_hard + both_easy
    return out


def test_task_affinity_with_missing_labels_counts_jointly_labelled_rows():
    rng = np.random.default_rng(1)
    losses = rng.exponential(size=(40, 3))
    losses[rng.random(losses.shape) < 0.3] = np.nan  # about 30 % of the labels missing
    got = task_affinity(torch.tensor(losses))
    assert torch.isfinite(got).all()
    np.testing.assert_allclose(got.numpy(), _affinity_by_hand(losses), rtol=1e-12)
    np.testing.assert_allclose(got.diagonal().numpy(), 1.0)
    # float32, as a training loop gives it
    np.testing.assert_allclose(
        task_affinity(torch.tensor(losses, dtype=torch.float32)).numpy(),
        _affinity_by_hand(losses),
        rtol=1e-6,
    )


def test_one_missing_label_does_not_make_a_task_all_easy():
    # two exactly opposite tasks (what is hard for one is easy for the other); b lacks one label
    a = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    losses = torch.stack([a, 1 - a], 1)
    losses[0, 1] = float("nan")
    affinity = task_affinity(losses)
    assert affinity[0, 1].item() == 0.0 and affinity[1, 0].item() == 0.0
    model = FullyAdaptiveSharing(
        [nn.Linear(3, 4)], {"a": nn.Linear(4, 1), "b": nn.Linear(4, 1)}, 0.6
    )
    assert model.widen_next(affinity) == [[("a",), ("b",)]]  # the opposite tasks are split


def test_task_affinity_without_jointly_labelled_rows_is_an_error():
    losses = torch.tensor([[1.0, float("nan"), 2.0], [float("nan"), 1.0, 3.0], [2.0, 3.0, 1.0]])
    losses[2, :2] = float("nan")  # tasks 0 and 1 are never labelled on the same row
    with pytest.raises(ValueError, match="task 'b' and task 'c' have no sample labelled for both"):
        task_affinity(losses.roll(1, dims=1), task_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="task 0 and task 1"):
        task_affinity(losses)
    with pytest.raises(ValueError, match="2 task names for 3 tasks"):
        task_affinity(losses, task_names=["a", "b"])
