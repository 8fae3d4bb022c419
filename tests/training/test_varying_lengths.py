"""A dense task over batches whose length differs (sequences padded per batch, images of
varying size): evaluation pools the labelled entries of every batch, and prediction gives
the list of the batches' outputs."""

from __future__ import annotations

import torch
from torch import nn

from multitask.nn import Task
from multitask.nn.architectures import HardSharing
from multitask.training import Trainer


class _Tagger(nn.Module):
    """``(B, L, d)`` -> per-token logits ``(B, C, L)``."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(8, 3)

    def forward(self, z):
        return self.linear(z).transpose(1, 2)


class _Pool(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(8, 1)

    def forward(self, z):
        return self.linear(z.mean(1))[:, 0]


def _setup():
    torch.manual_seed(0)
    batches = []
    for length in (5, 7, 6):
        x = torch.randn(4, length, 3)
        tags = (x[..., 0] > 0).long() + (x[..., 1] > 1).long()
        tags[0, -2:] = -100  # padding
        depth = x[..., 2].clone()
        depth[1, :2] = float("nan")
        batches.append((x, {"tag": tags, "depth": depth, "y": x.sum((1, 2))}))

    class _Depth(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(8, 1)

        def forward(self, z):
            return self.linear(z)[..., 0]

    model = HardSharing(
        nn.Sequential(nn.Linear(3, 8), nn.ReLU()),
        {"tag": _Tagger(), "depth": _Depth(), "y": _Pool()},
    )
    tasks = [Task("tag", "dense", metrics=("accuracy", "f1")), Task("depth", "dense"), Task("y")]
    return model, tasks, batches


def test_evaluate_pools_the_labelled_entries_of_every_batch():
    model, tasks, batches = _setup()
    trainer = Trainer(model, tasks, max_epochs=2, device="cpu", progress=False)
    trainer.fit(batches, batches)  # validation over varying lengths too
    got = trainer.evaluate(batches)
    model.eval()
    with torch.no_grad():
        outs = [model(x) for x, _ in batches]
    labels = torch.cat([t["tag"].reshape(-1) for _, t in batches])
    guess = torch.cat([o["tag"].argmax(1).reshape(-1) for o in outs])
    kept = labels != -100
    assert got["tag"]["accuracy"] == (guess[kept] == labels[kept]).double().mean().item()
    from sklearn.metrics import f1_score

    macro = f1_score(labels[kept], guess[kept], average="macro", labels=[0, 1, 2], zero_division=0)
    assert abs(got["tag"]["f1"] - macro) < 1e-12
    depth = torch.cat([t["depth"].reshape(-1) for _, t in batches])
    pred = torch.cat([o["depth"].reshape(-1) for o in outs])
    seen = ~torch.isnan(depth)
    mse = ((pred[seen].double() - depth[seen].double()) ** 2).mean().item()
    assert abs(got["depth"]["mse"] - mse) < 1e-6


def test_predict_gives_the_list_of_batches_where_shapes_differ():
    model, tasks, batches = _setup()
    trainer = Trainer(model, tasks, max_epochs=1, device="cpu", progress=False).fit(batches)
    out = trainer.predict(batches)
    assert isinstance(out["tag"], list) and [p.shape for p in out["tag"]] == [
        (4, 3, 5), (4, 3, 7), (4, 3, 6)
    ]  # fmt: skip
    assert isinstance(out["y"], torch.Tensor) and out["y"].shape == (12,)
