"""The benchmark runner: ``run(suite) -> list[RunResult]``.

Each (dataset, method, seed) is one run, identified by the hash of its
configuration. A finished run is cached as ``runs/<hash>.json`` under the
output folder (written atomically), so an interrupted suite resumes where it
stopped and a finished one is not recomputed. The rows of every run are
gathered into ``results.jsonl``.

A run whose method raises an ``Exception`` does not stop the suite: it is
recorded in ``failures.jsonl`` (dataset, method, seed, config_hash, error),
is not cached (the next run of the suite tries it again), and the report
lists it. ``KeyboardInterrupt`` and other ``BaseException`` s still stop the
suite at once.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multitask._atomic import file_in_the_way
from multitask.bench._results import RunResult, atomic_write_text, write_results
from multitask.bench._suite import Suite, write_suite_record

__all__ = ["FAILURES", "RunOutput", "RunSpec", "expand", "read_failures", "run"]

#: file of the failed runs of a suite, next to ``results.jsonl``
FAILURES = "failures.jsonl"

#: Bump when a change makes old cached runs incomparable.
#: 2: linear per-task MSE in the target's units; deep epochs chosen on MSE / AUC / accuracy
#: 3: deep models built after seeding; binary F1 of the label 1 (0, not 1, with no positive)
CACHE_VERSION = 3


@dataclass(frozen=True)
class RunSpec:
    """One cell of the grid."""

    dataset: str
    method: str
    seed: int
    options: dict = field(default_factory=dict)

    @property
    def config_hash(self) -> str:
        blob = json.dumps(
            {
                "dataset": self.dataset,
                "method": self.method,
                "seed": self.seed,
                "options": self.options,
                "version": CACHE_VERSION,
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class RunOutput:
    """What a method returns for one run.

    ``values`` maps (task, metric, split) to a number; ``artifacts`` holds
    JSON-able extras for the report (training curves, loss weights, gradient
    cosines, regularisation paths, task covariances).
    """

    values: dict[tuple[str, str, str], float]
    artifacts: dict[str, Any] = field(default_factory=dict)


def expand(suite: Suite, methods: Sequence[str] | None = None, seeds: Sequence[int] | None = None):
    """The runs of a suite: every dataset with every method of its half, plus the baseline.

    Returns
    -------
    list of RunSpec
    """
    from multitask.bench._registry import METHODS, PROBLEMS, baseline_for, check_names

    chosen = tuple(methods) if methods else suite.methods
    check_names(suite.datasets, chosen)
    specs = []
    for dataset in suite.datasets:
        half = PROBLEMS[dataset].half
        names = [m for m in chosen if METHODS[m].half == half]
        base = baseline_for(half)
        if base not in names:
            names.insert(0, base)
        for seed in seeds if seeds is not None else suite.seeds:
            specs.extend(RunSpec(dataset, m, int(seed), dict(suite.options)) for m in names)
    return specs


def _execute(spec: RunSpec) -> dict:
    from multitask.bench._registry import METHODS, PROBLEMS

    start = time.perf_counter()
    problem = PROBLEMS[spec.dataset].load(spec.seed, spec.options)
    output = METHODS[spec.method].run(problem, spec.seed, spec.options)
    seconds = time.perf_counter() - start
    rows = [
        RunResult(
            dataset=spec.dataset,
            method=spec.method,
            seed=spec.seed,
            task=str(task),
            metric=metric,
            value=float(value),
            split=split,
            config_hash=spec.config_hash,
            seconds=seconds,
        ).to_dict()
        for (task, metric, split), value in output.values.items()
    ]
    return {"spec": spec.__dict__, "rows": rows, "artifacts": output.artifacts}


def _cached(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None  # a torn file cannot exist (atomic writes); treat as missing


def _run_one(spec: RunSpec, runs_dir: Path) -> dict:
    path = runs_dir / f"{spec.config_hash}.json"
    record = _cached(path)
    if record is None:
        try:
            record = _execute(spec)
        except Exception as exc:  # one failed run must not lose the others
            error = f"{type(exc).__name__}: {exc}"
            return {"spec": spec.__dict__, "rows": [], "artifacts": {}, "error": error}
        atomic_write_text(path, json.dumps(record))
        record["fresh"] = True
    return record


def _write_failures(specs: Sequence[RunSpec], records: dict[str, dict], out: Path) -> None:
    """``failures.jsonl`` with one line per failed run (removed when none failed)."""
    lines = [
        json.dumps(
            {
                "dataset": s.dataset,
                "method": s.method,
                "seed": s.seed,
                "config_hash": s.config_hash,
                "error": records[s.config_hash]["error"],
            },
            sort_keys=True,
        )
        + "\n"
        for s in specs
        if "error" in records[s.config_hash]
    ]
    if lines:
        atomic_write_text(out / FAILURES, "".join(lines))
    else:
        (out / FAILURES).unlink(missing_ok=True)


def read_failures(out_dir: str | Path) -> list[dict]:
    """The failed runs recorded by the last :func:`run` into ``out_dir`` (none: ``[]``)."""
    path = Path(out_dir) / FAILURES
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def run(
    suite: Suite,
    out_dir: str | Path,
    *,
    methods: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    n_jobs: int = 1,
    on_progress: Callable[[int, int, RunSpec], None] | None = None,
) -> list[RunResult]:
    """Run every cell of ``suite`` not already cached under ``out_dir``.

    Parameters
    ----------
    suite : Suite
    out_dir : path
        Output folder: ``runs/<hash>.json`` per run and ``results.jsonl``;
        created if missing.
    methods, seeds : optional overrides of the suite's methods and seeds.
    n_jobs : int
        Runs in parallel (joblib processes).
    on_progress : callable (done, total, spec), optional
        Called after each finished run (cached ones included).

    Returns
    -------
    list of RunResult
        Every row of every run, in grid order. Failed runs give no row; they
        are listed in ``out_dir/failures.jsonl`` (see :func:`read_failures`).

    Raises
    ------
    ValueError
        For an unknown dataset or method, or an ``out_dir`` that cannot be a
        folder (it, or a parent, is a file), before any run.
    """
    from joblib import Parallel, delayed

    specs = expand(suite, methods, seeds)
    out = Path(out_dir)
    runs_dir = out / "runs"
    _make_folder(runs_dir)
    records: dict[str, dict] = {}
    total = len(specs)
    if n_jobs == 1:
        for spec in specs:
            records[spec.config_hash] = _run_one(spec, runs_dir)
            if on_progress:
                on_progress(len(records), total, spec)
    else:
        jobs = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
        for spec, record in jobs(delayed(_pair)(spec, runs_dir) for spec in specs):
            records[spec.config_hash] = record
            if on_progress:
                on_progress(len(records), total, spec)
    rows = [RunResult(**row) for spec in specs for row in records[spec.config_hash]["rows"]]
    write_results(rows, out / "results.jsonl")
    _write_failures(specs, records, out)
    write_suite_record(suite, out)
    return rows


def _make_folder(path: Path) -> None:
    """``mkdir -p path``; a ValueError that says why when it cannot be (a file in the way)."""
    blocked = path if path.exists() and not path.is_dir() else file_in_the_way(path)
    if blocked is not None:
        raise ValueError(
            f"output folder {path.parent}: {blocked} is a file, not a folder; "
            "choose another output folder"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create the output folder {path.parent}: {exc}") from None


def _pair(spec: RunSpec, runs_dir: Path) -> tuple[RunSpec, dict]:
    return spec, _run_one(spec, runs_dir)


def load_artifacts(
    out_dir: str | Path, config_hashes: Collection[str] | None = None
) -> dict[tuple[str, str, int], dict]:
    """Artifacts of the cached runs under ``out_dir``, keyed by (dataset, method, seed).

    Parameters
    ----------
    out_dir : path
        A folder written by :func:`run` (``runs/<config_hash>.json``).
    config_hashes : collection of str, optional
        Only the runs with these configuration hashes, e.g. those of the rows of
        ``results.jsonl``: the cache also keeps the runs of earlier invocations
        (other methods, options or seeds), which are not in the results.
        Default: every cached run.
    """
    out = {}
    for path in sorted((Path(out_dir) / "runs").glob("*.json")):
        if config_hashes is not None and path.stem not in config_hashes:
            continue
        record = _cached(path)
        if record is not None:
            s = record["spec"]
            out[(s["dataset"], s["method"], s["seed"])] = record.get("artifacts", {})
    return out
