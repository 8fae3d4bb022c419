"""Task grouping against constructed affinity matrices and brute force."""

import itertools

import numpy as np
import pytest

from multitask.relatedness import group_score, group_tasks


def test_two_blocks_are_found():
    # tasks {0, 2} and {1, 3} help each other; everything else hurts a little
    Z = np.full((4, 4), -0.1)
    Z[0, 2] = Z[2, 0] = 0.5
    Z[1, 3] = 0.4
    Z[3, 1] = 0.3
    np.fill_diagonal(Z, 1.0)
    assert group_tasks(Z, 2) == [[0, 2], [1, 3]]
    assert group_score(Z, [[0, 2], [1, 3]]) == pytest.approx(0.5 + 0.5 + 0.4 + 0.3)


def test_a_task_that_hurts_everyone_stays_alone():
    Z = np.array(
        [
            [0.0, 0.3, 0.2, -0.5],
            [0.3, 0.0, 0.25, -0.4],
            [0.2, 0.25, 0.0, -0.6],
            [-0.3, -0.2, -0.1, 0.0],
        ]
    )
    assert group_tasks(Z, 2) == [[0, 1, 2], [3]]


def _set_partitions(n):
    """Every partition of range(n), by assigning each task a block label (brute force)."""
    seen = set()
    for labels in itertools.product(range(n), repeat=n):
        groups = {}
        for i, lab in enumerate(labels):
            groups.setdefault(lab, []).append(i)
        key = tuple(sorted(tuple(g) for g in groups.values()))
        if key not in seen:
            seen.add(key)
            yield [list(g) for g in key]


@pytest.mark.parametrize("k", [1, 2, 3])
def test_exhaustive_search_matches_brute_force(k):
    rng = np.random.default_rng(k)
    Z = rng.normal(size=(5, 5))
    best = max(
        (group_score(Z, g) for g in _set_partitions(5) if len(g) == k),
    )
    found = group_tasks(Z, k)
    assert len(found) == k and sorted(i for g in found for i in g) == list(range(5))
    assert group_score(Z, found) == pytest.approx(best)


def test_errors():
    with pytest.raises(ValueError, match="square"):
        group_tasks(np.zeros((2, 3)), 1)
    with pytest.raises(ValueError, match="n_groups"):
        group_tasks(np.zeros((3, 3)), 4)
    with pytest.raises(ValueError, match="max_tasks"):
        group_tasks(np.zeros((11, 11)), 2)


def test_grouping_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys; from multitask.relatedness import group_tasks; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("n_groups", [2.5, True, 0, 4])
def test_n_groups_must_be_a_whole_number_of_groups(n_groups):
    """2.5 silently acted as 2 and True as 1."""
    Z = np.eye(3)
    with pytest.raises(ValueError, match="n_groups must be an integer between 1 and"):
        group_tasks(Z, n_groups)


@pytest.mark.parametrize("scale", [1.0, 1e-14, 1e-16, 1e8])
def test_grouping_does_not_depend_on_the_scale_of_the_affinities(scale):
    """An absolute tie tolerance of 1e-12 took every partition as tied with the first once the
    affinities were below ~1e-13 (a tiny lookahead lr): [[0, 1, 2], [3]] instead of the
    optimum. Oracle: brute force over every partition into two groups."""
    Z = scale * np.random.default_rng(0).normal(size=(4, 4))
    best = max((g for g in _set_partitions(4) if len(g) == 2), key=lambda g: group_score(Z, g))
    assert group_tasks(Z, 2) == best == [[0, 2], [1, 3]]


@pytest.mark.parametrize(
    "groups, match",
    [
        ([[0, -1]], r"indices in \[0, 3\), got \[-1\]"),  # wrapped around to task 2
        ([[0, 3]], r"indices in \[0, 3\), got \[3\]"),
        ([[0, 1.0]], r"indices in \[0, 3\), got \[1.0\]"),
        ([[0, 0, 2]], r"tasks \[0\] appear more than once"),  # counted twice
        ([[0, 1], [1, 2]], r"tasks \[1\] appear more than once"),
    ],
)
def test_group_score_refuses_groups_that_are_not_disjoint_task_indices(groups, match):
    """[[0, -1]] scored as [[0, 2]] and [[0, 0, 2]] counted task 0 twice, without a word."""
    Z = np.arange(9.0).reshape(3, 3)
    with pytest.raises(ValueError, match=match):
        group_score(Z, groups)


def test_group_score_checks_the_affinity_and_max_tasks_is_an_integer():
    with pytest.raises(ValueError, match="square"):
        group_score(np.zeros((2, 3)), [[0, 1]])  # was 0.0
    with pytest.raises(TypeError, match="group_tasks: max_tasks must be an integer >= 1"):
        group_tasks(np.zeros((3, 3)), 2, max_tasks=None)  # '>' not supported ... NoneType
    assert group_score(np.arange(9.0).reshape(3, 3), [np.array([0, 2])]) == 8.0
