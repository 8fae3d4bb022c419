"""Loaders of the classical MTL benchmarks: School, Landmine, Computer survey, Parkinsons."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from multitask.datasets._cache import fetch
from multitask.datasets._convert import from_arrays
from multitask.datasets._data import MultiTaskData
from multitask.datasets._files import FILES
from multitask.datasets._info import INFO


def _file(path: str):
    return fetch(FILES[path])


def _loadmat(path: str) -> dict:
    import scipy.io

    return scipy.io.loadmat(_file(path))


SCHOOL_FEATURES = [
    "exam_year_1",
    "exam_year_2",
    "exam_year_3",
    "free_meals_pct",
    "vr1_pct",
    "gender_1",
    "gender_2",
    "vr_band_1",
    "vr_band_2",
    "vr_band_3",
    *[f"ethnic_{k}" for k in range(1, 12)],
    "school_gender_1",
    "school_gender_2",
    "school_gender_3",
    "school_denomination_1",
    "school_denomination_2",
    "school_denomination_3",
]


def load_school() -> MultiTaskData:
    """School (ILEA) exam scores: 139 tasks (schools), 15,362 rows, 27 features.

    The MALSAR ``school.mat``; its constant column 27 (the bias) is dropped.
    Task ids are 1..139 in file order. Columns 0-2 exam year, 3 % free school
    meals, 4 % VR band 1, 5-6 gender, 7-9 VR band, 10-20 ethnic group, 21-23
    school gender, 24-26 school denomination (one-hot groups, as in the file).
    """
    m = _loadmat("school/school.mat")
    pairs = [(x[:, :27], y.ravel()) for x, y in zip(m["X"][0], m["Y"][0], strict=True)]
    names = list(range(1, len(pairs) + 1))
    return from_arrays(
        pairs,
        names,
        SCHOOL_FEATURES,
        "regression",
        name="school",
        description=INFO["school"].citation,
    )


LANDMINE_FEATURES = [
    "moment_1",
    "moment_2",
    "moment_3",
    "moment_4",
    "correlation_1",
    "correlation_2",
    "correlation_3",
    "energy_ratio",
    "spatial_variance",
]


def load_landmine() -> MultiTaskData:
    """Landmine detection: 29 tasks (fields), 14,820 rows, 9 features, binary.

    Task ids are 1..29 (1-15 foliated regions, 16-29 bare earth / desert).
    """
    m = _loadmat("landmine/LandmineData.mat")
    pairs = [
        (x, y.ravel().astype(np.int64)) for x, y in zip(m["feature"][0], m["label"][0], strict=True)
    ]
    names = list(range(1, len(pairs) + 1))
    return from_arrays(
        pairs,
        names,
        LANDMINE_FEATURES,
        "binary",
        name="landmine",
        description=INFO["landmine"].citation,
    )


COMPUTER_FEATURES = [
    "hot_line",
    "ram",
    "screen_size",
    "cpu_speed",
    "hard_disk",
    "cd_rom",
    "cache",
    "colour",
    "availability",
    "warranty",
    "software",
    "guarantee",
    "price",
]


def load_computer_survey() -> MultiTaskData:
    """Computer survey (Lenk et al.): 190 tasks (people) x 20 profiles, 13 features.

    The 13 binary attributes are coded -1/+1; the constant column is dropped.
    ``meta["profile"]`` holds the profile index 1..20 of each row (1-16
    calibration design, 17-20 validation design), used by the published split.
    """
    m = _loadmat("computer_survey/conjointAnalysisComputerBuyers.mat")
    design = m["designMarix"][:, 1:].astype(np.float64)
    ratings = m["likeBuy"].astype(np.float64)
    pairs = [(design, r) for r in ratings]
    data = from_arrays(
        pairs,
        list(range(1, len(pairs) + 1)),
        COMPUTER_FEATURES,
        "regression",
        name="computer_survey",
        description=INFO["computer_survey"].citation,
    )
    profile = np.tile(np.arange(1, design.shape[0] + 1), len(pairs))
    return replace(data, meta=pd.DataFrame({"profile": profile}))


PARKINSONS_TARGETS = ("motor_UPDRS", "total_UPDRS")


def load_parkinsons(target: str = "motor_UPDRS") -> MultiTaskData:
    """Parkinsons telemonitoring: 42 tasks (patients), 5,875 rows, 19 features.

    Parameters
    ----------
    target : {"motor_UPDRS", "total_UPDRS"}, default="motor_UPDRS"

    The features are age, sex, test_time and the 16 voice measures; the other
    UPDRS score is dropped (it would leak the target). Task ids are ``subject#``.
    """
    if target not in PARKINSONS_TARGETS:
        raise ValueError(f"target={target!r}; pick one of {PARKINSONS_TARGETS}")
    df = pd.read_csv(_file("parkinsons_telemonitoring/parkinsons_updrs.data"))
    y = df[target].to_numpy(dtype=np.float64)
    X = df.drop(columns=list(PARKINSONS_TARGETS)).rename(columns={"subject#": "task"})
    X = X.astype({c: np.float64 for c in X.columns if c != "task"})
    return MultiTaskData(X, y, "task", "regression", "parkinsons", INFO["parkinsons"].citation)
