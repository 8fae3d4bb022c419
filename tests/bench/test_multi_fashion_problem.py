"""Multi-Fashion as a bench problem: splits, LeNet trunk, a tiny run through ``bench.run``."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from multitask.bench import Suite, run  # noqa: E402
from multitask.bench._deep import DEEP_PROBLEM_LOADERS, hard_sharing  # noqa: E402
from multitask.bench._images import load_multi_fashion_problem  # noqa: E402
from multitask.datasets import DatasetNotFoundError, load  # noqa: E402

TINY = {"n_train": 200, "n_val": 100, "n_test": 200, "max_epochs": 1, "batch_size": 50}


@pytest.fixture(scope="module")
def fashion():
    try:
        return load("fashion_mnist")
    except DatasetNotFoundError as err:
        pytest.skip(f"Debian package dataset-fashion-mnist absent: {err}")


@pytest.fixture(scope="module")
def problem(fashion):
    return load_multi_fashion_problem(0, TINY)


def test_splits_shapes_and_sources(problem, fashion):
    assert problem.tasks == ["top_left", "bottom_right"]
    sizes = {s: len(x) for s, x in problem.X.items()}
    assert sizes == {"train": 200, "val": 100, "test": 200}
    for split, x in problem.X.items():
        assert x.shape[1:] == (1, 28, 28) and x.dtype == np.float32
        assert all(len(y) == len(x) for y in problem.Y[split].values())
    # same seed, same problem; validation is drawn from the generated training set,
    # so its images differ from the test images (drawn from Fashion-MNIST's test split)
    again = load_multi_fashion_problem(0, TINY)
    assert all(np.array_equal(problem.X[s], again.X[s]) for s in problem.X)
    assert not np.array_equal(problem.X["val"][:100], problem.X["test"][:100])


def test_hard_sharing_uses_the_lenet_encoder_only_for_images(problem):
    model = hard_sharing(problem, problem.tasks)
    assert any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    out = model(torch.from_numpy(problem.X["test"][:3]))
    assert {t: tuple(v.shape) for t, v in out.items()} == {
        "top_left": (3, 10),
        "bottom_right": (3, 10),
    }
    digits = DEEP_PROBLEM_LOADERS["multi_digits"](0, {"n_train": 50})
    assert digits.encoder is None
    mlp = hard_sharing(digits, digits.tasks)
    assert not any(isinstance(m, torch.nn.Conv2d) for m in mlp.modules())


def test_a_short_run_through_bench_run_learns_both_tasks(fashion, tmp_path):
    # 1,000 images and 3 epochs (about 5 s): enough to beat chance (0.1) clearly
    options = {**TINY, "n_train": 1000, "n_test": 500, "max_epochs": 3}
    suite = Suite("mf", ("multi_fashion",), ("hard_sharing",), (0,), options=options)
    rows = run(suite, tmp_path)
    acc = {
        (r.method, r.task): r.value for r in rows if r.metric == "accuracy" and r.split == "test"
    }
    assert set(acc) == {
        (m, t)
        for m in ("single_task", "hard_sharing")
        for t in ("top_left", "bottom_right", "_all")
    }
    for method in ("single_task", "hard_sharing"):
        assert acc[(method, "top_left")] > 0.25 and acc[(method, "bottom_right")] > 0.25
        mean = (acc[(method, "top_left")] + acc[(method, "bottom_right")]) / 2
        assert acc[(method, "_all")] == pytest.approx(mean)
