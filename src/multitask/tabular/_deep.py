"""The deep half of ``multitask fit``: an MLP-based architecture trained with a balancer.

Architectures usable on tabular features (``ARCHITECTURE_NAMES``), all
rebuilt from a small JSON config, with ``width`` hidden units:

- ``hard_sharing``: MLP trunk (two ReLU layers), one linear head per target;
- ``mmoe``: ``n_experts`` one-layer ReLU experts, a softmax gate per target;
- ``cgc``: one shared and one task expert per target, task gates;
- ``ple``: two CGC-style levels with a shared gate between them.

Inside the module (and the trainer) each target goes by its *module key*
(:func:`multitask.tabular._module_keys.module_keys`: the name itself unless
``nn.ModuleDict`` refuses it, like ``type`` or ``income.level``); outputs,
metrics and the training record are given back under the target names.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from multitask.tabular._model import MODEL_JSON, TabularModel, write_json
from multitask.tabular._module_keys import module_keys

__all__ = ["ARCHITECTURE_NAMES", "DeepTabularModel", "build_module", "make_balancer"]

ARCHITECTURE_NAMES = ("hard_sharing", "mmoe", "cgc", "ple")
MODEL_PT = "model.pt"
_PREDICT_BATCH = 4096
#: fewer validation rows than this cannot choose an epoch: the last epoch is kept
MIN_VAL_ROWS = 20


def _mlp(in_dim: int, width: int, depth: int):
    from torch import nn

    layers, d = [], in_dim
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.ReLU()]
        d = width
    return nn.Sequential(*layers)


def build_module(config: dict):
    """The untrained architecture of ``config`` (see :func:`architecture_config`).

    Parameters
    ----------
    config : dict
        ``architecture``, ``input_dim``, ``width``, ``n_experts``, ``outputs``
        (target -> output width, in task order) and ``module_keys`` (target ->
        module key; absent in models saved before it existed, whose keys are
        then recomputed, which gives the names themselves).

    Returns
    -------
    module : MultiTaskModule
        ``forward(x (batch, input_dim)) -> {key: (batch, width_t)}``, keyed by
        the targets' module keys.

    References
    ----------
    Caruana, "Multitask Learning", ICML 1993 (hard sharing); Ma et al.,
    "Modeling Task Relationships in Multi-task Learning with Multi-gate
    Mixture-of-Experts", KDD 2018, Eqs. (5)-(6) (MMoE); Tang et al.,
    "Progressive Layered Extraction (PLE)", RecSys 2020, Eqs. (2)-(5) (CGC, PLE).
    """
    from torch import nn

    from multitask.nn.architectures import CGC, PLE, HardSharing, MMoE

    name, d, w = config["architecture"], int(config["input_dim"]), int(config["width"])
    keys, k = config_keys(config), int(config["n_experts"])
    outputs = {keys[t]: int(n) for t, n in config["outputs"].items()}
    heads = {t: nn.Linear(w, n) for t, n in outputs.items()}
    if name == "hard_sharing":
        return HardSharing(_mlp(d, w, 2), heads)
    if name == "mmoe":
        return MMoE([_mlp(d, w, 1) for _ in range(k)], heads, input_dim=d)
    if name == "cgc":
        task_experts = {t: [_mlp(d, w, 1)] for t in outputs}
        return CGC([_mlp(d, w, 1) for _ in range(k)], task_experts, heads, input_dim=d)
    if name == "ple":
        shared = [[_mlp(d, w, 1) for _ in range(k)], [_mlp(w, w, 1) for _ in range(k)]]
        task_experts = {t: [[_mlp(d, w, 1)], [_mlp(w, w, 1)]] for t in outputs}
        return PLE(shared, task_experts, heads, input_dims=[d, w])
    raise ValueError(f"unknown deep method {name!r}; valid names are {list(ARCHITECTURE_NAMES)}")


def architecture_config(name: str, input_dim: int, outputs: dict, width=64, n_experts=3) -> dict:
    """The JSON config :func:`build_module` rebuilds the architecture from."""
    return {
        "architecture": name,
        "input_dim": int(input_dim),
        "width": int(width),
        "n_experts": int(n_experts),
        "outputs": {t: int(n) for t, n in outputs.items()},
        "module_keys": module_keys(list(outputs)),
    }


def config_keys(config: dict) -> dict[str, str]:
    """Target name -> module key of an architecture config (saved, or recomputed if absent)."""
    return dict(config.get("module_keys") or module_keys(list(config["outputs"])))


def balancer_names() -> list[str]:
    """Every loss weighting and gradient aggregator usable by name."""
    from multitask.nn.aggregation import AGGREGATORS
    from multitask.nn.weighting import WEIGHTINGS

    return [n for n in WEIGHTINGS if n != "static"] + list(AGGREGATORS)


def make_balancer(name: str, n_tasks: int):
    """Build ``WEIGHTINGS[name](n_tasks)`` or ``AGGREGATORS[name]()`` (defaults)."""
    from multitask.nn.aggregation import AGGREGATORS
    from multitask.nn.weighting import WEIGHTINGS

    if name == "static":
        raise ValueError(
            "balancer 'static' needs explicit weights, which the command line does not take; "
            f"use 'equal' or one of {balancer_names()}"
        )
    if name in WEIGHTINGS:
        return WEIGHTINGS[name](n_tasks)
    if name in AGGREGATORS:
        return AGGREGATORS[name]()
    raise ValueError(f"unknown balancer {name!r}; valid names are {balancer_names()}")


def check_device(device: str) -> None:
    """Raise if ``device`` is not a torch device name usable here ("auto" always is)."""
    import torch

    if device == "auto":
        return
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(
            f"--device {device!r} is not a device name; use cpu, cuda, cuda:N or auto"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device!r}: CUDA is not available here; use cpu or auto")


class _Rows:
    """Map-style dataset of ``(x, {key: y})`` rows over numpy arrays (``keys``: target -> key)."""

    def __init__(self, X: np.ndarray, Y: dict[str, np.ndarray], keys: dict[str, str]):
        import torch

        self.X = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        self.Y = {keys[t]: torch.from_numpy(y) for t, y in Y.items()}

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], {t: y[i] for t, y in self.Y.items()}


def _plain(metrics) -> dict[str, dict[str, float]]:
    return {t: {k: float(v) for k, v in m.items()} for t, m in metrics.items()}


def _selection(trainer, reason: str | None, names: dict[str, str]) -> dict:
    """Epochs run, the selected (1-based) epoch, the validation metrics of every epoch, and the
    training loss (and loss weights, when the balancer reports them) per task and epoch; tasks
    under their target names (``names``: module key -> target name)."""
    from multitask.bench._deep import per_epoch

    def named(per_task: dict) -> dict:
        return {names[k]: v for k, v in per_task.items()}

    evals = trainer.history_.evaluations
    best = next((r for r in evals if r.step == trainer.best_step_), None)
    return {
        "train_loss": named(per_epoch(trainer.history_, "losses")),
        "loss_weights": named(per_epoch(trainer.history_, "weights")),
        "epochs_run": int(trainer.epoch_),
        "best_epoch": int(trainer.epoch_) if best is None else best.epoch + 1,
        "validated": bool(evals),
        "note": reason or "",
        "val_metrics": {} if best is None else named(_plain(best.metrics)),
        "val_history": [named(_plain(r.metrics)) for r in evals],
    }


def _validation_problem(val, targets) -> str | None:
    """Why the validation rows cannot choose an epoch (then the last one is kept), or None."""
    from multitask.tabular._targets import IGNORE_INDEX

    if val is None:
        return "no validation rows (--val-size 0)"
    X_val, Y_val = val
    if len(X_val) < MIN_VAL_ROWS:
        return f"{len(X_val)} validation rows, fewer than {MIN_VAL_ROWS}"
    for t in targets:
        y = np.asarray(Y_val[t.name])
        labelled = y[y != IGNORE_INDEX] if t.kind == "multiclass" else y[~np.isnan(y)]
        if labelled.size == 0:
            return f"target {t.name!r} has no label in the validation rows"
        if t.kind == "binary" and np.unique(labelled).size < 2:
            return f"target {t.name!r} has a single class in the validation rows"
    return None


class DeepTabularModel(TabularModel):
    """A multi-target table model of the deep half (see the module docstring).

    ``config`` holds ``architecture`` (see :func:`architecture_config`),
    ``balancer`` and the training options.
    """

    half = "deep"

    def __init__(self, features, targets, method, config, module=None):
        super().__init__(features, targets, method, config)
        self.module = module if module is not None else build_module(config["architecture"])

    @property
    def module_keys(self) -> dict[str, str]:
        """Target name -> the key of its outputs, heads and Task inside the module."""
        return config_keys(self.config["architecture"])

    def train(self, X: np.ndarray, Y: dict[str, np.ndarray], val=None) -> DeepTabularModel:
        """Train the module on encoded features ``X`` (n, d) and targets ``Y``.

        Missing labels (NaN, ``IGNORE_INDEX``) are masked per task by
        :class:`multitask.nn.Task`, so partially labelled rows still train.

        Parameters
        ----------
        X : ndarray of shape (n_train, n_features)
        Y : dict of str -> ndarray of shape (n_train,)
        val : tuple (X_val, Y_val), optional
            Validation rows (encoded like ``X``, ``Y``). When usable (at least
            ``MIN_VAL_ROWS`` rows, a label of every target, both classes of every
            binary target), the model is evaluated after every epoch, training
            stops after ``config["patience"]`` epochs without improvement (None:
            never), and the weights of the best epoch are restored. The score is
            ``delta_m`` of the validation metrics (MSE of the standardised
            target, AUC or accuracy: :func:`multitask.bench._deep.selection_metrics`)
            against the first epoch's (:class:`multitask.training.ModelSelector`).
            Otherwise every epoch runs and the last is kept. The outcome (and why
            no validation was used) is recorded in ``config["selection"]``.
        """
        import torch
        from torch.utils.data import DataLoader

        from multitask.bench._deep import selection_metrics
        from multitask.nn import Task
        from multitask.tabular._targets import IGNORE_INDEX
        from multitask.training import Trainer

        cfg, keys = self.config, self.module_keys
        tasks = [
            Task(keys[t.name], t.kind, ignore_index=IGNORE_INDEX, metrics=selection_metrics(t.kind))
            for t in self.targets
        ]
        balancer = make_balancer(cfg["balancer"], len(tasks))
        torch.manual_seed(int(cfg["seed"]))
        loader = DataLoader(_Rows(X, Y, keys), batch_size=int(cfg["batch_size"]), shuffle=True)
        val_loader = None
        reason = _validation_problem(val, self.targets)
        if reason is None:
            val_loader = DataLoader(_Rows(*val, keys), batch_size=_PREDICT_BATCH, shuffle=False)
        patience = cfg.get("patience")
        trainer = Trainer(
            self.module,
            tasks,
            balancer,
            lr=float(cfg["lr"]),
            max_epochs=int(cfg["epochs"]),
            seed=int(cfg["seed"]),
            progress=bool(cfg.get("progress", False)),
            device=cfg.get("device", "cpu"),
            precision=cfg.get("precision", "32"),
            scheduler=cfg.get("schedule"),  # (absent from models saved before it existed)
            warmup_steps=int(cfg.get("warmup_steps", 0)),
            clip_grad_norm=cfg.get("clip_grad_norm"),
            # early stopping reads validation data: none without it (the reason is recorded)
            early_stopping=None if patience is None or val_loader is None else int(patience),
        )
        trainer.fit(loader, val_loader)
        self.config["selection"] = _selection(trainer, reason, {k: t for t, k in keys.items()})
        self.module.to("cpu").eval()  # prediction and the saved weights are on the CPU
        return self

    def _scores(self, frame) -> dict[str, np.ndarray]:
        import torch

        X = torch.from_numpy(np.ascontiguousarray(self.features.transform(frame), np.float32))
        self.module.eval()
        keys = self.module_keys
        parts: dict[str, list] = {t: [] for t in self.target_names}
        with torch.no_grad():
            for start in range(0, len(X), _PREDICT_BATCH):
                out = self.module(X[start : start + _PREDICT_BATCH])
                for t in parts:
                    parts[t].append(out[keys[t]].double().numpy())
        return {
            t: np.concatenate(p) if p else np.zeros((0, enc.n_outputs))
            for (t, p), enc in zip(parts.items(), self.targets, strict=True)
        }

    def save(self, folder: str | os.PathLike) -> None:
        """Write ``model.json`` and ``model.pt`` (the ``state_dict``) to ``folder``."""
        import torch

        folder = Path(folder)
        tmp = folder / f".{MODEL_PT}.tmp"
        torch.save(self.module.state_dict(), tmp)
        os.replace(tmp, folder / MODEL_PT)
        write_json(self._header(), folder / MODEL_JSON)

    @classmethod
    def load(cls, folder: Path, features, targets, data: dict) -> DeepTabularModel:
        """Rebuild the module from the JSON config and load its weights safely."""
        import torch

        path = folder / MODEL_PT
        if not path.is_file():
            raise ValueError(f"{folder} holds no {MODEL_PT}; fit the model again")
        model = cls(features, targets, data["method"], data["config"])
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a truncated file, or one that is not weights only
            raise ValueError(f"{path} could not be read safely ({exc}); fit again") from None
        model.module.load_state_dict(state)
        model.module.eval()
        return model
