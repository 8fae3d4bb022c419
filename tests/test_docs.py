"""Every ``python`` example in docs/*.md runs as written (from an empty working directory: the
training example writes its checkpoint there), and does what its comments say."""

import itertools
import re
from pathlib import Path

import numpy as np
import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
BLOCKS = [
    (path.name, i, block)
    for path in sorted(DOCS.glob("*.md"))
    for i, block in enumerate(re.findall(r"```python\n(.*?)```", path.read_text("utf-8"), re.S))
]


def _run(block: str, where: str, request, tmp_path, monkeypatch) -> dict:
    pytest.importorskip("torch")
    if "load(" in block:  # reads the real files (MULTITASK_DATA); never downloads in a test
        request.getfixturevalue("real_data")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, where, "exec"), namespace)
    return namespace


def test_every_page_with_code_has_an_example():
    named = {name for name, _, _ in BLOCKS}
    assert {"aggregation.md", "deep.md", "training.md", "solvers.md"} <= named


@pytest.mark.parametrize(("name", "index", "block"), BLOCKS, ids=[f"{n}-{i}" for n, i, _ in BLOCKS])
def test_example_runs(name, index, block, request, tmp_path, monkeypatch):
    namespace = _run(block, f"docs/{name} python block {index}", request, tmp_path, monkeypatch)
    if name == "aggregation.md":  # d == w @ J
        d, w, J = (namespace[k] for k in ("d", "w", "J"))
        np.testing.assert_allclose(d.numpy(), (w @ J).numpy(), rtol=1e-5, atol=1e-6)
    elif name == "training.md":  # the targets are signs of two inputs: learnt, checkpointed
        scores = namespace["trainer"].evaluate(namespace["test_loader"])
        assert min(s["auc"] for s in scores.values()) > 0.9, scores
        assert (tmp_path / "ckpt" / "last.pt").is_file()
        rates = [r.lr[0] for r in namespace["trainer"].history_.steps]  # warmup, then cosine
        assert rates[0] == pytest.approx(1e-3 / 16) and rates[15] == pytest.approx(1e-3)
        assert all(a > b for a, b in itertools.pairwise(rates[16:]))
        predictions = namespace["trainer"].predict(namespace["test_loader"])
        assert {k: tuple(v.shape) for k, v in predictions.items()} == {
            "income": (256,),
            "never_married": (256,),
        }
    elif name == "relatedness.md":  # the tasks that share a signal are grouped together
        Z, groups = namespace["Z"], namespace["groups"]
        assert Z.shape == (4, 4) and np.isfinite(Z).all()
        assert sorted(sorted(g) for g in groups) == [[0, 1], [2, 3]]
    elif name == "deep.md":  # trained: the info of the last step is finite
        assert np.isfinite(namespace["info"].losses.numpy()).all()
    elif name == "architectures.md":  # {"a": (4, 1), "b": (4, 1)}
        assert {t: tuple(v.shape) for t, v in namespace["out"].items()} == {
            "a": (4, 1),
            "b": (4, 1),
        }
    elif name == "datasets.md":  # 75 % / 25 % within each school, float64 features
        X, y, task = namespace["X"], namespace["y"], namespace["task"]
        assert X.dtype == np.float64 and len(X) == len(y) == len(task)
        test_task = namespace["test"].arrays()[2]
        assert len(X) + len(test_task) == len(namespace["school"].y)
        held_out, total = np.bincount(test_task), np.bincount(test_task) + np.bincount(task)
        share = held_out[total > 0] / total[total > 0]  # (task ids need not start at 0)
        assert len(share) == 139 and 0.25 <= share.min() and share.max() < 0.3
    elif name == "linear.md":  # (139, 27): one model per school
        assert namespace["est"].coef_.shape == (139, 27)
    elif name == "penalties.md":  # the prox against L21's closed form, row by row
        W, Z, pen = namespace["W"], namespace["Z"], namespace["pen"]
        norms = np.linalg.norm(W, axis=1, keepdims=True)
        np.testing.assert_allclose(Z, np.maximum(0, 1 - 0.1 * 0.5 / norms) * W, atol=1e-12)
        assert pen.subdiff_distance(Z, (Z - W) / 0.1) < 1e-10
    elif name == "solvers.md":  # every solve and the whole path converged
        path = namespace["path"]
        assert namespace["res"].converged and len(path.alphas) == 50
        assert np.all(path.converged)
