"""`studio train --nproc-per-node N [--nnodes M --node-rank R --rdzv-endpoint HOST:PORT]`: torchrun's options.

The command given these options becomes the launcher: it starts this machine's workers, each running
the same `studio train` command without them (torchrun's environment tells each its rank), and waits.
Rank 0 prints progress and the result; the other ranks print nothing but their own errors.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Sequence
from typing import Any

from studio.cli.arguments import BoundedInt
from studio.cli.context import Context, Interrupted
from studio.cli.printing import set_quiet
from studio.engine.launch import batch_share, worker_place
from studio.engine.training_options import TrainOptions
from studio.errors import StudioError
from studio.limits import IntRange

PROCESSES = IntRange(1, 1024, "processes per machine")
MACHINES = IntRange(1, 1024, "machines")
NODE_RANK = IntRange(0, 1023, "machine rank")
# The launcher's own options: taken out of the workers' command line.
_LAUNCHER_OPTIONS = ("--nproc-per-node", "--nnodes", "--node-rank", "--rdzv-endpoint", "--rdzv-timeout")


def add_arguments(trainer: argparse.ArgumentParser) -> None:
    """torchrun's options on `studio train` (its own names)."""
    from studio.engine.launcher import RENDEZVOUS_TIMEOUT

    group = trainer.add_argument_group("several processes or machines (torchrun)")
    group.add_argument(
        "--nproc-per-node",
        type=BoundedInt(PROCESSES),
        default=1,
        metavar="N",
        help=f"training processes on this machine, {PROCESSES.describe()}: one per GPU, or several on a CPU "
        "(default 1: this process)",
    )
    group.add_argument(
        "--nnodes",
        type=BoundedInt(MACHINES),
        default=1,
        metavar="M",
        help=f"machines, {MACHINES.describe()} (default 1)",
    )
    group.add_argument(
        "--node-rank",
        type=BoundedInt(NODE_RANK),
        default=0,
        metavar="R",
        help=f"this machine's rank, {NODE_RANK.describe()}, below M",
    )
    group.add_argument(
        "--rdzv-endpoint", metavar="HOST:PORT", help="where the machines meet: machine 0's address and a free port"
    )
    group.add_argument(
        "--rdzv-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"how long machines wait for each other (default {RENDEZVOUS_TIMEOUT:g})",
    )


def launches(args: argparse.Namespace) -> bool:
    """Whether this command starts workers (several processes asked, and this is not one of them)."""
    from studio.engine.launch import is_torchrun_worker

    return args.nproc_per_node * args.nnodes > 1 and not is_torchrun_worker() and not getattr(args, "detach", False)


def quiet_native_logs() -> None:
    """Keep torch's C++ log lines (a rendezvous's connection retries) off the launcher's terminal: Studio
    reports what failed in one line. Set before torch loads; the workers' own logs are left alone."""
    import os

    previous = os.environ.get("TORCH_CPP_LOG_LEVEL")
    os.environ["TORCH_CPP_LOG_LEVEL"] = "FATAL"
    try:
        import torch  # noqa: F401 - reads the level as it loads
    finally:
        if previous is None:
            os.environ.pop("TORCH_CPP_LOG_LEVEL", None)
        else:
            os.environ["TORCH_CPP_LOG_LEVEL"] = previous


def topology_options(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainOptions fields the command line gave."""
    return {
        "nproc_per_node": args.nproc_per_node,
        "nnodes": args.nnodes,
        "node_rank": args.node_rank,
        "rdzv_endpoint": args.rdzv_endpoint,
        "rdzv_timeout": args.rdzv_timeout,
    }


def quiet_follower(ctx: Context) -> None:
    """A worker of rank > 0 prints nothing (rank 0 reports for the run) and keeps away from a run folder."""
    place = worker_place()
    if place.main:
        return
    set_quiet(True)
    ctx.args.quiet, ctx.args.json, ctx.args.no_score = True, False, True
    if hasattr(ctx.args, "run_dir"):
        ctx.args.run_dir = None


def launch_workers(ctx: Context, options: TrainOptions, batch_size: int | None) -> dict[str, Any]:
    """Start this machine's workers for `options` (with the command's own arguments) and wait for them."""
    from studio.engine.launcher import RENDEZVOUS_TIMEOUT, Topology, WorkersFailedError, launch

    args = ctx.args
    timeout = options.rdzv_timeout if options.rdzv_timeout is not None else RENDEZVOUS_TIMEOUT
    topology = Topology(options.nproc_per_node, options.nnodes, options.node_rank, options.rdzv_endpoint, timeout)
    topology.check()
    world = options.nproc_per_node * options.nnodes
    if batch_size is not None:
        batch_share(batch_size, world)  # refused here, before any worker starts
    argv: Sequence[str] = getattr(args, "argv", None) or []
    if not argv:
        raise StudioError("the distributed launcher needs the command line it was given")
    # Per launch and machine: several machines may share this data home.
    logs = ctx.home.staging / f"torchrun-{options.node_rank}-{uuid.uuid4().hex[:12]}"
    try:
        launch(topology, ["-m", "studio", *worker_arguments(argv)], logs, options.threads)
    except WorkersFailedError as failure:
        if failure.reported:
            args.json = False  # rank 0 printed the run's one JSON object (its error); this line goes to stderr
        raise
    except KeyboardInterrupt:
        raise Interrupted(
            f"training of '{options.name}' stopped; the last checkpoint is kept: continue with "
            f"`studio train --name {options.name} --resume --steps N`"
        ) from None
    args.json = False  # rank 0 printed the run's result (JSON or not) already
    return {"model": options.name, "processes": world, "nodes": options.nnodes}


def worker_arguments(argv: Sequence[str]) -> list[str]:
    """The command line without the launcher's own options (`--opt value` and `--opt=value` forms)."""
    kept: list[str] = []
    skip = False
    for argument in argv:
        if skip:
            skip = False
            continue
        name = argument.split("=", 1)[0]
        if name in _LAUNCHER_OPTIONS:
            skip = "=" not in argument
            continue
        kept.append(argument)
    return kept
