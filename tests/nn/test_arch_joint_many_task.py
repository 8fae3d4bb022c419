import pytest
import torch
from torch import nn

from multitask.nn.architectures.joint_many_task import JointManyTask

D, H, E = 5, 6, 3


def _model():
    torch.manual_seed(0)
    layers = [
        nn.GRU(D, H, batch_first=True),
        nn.GRU(D + H + E, H, batch_first=True),
        nn.Linear(D + H + 2 * E, H),
    ]
    # a GRU returns (output, h_n): keep the output sequence
    layers[0] = nn.Sequential(layers[0], _Out())
    layers[1] = nn.Sequential(layers[1], _Out())
    heads = {"pos": nn.Linear(H, 4), "chunk": nn.Linear(H, 3), "dep": nn.Linear(H, 2)}
    return JointManyTask(layers, heads, {"pos": 4, "chunk": 3}, label_dim=E, delta=0.5)


class _Out(nn.Module):
    def forward(self, out):
        return out[0]


def test_higher_task_receives_lower_label_embedding_and_shortcut():
    model = _model()
    seen = {}

    def hook(module, inp, out):
        seen["in"] = inp[0]

    model.layers[2].register_forward_hook(hook)
    x = torch.randn(2, 7, D)
    out = model(x)
    inp = seen["in"]
    assert inp.shape == (2, 7, D + H + 2 * E)
    torch.testing.assert_close(inp[..., :D], x)  # shortcut from the input
    # softmax-weighted label embeddings of both lower tasks, recomputed by hand
    pos_emb = torch.softmax(out["pos"], -1) @ model.label_embeddings["pos"]
    chunk_emb = torch.softmax(out["chunk"], -1) @ model.label_embeddings["chunk"]
    torch.testing.assert_close(inp[..., D + H : D + H + E], pos_emb)
    torch.testing.assert_close(inp[..., D + H + E :], chunk_emb)
    assert out["dep"].shape == (2, 7, 2)


def test_lower_prediction_changes_higher_input():
    model = _model()
    x = torch.randn(1, 4, D)
    base = model(x)["dep"]
    with torch.no_grad():
        model.heads["pos"].bias += 5.0 * torch.arange(4.0)
    assert not torch.allclose(model(x)["dep"], base)


def test_successive_regularization():
    model = _model()
    assert model.regularization() == 0.0
    model.snapshot(below="chunk")  # parameters of the pos level only
    with torch.no_grad():
        model.layers[0][0].weight_ih_l0 += 0.1
        model.heads["dep"].weight += 1.0  # not snapshotted: no penalty
    n = model.layers[0][0].weight_ih_l0.numel()
    assert float(model.regularization().detach()) == pytest.approx(0.5 * n * 0.01, rel=1e-4)


def test_snapshot_names_are_exact_and_the_anchor_is_in_the_state_dict():
    """A lower task "pos" snapshotted the label embedding of a higher "pos2" (a name prefix),
    which the successive regularisation then held back; the snapshot was not in state_dict,
    so a checkpoint resumed with regularization() = 0."""
    torch.manual_seed(0)
    layers = [nn.Linear(D, H), nn.Linear(D + H + E, H), nn.Linear(D + H + 2 * E, H)]
    heads = {"pos": nn.Linear(H, 4), "pos2": nn.Linear(H, 3), "top": nn.Linear(H, 2)}
    model = JointManyTask(layers, heads, {"pos": 4, "pos2": 3}, label_dim=E, delta=1.0)
    model.snapshot(below="pos2")
    assert set(model._snapshot) == {
        "layers.0.weight", "layers.0.bias", "heads.pos.weight", "heads.pos.bias",
        "label_embeddings.pos",
    }  # fmt: skip
    with torch.no_grad():
        model.label_embeddings["pos2"].add_(1.0)  # a task above "pos2"'s own: not held back
        model.layers[0].weight.add_(0.1)
    want = 1.0 * 0.1**2 * model.layers[0].weight.numel()
    assert float(model.regularization()) == pytest.approx(want, rel=1e-5)
    copy = JointManyTask(
        [nn.Linear(D, H), nn.Linear(D + H + E, H), nn.Linear(D + H + 2 * E, H)],
        {"pos": nn.Linear(H, 4), "pos2": nn.Linear(H, 3), "top": nn.Linear(H, 2)},
        {"pos": 4, "pos2": 3},
        label_dim=E,
        delta=1.0,
    )
    copy.load_state_dict(model.state_dict())
    assert float(copy.regularization()) == pytest.approx(want, rel=1e-5)
    copy.double()
    assert copy._snapshot["layers.0.weight"].dtype == torch.float64
