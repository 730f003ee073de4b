"""`studio train`: train, resume or fine-tune a model, with progress on stderr."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from studio.cli.arguments import DEVICE_CHOICES, BoundedInt, trainable_family_choices
from studio.cli.context import Context, Interrupted
from studio.cli.distributed import add_arguments as add_distributed_arguments
from studio.cli.distributed import launch_workers, launches, quiet_follower, quiet_native_logs, topology_options
from studio.cli.history import add_training_arguments as add_history_arguments
from studio.cli.milestones import add_training_arguments as add_milestone_arguments
from studio.cli.printing import TrainingPrinter, say
from studio.cli.runs import add_train_arguments as add_run_arguments
from studio.cli.runs import start_detached, supervised_training
from studio.engine.jobs import run_job
from studio.engine.launch import is_main_process
from studio.errors import StudioError
from studio.limits import CHECKPOINT_EVERY, DIAGNOSTICS_EVERY, SCORE_SAMPLES, SEED, STEPS, THREADS


def cmd_train(ctx: Context) -> dict[str, Any]:
    """studio train --family F --dataset D --name M [--steps N | --minutes M] ..."""
    if launches(ctx.args):
        quiet_native_logs()
    # Imported here: the trainer brings torch, which no other command's start-up should pay for.
    from studio.engine.checkpoints import read_config
    from studio.engine.families.registry import parse_overrides
    from studio.engine.library import model_exists, model_folder
    from studio.engine.training import train
    from studio.engine.training_options import TrainOptions

    args = ctx.args
    family_name = args.family
    if args.resume and family_name is None and model_exists(ctx.store, args.name):
        family_name = str(read_config(model_folder(ctx.store, args.name))["family"])
    if args.init_from and family_name is None and model_exists(ctx.store, args.init_from):
        family_name = str(read_config(model_folder(ctx.store, args.init_from))["family"])  # fine-tuning keeps it
    settings = parse_overrides(family_name, args.set) if family_name else {}
    if args.set and not family_name:
        raise StudioError("--set needs --family (or --resume or --init-from of an existing model)")
    options = TrainOptions(
        args.name,
        family=args.family,
        dataset=args.dataset,
        steps=args.steps,
        minutes=args.minutes,
        seed=args.seed,
        init_from=args.init_from,
        resume=args.resume,
        settings=settings,
        device=args.device,
        checkpoint_every=args.checkpoint_every,
        milestone_every=args.milestone_every,
        keep_milestones=args.keep_milestones,
        preview_every=args.diagnostics_every,
        preview_count=0,
        threads=args.threads,
        tensorboard=args.tensorboard,
        **topology_options(args),
    )
    if launches(args):
        return launch_workers(ctx, options, _batch_size(ctx, family_name, settings))
    quiet_follower(ctx)  # a worker of rank > 0 prints nothing
    if args.detach:  # a supervised run in the background (see `studio runs`); --run-dir is how it is started
        return start_detached(ctx, options)
    job = supervised_training(ctx, options, train)
    printer = TrainingPrinter(sys.stderr, quiet=args.quiet)
    try:
        result = run_job(job, printer)
    except KeyboardInterrupt:
        raise Interrupted(
            f"training of '{args.name}' stopped; the checkpoint is saved: continue with "
            f"`studio train --name {args.name} --resume --steps N`"
        ) from None
    finally:
        printer.close()
    if not is_main_process():
        return {}  # rank 0 reports the run
    if not args.json:
        losses = ", ".join(f"{k} {v:.4g}" for k, v in result.final_losses.items())
        say(
            f"{result.status}: '{result.model}' ({result.family}) at step {result.steps} on {result.device} "
            f"in {result.seconds:.1f}s; {losses}"
        )
        for warning in result.warnings:
            say(f"  warning: {warning}")
    payload = result.as_dict()
    if not args.no_score and result.steps > result.start_step:
        payload["score"] = _score(ctx, result.model)
    return payload


def _batch_size(ctx: Context, family: str | None, settings: dict[str, Any]) -> int | None:
    """The global batch a run will use (given, the model's own, or the family's default), checked before
    any worker starts; None when it cannot be known here (a worker then refuses in one line)."""
    from studio.engine.checkpoints import read_config
    from studio.engine.families.registry import family_class
    from studio.engine.library import model_exists, model_folder

    if "batch_size" in settings:
        return int(settings["batch_size"])
    source = ctx.args.name if ctx.args.resume else ctx.args.init_from
    if source and model_exists(ctx.store, source):
        stored = read_config(model_folder(ctx.store, source)).get("hyperparameters", {})
        if "batch_size" in stored:
            return int(stored["batch_size"])
    if family is None:
        return None
    return int(family_class(family).resolve({})["batch_size"])


def _score(ctx: Context, model: str) -> dict[str, Any] | None:
    """The quality score of what was just trained, when its dataset has an encoder."""
    from studio.engine.embedding.scoring import can_score, describe, score_model, score_summary

    if not can_score(ctx.store, model):
        return None
    record = ctx.run(score_model(ctx.store, model, ctx.args.score_samples, device=ctx.args.device))
    if not ctx.args.json:
        say(f"  score: {describe(record)}")
    return score_summary(record)


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `train` to the top-level subparsers."""
    trainer = commands.add_parser("train", parents=[common], help="train, resume or fine-tune a model")
    trainer.add_argument("--name", required=True, help="the model's name")
    trainer.add_argument("--family", choices=trainable_family_choices(), help="generator family")
    trainer.add_argument("--dataset", help="dataset to train on")
    trainer.add_argument("--steps", type=BoundedInt(STEPS), help=f"stop at this total step count, {STEPS.describe()}")
    trainer.add_argument("--minutes", type=float, help="stop after this much training time")
    trainer.add_argument(
        "--seed",
        type=BoundedInt(SEED),
        default=0,
        help=f"random seed, {SEED.describe()} (default 0; the range SQLite, numpy and torch all take)",
    )
    trainer.add_argument("--init-from", metavar="MODEL", help="fine-tune: start from this model's weights")
    trainer.add_argument("--resume", action="store_true", help="continue the model from its last checkpoint")
    trainer.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a hyperparameter (see `studio families`); repeatable",
    )
    trainer.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    trainer.add_argument(
        "--checkpoint-every",
        type=BoundedInt(CHECKPOINT_EVERY),
        default=500,
        metavar="N",
        help=f"steps between checkpoints, {CHECKPOINT_EVERY.describe()} (default 500)",
    )
    trainer.add_argument(
        "--diagnostics-every",
        type=BoundedInt(DIAGNOSTICS_EVERY),
        default=250,
        metavar="N",
        help=f"steps between diagnostics such as the GAN diversity check, {DIAGNOSTICS_EVERY.describe()} (0: off)",
    )
    add_milestone_arguments(trainer)
    add_distributed_arguments(trainer)
    trainer.add_argument(
        "--threads",
        type=BoundedInt(THREADS),
        default=None,
        help=f"CPU threads for torch, {THREADS.describe()} (default: all)",
    )
    add_history_arguments(trainer)
    add_run_arguments(trainer)
    trainer.add_argument(
        "--no-score",
        action="store_true",
        help="skip the quality score after training (done when the dataset has an encoder)",
    )
    trainer.add_argument(
        "--score-samples",
        type=BoundedInt(SCORE_SAMPLES),
        default=256,
        metavar="N",
        help=f"images the score samples, {SCORE_SAMPLES.describe()} (default 256)",
    )
    trainer.set_defaults(handler=cmd_train)
