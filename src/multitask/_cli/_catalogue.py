"""The method catalogue shown by ``multitask methods``: name, family, paper, year.

A test checks that every estimator of :mod:`multitask.linear` and every name of
the deep name tables (``WEIGHTINGS``, ``AGGREGATORS``, ``ARCHITECTURES``) is
listed here, so the catalogue cannot fall behind the code.
"""

from __future__ import annotations

_LINEAR = [
    ("IndependentRidge / IndependentLogistic", "single-task baseline", 0),
    ("PooledRidge", "one model for all tasks", 0),
    ("GroupLasso", "Obozinski, Taskar & Jordan, Statistics and Computing", 2010),
    ("L1Inf", "Turlach, Venables & Wright, Technometrics; Quattoni et al., ICML", 2009),
    ("SparseGroupLasso", "Simon, Friedman, Hastie & Tibshirani, JCGS", 2013),
    ("TraceNorm", "Pong, Tseng, Ji & Ye, SIAM J. Optimization", 2010),
    ("DirtyModel", "Jalali, Ravikumar, Sanghavi & Ruan, NIPS", 2010),
    ("RobustMTL", "Chen, Zhou & Ye, KDD", 2011),
    ("TreeGroupLasso", "Kim & Xing, ICML", 2010),
    ("MeanRegularized", "Evgeniou & Pontil, KDD", 2004),
    ("GraphRegularized", "Zhou, Chen & Ye, MALSAR (SRMTL)", 2011),
    ("ClusteredMTL", "Jacob, Bach & Vert, NIPS 2008; Zhou, Chen & Ye, NIPS", 2011),
]

DEEP_NAMES = {
    "weighting": {
        "equal": ("sum of task losses", 0),
        "static": ("fixed task weights", 0),
        "uncertainty": ("Kendall, Gal & Cipolla, CVPR", 2018),
        "gradnorm": ("Chen, Badrinarayanan, Lee & Rabinovich, ICML", 2018),
        "dwa": ("Liu, Johns & Davison, CVPR", 2019),
        "rlw": ("Lin, Ye, Xu, Shi & Zhang, TMLR", 2022),
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


def catalogue() -> list[tuple[str, str, str, int]]:
    """Rows (name, family, paper, year) of every method."""
    rows = []
    for name, paper, year in _LINEAR:
        rows.append((name, "linear", paper, year))
    for family, table in {**DEEP_NAMES, **OTHER_NAMES}.items():
        for name, (paper, year) in table.items():
            rows.append((name, family, paper, year))
    return rows
