"""`studio runs list|attach|stop`: training runs the app (or `studio train --detach`) started as processes.

Also the supervision options of `studio train` (`--detach`, `--preview-count` and the hidden `--run-dir`
the supervisor starts it with).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from studio.cli.context import Context, Interrupted
from studio.cli.printing import TrainingPrinter, print_note, print_table, say
from studio.engine.jobs import CancelToken, run_job
from studio.engine.training_options import TrainOptions
from studio.errors import StudioError
from studio.limits import IntRange

PREVIEW_COUNT = IntRange(0, 64, "preview images")


def add_train_arguments(trainer: argparse.ArgumentParser) -> None:
    """Add `train --detach` (and the hidden options a supervised run is started with)."""
    from studio.cli.arguments import BoundedInt

    trainer.add_argument(
        "--detach",
        action="store_true",
        help="start the run as a background process, print its id and return (see `studio runs`)",
    )
    trainer.add_argument("--run-dir", metavar="DIR", help=argparse.SUPPRESS)  # events and control for a supervisor
    trainer.add_argument(
        "--preview-count",
        type=BoundedInt(PREVIEW_COUNT),
        default=0,
        metavar="N",
        help=f"preview images drawn with each diagnostic, {PREVIEW_COUNT.describe()} (default 0; the app asks for 16)",
    )


def supervised_training(ctx: Context, options: TrainOptions, train: Any) -> Any:
    """`studio train`'s job: `train(store, options, token)`, written to the run folder under --run-dir."""
    args = ctx.args
    if args.run_dir is None:
        return train(ctx.store, options)
    from studio.engine.supervision.child import supervised_job

    options = options.with_changes(preview_count=args.preview_count)
    return supervised_job(Path(args.run_dir), lambda token: train(ctx.store, options, token))


def start_detached(ctx: Context, options: TrainOptions) -> dict[str, Any]:
    """`studio train --detach`: start the run as a supervised process and report its id."""
    from studio.engine.supervision import start_run

    if ctx.args.run_dir is not None:
        raise StudioError("--detach starts its own run folder: leave out --run-dir")
    run_id = start_run(ctx.store, options)
    if not ctx.args.json:
        say(f"started run {run_id} training '{options.name}'")
        print_note(f"follow it with `studio runs attach {run_id}`; stop it with `studio runs stop {run_id}`")
    return {"run": run_id, "model": options.name}


def cmd_runs_list(ctx: Context) -> dict[str, Any]:
    """studio runs list: live and recent supervised runs, newest first."""
    from studio.engine.supervision import list_runs

    runs = list_runs(ctx.store)
    if not ctx.args.json:
        if not runs:
            say("no supervised runs (start one with `studio train ... --detach` or from the app's Train page)")
        else:
            rows = [
                [
                    run.id,
                    run.model,
                    run.family or "",
                    run.state,
                    "" if run.step is None else f"{run.step}" + (f"/{run.target_steps}" if run.target_steps else ""),
                    run.started_at.replace("T", " ").split("+")[0],
                    run.message,
                ]
                for run in runs
            ]
            print_table(rows, ["ID", "MODEL", "FAMILY", "STATE", "STEP", "STARTED", "NOTE"])
    return {"runs": [run.as_dict() for run in runs]}


def cmd_runs_attach(ctx: Context) -> dict[str, Any]:
    """studio runs attach ID: follow a run's progress until it ends (Ctrl-C detaches; the run goes on)."""
    from studio.engine.supervision import attach

    printer = TrainingPrinter(sys.stderr, quiet=ctx.args.quiet)
    try:
        result = run_job(attach(ctx.store, ctx.args.id, CancelToken()), printer)
    except KeyboardInterrupt:
        raise Interrupted(
            f"detached from run {ctx.args.id}: it goes on (`studio runs stop {ctx.args.id}` stops it)"
        ) from None
    finally:
        printer.close()
    if not ctx.args.json:
        losses = ", ".join(f"{k} {v:.4g}" for k, v in result.final_losses.items())
        say(f"{result.status}: '{result.model}' ({result.family}) at step {result.steps}; {losses}")
    payload: dict[str, Any] = result.as_dict()
    return payload


def cmd_runs_stop(ctx: Context) -> dict[str, Any]:
    """studio runs stop ID [--force]: cancel a run (it saves a checkpoint), or end its processes."""
    from studio.engine.supervision import stop_run

    if not ctx.args.force:
        print_note("asking the run to stop; it saves a checkpoint first")
    summary = stop_run(ctx.store, ctx.args.id, force=ctx.args.force, timeout=ctx.args.timeout)
    if not ctx.args.json:
        step = f" at step {summary.step}" if summary.step is not None else ""
        say(f"run {summary.id} ('{summary.model}'): {summary.state}{step}")
    return summary.as_dict()


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `runs` and its subcommands to the top-level subparsers."""
    runs = commands.add_parser("runs", parents=[common], help="training runs going on in the background")
    sub = runs.add_subparsers(dest="runs_command", metavar="COMMAND", required=True)
    listing = sub.add_parser("list", parents=[common], help="live and recent runs, newest first")
    listing.set_defaults(handler=cmd_runs_list)
    following = sub.add_parser("attach", parents=[common], help="follow a run's progress (Ctrl-C detaches)")
    following.add_argument("id", help="the run's id (or its unique beginning)")
    following.set_defaults(handler=cmd_runs_attach)
    stopping = sub.add_parser("stop", parents=[common], help="stop a run (it saves a checkpoint first)")
    stopping.add_argument("id", help="the run's id (or its unique beginning)")
    stopping.add_argument("--force", action="store_true", help="end its processes now (the last checkpoint is kept)")
    stopping.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for it to stop before forcing it (default 60)"
    )
    stopping.set_defaults(handler=cmd_runs_stop)
