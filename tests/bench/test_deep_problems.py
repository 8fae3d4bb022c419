"""Deep tabular problems of the bench: encoding with missing categories, Adult's splits."""

import numpy as np
import pandas as pd
import pytest

from multitask.bench._deep import DEEP_PROBLEM_LOADERS, _encode_table


def test_missing_category_is_its_own_level_fitted_on_training_rows():
    frame = pd.DataFrame(
        {"x": [1.0, 3.0, 5.0, 100.0], "c": ["b", None, "a", "z"]}  # row 3: held out
    )
    rows = {"train": np.array([0, 1, 2]), "test": np.array([3])}
    enc = _encode_table(frame, rows)
    # x: training mean 3, std 2 (ddof 1); c: levels sorted <missing>, a, b; "z" unseen -> zeros
    expected_train = np.array([[-1.0, 0, 0, 1], [0.0, 1, 0, 0], [1.0, 0, 1, 0]], dtype=np.float32)
    np.testing.assert_array_equal(enc["train"], expected_train)
    np.testing.assert_array_equal(enc["test"], np.array([[48.5, 0, 0, 0]], dtype=np.float32))


def test_adult_problem_loads_with_its_missing_values(real_data):
    problem = DEEP_PROBLEM_LOADERS["adult"](0, {"max_train": 2000})
    assert len(problem.X["train"]) == 2000
    assert len(problem.X["val"]) == 32561 // 5 and len(problem.X["test"]) == 16281
    for split, X in problem.X.items():
        assert X.dtype == np.float32 and np.isfinite(X).all(), split
        for task in ("income", "never_married"):
            assert set(np.unique(problem.Y[split][task])) == {0.0, 1.0}
    assert problem.X["train"].shape[1] == problem.X["test"].shape[1]


@pytest.mark.parametrize("method", ["single_task", "hard_sharing"])
def test_a_deep_cell_does_not_depend_on_the_global_torch_state(method):
    """The first model used to be built before the run seeded torch, so a cell's numbers
    depended on what ran before it in the process (resume, --jobs, suite order)."""
    torch = pytest.importorskip("torch")
    from multitask.bench._deep import DeepProblem
    from multitask.bench._registry import METHODS

    rng = np.random.default_rng(0)
    X = {s: rng.normal(size=(64, 3)).astype(np.float32) for s in ("train", "val", "test")}
    Y = {s: {"a": x[:, 0].copy(), "b": x[:, 1] - x[:, 2]} for s, x in X.items()}
    problem = DeepProblem("toy", {"a": "regression", "b": "regression"}, {"a": 1, "b": 1}, X, Y)
    runs = []
    for state in (1, 2):  # stands in for whatever ran before in this process
        torch.manual_seed(state)
        out = METHODS[method].run(problem, 0, {"max_epochs": 1, "batch_size": 32})
        runs.append(out.values)
    assert runs[0] == runs[1]
