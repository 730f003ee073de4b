"""`studio models milestones` and `studio models promote`: a model's milestone checkpoints, and choosing one."""

from __future__ import annotations

import argparse
from typing import Any

from studio.cli.arguments import BoundedInt, item_id
from studio.cli.context import Context
from studio.cli.printing import print_table, say
from studio.limits import STEPS


def cmd_models_milestones(ctx: Context) -> dict[str, Any]:
    """studio models milestones MODEL"""
    # Imported here: the command tree builds without SQLAlchemy (start-up stays fast).
    from studio.engine.datasets.decode import human_bytes
    from studio.store.milestones import MilestoneRepository

    records = MilestoneRepository(ctx.store).list(ctx.args.name)
    if not ctx.args.json:
        if not records:
            say(
                f"'{ctx.args.name}' has no milestones: training makes one every 1,000 steps "
                "(`studio train ... --milestone-every N`)"
            )
        else:
            print_table(
                [
                    [
                        f"{r.step}{' *' if r.current else ''}",
                        r.weights_hash[:12],
                        r.created_at.isoformat(sep=" ", timespec="seconds"),
                        f"{r.mean_rating:.2f} ({r.rated})" if r.mean_rating is not None else "-",
                        f"{r.frechet:.4g}" if r.frechet is not None else "-",
                        human_bytes(r.size_bytes),
                        ",".join(str(i) for i in r.items[:2]) + ("..." if len(r.items) > 2 else ""),
                    ]
                    for r in records
                ],
                ["STEP", "WEIGHTS", "CREATED", "RATING", "FRECHET", "SIZE", "ITEMS"],
            )
            say("* the model's current weights; rate the grids with `studio gallery list --operation checkpoint`")
    return {"model": ctx.args.name, "milestones": [r.as_dict() for r in records]}


def cmd_models_promote(ctx: Context) -> dict[str, Any]:
    """studio models promote MODEL (--step N | --item ID) [--prune]"""
    from studio.engine.milestones import promote  # torch: loaded only for this command

    args = ctx.args
    result = ctx.run(promote(ctx.store, args.name, args.step, args.item, args.prune))
    if not args.json:
        say(f"'{result.model}' now has the weights of step {result.step} (hash {result.weights_hash[:12]})")
        if result.kept_previous is not None:
            say(
                f"  the replaced weights (step {result.previous_step}) are the milestone of step {result.kept_previous}"
            )
        if result.pruned:
            say(f"  removed the milestones of steps {', '.join(str(step) for step in result.pruned)}")
        if result.export_stale:
            say(f"  the ONNX export is out of date: run `studio export {result.model}` again")
    return dict(result.as_dict())


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add `models milestones` and `models promote` to the `models` subparsers."""
    listing = sub.add_parser("milestones", parents=[common], help="a model's milestone checkpoints")
    listing.add_argument("name")
    listing.set_defaults(handler=cmd_models_milestones)
    promote = sub.add_parser("promote", parents=[common], help="make a milestone's weights the model's weights")
    promote.add_argument("name")
    which = promote.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--step", type=BoundedInt(STEPS), help=f"the milestone's step, {STEPS.describe()} (see `models milestones`)"
    )
    which.add_argument("--item", type=item_id, metavar="ID", help="a gallery item of the milestone's sample grid")
    promote.add_argument("--prune", action="store_true", help="remove every other milestone of the model")
    promote.set_defaults(handler=cmd_models_promote)


def add_training_arguments(trainer: argparse.ArgumentParser) -> None:
    """Add `train --milestone-every N --keep-milestones N`."""
    from studio.engine.training_options import (
        DEFAULT_KEEP_MILESTONES,
        DEFAULT_MILESTONE_EVERY,
        KEEP_MILESTONES,
        MILESTONE_EVERY,
    )

    trainer.add_argument(
        "--milestone-every",
        type=BoundedInt(MILESTONE_EVERY),
        default=DEFAULT_MILESTONE_EVERY,
        metavar="N",
        help=f"steps between milestones (weights and an 8-image grid in the gallery to choose from later), "
        f"{MILESTONE_EVERY.describe()} (default {DEFAULT_MILESTONE_EVERY}; 0: none)",
    )
    trainer.add_argument(
        "--keep-milestones",
        type=BoundedInt(KEEP_MILESTONES),
        default=DEFAULT_KEEP_MILESTONES,
        metavar="N",
        help=f"milestones kept, {KEEP_MILESTONES.describe()}: the newest N, plus the best rated and the best scored "
        f"(default {DEFAULT_KEEP_MILESTONES})",
    )
