"""Where this process stands in a distributed run: torch-free, read from torchrun's environment.

`torchrun` (torch.distributed.run) starts one worker per process and tells each its place through
environment variables (RANK, WORLD_SIZE, LOCAL_RANK, TORCHELASTIC_RUN_ID). A process started any
other way is the only rank of a run of one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from studio.errors import StudioError


@dataclass(frozen=True)
class WorkerPlace:
    """This process's rank among `world_size` workers (and on its own machine)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    torchrun: bool = False  # started by torchrun: it trains through the distributed path, even alone

    @property
    def main(self) -> bool:
        """Whether this is rank 0: the one process that writes checkpoints, rows, previews and events."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether this worker trains through the distributed path (a process group, DDP), as torchrun's are."""
        return self.torchrun


def worker_place() -> WorkerPlace:
    """This process's place, as torchrun set it (rank 0 of 1 without torchrun)."""
    if not is_torchrun_worker():
        return WorkerPlace()
    return WorkerPlace(
        int(os.environ.get("RANK", "0")),
        int(os.environ.get("WORLD_SIZE", "1")),
        int(os.environ.get("LOCAL_RANK", "0")),
        torchrun=True,
    )


def is_torchrun_worker() -> bool:
    """Whether torchrun started this process (as one of a run's workers)."""
    return "TORCHELASTIC_RUN_ID" in os.environ and "RANK" in os.environ


def is_main_process() -> bool:
    """Rank 0, or a process not under torchrun: the one that writes a run's files and events."""
    return worker_place().main


def threads_per_worker(processes: int) -> int:
    """CPU threads each of `processes` workers on one machine should use, so they do not oversubscribe it."""
    return max(1, (os.cpu_count() or 1) // max(1, processes))


def batch_share(batch_size: int, processes: int) -> int:
    """Each of `processes` workers' share of the global batch; a batch that does not split is refused in one line."""
    if batch_size % processes:
        lower = batch_size - batch_size % processes
        raise StudioError(
            f"batch_size {batch_size} does not split over {processes} processes: choose a multiple of {processes} "
            f"(e.g. --set batch_size={lower or processes})"
        )
    return batch_size // processes
