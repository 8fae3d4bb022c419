"""Benchmark harness: suites, the runner, and the HTML report.

``run(suite, out_dir)`` runs a grid of (dataset, method, seed), single-task
baselines alongside, caching each run by its configuration hash;
``write_report(results.jsonl, report.html)`` turns the rows into a report.
"""

from multitask.bench._registry import METHODS, PROBLEMS
from multitask.bench._results import RunResult, delta_m_by_method, read_results, write_results
from multitask.bench._runner import RunSpec, expand, read_failures, run
from multitask.bench._suite import Published, Suite, list_suites, load_suite
from multitask.bench.report import render_report, write_report

__all__ = [
    "METHODS",
    "PROBLEMS",
    "Published",
    "RunResult",
    "RunSpec",
    "Suite",
    "delta_m_by_method",
    "expand",
    "list_suites",
    "load_suite",
    "read_failures",
    "read_results",
    "render_report",
    "run",
    "write_report",
    "write_results",
]
