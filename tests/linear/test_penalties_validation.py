"""Bad inputs are refused at construction with a clear ValueError; repr shows parameters."""

import numpy as np
import pytest

from multitask.linear import penalties as P

TWO_STRENGTHS = [P.SparseGroupLasso, P.Dirty, P.RobustMTL, P.MeanRegularized]
ONE_STRENGTH = [P.L1, P.L21, P.L1Inf, P.TraceNorm, P.Ridge]


@pytest.mark.parametrize("cls", ONE_STRENGTH + TWO_STRENGTHS)
@pytest.mark.parametrize("bad", [-0.1, np.nan, np.inf, "1", None])
def test_bad_alpha(cls, bad):
    with pytest.raises(ValueError, match="alpha"):
        cls(bad)


@pytest.mark.parametrize("cls", TWO_STRENGTHS)
def test_bad_beta(cls):
    with pytest.raises(ValueError, match="beta"):
        cls(1.0, -1.0)


def test_graph_regularized_bad_strengths_and_R():
    R = P.graph_matrix_from_edges([[0, 1]], 2)
    with pytest.raises(ValueError, match="alpha"):
        P.GraphRegularized(R, alpha=-1.0)
    with pytest.raises(ValueError, match="beta"):
        P.GraphRegularized(R, beta=-1.0)
    with pytest.raises(ValueError, match="2-D"):
        P.GraphRegularized(np.ones(3))
    with pytest.raises(ValueError, match="2-D"):
        P.GraphRegularized(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        P.GraphRegularized(np.array([[np.nan], [1.0]]))


def test_graph_helpers_bad_input():
    with pytest.raises(ValueError, match="outside"):
        P.graph_matrix_from_edges([[0, 3]], 3)
    with pytest.raises(ValueError, match="itself"):
        P.graph_matrix_from_edges([[1, 1]], 3)
    with pytest.raises(ValueError, match="symmetric"):
        P.graph_matrix_from_adjacency(np.array([[0, 1], [0, 0]]))
    with pytest.raises(ValueError, match="square"):
        P.graph_matrix_from_adjacency(np.ones((2, 3)))


def test_tree_groups_must_be_nested():
    with pytest.raises(ValueError, match="nested or disjoint"):
        P.TreeGroupLasso(1.0, [[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="groups"):
        P.TreeGroupLasso(1.0)
    with pytest.raises(ValueError, match="non-empty"):
        P.TreeGroupLasso(1.0, [[0], []])
    with pytest.raises(ValueError, match="repeats"):
        P.TreeGroupLasso(1.0, [[0, 0]])
    with pytest.raises(ValueError, match="weights"):
        P.TreeGroupLasso(1.0, [[0], [0, 1]], weights=[1.0])
    with pytest.raises(ValueError, match="weights"):
        P.TreeGroupLasso(1.0, [[0], [0, 1]], weights=[1.0, -2.0])
    with pytest.raises(ValueError, match="alpha"):
        P.TreeGroupLasso(-1.0, [[0]])
    with pytest.raises(ValueError, match="heights"):
        P.TreeGroupLasso.from_heights(1.0, [[0], [1], [0, 1]], [0.5, 0.5, 1.5])


def test_tree_groups_beyond_n_tasks():
    penalty = P.TreeGroupLasso(1.0, [[0], [3]])
    with pytest.raises(ValueError, match="task 3"):
        penalty.prox(np.ones((2, 3)), 1.0)


def test_tree_from_heights_weights():
    """Kim & Xing (2010) eq. (5): leaf weight = product of ancestors' heights; inner node
    weight = (1 - s_v) * product of its ancestors' heights."""
    groups = [[0], [1], [2], [0, 1], [0, 1, 2]]
    penalty = P.TreeGroupLasso.from_heights(1.0, groups, [0, 0, 0, 0.4, 0.7])
    np.testing.assert_allclose(penalty.weights, [0.28, 0.28, 0.7, 0.6 * 0.7, 0.3])


@pytest.mark.parametrize("cls", [P.Dirty, P.RobustMTL])
def test_composites_want_two_components(cls):
    with pytest.raises(ValueError, match="shape"):
        cls().prox(np.ones((3, 2)), 1.0)


def test_repr_shows_parameters():
    assert repr(P.SparseGroupLasso(0.5, 0.2)) == "SparseGroupLasso(alpha=0.5, beta=0.2)"
    assert repr(P.L21(2)) == "L21(alpha=2.0)"
    assert "groups=((0,), (0, 1))" in repr(P.TreeGroupLasso(1.0, [[0], [1, 0]]))
    R = P.graph_matrix_from_edges([[0, 1]], 2)
    assert repr(P.GraphRegularized(R, 0.5)) == (
        "GraphRegularized(R=<array (2, 1)>, alpha=0.5, beta=0.0)"
    )


def test_component_and_separability_flags():
    assert P.Dirty().n_components == 2 and P.RobustMTL().n_components == 2
    assert P.L1().n_components == 1 and P.TraceNorm().n_components == 1
    separable = [P.L1(), P.L21(), P.L1Inf(), P.SparseGroupLasso(), P.TreeGroupLasso(1, [[0]])]
    assert all(p.row_separable for p in separable)
    assert not P.TraceNorm().row_separable and not P.Dirty().row_separable
    assert isinstance(P.Ridge(), P.SmoothPenalty) and isinstance(P.L1(), P.Penalty)
