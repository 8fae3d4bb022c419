"""The reproductions' grid-extension rule (``reproduce_common.search_grid``) on fake CV scores.

Oracle: the scores are a known concave function of ``log10`` of the parameters, so the
grid point that should be chosen, and the grid that should be reached, are known.
"""

import numpy as np
import pytest
from bench_scripts import load_script

RC = load_script("reproduce_common")

ALPHAS = list(np.logspace(-1, 3, 4))  # log step 4/3 > 1: an extension adds one point a decade away
BETAS = list(np.logspace(-3, -1, 3))  # log step 1


def _peaked(log_alpha, log_beta, calls=None):
    def score(values, alphas):
        if calls is not None:
            calls.append((values["beta"], list(alphas)))
        b = np.log10(values["beta"])
        return np.array([-((np.log10(a) - log_alpha) ** 2) - (b - log_beta) ** 2 for a in alphas])

    return score


def test_optimum_inside_the_grid_is_not_extended():
    calls = []
    best, grids, ext, score = RC.search_grid(
        _peaked(0.5, -2.2, calls), {"alpha": ALPHAS, "beta": BETAS}
    )
    assert ext == {"alpha": 0, "beta": 0}
    # the score returned is the one the search saw at the chosen point
    assert score == -((np.log10(best["alpha"]) - 0.5) ** 2) - (np.log10(best["beta"]) + 2.2) ** 2
    assert grids == {"alpha": sorted(ALPHAS), "beta": BETAS}
    assert np.isclose(best["alpha"], ALPHAS[1]) and np.isclose(best["beta"], 1e-2)
    assert len(calls) == len(BETAS)  # one path per beta, nothing more


def test_optimum_beyond_the_grid_is_reached_by_extensions():
    # alpha peaks at 10^5.3: 1e3 -> 1e4 -> 1e5 (interior once 1e6 is scored)
    # beta peaks at 10^-4.2: 1e-3 -> 1e-4 (interior once 1e-5 is scored)
    best, grids, ext, _ = RC.search_grid(_peaked(5.3, -4.2), {"alpha": ALPHAS, "beta": BETAS})
    assert np.isclose(best["alpha"], 1e5)
    assert np.isclose(best["beta"], 1e-4)
    for param, value in best.items():  # the final choice is interior to the final grid
        assert RC.edge(value, grids[param]) == ""
    assert ext == {"alpha": 3, "beta": 2}
    np.testing.assert_allclose(np.log10(grids["alpha"])[3:], [3, 4, 5, 6])  # a decade each
    np.testing.assert_allclose(np.log10(grids["beta"]), [-5, -4, -3, -2, -1])


def test_extensions_stop_at_the_maximum_and_on_a_flat_score():
    def increasing(values, alphas):
        return np.log10(np.asarray(alphas))

    best, grids, ext, _ = RC.search_grid(increasing, {"alpha": ALPHAS}, max_extensions=2)
    assert ext == {"alpha": 2} and best["alpha"] == max(grids["alpha"])

    def saturating(values, alphas):  # the model's limit: no change beyond alpha = 1e3
        return -np.maximum(1e3 / np.asarray(alphas), 1.0)

    best, grids, ext, _ = RC.search_grid(saturating, {"alpha": ALPHAS})
    assert ext == {"alpha": 1} and np.isclose(best["alpha"], 1e3)


@pytest.mark.parametrize("side", ["high", "low"])
def test_a_limit_edge_is_never_extended(side):
    sign = 1.0 if side == "high" else -1.0

    def monotone(values, alphas):
        return sign * np.log10(np.asarray(alphas))

    best, grids, ext, _ = RC.search_grid(monotone, {"alpha": ALPHAS}, limits={"alpha": side})
    assert ext == {"alpha": 0}
    assert RC.edge(best["alpha"], grids["alpha"]) == side


def test_extend_covers_a_decade_at_the_grid_spacing():
    np.testing.assert_allclose(RC.extend([1e-2, 1e-1, 1.0], "high"), [10.0])
    np.testing.assert_allclose(RC.extend([1e-2, 1e-1, 1.0], "low"), [1e-3])
    np.testing.assert_allclose(RC.extend([1e-1, 1e3], "high"), [1e4])  # coarse: one decade
    fine = np.logspace(0, 1, 5)  # step 1/4 decade: four new points
    np.testing.assert_allclose(RC.extend(fine, "low"), np.logspace(-1, 0, 5)[:-1])


def test_paired_differences_use_common_seeds_only():
    rows = [
        {"method": m, "train_ratio": 0.1, "seed": s, "nmse": v}
        for m, s, v in [
            ("pooled", 0, 0.5),
            ("pooled", 1, 0.6),
            ("mtl", 0, 0.4),  # better by 0.1
            ("mtl", 1, 0.60003),  # equal within 1e-4 relative: not worse
            ("mtl", 2, 9.9),  # no pooled row for seed 2: left out
        ]
    ]
    table = RC.paired(rows, "nmse", ["pooled", "mtl"], "pooled", lower_is_better=True)
    assert table.splitlines()[-1] == "| mtl | -0.0500 +- 0.0500 (worse 0/2) |"
    strict = RC.paired(rows, "nmse", ["pooled", "mtl"], "pooled", lower_is_better=True, rtol=0)
    assert strict.endswith("(worse 1/2) |")
