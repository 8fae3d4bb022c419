"""The method catalogue shown by ``multitask methods``: name, family, paper, year.

A test checks that every estimator of :mod:`multitask.linear` and every name of
the deep name tables (``WEIGHTINGS``, ``AGGREGATORS``, ``ARCHITECTURES``) is
listed here, so the catalogue cannot fall behind the code.
"""

from __future__ import annotations

#: (name, or None; estimator families; paper; year). The name is what ``multitask fit
#: --task-col --method`` takes (and ``multitask bench`` where it has the method); tree- and
#: graph-structured models need a task structure that a table does not hold, so they are
#: used from Python and listed by class.
_LINEAR = [
    ("independent", "IndependentRidge / IndependentLogistic", "single-task baseline", 0),
    ("pooled", "PooledRidge", "one model for all tasks", 0),
    ("group_lasso", "GroupLasso", "Obozinski, Taskar & Jordan, Statistics and Computing", 2010),
    ("l1inf", "L1Inf", "Turlach, Venables & Wright, Technometrics; Quattoni et al., ICML", 2009),
    ("sparse_group_lasso", "SparseGroupLasso", "Simon, Friedman, Hastie & Tibshirani, JCGS", 2013),
    ("trace_norm", "TraceNorm", "Pong, Tseng, Ji & Ye, SIAM J. Optimization", 2010),
    ("dirty", "DirtyModel", "Jalali, Ravikumar, Sanghavi & Ruan, NIPS", 2010),
    ("robust", "RobustMTL", "Chen, Zhou & Ye, KDD", 2011),
    (None, "TreeGroupLasso", "Kim & Xing, ICML", 2010),
    ("mean_regularized", "MeanRegularized", "Evgeniou & Pontil, KDD", 2004),
    (None, "GraphRegularized", "Zhou, Chen & Ye, MALSAR (SRMTL)", 2011),
    ("clustered", "ClusteredMTL", "Jacob, Bach & Vert, NIPS 2008; Zhou, Chen & Ye, NIPS", 2011),
]

DEEP_NAMES = {
    "weighting": {
        "equal": ("sum of task losses", 0),
        "static": ("fixed task weights", 0),
        "uncertainty": ("Kendall, Gal & Cipolla, CVPR", 2018),
        "gradnorm": ("Chen, Badrinarayanan, Lee & Rabinovich, ICML", 2018),
        "dwa": ("Liu, Johns & Davison, CVPR", 2019),
        "rlw": ("Lin, Ye, Zhang & Tsang, TMLR", 2022),
        "gls": ("Chennupati, Sistu, Yogamani & Rawashdeh, CVPR Workshops", 2019),
        "imtl_l": ("Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang, ICLR", 2021),
        "famo": ("Liu, Feng, Stone & Liu, NeurIPS", 2023),
        "dbmtl": ("Lin, Ye, Zhang & Zhang, arXiv", 2023),
    },
    "aggregation": {
        "mean": ("average of task gradients", 0),
        "sum": ("sum of task gradients", 0),
        "mgda": ("Sener & Koltun, NeurIPS", 2018),
        "pcgrad": ("Yu, Kumar, Gupta, Levine, Hausman & Finn, NeurIPS", 2020),
        "gradvac": ("Wang, Tsvetkov, Firat & Cao, ICLR", 2021),
        "cagrad": ("Liu, Liu, Jin, Stone & Liu, NeurIPS", 2021),
        "nash_mtl": ("Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik & Fetaya, ICML", 2022),
        "imtl_g": ("Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang, ICLR", 2021),
        "aligned_mtl": ("Senushkin, Patakin, Kuznetsov & Konushin, CVPR", 2023),
        "upgrad": ("Quinton & Rey, arXiv (Jacobian descent)", 2024),
        "graddrop": ("Chen, Ngiam, Huang, Luong, Kretzschmar, Chai & Anguelov, NeurIPS", 2020),
    },
    "architecture": {
        "hard_sharing": ("Caruana, ICML", 1993),
        "soft_sharing": ("Duong, Cohn, Bird & Cook, ACL 2015; Yang & Hospedales, ICLR-W", 2017),
        "cross_stitch": ("Misra, Shrivastava, Gupta & Hebert, CVPR", 2016),
        "sluice": ("Ruder, Bingel, Augenstein & Søgaard, AAAI", 2019),
        "relationship": ("Long, Cao, Wang & Yu, NIPS", 2017),
        "fully_adaptive": ("Lu, Kumar, Zhai, Cheng, Javidi & Feris, CVPR", 2017),
        "low_supervision": ("Søgaard & Goldberg, ACL", 2016),
        "joint_many_task": ("Hashimoto, Xiong, Tsuruoka & Socher, EMNLP", 2017),
        "tensor_factorized": ("Yang & Hospedales, ICLR", 2017),
        "mmoe": ("Ma, Zhao, Yi, Chen, Hong & Chi, KDD", 2018),
        "cgc": ("Tang, Liu, Zhao & Gong, RecSys", 2020),
        "ple": ("Tang, Liu, Zhao & Gong, RecSys", 2020),
        "mtan": ("Liu, Johns & Davison, CVPR", 2019),
    },
}


#: auxiliary tasks, task samplers and task relatedness (not balancers or architectures)
OTHER_NAMES = {
    "auxiliary": {"gradient_reversal": ("Ganin & Lempitsky, ICML", 2015)},
    "sampler": {
        "round_robin": ("Collobert & Weston, ICML (one task per step)", 2008),
        "proportional": ("Collobert & Weston, ICML; sampling by dataset size", 2008),
        "temperature": ("Arivazhagan et al., arXiv:1907.05019", 2019),
        "periodic": ("a fixed schedule per task; Ruder, arXiv:1706.05098", 2017),
    },
    "relatedness": {
        "gradient_affinity": ("cosine of task gradients; Yu et al., NeurIPS", 2020),
        "lookahead_affinity": ("Fifty, Amid, Zhao, Yu, Anil & Finn, NeurIPS (TAG)", 2021),
        "group_tasks": ("Fifty et al., NeurIPS 2021; Standley et al., ICML", 2020),
    },
}


def _python_names() -> dict[tuple[str, str], str]:
    """(family, name) -> the class or function behind a deep name (empty without torch)."""
    try:
        from multitask.nn.aggregation import AGGREGATORS
        from multitask.nn.architectures import ARCHITECTURES
        from multitask.nn.weighting import WEIGHTINGS
        from multitask.training.samplers import SAMPLERS
    except ImportError:
        return {}
    tables = {
        "weighting": ("multitask.nn.weighting", WEIGHTINGS),
        "aggregation": ("multitask.nn.aggregation", AGGREGATORS),
        "architecture": ("multitask.nn.architectures", ARCHITECTURES),
        "sampler": ("multitask.training.samplers", SAMPLERS),
    }
    names = {
        (family, name): f"{module}.{cls.__name__}"
        for family, (module, table) in tables.items()
        for name, cls in table.items()
    }
    names["auxiliary", "gradient_reversal"] = "multitask.nn.auxiliary.GradientReversal"
    for name in OTHER_NAMES["relatedness"]:
        names["relatedness", name] = f"multitask.relatedness.{name}"
    return names


def _linear_classes(families: str) -> str:
    """The estimators of ``multitask.linear`` of a family: its regressor and classifier."""
    import multitask.linear as L

    out = []
    for family in families.split(" / "):
        out += [n for n in (family, f"{family}Regressor", f"{family}Classifier") if n in L.__all__]
    return ", ".join(f"multitask.linear.{n}" for n in out)


def _commands(family: str, name: str) -> str:
    """Where the command line takes ``name``: ``fit --method``, ``fit --balancer``, ``bench``."""
    from multitask.bench._registry import METHODS
    from multitask.tabular import LINEAR_METHODS

    where = []
    if family == "linear" and name in LINEAR_METHODS:
        where.append("fit --method")
    elif family == "architecture":
        from multitask.tabular._deep import ARCHITECTURE_NAMES

        if name in ARCHITECTURE_NAMES:
            where.append("fit --method")
    elif family in ("weighting", "aggregation") and name != "static":  # static needs weights
        where.append("fit --balancer")
    if name in METHODS:
        where.append("bench")
    return ", ".join(where) or "python"


def catalogue() -> list[tuple[str, str, str, int, str, str]]:
    """Rows (name, family, paper, year, python, commands) of every method.

    ``name`` is the method's name in the command line and in bench suites where they take it
    (``commands`` says which: ``fit --method``, ``fit --balancer``, ``bench``, or ``python``
    for none); a linear family without one (it needs a task tree or graph) is listed by its
    class name. ``python`` names the class or function that implements it.
    """
    rows = []
    for name, families, paper, year in _LINEAR:
        label = name or families
        python = _linear_classes(families)
        rows.append((label, "linear", paper, year, python, _commands("linear", label)))
    python_names = _python_names()
    for family, table in {**DEEP_NAMES, **OTHER_NAMES}.items():
        for name, (paper, year) in table.items():
            python = python_names.get((family, name), "")
            rows.append((name, family, paper, year, python, _commands(family, name)))
    return rows
