"""`studio models history` (a model's training runs and their per-step metrics, as a table, JSON or CSV)
and `studio train --tensorboard DIR`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from studio.cli.arguments import BoundedInt
from studio.cli.context import Context
from studio.cli.printing import print_table, say
from studio.limits import IntRange

if TYPE_CHECKING:
    from studio.store.history import RunSummary

RUN_ID = IntRange(1, 2**63 - 1, "run id")


def _losses(run: RunSummary) -> str:
    return ", ".join(f"{key} {value:.4g}" for key, value in run.final_losses.items()) or "-"


def cmd_models_history(ctx: Context) -> dict[str, Any]:
    """studio models history MODEL [--run ID] [--csv FILE]"""
    # Imported here: the store's modules bring SQLAlchemy, which building the command tree must not load.
    from studio.engine.training_history import curves_payload, export_csv, model_runs, run_curves

    args = ctx.args
    runs = model_runs(ctx.store, args.name)
    payload: dict[str, Any] = {"model": args.name, "runs": [run.as_dict() for run in runs]}
    chosen = [args.run] if args.run is not None else None
    if chosen is not None:
        payload["run"] = curves_payload(run_curves(ctx.store, args.name, chosen))[0]
    if args.csv is not None:
        payload["csv"] = export_csv(ctx.store, args.name, args.csv, chosen)
    if args.json:
        return payload
    if not runs:
        say(f"'{args.name}' has no training runs recorded (an imported model, or trained before history was kept)")
    elif chosen is None:
        print_table(
            [
                [
                    str(run.id),
                    run.status,
                    f"{run.start_step}-{run.end_step}",
                    str(run.points),
                    run.device,
                    run.started_at.isoformat(sep=" ", timespec="seconds"),
                    _losses(run),
                    f"{run.score['frechet']:.4g}" if run.score else "-",
                ]
                for run in runs
            ],
            ["RUN", "STATUS", "STEPS", "VALUES", "DEVICE", "STARTED", "FINAL LOSSES", "FRECHET"],
        )
    else:
        _print_run(payload["run"])
    if args.csv is not None:
        written = payload["csv"]
        say(f"wrote {written['rows']} rows ({len(written['columns']) - 2} metrics) to {written['file']}")
    return payload


def _print_run(run: dict[str, Any]) -> None:
    """One run's summary and, per metric, its first and last step, last value and range."""
    say(
        f"run {run['id']} of '{run['model']}': {run['status']}, steps {run['start_step']}-{run['end_step']} "
        f"on {run['device']}, started {run['started_at']}"
    )
    if run["error"]:
        say(f"  error: {run['error']}")
    rows = []
    for tag, series in run["metrics"].items():
        steps, values = series["steps"], series["values"]
        rows.append(
            [
                tag,
                str(len(steps)),
                f"{steps[0]}-{steps[-1]}",
                f"{values[-1]:.4g}",
                f"{min(values):.4g}",
                f"{max(values):.4g}",
            ]
        )
    if rows:
        print_table(rows, ["METRIC", "VALUES", "STEPS", "LAST", "MIN", "MAX"])
    else:
        say("  no values recorded")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add `models history`."""
    history = sub.add_parser(
        "history", parents=[common], help="a model's training runs; per-step losses, diagnostics and speed"
    )
    history.add_argument("name")
    history.add_argument(
        "--run",
        type=BoundedInt(RUN_ID),
        metavar="ID",
        help=f"one run (its id from the list, {RUN_ID.describe()}): its metrics in detail",
    )
    history.add_argument(
        "--csv", metavar="FILE", help="write the per-step metrics (all runs, or --run's) to a CSV file"
    )
    history.set_defaults(handler=cmd_models_history)


def add_training_arguments(trainer: argparse.ArgumentParser) -> None:
    """Add `train --tensorboard DIR`."""
    trainer.add_argument(
        "--tensorboard",
        metavar="DIR",
        help="also write TensorBoard event files to DIR/MODEL as training goes (needs the tensorboard package)",
    )
