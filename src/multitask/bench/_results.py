"""Result rows of the benchmark runner, their files, and their summaries.

One row per (dataset, method, seed, task, metric, split). Plots and tables
are made from rows, never mid-run (STYLE.md rule 13).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from multitask._atomic import atomic_path

__all__ = [
    "RunResult",
    "atomic_write_text",
    "delta_m_by_method",
    "read_results",
    "write_results",
]


@dataclass(frozen=True)
class RunResult:
    """One measured number.

    ``split`` is "test" for reported numbers and "val" for the numbers the
    hyper-parameters were chosen on. ``seconds`` is the wall time of the
    whole run (fit and selection) the row comes from.
    """

    dataset: str
    method: str
    seed: int
    task: str
    metric: str
    value: float
    split: str
    config_hash: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_results(rows: Iterable[RunResult], path: Path) -> None:
    """Write rows as JSON lines, atomically."""
    text = "".join(json.dumps(r.to_dict(), sort_keys=True) + "\n" for r in rows)
    atomic_write_text(Path(path), text)


def read_results(path: str | Path) -> list[RunResult]:
    """Read rows written by :func:`write_results`.

    Raises
    ------
    ValueError
        If a line is not a valid result row (the line number is given).
    """
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(RunResult(**json.loads(line)))
            except (json.JSONDecodeError, TypeError) as exc:
                raise ValueError(f"{path}:{lineno} is not a result row: {exc}") from None
    return rows


def delta_m_by_method(
    rows: Sequence[RunResult], baselines: dict[str, str], split: str = "test"
) -> dict[tuple[str, str], dict[int, float]]:
    """``delta_m`` of every method against its half's single-task baseline.

    Parameters
    ----------
    rows : sequence of RunResult
    baselines : dict dataset -> baseline method name
    split : str

    Returns
    -------
    dict (dataset, method) -> {seed: delta_m}
        Seeds where the baseline has no result are left out. A (task, metric)
        on which the baseline scores exactly 0 (an F1 with no positive
        predicted) has no relative change: that term is left out of the mean,
        with one warning naming every such term; a seed with no term left is
        left out.
    """
    import warnings

    from multitask.metrics import HIGHER_IS_BETTER, delta_m

    table: dict[tuple[str, str, int], dict[tuple[str, str], float]] = {}
    for r in rows:
        if r.split == split and r.task != "_all":  # overall rows summarise, not add, tasks
            table.setdefault((r.dataset, r.method, r.seed), {})[(r.task, r.metric)] = r.value
    out: dict[tuple[str, str], dict[int, float]] = {}
    zero_base: set[tuple[str, int, str, str]] = set()
    for (dataset, method, seed), values in sorted(table.items()):
        base = table.get((dataset, baselines.get(dataset, ""), seed))
        if base is None or set(base) != set(values):
            continue
        known = {k: v for k, v in values.items() if k[1] in HIGHER_IS_BETTER}
        zero_base.update((dataset, seed, *k) for k in known if base[k] == 0)
        known = {k: v for k, v in known.items() if base[k] != 0}
        if not known:
            continue
        stl = {k: base[k] for k in known}
        out.setdefault((dataset, method), {})[seed] = delta_m(known, stl)
    if zero_base:
        terms = ", ".join(f"{d} seed {s} task {t!r} {m}" for d, s, t, m in sorted(zero_base))
        warnings.warn(
            f"the single-task baseline scores 0 on: {terms}; a relative change from 0 is "
            "undefined, so these terms are left out of delta_m",
            stacklevel=2,
        )
    return out
