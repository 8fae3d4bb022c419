"""Task structures (graph, tree, clusters) fitted on a subset of the tasks they name.

A split that holds out whole tasks (``GroupKFold`` over the task column) fits each fold on
some of the tasks only. The structure is then restricted to the fitted tasks: the induced
subgraph, the tree with its absent members removed, ``n_clusters`` capped; a
``UserWarning`` names the labels that were absent. Oracles: the same estimator given the
restricted structure directly, cvxpy's optimum of the restricted objective
(``cvx_oracle.solve_reference``), and each fold's score recomputed by hand with the
mean-model fallback (docs/linear.md, "Unseen tasks").
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import GroupKFold, cross_val_score

import multitask.linear as ml
from multitask.linear.penalties import TreeGroupLasso

T, PER_TASK, P = 4, 25, 3
RNG = np.random.default_rng(7)
TASK = np.repeat(np.arange(T), PER_TASK)
F = RNG.standard_normal((TASK.size, P))
W_TRUE = RNG.standard_normal((P, 1)) + 0.5 * RNG.standard_normal((P, T))
Y = (F * W_TRUE.T[TASK]).sum(axis=1) + 0.3 * TASK + 0.3 * RNG.standard_normal(TASK.size)
XL = np.column_stack([TASK, F])
KEEP = TASK != 1  # task 1 held out
CHAIN = [(0, 1), (1, 2), (2, 3)]
TREE = [[0], [1], [2], [3], [0, 1], [2, 3]]
TREE_WEIGHTS = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


def _fit_quietly(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the restricted structure given directly: no warning
        return est.fit(X, y)


def test_graph_edges_to_an_absent_task_are_dropped_with_a_warning():
    est = ml.GraphRegularizedRegressor(alpha=2.0, graph=CHAIN, task_col=0)
    with pytest.warns(UserWarning, match=r"names task 1, which is not among the fitted"):
        est.fit(XL[KEEP], Y[KEEP])
    direct = _fit_quietly(
        ml.GraphRegularizedRegressor(alpha=2.0, graph=[(2, 3)], task_col=0), XL[KEEP], Y[KEEP]
    )
    np.testing.assert_allclose(est.coef_, direct.coef_, atol=1e-10)
    np.testing.assert_allclose(est.intercept_, direct.intercept_, atol=1e-10)
    # the edge (2, 3) is kept: the fit differs from one without any edge
    loose = _fit_quietly(
        ml.GraphRegularizedRegressor(alpha=2.0, graph=[], task_col=0), XL[KEEP], Y[KEEP]
    )
    assert np.abs(loose.coef_ - est.coef_).max() > 1e-3


def test_graph_of_labels_of_another_type_warns_and_names_them():
    # '0' is not 0: it cannot be told from an absent task, so the warning is the guard
    est = ml.GraphRegularizedRegressor(graph=[("0", "1")], task_col=0)
    with pytest.warns(UserWarning, match=r"'0', '1'"):
        est.fit(XL, Y)


def test_graph_errors_do_not_depend_on_which_tasks_are_fitted():
    for graph, message in [
        ([(1, 1)], "joins a task to itself"),
        ([(1, 5), (5, 1)], "edge more than once"),
        ([(0, 1, 2)], "not a pair of task labels"),
    ]:
        with pytest.raises(ValueError, match=message):
            ml.GraphRegularizedRegressor(graph=graph, task_col=0).fit(XL[KEEP], Y[KEEP])


def test_labelled_adjacency_dataframe_is_restricted_by_label():
    A = np.array([[0, 1, 0, 2], [1, 0, 3, 0], [0, 3, 0, 1], [2, 0, 1, 0]], dtype=float)
    labels = ["d", "c", "b", "a"]  # any order: rows are matched to tasks by label
    frame = pd.DataFrame(A, index=labels, columns=labels)
    names = np.array(["a", "b", "c", "d"], dtype=object)
    X = np.column_stack([names[TASK], F]).astype(object)
    # all tasks: the frame equals the ndarray in sorted-label order (a, b, c, d)
    order = [3, 2, 1, 0]
    full = ml.GraphRegularizedRegressor(graph=frame, task_col=0).fit(X, Y)
    plain = ml.GraphRegularizedRegressor(graph=A[np.ix_(order, order)], task_col=0).fit(X, Y)
    np.testing.assert_allclose(full.coef_, plain.coef_, atol=1e-10)
    shuffled = frame.loc[:, ["b", "d", "a", "c"]]  # columns are matched by label too
    same = ml.GraphRegularizedRegressor(graph=shuffled, task_col=0).fit(X, Y)
    np.testing.assert_allclose(same.coef_, plain.coef_, atol=1e-10)
    # task "c" (label of rows 1) held out: the induced subgraph on a, b, d
    keep = names[TASK] != "c"
    with pytest.warns(UserWarning, match=r"names task 'c'"):
        sub = ml.GraphRegularizedRegressor(graph=frame, task_col=0).fit(X[keep], Y[keep])
    a_sub = A[np.ix_([3, 2, 0], [3, 2, 0])]  # a, b, d
    direct = _fit_quietly(ml.GraphRegularizedRegressor(graph=a_sub, task_col=0), X[keep], Y[keep])
    np.testing.assert_allclose(sub.coef_, direct.coef_, atol=1e-10)


def test_adjacency_frame_with_mismatched_labels_or_plain_matrix_of_all_tasks_raise():
    A = np.ones((4, 4)) - np.eye(4)
    bad = pd.DataFrame(A, index=[0, 1, 2, 3], columns=[0, 1, 2, 9])
    with pytest.raises(ValueError, match="same task labels"):
        ml.GraphRegularizedRegressor(graph=bad, task_col=0).fit(XL, Y)
    asym = pd.DataFrame(np.triu(A), index=range(4), columns=range(4))
    with pytest.raises(ValueError, match="symmetric"):  # checked on the whole frame
        ml.GraphRegularizedRegressor(graph=asym, task_col=0).fit(XL[KEEP], Y[KEEP])
    # an unlabelled matrix cannot be restricted: the error says what to pass instead
    with pytest.raises(ValueError, match=r"shape \(4, 4\); expected \(3, 3\).*DataFrame"):
        ml.GraphRegularizedRegressor(graph=A, task_col=0).fit(XL[KEEP], Y[KEEP])


def test_tree_restricted_to_the_fitted_tasks_merges_groups_that_become_equal():
    est = ml.TreeGroupLassoRegressor(alpha=0.05, tree=TREE, tree_weights=TREE_WEIGHTS, task_col=0)
    with pytest.warns(UserWarning, match=r"names task 1, which is not among the fitted"):
        est.fit(XL[KEEP], Y[KEEP])
    # [1] vanishes (weight 2 with it); [0, 1] becomes [0], merged with [0]: weight 1 + 5
    groups, weights = [[0], [2], [3], [2, 3]], [6.0, 3.0, 4.0, 6.0]
    direct = _fit_quietly(
        ml.TreeGroupLassoRegressor(alpha=0.05, tree=groups, tree_weights=weights, task_col=0),
        XL[KEEP],
        Y[KEEP],
    )
    np.testing.assert_allclose(est.coef_, direct.coef_, atol=1e-9)
    oracle = pytest.importorskip("cvx_oracle")
    X_list = [F[TASK == t] for t in (0, 2, 3)]
    y_list = [Y[TASK == t] for t in (0, 2, 3)]
    codes = [[0], [1], [2], [1, 2]]  # tasks 0, 2, 3 -> columns 0, 1, 2
    _, _, best = oracle.solve_reference(X_list, y_list, TreeGroupLasso(0.05, codes, weights))
    assert abs(est.objective_ - best) <= 1e-6 * abs(best)


def test_tree_naming_no_fitted_task_leaves_the_tasks_unpenalised():
    with pytest.warns(UserWarning, match="names tasks 0, 1"):
        est = ml.TreeGroupLassoRegressor(alpha=0.5, tree=[[0], [1], [0, 1]], task_col=0)
        est.fit(XL[TASK >= 2], Y[TASK >= 2])
    free = ml.IndependentRidge(alpha=0.0, task_col=0).fit(XL[TASK >= 2], Y[TASK >= 2])
    np.testing.assert_allclose(est.coef_, free.coef_, atol=1e-7)


def test_tree_errors_do_not_depend_on_which_tasks_are_fitted():
    # [0, 1] and [1, 2] cross in the tree as given, though not once task 1 is gone
    with pytest.raises(ValueError, match="overlap without one containing"):
        ml.TreeGroupLassoRegressor(tree=[[0, 1], [1, 2]], task_col=0).fit(XL[KEEP], Y[KEEP])
    with pytest.raises(ValueError, match="per group"):
        ml.TreeGroupLassoRegressor(tree=TREE, tree_weights=[1.0] * 5, task_col=0).fit(
            XL[KEEP], Y[KEEP]
        )


def test_default_tree_weights_on_a_subset_of_tasks_say_to_pass_the_tree():
    est = ml.TreeGroupLassoRegressor(tree_weights=[1.0, 1.0, 1.0, 1.0, 2.0], task_col=0)
    with pytest.raises(ValueError, match=r"per group.*pass the tree"):
        est.fit(XL[KEEP], Y[KEEP])


@pytest.mark.parametrize("cls", [ml.ClusteredMTLRegressor, ml.ClusteredMTLClassifier])
def test_n_clusters_above_the_number_of_fitted_tasks_is_capped(cls):
    y = Y if cls is ml.ClusteredMTLRegressor else (Y > np.median(Y)).astype(int)
    est = cls(alpha=0.5, beta=0.5, n_clusters=4, task_col=0)
    with pytest.warns(UserWarning, match=r"n_clusters=4.*3 fitted tasks"):
        est.fit(XL[KEEP], y[KEEP])
    direct = _fit_quietly(cls(alpha=0.5, beta=0.5, n_clusters=3, task_col=0), XL[KEEP], y[KEEP])
    np.testing.assert_allclose(est.coef_, direct.coef_, atol=1e-10)
    with pytest.raises(ValueError, match="n_clusters=0"):
        cls(n_clusters=0, task_col=0).fit(XL, y)


def _fallback_scores(est, X, y, score):
    """Each GroupKFold fold's score, predicting every held-out row with the mean model."""
    scores = []
    for train, test in GroupKFold(T).split(X, y, TASK):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            fitted = est.fit(X[train], y[train])
        margin = F[test] @ fitted.coef_.mean(axis=0) + fitted.intercept_.mean()
        pred = margin if score is r2_score else fitted.classes_[(margin > 0).astype(int)]
        scores.append(score(y[test], pred))
    return np.array(scores)


@pytest.mark.parametrize(
    "est",
    [
        ml.GraphRegularizedRegressor(graph=CHAIN, task_col=0),
        ml.GraphRegularizedRegressor(graph=pd.DataFrame(np.ones((T, T)) - np.eye(T)), task_col=0),
        ml.TreeGroupLassoRegressor(tree=TREE, tree_weights=TREE_WEIGHTS, task_col=0),
        ml.ClusteredMTLRegressor(n_clusters=T, task_col=0),
        ml.TreeGroupLassoClassifier(tree=TREE, task_col=0),
    ],
    ids=["graph-edges", "graph-frame", "tree", "clustered", "tree-classifier"],
)
def test_group_kfold_scores_held_out_tasks_with_the_mean_model(est):
    classify = isinstance(est, ml.TreeGroupLassoClassifier)
    y = (Y > np.median(Y)).astype(int) if classify else Y
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        got = cross_val_score(est, XL, y, groups=TASK, cv=GroupKFold(T), error_score="raise")
    want = _fallback_scores(est, XL, y, accuracy_score if classify else r2_score)
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_multitask_cv_over_held_out_tasks_with_a_task_graph():
    base = ml.GraphRegularizedRegressor(graph=CHAIN, task_col=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        cv = ml.MultiTaskCV(base, alphas=[0.1, 1.0], cv=GroupKFold(T)).fit(XL, Y)
    assert cv.cv_scores_.shape == (T, 2)
    assert np.isfinite(cv.cv_scores_).all()


@pytest.mark.parametrize(
    "est",
    [
        ml.GraphRegularizedRegressor(graph=CHAIN, task_col=0),
        ml.TreeGroupLassoRegressor(tree=TREE, task_col=0),
        ml.ClusteredMTLRegressor(n_clusters=T, task_col=0),
    ],
    ids=["graph", "tree", "clustered"],
)
def test_multitask_cv_path_warns_once_per_fold_for_its_absent_tasks(est):
    """Every fit of a fold's path has that fold's tasks, so the same restriction warning: it
    came once per alpha (3 copies a fold here, 20 at the default grid). It comes once a fold,
    each fold's naming its own held-out task."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ml.MultiTaskCV(est, alphas=[1.0, 0.3, 0.1], cv=GroupKFold(T)).fit(XL, Y)
    restricted = [str(w.message) for w in caught if "names task" in str(w.message)]
    restricted += [str(w.message) for w in caught if "exceeds the 3 fitted" in str(w.message)]
    assert len(restricted) == T
    assert len(set(restricted)) == T  # one per fold, each about its own held-out task


@pytest.mark.parametrize(
    "est",
    [
        ml.GraphRegularizedRegressor(graph=[*CHAIN, (3, 9)], task_col=0),
        ml.TreeGroupLassoRegressor(tree=[[0], [1], [2], [3], [0, 1], [2, 3, 9]], task_col=0),
    ],
    ids=["graph", "tree"],
)
def test_multitask_cv_warns_once_about_a_label_absent_from_all_the_data(est):
    """A label absent from the whole data (a typo: task 9) is no held-out task. It was warned
    about by every fold and again by the refit (6 copies with cv=5, 7 with the automatic
    grid); now once, before the folds, which warn only about the tasks their split held
    out."""

    def restrictions(cv, **params):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ml.MultiTaskCV(est, cv=cv, **params).fit(XL, Y)
        return [str(w.message) for w in caught if issubclass(w.category, ml.TaskSubsetWarning)]

    for params in ({"alphas": [1.0, 0.1]}, {"n_alphas": 3}):
        said = restrictions(5, **params)  # every fold holds every task
        assert len(said) == 1 and "names task 9," in said[0], said
    said = restrictions(GroupKFold(T), alphas=[1.0, 0.1])
    assert sum("9" in message for message in said) == 1, said
    held_out = sorted(message.split("names task ")[1][0] for message in said[1:])
    assert held_out == ["0", "1", "2", "3"], said  # one warning a fold, for its own task
    with pytest.warns(ml.TaskSubsetWarning, match="names task 9,"):  # a plain fit: its own
        clone(est).fit(XL, Y)
