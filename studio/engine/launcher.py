"""Starting the workers of a distributed run: torchrun's own launcher (torch.distributed.run), in this process.

`studio train --nproc-per-node N` comes here: the elastic agent torchrun uses starts N worker
processes (`python -m studio train ...` with torchrun's RANK/WORLD_SIZE environment), waits for the
machines of the run to meet at the rendezvous, and waits for the workers. A worker that fails ends
the run on every rank (no restarts: a run resumes from its last checkpoint on purpose, not by
surprise); what went wrong comes back as one line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from studio.engine.launch import threads_per_worker
from studio.errors import StudioError


class WorkersFailedError(StudioError):
    """Some workers of the run failed; `reported` when rank 0 (on this machine) printed its own reason."""

    def __init__(self, message: str, reported: bool) -> None:
        super().__init__(message)
        self.reported = reported


RENDEZVOUS_TIMEOUT = 300.0  # seconds the machines of a run wait for each other before giving up
MONITOR_INTERVAL = 0.5  # seconds between the agent's looks at its workers


@dataclass(frozen=True)
class Topology:
    """Where a run's workers are: processes per machine, machines, this machine's rank, the rendezvous."""

    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str | None = None
    rdzv_timeout: float = RENDEZVOUS_TIMEOUT

    def check(self) -> None:
        """Refuse a layout torchrun could not start, in one line."""
        if self.nproc_per_node < 1 or self.nnodes < 1:
            raise StudioError("--nproc-per-node and --nnodes must be at least 1")
        if not 0 <= self.node_rank < self.nnodes:
            raise StudioError(
                f"--node-rank {self.node_rank} is not a machine of --nnodes {self.nnodes} (0 to {self.nnodes - 1})"
            )
        if self.nnodes > 1 and not self.rdzv_endpoint:
            raise StudioError(
                "a run on several machines needs --rdzv-endpoint HOST:PORT (rank 0's machine, a free port)"
            )
        if self.rdzv_endpoint is not None:
            host, _, port = self.rdzv_endpoint.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise StudioError(f"invalid --rdzv-endpoint '{self.rdzv_endpoint}': give HOST:PORT (e.g. node0:29500)")
        if not 0 < self.rdzv_timeout <= 86_400:
            raise StudioError(f"invalid --rdzv-timeout {self.rdzv_timeout}: give 1 to 86400 seconds")


def launch(topology: Topology, worker_command: Sequence[str], logs: Path, threads: int | None = None) -> None:
    """Run `python <worker_command>` as this machine's workers of the run and wait for them all.

    `logs` is a folder in the data home for the agent's per-worker files (removed after a clean run).
    Raises StudioError with one line when a worker fails, dies or the rendezvous times out.
    """
    topology.check()
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    single_machine = topology.nnodes == 1
    configs: dict[str, object] = {"timeout": int(max(1, topology.rdzv_timeout)), "join_timeout": topology.rdzv_timeout}
    if not single_machine:
        configs["rank"] = topology.node_rank  # static rendezvous: machine R's workers take ranks R*N .. R*N+N-1
    config = LaunchConfig(
        min_nodes=topology.nnodes,
        max_nodes=topology.nnodes,
        nproc_per_node=topology.nproc_per_node,
        # One machine: torchrun --standalone's rendezvous (a free port on this machine); several: the
        # static one at the endpoint, where node 0 listens.
        run_id=uuid.uuid4().hex if single_machine else "studio",
        rdzv_endpoint="localhost:0" if single_machine else str(topology.rdzv_endpoint),
        rdzv_backend="c10d" if single_machine else "static",
        rdzv_configs=configs,
        max_restarts=0,
        monitor_interval=MONITOR_INTERVAL,
        start_method="spawn",
        logs_specs=DefaultLogsSpecs(log_dir=str(logs)),
    )
    environment = {"OMP_NUM_THREADS": str(threads or threads_per_worker(topology.nproc_per_node))}
    with _quiet_agent(), _environment(environment), _removed_after(logs):
        try:
            elastic_launch(config, sys.executable)(*worker_command)
        except ChildFailedError as failure:
            rank0 = failure.failures.get(0)
            reported = rank0 is not None and rank0.exitcode > 0  # it ended through Studio's error boundary
            raise WorkersFailedError(_describe_failures(failure.failures), reported) from None
        except SignalException as stopped:  # the agent passed it on to the workers, which saved or stopped
            if stopped.sigval == signal.SIGINT:
                raise KeyboardInterrupt from None
            raise StudioError(f"the distributed run was stopped by {stopped.sigval.name}") from None
        except Exception as error:  # noqa: BLE001 - the agent's errors (rendezvous, store) become one line
            raise StudioError(_describe_agent_error(error, topology)) from None


def _describe_failures(failures: Mapping[int, object]) -> str:
    """One line for the workers that failed. Ranks the agent stopped itself (SIGTERM) once another failed are
    consequences, not causes: they are left out when a cause is known."""
    causes = {
        rank: failure for rank, failure in failures.items() if int(getattr(failure, "exitcode", 1)) != -signal.SIGTERM
    }
    parts = []
    died = False
    # Those killed by a signal first: a worker that died is the cause of the others' errors.
    chosen = causes or failures
    for rank, failure in sorted(chosen.items(), key=lambda item: (int(getattr(item[1], "exitcode", 1)) >= 0, item[0])):
        exitcode = int(getattr(failure, "exitcode", 1))
        pid = getattr(failure, "pid", "?")
        if exitcode < 0:
            died = True
            try:
                name = signal.Signals(-exitcode).name
            except ValueError:
                name = f"signal {-exitcode}"
            parts.append(f"rank {rank} (pid {pid}) was killed by {name}")
        else:
            parts.append(f"rank {rank} (pid {pid}) exited with code {exitcode}")
    what = "; ".join(parts[:3]) + (f"; and {len(parts) - 3} more" if len(parts) > 3 else "")
    if died:
        return f"the distributed run stopped: {what}; its last checkpoint is kept: resume it with --resume"
    return f"the distributed run failed: {what} (each worker's reason is printed above)"


def _describe_agent_error(error: Exception, topology: Topology) -> str:
    """The launcher's own failure in one line (most often: the other machines never came)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    lowered = f"{type(error).__name__} {text}".lower()
    if "timeout" in lowered or "timed out" in lowered:
        return (
            f"the rendezvous at {topology.rdzv_endpoint or 'this machine'} did not complete within "
            f"{topology.rdzv_timeout:g} s ({topology.nnodes} machines expected): start `studio train` with the same "
            "--nnodes and --rdzv-endpoint on every machine"
        )
    return f"the distributed run could not start: {text}"


@contextlib.contextmanager
def _removed_after(folder: Path) -> Iterator[None]:
    """The agent's per-worker files are for its own use while the run lasts: gone afterwards, whatever happened."""
    try:
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _quiet_agent() -> Iterator[None]:
    """The agent logs each worker's failure with a traceback; Studio reports it in one line instead."""
    logger = logging.getLogger("torch.distributed")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Variables the workers inherit (those the user set win)."""
    added = {key: value for key, value in values.items() if key not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)
