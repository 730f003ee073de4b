"""Training on several processes under torchrun: the process group, DDP wrapping, and what ranks agree on.

Each worker torchrun starts joins one process group (gloo on the CPU, NCCL on CUDA GPUs). The
family's trained modules are wrapped in DistributedDataParallel, which averages gradients over the
ranks during backward, so every rank applies the same update; each rank trains on its own shard of
the dataset with `batch_size / world_size` images, and the global batch is the one the user asked
for. Once per step the ranks exchange one small tensor (`SharedControl.agree`): the losses (averaged,
so rank 0 reports the global batch's) and rank 0's pause, cancel and out-of-time flags, so that
every rank pauses, stops or saves at the same step.
"""

from __future__ import annotations

import atexit
import math
import signal
import threading
import time
import warnings
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from studio.engine.families.base import Collective
from studio.engine.jobs import CancelToken
from studio.engine.launch import WorkerPlace, batch_share
from studio.errors import CancelledError, StudioError

# How long a rank waits in one exchange before it gives the run up: rank 0 alone draws previews,
# milestone grids and checkpoints while the others wait at their next exchange, so this must cover
# the slowest of those; a rank that died is noticed at once (its connections close), a hung one
# after this long.
COLLECTIVE_TIMEOUT = timedelta(minutes=30)  # PyTorch's own default for gloo
PAUSE_POLL = 0.25  # seconds between the exchanges that keep paused ranks together
# How gloo and NCCL word a collective that failed because a peer went away or stopped answering.
_PEER_FAILURE_SIGNS = ("gloo", "nccl", "connection", "peer", "timed out", "timeout", "socket", "closed")


def _seed_for(seed: int, rank: int, step: int, stream: int) -> int:
    """A seed for stream `stream` of rank `rank` of a run seeded `seed` that starts at `step`."""
    return int(np.random.SeedSequence([seed, rank, step, stream]).generate_state(1, np.uint64)[0] >> 1)


class TorchCollective(Collective):
    """The family's view of the other ranks (see Collective)."""

    def __init__(self, world_size: int) -> None:
        self.world_size = world_size

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Every rank's `tensor` (same shape on each) concatenated in rank order."""
        parts = [torch.empty_like(tensor) for _ in range(self.world_size)]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)

    def broadcast_buffers(self, module: nn.Module) -> None:
        """Rank 0's buffers of `module` on every rank."""
        for buffer in module.buffers():
            dist.broadcast(buffer, 0)


class PeerLostError(StudioError):
    """Another process of the run died or stopped answering: this run is interrupted, its last checkpoint kept."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:200]


class DistributedRun:
    """This worker's membership of a run's process group (rank 0 of world_size writes everything)."""

    def __init__(self, place: WorkerPlace, device: torch.device) -> None:
        self.place = place
        self.device = device

    @property
    def rank(self) -> int:
        """This worker's rank."""
        return self.place.rank

    @property
    def world_size(self) -> int:
        """How many workers train together."""
        return self.place.world_size

    @classmethod
    def join(cls, place: WorkerPlace, device: torch.device) -> DistributedRun:
        """Join the process group torchrun's environment describes (NCCL on CUDA, else gloo)."""
        if device.type == "cuda":
            if torch.cuda.device_count() <= place.local_rank:
                raise StudioError(
                    f"worker {place.local_rank} of this machine has no GPU of its own "
                    f"({torch.cuda.device_count()} here): start at most that many processes per machine"
                )
            device = torch.device("cuda", place.local_rank)
            torch.cuda.set_device(device)
            backend = "nccl"
        elif device.type == "cpu":
            backend = "gloo"
        else:
            raise StudioError(f"training on several processes runs on CUDA GPUs or the CPU, not {device.type}")
        if not dist.is_initialized():
            # Once per process, left at exit: a group destroyed and made again in one process would meet
            # the first one's keys in torchrun's store (a worker that trains several models in turn).
            dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)
            atexit.register(_leave)
        return cls(place, device)

    def local_batch(self, batch_size: int) -> int:
        """Each rank's share of the global batch; the batch must split evenly."""
        return batch_share(batch_size, self.world_size)

    def shard(self, count: int) -> torch.Tensor:
        """This rank's images of a dataset of `count`: every world_size-th, from its rank on."""
        if count < self.world_size:
            raise StudioError(f"the dataset has {count} images: too few for {self.world_size} processes")
        return torch.arange(self.rank, count, self.world_size)

    def seed(self, seed: int, step: int, stream: int) -> int:
        """Rank > 0's seed for one of its random streams (0: its batches, 1: its noise) from `step` on."""
        return _seed_for(seed, self.rank, step, stream)

    def wrap(self, module: nn.Module) -> nn.Module:
        """`module` inside DistributedDataParallel (its weights made rank 0's now)."""
        devices = [self.device.index] if self.device.type == "cuda" else None
        # A one-channel convolution's weight is both contiguous and channels-last; DDP's bucket and the
        # gradient may pick different strides for it, which costs a copy, not correctness: not worth a warning.
        warnings.filterwarnings("ignore", "Grad strides do not match", UserWarning)
        return DistributedDataParallel(module, device_ids=devices)

    def collective(self) -> TorchCollective:
        """The family's gather/broadcast over this group."""
        return TorchCollective(self.world_size)

    def exchange(self, values: list[float]) -> list[float]:
        """The sum over ranks of each value (one all-reduce)."""
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def barrier(self) -> None:
        """Wait until every rank is here (the end of a run: no rank starts the next one early)."""
        dist.barrier()


class LocalControl:
    """How a run of one process pauses, stops and reports: pause blocks, cancel raises, its own clock."""

    def __init__(self, cancel: CancelToken) -> None:
        self.cancel = cancel

    def wait(self) -> float:
        """Before a step: block while paused (returns the seconds paused); raise CancelledError once cancelled."""
        if not self.cancel.paused:
            self.cancel.check()
            return 0.0
        waited = time.monotonic()
        self.cancel.check()
        return time.monotonic() - waited

    def agree(self, losses: dict[str, float], out_of_time: bool) -> tuple[dict[str, float], bool]:
        """After a step: the losses to report and whether the time budget is spent."""
        return losses, out_of_time

    def finish(self) -> None:
        """The run ended as agreed (its last checkpoint written): nothing to wait for alone."""

    def explain(self, error: BaseException, saved_step: int) -> BaseException:
        """The error to report for a run that failed (here, the error itself)."""
        del saved_step
        return error


class SharedControl(LocalControl):
    """The ranks of a distributed run follow rank 0's token and clock, and report the global batch's losses."""

    def __init__(self, cancel: CancelToken, run: DistributedRun) -> None:
        super().__init__(cancel)
        self.run = run
        self.paused = False
        self.cancelled = False
        # Ctrl-C (torchrun's agent passes it on to every worker) and SIGTERM (the agent stopping the run, or
        # `studio runs stop`) stop the run at one agreed step: rank 0 cancels, the others follow it. Raising
        # in each rank instead would leave rank 0 saving while the others have gone.
        if threading.current_thread() is threading.main_thread():
            for stop in (signal.SIGINT, signal.SIGTERM):
                signal.signal(stop, self._stop_asked if run.rank == 0 else signal.SIG_IGN)

    def _stop_asked(self, signum: int, frame: object) -> None:
        del signum, frame
        self.cancel.cancel()

    def _flags(self, out_of_time: bool) -> list[float]:
        if self.run.rank != 0:
            return [0.0, 0.0, 0.0]
        return [float(self.cancel.cancelled), float(self.cancel.paused), float(out_of_time)]

    def _settle(self, flags: list[float]) -> bool:
        self.cancelled, self.paused = flags[0] > 0, flags[1] > 0
        return flags[2] > 0

    def wait(self) -> float:
        """Before a step: every rank waits while rank 0 is paused; every rank stops once rank 0 is cancelled."""
        waited = time.monotonic()
        while self.paused and not self.cancelled:
            if self.run.rank == 0:
                self.cancel.wait_resumed(PAUSE_POLL)  # woken at once by resume or cancel
            else:
                time.sleep(PAUSE_POLL / 5)  # the exchange below is what really waits for rank 0
            self._settle(self.run.exchange(self._flags(False)))
        if self.cancelled:
            raise CancelledError()
        return time.monotonic() - waited

    def agree(self, losses: dict[str, float], out_of_time: bool) -> tuple[dict[str, float], bool]:
        """One exchange: the losses averaged over ranks, and rank 0's pause, cancel and time verdicts."""
        values = self.run.exchange([*losses.values(), *self._flags(out_of_time)])
        count = len(losses)
        averaged = {key: value / self.run.world_size for key, value in zip(losses, values[:count], strict=True)}
        return averaged, self._settle(values[count:])

    def finish(self) -> None:
        """Every rank waits for rank 0's last checkpoint, so none goes on (or reads it) before it exists."""
        self.run.barrier()

    def explain(self, error: BaseException, saved_step: int) -> BaseException:
        """A failed exchange means another rank died or hung: one line saying so, instead of gloo's or NCCL's.

        Other errors (out of memory, a bug) are this rank's own and stay what they are.
        """
        text = str(error).lower()
        if (
            not isinstance(error, RuntimeError)
            or isinstance(error, torch.OutOfMemoryError)
            or not any(sign in text for sign in _PEER_FAILURE_SIGNS)
        ):
            return error
        kept = f"the last checkpoint (step {saved_step}) is kept" if saved_step >= 0 else "nothing was saved yet"
        return PeerLostError(
            f"another process of the run stopped or stopped answering ({_first_line(error)}); {kept}: "
            "resume the model with --resume"
        )


def _leave() -> None:
    """Leave the process group as the process ends."""
    if dist.is_initialized():
        dist.destroy_process_group()


def finite(values: dict[str, float]) -> bool:
    """Whether every value is a finite number."""
    return all(math.isfinite(value) for value in values.values())
