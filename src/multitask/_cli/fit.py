"""Commands ``fit`` and ``predict``: train a multi-task model on a user's table.

Heavy imports (pandas, scikit-learn, torch) happen inside the command
functions, so ``multitask --help`` stays fast and torch-free. The work itself
is in :mod:`multitask.tabular`; this module only parses and dispatches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from multitask._cli._common import check_out, console, fail

#: what a command reports as ``error:`` (exit 2); OSError: an output it cannot write
_ERRORS = (ValueError, FloatingPointError, OSError)


def _parse_kinds(kinds: list[str] | None) -> dict[str, str]:
    out = {}
    for item in kinds or []:
        name, sep, kind = item.rpartition("=")
        if not sep or not name:
            fail(f"--kind {item!r}: write COLUMN=KIND, e.g. --kind income=binary")
        out[name] = kind
    return out


def fit(
    data: Annotated[Path, typer.Argument(help="The table: a CSV or Parquet file.")],
    target: Annotated[
        list[str] | None,
        typer.Option("--target", "-t", help="Target column (repeatable: one per task)."),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(
            help="Deep architecture (hard_sharing, mmoe, cgc, ple) for a wide table, or "
            "linear method (group_lasso, trace_norm, mean_regularized, independent, ...) "
            "with --task-col. Default: hard_sharing, or group_lasso with --task-col."
        ),
    ] = None,
    out: Annotated[
        Path,
        typer.Option(help="Output folder: model.json (+ model.pt), metrics.json, report.html."),
    ] = Path("multitask-model"),
    task_col: Annotated[
        str | None, typer.Option(help="Task column of a long table (linear methods).")
    ] = None,
    balancer: Annotated[
        str, typer.Option(help="Loss weighting or gradient aggregator (deep methods).")
    ] = "equal",
    kind: Annotated[
        list[str] | None,
        typer.Option(help="COLUMN=regression|binary|multiclass: override the inferred kind."),
    ] = None,
    ignore: Annotated[
        list[str] | None, typer.Option(help="Column that is not a feature (repeatable).")
    ] = None,
    test_size: Annotated[float, typer.Option(help="Held-out fraction of the rows.")] = 0.2,
    val_size: Annotated[
        float,
        typer.Option(
            help="Deep: fraction of the training rows used to pick the epoch (0: keep the last)."
        ),
    ] = 0.2,
    patience: Annotated[
        int | None,
        typer.Option(help="Deep: stop after N epochs without a better validation score."),
    ] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the split and of training.")] = 0,
    epochs: Annotated[int, typer.Option(help="Training epochs (deep).")] = 10,
    batch_size: Annotated[int, typer.Option(help="Batch size (deep).")] = 128,
    width: Annotated[int, typer.Option(help="Hidden units per layer / expert (deep).")] = 64,
    lr: Annotated[float, typer.Option(help="Adam learning rate (deep).")] = 1e-3,
    device: Annotated[
        str, typer.Option(help="Training device (deep): cpu, cuda, auto; predicts on CPU.")
    ] = "cpu",
    precision: Annotated[
        str, typer.Option(help="Training precision (deep): 32 or bf16-mixed (autocast).")
    ] = "32",
    schedule: Annotated[
        str | None,
        typer.Option(help="Learning-rate schedule (deep): constant, linear or cosine decay."),
    ] = None,
    warmup_steps: Annotated[
        int, typer.Option(help="Linear learning-rate warmup over N optimizer steps (deep).")
    ] = 0,
    clip_grad_norm: Annotated[
        float | None, typer.Option(help="Clip the gradients' joint L2 norm to this (deep).")
    ] = None,
    alpha: Annotated[
        float | None, typer.Option(help="Regularisation strength (linear; default: estimator's).")
    ] = None,
    beta: Annotated[
        float | None, typer.Option(help="Second strength of two-penalty linear methods.")
    ] = None,
) -> None:
    """Fit a multi-task model on DATA and write it, its held-out metrics and a report to OUT.

    A wide table (one row per sample, one --target per task) trains a deep
    model; a long table (--task-col, one --target) trains a linear one.
    Preprocessing is learnt on the training split only and saved with the
    model. See docs/cli.md.
    """
    from multitask.tabular import FitOptions, fit_table, read_table

    options = FitOptions(
        targets=tuple(target or ()),
        method=method or ("group_lasso" if task_col else "hard_sharing"),
        task_col=task_col,
        balancer=balancer,
        kinds=_parse_kinds(kind),
        test_size=test_size,
        val_size=val_size,
        patience=patience,
        seed=seed,
        epochs=epochs,
        batch_size=batch_size,
        width=width,
        lr=lr,
        device=device,
        precision=precision,
        schedule=schedule,
        warmup_steps=warmup_steps,
        clip_grad_norm=clip_grad_norm,
        progress=True,
        alpha=alpha,
        beta=beta,
        ignore=tuple(ignore or ()),
    )
    try:
        check_out(out, folder=True, staged=True)  # before the training, not after it
        frame = read_table(data)
        result = fit_table(frame, options, out=out, dataset=data.name.split(".")[0])
    except _ERRORS as exc:
        fail(str(exc))
    except KeyboardInterrupt:  # the trainer stopped at a step boundary (Ctrl-C)
        fail(f"interrupted (Ctrl-C): nothing was written, {out} is as it was", code=130)
    console.print(_metrics_table(result.metrics))
    sel = result.metrics.get("selection")
    if sel:
        chosen = (
            f"epoch {sel['best_epoch']} of {sel['epochs_run']} run, chosen on "
            f"{result.metrics['n_val']} validation rows"
            if sel["validated"]
            else f"last epoch ({sel['epochs_run']}); no epoch selection: {sel['note']}"
        )
        console.print(f"model:   {chosen}")
    console.print(f"model:   {out}\nreport:  {out / 'report.html'}")


def _metrics_table(metrics: dict, max_rows: int = 20):
    from rich.table import Table

    names: list[str] = []
    for per_task in [metrics["overall"], *metrics["tasks"].values()]:
        names += [m for m in per_task if m not in names]
    table = Table(title=f"held-out metrics ({metrics['n_test']} rows)")
    table.add_column("task")
    for name in names:
        table.add_column(name, justify="right")
    tasks = list(metrics["tasks"].items())
    for task, per_task in tasks[:max_rows]:
        table.add_row(task, *(f"{per_task.get(m, float('nan')):.4g}" for m in names))
    if len(tasks) > max_rows:
        table.add_row(f"... {len(tasks) - max_rows} more (metrics.json)", *("" for _ in names))
    if len(tasks) > 1:
        table.add_row("mean over tasks", *(f"{metrics['overall'][m]:.4g}" for m in names))
    if "pooled" in metrics:
        pooled = metrics["pooled"]
        table.add_row("all rows pooled", *(f"{pooled.get(m, float('nan')):.4g}" for m in names))
    return table


def predict(
    model_dir: Annotated[Path, typer.Argument(help="A folder written by `multitask fit`.")],
    data: Annotated[Path, typer.Argument(help="Rows to predict: a CSV or Parquet file.")],
    out: Annotated[
        Path, typer.Option(help="Predictions file; .parquet/.pq writes Parquet, else CSV.")
    ] = Path("predictions.csv"),
) -> None:
    """Predict every target of MODEL_DIR's model for the rows of DATA, in their order.

    Writes one column per target (values, or class labels in the original
    label space) and, for classification, one probability column per class.
    """
    from multitask.tabular import load_model, read_table, write_table
    from multitask.tabular._io import check_compression

    try:
        check_out(out, folder=False)
        check_compression(out)  # a .zst --out without zstandard: now, not after predicting
        model = load_model(model_dir)
        # categorical features (and text task ids) as text, as at fit: "1" must not be 1.0
        frame = read_table(data, text_columns=model.text_columns())
        predictions = model.predict(frame)
        write_table(predictions, out)
    except _ERRORS as exc:
        fail(str(exc))
    console.print(f"{len(predictions)} rows -> {out}")


def register(app: typer.Typer) -> None:
    """Add ``fit`` and ``predict`` to ``app``."""
    app.command("fit")(fit)
    app.command("predict")(predict)
