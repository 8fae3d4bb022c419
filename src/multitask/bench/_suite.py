"""Benchmark suites: a grid of (dataset, method, seed), read from TOML or YAML.

A suite file (``.toml``; ``.yaml`` / ``.yml`` hold the same keys) looks like::

    name = "quick"
    description = "..."
    seeds = [0, 1, 2]
    datasets = ["exam", "hsb82", "multi_digits"]
    methods = ["independent", "group_lasso", "hard_sharing", ...]

    [[published]]             # a number read in a paper, for the same protocol
    dataset = "school"
    method = "mean_regularized"
    metric = "explained_variance"
    value = 0.3437
    std = 0.003
    citation = "Author, venue year, table number"
    protocol = "75/25 per school, 10 random splits"

Methods are paired with the datasets of their half (linear methods with
long-format tabular datasets, deep methods with multi-output datasets); the
single-task baseline of each half always runs alongside.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

__all__ = [
    "SUITE_RECORD",
    "Published",
    "Suite",
    "list_suites",
    "load_suite",
    "read_suite_record",
    "write_suite_record",
]

#: the suite a results folder was made by, written next to ``results.jsonl``
SUITE_RECORD = "suite.json"

_SUITE_KEYS = {"name", "description", "seeds", "datasets", "methods", "published", "options"}
_PUBLISHED_KEYS = {"dataset", "method", "metric", "value", "std", "citation", "protocol"}


@dataclass(frozen=True)
class Published:
    """A number from the literature for a (dataset, method, metric)."""

    dataset: str
    method: str
    metric: str
    value: float
    citation: str
    std: float | None = None
    protocol: str = ""


@dataclass(frozen=True)
class Suite:
    """A benchmark grid.

    Parameters
    ----------
    name : str
    datasets : tuple of str
        Benchmark dataset names (see :data:`multitask.bench.PROBLEMS`).
    methods : tuple of str
        Method names (see :data:`multitask.bench.METHODS`).
    seeds : tuple of int
    published : tuple of Published
        Literature numbers shown beside ours in the report.
    options : dict
        Per-suite knobs passed to the problems (e.g. ``max_epochs``).
    """

    name: str
    datasets: tuple[str, ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    description: str = ""
    published: tuple[Published, ...] = ()
    options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.datasets:
            raise ValueError(f"suite {self.name!r} names no dataset")
        if not self.methods:
            raise ValueError(f"suite {self.name!r} names no method")
        if not self.seeds:
            raise ValueError(f"suite {self.name!r} has no seed")


def _check_keys(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; valid keys are {sorted(allowed)}")


def _names(doc: dict, key: str, where: str) -> tuple[str, ...]:
    """``doc[key]`` as a tuple of names; a bare string is refused, not split into letters."""
    value = doc[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        example = ["exam"] if key == "datasets" else ["pooled", "pcgrad"]
        raise ValueError(f"{where}: {key} must be a list of names such as {example}, got {value!r}")
    return tuple(value)


def _seeds(value, where: str) -> tuple[int, ...]:
    """A list of non-negative integers; ``3`` or ``[1.5]`` is refused, not read as seeds."""
    ok = isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    )
    if not ok:
        raise ValueError(
            f"{where}: seeds must be a list of non-negative integers such as [0, 1, 2], "
            f"got {value!r}"
        )
    return tuple(value)


def _published(rows, where: str) -> tuple[Published, ...]:
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ValueError(
            f"{where}: published must be a list of tables ([[published]] entries) with keys "
            f"{sorted(_PUBLISHED_KEYS)}, got {rows!r}"
        )
    out = []
    for i, row in enumerate(rows):
        entry = f"{where}, published entry {i}"
        _check_keys(row, _PUBLISHED_KEYS, entry)
        missing = {"dataset", "method", "metric", "value", "citation"} - set(row)
        if missing:
            raise ValueError(f"{entry}: missing {sorted(missing)}")
        for key, value in row.items():
            number = key in ("value", "std")
            if number and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise ValueError(f"{entry}: {key} must be a number, got {value!r}")
            if not number and not isinstance(value, str):
                raise ValueError(f"{entry}: {key} must be a string, got {value!r}")
        out.append(Published(**row))
    return tuple(out)


def _parse(doc: dict, source: str) -> Suite:
    where = f"suite file {source}"
    _check_keys(doc, _SUITE_KEYS, where)
    for key in ("name", "datasets", "methods"):
        if key not in doc:
            raise ValueError(f"{where}: missing required key {key!r}")
    options = doc.get("options", {})
    if not isinstance(options, dict):
        raise ValueError(
            f"{where}: options must be a table of knobs such as {{max_epochs = 2}}, got {options!r}"
        )
    return Suite(
        name=str(doc["name"]),
        description=str(doc.get("description", "")),
        datasets=_names(doc, "datasets", where),
        methods=_names(doc, "methods", where),
        seeds=_seeds(doc.get("seeds", [0]), where),
        published=_published(doc.get("published", []), where),
        options=dict(options),
    )


def list_suites() -> list[str]:
    """Names of the suites shipped with the package."""
    folder = resources.files("multitask.bench") / "suites"
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


_YAML = (".yaml", ".yml")


def _read_doc(text: str, source: str, yaml_file: bool) -> dict:
    """The mapping in a TOML or YAML suite file."""
    if yaml_file:
        import yaml

        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"suite file {source} is not valid YAML: {exc}") from None
        if not isinstance(doc, dict):
            raise ValueError(f"suite file {source} must hold a mapping of keys (name, ...)")
        return doc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"suite file {source} is not valid TOML: {exc}") from None


def load_suite(name_or_path: str | Path) -> Suite:
    """Load a shipped suite by name, or a suite file (TOML or YAML) by path.

    Raises
    ------
    ValueError
        For an unknown suite name (the valid names are listed), an unknown key
        in the file, or a malformed file.
    """
    path = Path(name_or_path)
    shipped = str(name_or_path) in list_suites()
    # a shipped name wins over a folder of the same name in the working directory
    if path.suffix in (".toml", *_YAML) or path.is_file() or (path.exists() and not shipped):
        if not path.is_file():
            what = "is a folder, not a file" if path.is_dir() else "does not exist"
            raise ValueError(f"suite file {path} {what}")
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"suite file {path} is not UTF-8 text") from None
    else:
        if not shipped:
            raise ValueError(f"unknown suite {str(name_or_path)!r}; valid suites: {list_suites()}")
        res = resources.files("multitask.bench") / "suites" / f"{name_or_path}.toml"
        source = f"{name_or_path}.toml"
        text = res.read_text(encoding="utf-8")
    return _parse(_read_doc(text, source, path.suffix in _YAML), source)


def write_suite_record(suite: Suite, out_dir: str | Path) -> Path:
    """Write ``suite`` (published numbers included) as ``suite.json`` in ``out_dir``.

    ``multitask report RESULTS.jsonl`` reads it back, so a report made later
    still shows the suite's published numbers beside ours.
    """
    from multitask.bench._results import atomic_write_text

    path = Path(out_dir) / SUITE_RECORD
    atomic_write_text(path, json.dumps(asdict(suite), indent=1, sort_keys=True))
    return path


def read_suite_record(out_dir: str | Path) -> Suite | None:
    """The suite recorded in ``out_dir`` by :func:`write_suite_record`, or None."""
    path = Path(out_dir) / SUITE_RECORD
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        doc["published"] = tuple(Published(**row) for row in doc.get("published", []))
        for key in ("datasets", "methods", "seeds"):
            doc[key] = tuple(doc[key])
        return Suite(**doc)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path} is not a suite record ({exc}); run the suite again") from None
