"""Bad hyper-parameters of the architectures fail at construction, naming the parameter."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from multitask.nn.architectures import (
    CGC,
    MTAN,
    PLE,
    CrossStitch,
    DeepRelationshipNetwork,
    FullyAdaptiveSharing,
    JointManyTask,
    LowSupervision,
    MMoE,
    Sluice,
    SoftSharing,
    TensorFactorized,
)

NAN, INF = math.nan, math.inf


def heads(width=8, out=1):
    return {"a": nn.Linear(width, out), "b": nn.Linear(width, out)}


def layers():
    return [nn.Linear(4, 8), nn.Linear(8, 8)]


def _width(label_dim):
    return label_dim if type(label_dim) is int and label_dim > 0 else 2


BUILDERS = {
    "SoftSharing": lambda **kw: SoftSharing({"a": nn.Linear(4, 2), "b": nn.Linear(4, 2)}, **kw),
    "Sluice": lambda **kw: Sluice(layers(), heads(), **kw),
    "CrossStitch": lambda **kw: CrossStitch(layers(), heads(), **kw),
    "DeepRelationshipNetwork": lambda **kw: DeepRelationshipNetwork(
        nn.Linear(4, 8), heads(8, 3), **kw
    ),
    "JointManyTask": lambda **kw: JointManyTask(
        [nn.Linear(4, 8), nn.Linear(4 + 8 + _width(kw.get("label_dim", 2)), 8)],
        {"pos": nn.Linear(8, 5), "chunk": nn.Linear(8, 3)},
        **{"n_classes": {"pos": 5}, "label_dim": 2, **kw},
    ),
    "FullyAdaptiveSharing": lambda **kw: FullyAdaptiveSharing(layers(), heads(), **kw),
    "TensorFactorized": lambda **kw: TensorFactorized(
        nn.Identity(),
        **{"dims": [4, 8, 3], "heads": {"a": nn.Identity(), "b": nn.Identity()}, **kw},
    ),
    "MMoE": lambda **kw: MMoE([nn.Linear(4, 8) for _ in range(2)], heads(), **kw),
    "CGC": lambda **kw: CGC(
        [nn.Linear(4, 8)], {"a": [nn.Linear(4, 8)], "b": [nn.Linear(4, 8)]}, heads(), **kw
    ),
    "PLE": lambda **kw: PLE(
        [[nn.Linear(4, 8)], [nn.Linear(8, 8)]],
        {t: [[nn.Linear(4, 8)], [nn.Linear(8, 8)]] for t in "ab"},
        heads(),
        **kw,
    ),
    "MTAN": lambda **kw: MTAN(layers(), heads=heads(), **kw),
    "LowSupervision": lambda **kw: LowSupervision(layers(), heads(), **kw),
}

REFUSED = [
    # 15: strengths, finite >= 0
    *[
        (cls, {name: v}, err, name)
        for cls, name in [
            ("SoftSharing", "strength"),
            ("Sluice", "orthogonality"),
            ("DeepRelationshipNetwork", "prior_weight"),
            ("JointManyTask", "delta"),
            ("FullyAdaptiveSharing", "complexity_weight"),
        ]
        for v, err in [(-1.0, ValueError), (NAN, ValueError), (INF, ValueError), ("1", TypeError)]
    ],
    # 16: self_weight in [0, 1]
    *[
        (cls, {"self_weight": v}, err, "self_weight")
        for cls in ("CrossStitch", "Sluice")
        for v, err in [(-0.1, ValueError), (1.5, ValueError), (NAN, ValueError), ("a", TypeError)]
    ],
    # 17
    ("DeepRelationshipNetwork", {"epsilon": 0.0}, ValueError, "epsilon"),
    ("DeepRelationshipNetwork", {"epsilon": -1e-3}, ValueError, "epsilon"),
    ("DeepRelationshipNetwork", {"epsilon": NAN}, ValueError, "epsilon"),
    ("DeepRelationshipNetwork", {"n_samples": 0}, ValueError, "number of training examples"),
    ("DeepRelationshipNetwork", {"n_samples": 1.5}, TypeError, "n_samples"),
    ("DeepRelationshipNetwork", {"n_samples": NAN}, TypeError, "n_samples"),
    ("DeepRelationshipNetwork", {"n_samples": True}, TypeError, "n_samples"),
    # 18
    ("Sluice", {"n_subspaces": 0}, ValueError, "n_subspaces"),
    ("Sluice", {"n_subspaces": True}, TypeError, "n_subspaces"),
    ("Sluice", {"n_subspaces": 2.0}, TypeError, "n_subspaces"),
    ("Sluice", {"feature_dim": 1.5}, TypeError, "feature_dim"),
    ("Sluice", {"feature_dim": "-1"}, TypeError, "feature_dim"),
    # 19
    ("CrossStitch", {"stitch_after": [1.5]}, TypeError, "stitch_after"),
    ("CrossStitch", {"stitch_after": [True]}, TypeError, "stitch_after"),
    ("CrossStitch", {"stitch_after": [5]}, ValueError, "stitch_after"),
    # 20
    ("JointManyTask", {"label_dim": 0}, ValueError, "label_dim"),
    ("JointManyTask", {"label_dim": 2.5}, TypeError, "label_dim"),
    ("JointManyTask", {"n_classes": {"pos": 0}}, ValueError, r"n_classes\['pos'\]"),
    ("JointManyTask", {"n_classes": {"pos": 5.5}}, TypeError, r"n_classes\['pos'\]"),
    ("JointManyTask", {"n_classes": {"pos": 4}}, ValueError, r"n_classes\['pos'\]=4.*5 outputs"),
    # 21, 22
    ("TensorFactorized", {"ranks": 8.5}, TypeError, "ranks"),
    ("TensorFactorized", {"ranks": (2, 2.5, 1)}, TypeError, "ranks"),
    ("TensorFactorized", {"ranks": 0}, ValueError, "positive ranks"),
    ("TensorFactorized", {"ranks": -1}, ValueError, "positive ranks"),
    ("TensorFactorized", {"ranks": True}, TypeError, "ranks"),
    ("TensorFactorized", {"ranks": "2"}, TypeError, "ranks"),
    ("TensorFactorized", {"dims": [4, 8.5, 3]}, TypeError, r"dims\[1\]"),
    ("TensorFactorized", {"dims": [4, 0, 3]}, ValueError, r"dims\[1\]"),
    ("MMoE", {"input_dim": 0}, ValueError, "input_dim"),
    ("MMoE", {"input_dim": 4.5}, TypeError, "input_dim"),
    ("MMoE", {"input_dim": "4"}, TypeError, "input_dim"),
    ("CGC", {"input_dim": -4}, ValueError, "CGC: input_dim"),
    ("CGC", {"input_dim": 4.0}, TypeError, "CGC: input_dim"),
    ("PLE", {"input_dims": [4, 8.5]}, TypeError, r"PLE: input_dims\[1\]"),
    ("PLE", {"input_dims": [0, 8]}, ValueError, r"PLE: input_dims\[0\]"),
    ("MTAN", {"dims": [8, 8.5]}, TypeError, r"MTAN: dims\[1\]"),
    ("MTAN", {"dims": [8, 0]}, ValueError, r"MTAN: dims\[1\]"),
    # 23
    ("LowSupervision", {"depths": {"a": 1, "b": 1.5}}, TypeError, r"depths\['b'\]"),
    ("LowSupervision", {"depths": {"a": True, "b": 2}}, TypeError, r"depths\['a'\]"),
    ("LowSupervision", {"depths": {"a": 1, "b": 2, "c": 1}}, ValueError, r"unknown.*\['c'\]"),
    ("LowSupervision", {"depths": {"a": 0, "b": 2}}, ValueError, "depths"),
]


@pytest.mark.parametrize(
    ("cls", "kwargs", "error", "match"),
    REFUSED,
    ids=[f"{c}-{k}" for c, k, _, _ in REFUSED],
)
def test_bad_argument_refused_at_construction(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        BUILDERS[cls](**kwargs)


VALID = [
    ("SoftSharing", {"strength": 0.0}),
    ("SoftSharing", {"strength": 10}),
    ("Sluice", {"orthogonality": 0.0, "self_weight": 0.0}),
    ("Sluice", {"self_weight": 1.0, "n_subspaces": 1}),
    ("Sluice", {"feature_dim": 1}),
    ("CrossStitch", {"self_weight": 0.0, "stitch_after": [0]}),
    ("CrossStitch", {"self_weight": 1, "stitch_after": (1,)}),
    ("DeepRelationshipNetwork", {"prior_weight": 0.0, "epsilon": 1e-9, "n_samples": 1}),
    ("JointManyTask", {"delta": 0.0, "label_dim": 1}),
    ("FullyAdaptiveSharing", {"complexity_weight": 0.0}),
    ("TensorFactorized", {"ranks": 1}),
    ("TensorFactorized", {"ranks": [(2, 2, 1), None]}),
    ("TensorFactorized", {"ranks": 100, "method": "tt"}),
    ("MMoE", {"input_dim": 4}),
    ("CGC", {"input_dim": 4}),
    ("PLE", {"input_dims": [4, 8]}),
    ("MTAN", {"dims": [8, 8]}),
    ("LowSupervision", {"depths": {"a": 1, "b": 2}}),
]


@pytest.mark.parametrize(("cls", "kwargs"), VALID, ids=[f"{c}-{k}" for c, k in VALID])
def test_valid_edge_values_construct_and_run(cls, kwargs):
    torch.manual_seed(0)
    model = BUILDERS[cls](**kwargs)
    out = model(torch.randn(5, 4))
    assert all(torch.isfinite(y).all() for y in out.values())
    reg = model.regularization() if hasattr(model, "regularization") else 0.0
    assert math.isfinite(float(torch.as_tensor(reg).detach()))


def test_sluice_feature_dim_outside_the_output_is_named_at_forward():
    model = Sluice(layers(), heads(), feature_dim=3)
    with pytest.raises(ValueError, match=r"feature_dim=3 is not a dimension"):
        model(torch.randn(5, 4))


def test_joint_many_task_head_width_checked_at_forward_when_not_linear():
    model = JointManyTask(
        [nn.Linear(4, 8), nn.Linear(4 + 8 + 2, 8)],
        {"pos": nn.Sequential(nn.Linear(8, 5), nn.Tanh()), "chunk": nn.Linear(8, 3)},
        n_classes={"pos": 4},
        label_dim=2,
    )
    with pytest.raises(ValueError, match=r"'pos' gives 5 logits.*n_classes\['pos'\]=4"):
        model(torch.randn(5, 4))
