"""Multi-output census data (Adult, Census-Income KDD) and SARCOS inverse dynamics."""

from __future__ import annotations

import numpy as np
import pandas as pd

from multitask.datasets._cache import fetch
from multitask.datasets._convert import from_wide
from multitask.datasets._data import MultiOutputData, MultiTaskData
from multitask.datasets._files import FILES
from multitask.datasets._info import INFO

ADULT_COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    "income",
]


def _categorize(df: pd.DataFrame) -> pd.DataFrame:
    """Turn every non-numeric column into a pandas categorical (sorted categories)."""
    out = df.copy()
    for c in out.columns:
        if not pd.api.types.is_numeric_dtype(out[c]):
            out[c] = pd.Categorical(out[c], categories=sorted(out[c].dropna().unique()))
    return out


def load_adult() -> MultiOutputData:
    """UCI Adult with two binary targets and the published train/test split.

    Targets: ``income`` (1 if ``>50K``) and ``never_married`` (1 if
    marital-status is ``Never-married``). ``X`` holds the 13 other columns;
    strings are pandas categoricals with the categories of train and test
    together, ``?`` is missing (NaN). ``split`` is "train" for the 32,561
    rows of ``adult.data`` and "test" for the 16,281 rows of ``adult.test``.
    ``relationship`` is kept: it is correlated with marital status but does not
    determine it.
    """
    kw = {"names": ADULT_COLUMNS, "skipinitialspace": True, "na_values": "?"}
    tr = pd.read_csv(fetch(FILES["adult/adult.data.gz"]), **kw)
    te = pd.read_csv(fetch(FILES["adult/adult.test.gz"]), skiprows=1, **kw)
    df = pd.concat([tr, te], ignore_index=True)
    income = df["income"].str.rstrip(".").eq(">50K").to_numpy(np.int64)
    never = df["marital_status"].eq("Never-married").to_numpy(np.int64)
    X = _categorize(df.drop(columns=["income", "marital_status"]))
    split = np.array(["train"] * len(tr) + ["test"] * len(te), dtype=object)
    return MultiOutputData(
        X,
        {"income": income, "never_married": never},
        {"income": "binary", "never_married": "binary"},
        split,
        "adult",
        INFO["adult"].citation,
    )


KDD_COLUMNS = [
    "age", "class_worker", "det_ind_code", "det_occ_code", "education", "wage_per_hour",
    "hs_college", "marital_stat", "major_ind_code", "major_occ_code", "race", "hisp_origin",
    "sex", "union_member", "unemp_reason", "full_or_part_emp", "capital_gains",
    "capital_losses", "stock_dividends", "tax_filer_stat", "region_prev_res", "state_prev_res",
    "det_hh_fam_stat", "det_hh_summ", "instance_weight", "mig_chg_msa", "mig_chg_reg",
    "mig_move_reg", "mig_same", "mig_prev_sunbelt", "num_emp", "fam_under_18",
    "country_father", "country_mother", "country_self", "citizenship", "own_or_self",
    "vet_question", "vet_benefits", "weeks_worked", "year", "income_50k",
]  # fmt: skip
KDD_NUMERIC = [
    "age", "wage_per_hour", "capital_gains", "capital_losses", "stock_dividends", "num_emp",
    "weeks_worked",
]  # fmt: skip
#: Education values counted as "at least some college" for ``education_college``.
KDD_COLLEGE = (
    "Some college but no degree",
    "Associates degree-occup /vocational",
    "Associates degree-academic program",
    "Bachelors degree(BA AB BS)",
    "Masters degree(MA MS MEng MEd MSW MBA)",
    "Prof school degree (MD DDS DVM LLB JD)",
    "Doctorate degree(PhD EdD)",
)


def load_census_kdd_test() -> MultiOutputData:
    """Census-Income (KDD) test split: 99,762 rows, three binary targets.

    Targets (Ma et al., KDD 2018, Sec. 5.2): ``income`` (``50000+.``),
    ``never_married`` (``marital_stat == "Never married"``) and
    ``education_college`` (education is one of :data:`KDD_COLLEGE`, i.e. at
    least "Some college but no degree"). ``X`` holds the 38 other columns
    (``instance_weight``, education, marital status and the label removed);
    coded columns (industry, occupation, year, ...) are categoricals, ``?`` is
    NaN. Only the test file is available: there is no ``split``.
    """
    df = pd.read_csv(
        fetch(FILES["census_income_kdd/census-income.test.gz"]),
        header=None,
        names=KDD_COLUMNS,
        skipinitialspace=True,
        na_values="?",
    )
    targets = {
        "income": df["income_50k"].eq("50000+.").to_numpy(np.int64),
        "never_married": df["marital_stat"].eq("Never married").to_numpy(np.int64),
        "education_college": df["education"].isin(KDD_COLLEGE).to_numpy(np.int64),
    }
    X = df.drop(columns=["instance_weight", "income_50k", "marital_stat", "education"])
    cat = [c for c in X.columns if c not in KDD_NUMERIC]
    X = X.astype({c: str for c in cat}).where(X.notna(), np.nan)
    X = _categorize(X)
    kinds = dict.fromkeys(targets, "binary")
    return MultiOutputData(
        X, targets, kinds, None, "census_kdd_test", INFO["census_kdd_test"].citation
    )


SARCOS_FEATURES = [f"{q}_{j}" for q in ("pos", "vel", "acc") for j in range(1, 8)]
SARCOS_TARGETS = [f"torque_{j}" for j in range(1, 8)]


def load_sarcos_test(long: bool = False) -> MultiOutputData | MultiTaskData:
    """SARCOS inverse dynamics, official test split: 4,449 rows, 21 inputs, 7 torques.

    Parameters
    ----------
    long : bool, default=False
        False: :class:`MultiOutputData` with ``X`` of shape (4449, 21) and 7
        targets ``torque_1..7``. True: long format (7 tasks x 4,449 rows,
        shared design) through :func:`from_wide`.
    """
    import scipy.io

    A = scipy.io.loadmat(fetch(FILES["sarcos/sarcos_inv_test.mat"]))["sarcos_inv_test"]
    X = pd.DataFrame(A[:, :21], columns=SARCOS_FEATURES)
    Y = pd.DataFrame(A[:, 21:], columns=SARCOS_TARGETS)
    desc = INFO["sarcos_test"].citation
    if long:
        return from_wide(X, Y, name="sarcos_test", description=desc)
    targets = {c: Y[c].to_numpy() for c in SARCOS_TARGETS}
    return MultiOutputData(
        X, targets, dict.fromkeys(targets, "regression"), None, "sarcos_test", desc
    )
