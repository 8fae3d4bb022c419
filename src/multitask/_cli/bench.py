"""Commands ``bench``, ``report`` and ``methods``.

Heavy imports (pandas, scikit-learn, torch) happen inside the command
functions, so ``multitask --help`` stays fast and torch-free.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from multitask._cli._common import check_out, console, fail


def bench(
    suite: Annotated[
        str, typer.Argument(help="Suite name (see --list) or a suite file (TOML or YAML).")
    ] = "quick",
    methods: Annotated[
        list[str] | None,
        typer.Option("--methods", "-m", help="Only these methods (repeatable)."),
    ] = None,
    seeds: Annotated[
        int | None, typer.Option(help="Run seeds 0..N-1 instead of the suite's.")
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Output folder: results.jsonl, report.html, runs/.")
    ] = Path("multitask-bench"),
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Runs in parallel.")] = 1,
    list_: Annotated[
        bool, typer.Option("--list", help="List the shipped suites and exit.")
    ] = False,
) -> None:
    """Run a benchmark suite, then write results.jsonl and report.html to OUT.

    Finished runs are cached under OUT/runs: a suite that was interrupted
    resumes where it stopped. A run that fails is listed (failures.jsonl, the
    report) and the command exits with status 1 after writing everything else.
    """
    from rich.table import Table

    from multitask.bench import list_suites, load_suite, write_report

    if list_:
        for name in list_suites():
            s = load_suite(name)
            console.print(f"[bold]{name}[/]: {s.description}")
        return
    try:
        spec = load_suite(suite)
        if jobs < 1:
            raise ValueError(f"--jobs must be >= 1, got {jobs}")
        if seeds is not None and seeds < 1:
            raise ValueError(f"--seeds must be >= 1, got {seeds}")
        check_out(out, folder=True)
        chosen_seeds = list(range(seeds)) if seeds is not None else None
        rows = _run_with_progress(spec, out, methods, chosen_seeds, jobs)
        report = write_report(
            out / "results.jsonl",
            out / "report.html",
            published=spec.published,
            title=f"multitask benchmark: suite {spec.name}",
        )
    except ValueError as exc:
        fail(str(exc))
    console.print(_summary_table(rows, Table))
    console.print(f"results: {out / 'results.jsonl'}\nreport:  {report}")
    _exit_on_failures(out)


def _run_with_progress(spec, out: Path, methods, seeds, jobs: int):
    """``multitask.bench.run`` under a rich progress bar (current dataset / method / seed)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from multitask.bench import run

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(f"suite {spec.name}", total=None)

        def tick(done: int, total: int, run_spec) -> None:
            label = f"{run_spec.dataset} / {run_spec.method} / seed {run_spec.seed}"
            bar.update(task, completed=done, total=total, description=label)

        return run(spec, out, methods=methods, seeds=seeds, n_jobs=jobs, on_progress=tick)


def _exit_on_failures(out: Path) -> None:
    """List the failed runs of the last suite in ``out`` and exit with status 1, if any."""
    from multitask.bench import read_failures

    failures = read_failures(out)
    if not failures:
        return
    for f in failures:
        console.print(
            f"[red]failed:[/] {f['dataset']} / {f['method']} / seed {f['seed']}: {f['error']}",
            highlight=False,
            soft_wrap=True,
        )
    fail(
        f"{len(failures)} run(s) failed (listed above and in {out / 'failures.jsonl'}); "
        "the others are in the report. Run the command again to retry them",
        code=1,
    )


def _summary_table(rows, Table):
    """Overall test metrics, mean over seeds, one line per (dataset, method)."""
    import numpy as np

    cells: dict[tuple[str, str], dict[str, list[float]]] = {}
    metrics: list[str] = []
    for r in rows:
        if r.split == "test" and r.task == "_all":
            cells.setdefault((r.dataset, r.method), {}).setdefault(r.metric, []).append(r.value)
            if r.metric not in metrics:
                metrics.append(r.metric)
    table = Table(title="test metrics (mean over seeds)")
    table.add_column("dataset")
    table.add_column("method")
    for m in metrics:
        table.add_column(m, justify="right")
    for (dataset, method), vals in cells.items():
        table.add_row(
            dataset, method, *(f"{np.mean(vals[m]):.4g}" if m in vals else "-" for m in metrics)
        )
    return table


def report(
    results: Annotated[Path, typer.Argument(help="A results.jsonl written by `multitask bench`.")],
    out: Annotated[Path, typer.Option(help="HTML file to write.")] = Path("report.html"),
) -> None:
    """Write the HTML report of a results.jsonl file."""
    from multitask.bench import write_report

    if results.is_dir():
        fail(f"{results} is a folder; give the results.jsonl file that `multitask bench` wrote")
    if not results.is_file():
        fail(f"{results} does not exist")
    try:
        check_out(out, folder=False)
        path = write_report(results, out)
    except (ValueError, OSError) as exc:
        fail(str(exc))
    console.print(f"report: {path}")


def methods() -> None:
    """List every method: its name, paper and year, the commands that take it, its class."""
    from rich.table import Table

    from multitask._cli._catalogue import catalogue

    table = Table(
        title="methods",
        caption="python: the class or function, in multitask.linear, multitask.nn.weighting, "
        "multitask.nn.aggregation, multitask.nn.architectures, multitask.nn.auxiliary, "
        "multitask.training.samplers or multitask.relatedness (by family)",
    )
    for col in ("name", "family", "paper", "year", "command line", "python"):
        table.add_column(col, overflow="fold")
    for name, family, paper, year, python, commands in catalogue():
        short = ", ".join(path.rsplit(".", 1)[-1] for path in python.split(", ") if path)
        table.add_row(name, family, paper, str(year) if year else "", commands, short)
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the harness commands to ``app``."""
    app.command("bench")(bench)
    app.command("report")(report)
    app.command("methods")(methods)
