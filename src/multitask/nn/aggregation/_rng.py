"""A seeded torch generator kept as aggregator state (checkpointed through ``extra_state``)."""

from __future__ import annotations

import torch


class SeededGenerator:
    """Lazily built ``torch.Generator`` on one device, seeded with ``seed``.

    Seeded aggregators draw from their own generator, never the global RNG, so a run is
    reproducible and a checkpoint can carry the generator state (:meth:`state` /
    :meth:`load_state`). A generator on the CPU draws the same stream as the global RNG after
    ``torch.manual_seed(seed)``.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._generator: torch.Generator | None = None

    def get(self, device: torch.device | str = "cpu") -> torch.Generator:
        """The generator on ``device``, created (and seeded) on first use or on a device change."""
        device = torch.device(device)
        g = self._generator
        if g is None or g.device.type != device.type:
            g = torch.Generator(device=device)
            g.manual_seed(self.seed)
            self._generator = g
        return g

    def reset(self) -> None:
        """Start the stream again from ``seed``."""
        self._generator = None

    def state(self) -> dict:
        g = self._generator
        return {
            "seed": self.seed,
            "device": None if g is None else str(g.device),
            "rng": None if g is None else g.get_state(),
        }

    def load_state(self, state: dict) -> None:
        self.seed = state["seed"]
        self._generator = None
        if state["rng"] is not None:
            self.get(state["device"]).set_state(state["rng"])
