"""Per-draw cost of the task samplers, against the draw they define.

:class:`~multitask.training.ProportionalSampler` and
:class:`~multitask.training.TemperatureSampler` draw step ``s`` as
``numpy.random.default_rng([seed, s]).choice(n_tasks, p=p)``; ours forms the same normalised
CDF and searches one uniform of that generator (the same draw, without ``choice``'s checks of
``p``). Both, and the round-robin and periodic samplers for scale, are timed in one run,
interleaved (a new order every round), as the median over rounds of the mean time of a draw;
the ratio is ours / the reference's, paired within each round.

    python benchmarks/sampler_speed.py --tasks 3 --rounds 30
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import numpy as np

from multitask.training import (
    PeriodicSampler,
    ProportionalSampler,
    RoundRobinSampler,
    TemperatureSampler,
)


def reference_draw(sampler, step: int) -> tuple[str, ...]:
    """The defining draw: ``Generator.choice`` with the sampler's probabilities."""
    rng = np.random.default_rng([sampler.seed, step])
    return (sampler.tasks[int(rng.choice(len(sampler.tasks), p=sampler.probabilities))],)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--draws", type=int, default=2000, help="draws per method per round")
    args = parser.parse_args()
    sizes = {f"t{i}": 100 * (i + 1) for i in range(args.tasks)}
    proportional = ProportionalSampler(sizes, seed=0)
    temperature = TemperatureSampler(sizes, temperature=5.0, seed=0)
    methods = {
        "proportional": lambda s: proportional.draw(s),
        "ref:proportional": lambda s: reference_draw(proportional, s),
        "temperature": lambda s: temperature.draw(s),
        "ref:temperature": lambda s: reference_draw(temperature, s),
        "round_robin": RoundRobinSampler(list(sizes)).draw,
        "periodic": PeriodicSampler({t: i + 1 for i, t in enumerate(sizes)}).draw,
    }
    for step in range(500):  # the same draws (the test suite checks 3000 steps)
        assert methods["proportional"](step) == methods["ref:proportional"](step)
        assert methods["temperature"](step) == methods["ref:temperature"](step)
    times: dict[str, list[float]] = {name: [] for name in methods}
    order = list(methods)
    for r in range(args.rounds):
        random.Random(r).shuffle(order)
        for name in order:
            draw = methods[name]
            start = time.perf_counter()
            for step in range(args.draws):
                draw(step)
            times[name].append((time.perf_counter() - start) / args.draws)
    print(f"{'sampler':<20}{'us/draw':>10}{'ours/ref':>10}")
    for name in ("proportional", "temperature", "round_robin", "periodic"):
        line = f"{name:<20}{1e6 * statistics.median(times[name]):>10.1f}"
        if f"ref:{name}" in times:
            pairs = zip(times[name], times[f"ref:{name}"], strict=True)
            line += f"{statistics.median(a / b for a, b in pairs):>10.2f}"
            ref = 1e6 * statistics.median(times[f"ref:{name}"])
            line += f"   (reference {ref:.1f} us)"
        print(line)


if __name__ == "__main__":
    main()
