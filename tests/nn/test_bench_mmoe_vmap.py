"""The batched (vmap) trainer of the MMoE synthetic benchmark against copies trained one by one.

Oracle: ``architectures_common.train_selected`` (plain ``torch.optim.Adam`` on one model),
run separately on each repeat's data with the same seed; the stacked run must give the same
parameters, curves and selected epochs to 1e-6 (float64).
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "linear"))
from bench_scripts import load_script as _load

S = _load("architectures_mmoe_synthetic")
V = _load("_vmap_train")
C = _load("architectures_common")


def _double(pair):
    x, y = pair
    return x.double(), {t: v.double() for t, v in y.items()}


@pytest.mark.parametrize("name", ["hard_sharing", "omoe", "mmoe"])
def test_stacked_adam_equals_separate_copies(name):
    torch.set_num_threads(1)
    seeds, sizes = [3, 7], (200, 80, 10)
    parts = [[_double(p) for p in S.data(sizes, 0.5, s)] for s in seeds]
    models = []
    for s in seeds:
        torch.manual_seed(s)
        models.append(S.build(name).double())
    refs = [copy.deepcopy(m) for m in models]
    train = (
        torch.stack([p[0][0] for p in parts]),
        {t: torch.stack([p[0][1][t] for p in parts]) for t in S.TASKS},
    )
    val = (
        torch.stack([p[1][0] for p in parts]),
        {t: torch.stack([p[1][1][t] for p in parts]) for t in S.TASKS},
    )
    fit = {"epochs": 3, "batch_size": 64, "lr": 1e-2}
    stacked, info = V.fit_selected(models, train, val, seeds=seeds, **fit)
    assert info["step_loss"].shape == (3 * 4, 2)
    for r, (s, ref) in enumerate(zip(seeds, refs, strict=True)):
        oracle = C.train_selected(ref, *parts[r][0], S.mse_losses, parts[r][1], seed=s, **fit)
        assert int(info["best_epoch"][r]) == oracle["best_epoch"]
        np.testing.assert_allclose(info["train_curve"][:, r], oracle["train_curve"], atol=1e-6)
        np.testing.assert_allclose(info["val_curve"][:, r], oracle["val_curve"], atol=1e-6)
        ref_params = dict(ref.named_parameters())  # tied gates appear once, as in the stack
        assert set(ref_params) == set(stacked.params)
        for k, p in ref_params.items():
            torch.testing.assert_close(stacked.params[k][r], p, atol=1e-6, rtol=0)
        assert not torch.equal(stacked.params[k][0], stacked.params[k][1])  # copies differ


def test_omoe_is_mmoe_with_one_shared_gate():
    omoe, mmoe = S.build("omoe"), S.build("mmoe")
    assert omoe.gates["task1"] is omoe.gates["task2"]
    n_gate = 100 * 8 + 8
    count = sum(p.numel() for p in mmoe.parameters())
    assert count - sum(p.numel() for p in omoe.parameters()) == n_gate
    x = torch.randn(5, 100)
    omoe(x)
    torch.testing.assert_close(omoe.last_gates["task1"], omoe.last_gates["task2"])


def test_regularised_model_is_refused():
    model = S.build("mmoe")
    model.regularization = lambda: torch.tensor(1.0)
    with pytest.raises(ValueError, match="regularization"):
        V.Stacked([model])


def test_run_resumes_and_gap_table_matches_hand_computation(tmp_path):
    out = tmp_path / "r.jsonl"
    argv = ["--repeats", "4", "--block", "2", "--epochs", "1", "--n-train", "64"]
    argv += ["--n-val", "32", "--n-test", "32", "--correlations", "1", "0.5", "--out", str(out)]
    argv += ["--models", "hard_sharing", "mmoe", "--pilot"]
    S.main(argv)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 2 * 2 * 2  # blocks x correlations x models
    S.main(argv)  # everything done: nothing appended
    assert len(out.read_text().splitlines()) == len(rows)
    sel = S.selected(S.merged(rows))
    test = {k: v["test"] for k, v in sel.items()}
    # hand computation of the gap hard - mmoe at 0.5 and its growth from 1, paired by seed
    gap = {p: test[(p, "hard_sharing")] - test[(p, "mmoe")] for p in (1.0, 0.5)}
    row = next(
        li for li in S.gap_table(sel).splitlines() if li.startswith("| hard_sharing − mmoe | 0.5")
    )
    cells = [c.strip() for c in row.split("|")]
    assert cells[5] == f"{gap[0.5].mean():+.4f} (± {S._se(gap[0.5]):.4f})"
    growth = gap[0.5] - gap[1.0]
    assert cells[6] == f"{growth.mean():+.4f} (± {growth.std(ddof=1) / 2:.4f})"
    rel = 100 * gap[0.5] / test[(0.5, "hard_sharing")]
    assert cells[7] == f"{rel.mean():+.1f} (± {S._se(rel):.1f})"
    S.plot(sel, str(tmp_path / "fig.png"))
    assert (tmp_path / "fig.png").stat().st_size > 0


def test_label_correlation_is_one_for_identical_tasks_and_lower_below():
    table = S.label_correlations([0, 1], [1.0, 0.5], n=2000).splitlines()
    rho = [float(line.split("|")[2].split()[0]) for line in table[2:]]
    assert rho[0] >= 0.98  # same function of the same projection, noise sd 0.1 only
    assert rho[1] < 0.9


def test_growth_tests_count_and_median_by_hand():
    rng = np.random.default_rng(0)
    seeds = np.arange(12)
    sel = {}
    for corr in (1.0, 0.5):
        for m in S.MODELS:
            test = rng.uniform(0.05, 0.2, size=12)
            sel[(corr, m)] = {"seeds": seeds, "test": test}
    row = next(li for li in S.growth_tests(sel).splitlines() if "omoe − mmoe | absolute" in li)
    cells = [c.strip() for c in row.split("|")]
    g = (sel[(0.5, "omoe")]["test"] - sel[(0.5, "mmoe")]["test"]) - (
        sel[(1.0, "omoe")]["test"] - sel[(1.0, "mmoe")]["test"]
    )
    assert cells[4] == f"{int((g > 0).sum())} / 12"
    assert cells[5] == f"{np.median(g):+.4g}"
