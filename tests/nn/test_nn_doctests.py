"""The ``Examples`` sections of the deep half's public docstrings run as written (doctest)."""

import pytest

from doctest_testutil import run_examples

pytest.importorskip("torch")

#: module -> the objects in it whose docstring has an ``Examples`` section
EXAMPLES = {
    "multitask.nn.tasks": ["Task", "task_losses"],
    "multitask.nn.backward": ["StepInfo", "mtl_backward"],
    "multitask.nn._jacobian": ["task_jacobian"],
    "multitask.nn.auxiliary": ["GradientReversal", "ganin_schedule", "grad_reverse"],
    "multitask.nn.architectures._base": ["MultiTaskModule"],
    "multitask.nn.architectures.hard_sharing": ["HardSharing"],
    "multitask.nn.architectures.soft_sharing": ["SoftSharing"],
    "multitask.nn.architectures.mmoe": ["MMoE"],
    "multitask.nn.architectures.ple": ["CGC", "PLE"],
    "multitask.nn.architectures.cross_stitch": ["CrossStitch"],
    "multitask.nn.architectures.sluice": ["Sluice"],
    "multitask.nn.architectures.mtan": ["MTAN"],
    "multitask.nn.architectures.tensor_factorized": ["TensorFactorized"],
    "multitask.nn.architectures.relationship": ["DeepRelationshipNetwork"],
    "multitask.nn.architectures.fully_adaptive": ["FullyAdaptiveSharing"],
    "multitask.nn.architectures.low_supervision": ["LowSupervision"],
    "multitask.nn.architectures.joint_many_task": ["JointManyTask"],
    "multitask.nn.weighting._base": ["LossWeighting"],
    "multitask.nn.weighting.equal": ["EqualWeighting"],
    "multitask.nn.weighting.static": ["StaticWeighting"],
    "multitask.nn.weighting.uncertainty": ["UncertaintyWeighting"],
    "multitask.nn.weighting.gradnorm": ["GradNorm"],
    "multitask.nn.weighting.dwa": ["DWA"],
    "multitask.nn.weighting.rlw": ["RLW"],
    "multitask.nn.weighting.gls": ["GLS"],
    "multitask.nn.weighting.imtl_l": ["IMTLL"],
    "multitask.nn.weighting.famo": ["FAMO"],
    "multitask.nn.weighting.dbmtl": ["DBMTL"],
    "multitask.nn.aggregation._base": ["GradientAggregator"],
    "multitask.nn.aggregation._mean": ["Mean"],
    "multitask.nn.aggregation._sum": ["Sum"],
    "multitask.nn.aggregation._upgrad": ["UPGrad"],
    "multitask.nn.aggregation._mgda": ["MGDA"],
    "multitask.nn.aggregation._pcgrad": ["PCGrad"],
    "multitask.nn.aggregation._gradvac": ["GradVac"],
    "multitask.nn.aggregation._cagrad": ["CAGrad"],
    "multitask.nn.aggregation._nash_mtl": ["NashMTL"],
    "multitask.nn.aggregation._imtl_g": ["IMTLG"],
    "multitask.nn.aggregation._aligned_mtl": ["AlignedMTL"],
    "multitask.nn.aggregation._graddrop": ["GradDrop"],
    "multitask.training._trainer": ["Trainer"],
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_examples_run(name):
    run_examples(name, EXAMPLES[name])
