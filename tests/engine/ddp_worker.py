"""A worker of the distributed-training tests: trains (or resumes) the models a JSON list names, under torchrun.

Run by `studio.engine.launcher.launch` as `python -m tests.engine.ddp_worker SPEC DIGESTS`; each rank opens
the test's data home ($STUDIO_HOME) and runs the engine's own trainer, which joins the process group. After
each run, every rank writes a digest of its copy of the networks to DIGESTS/NAME.RANK, so the test can check
that the ranks ended with the same weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from studio.engine.families.base import GeneratorFamily
from studio.engine.jobs import run_job
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.home import DataHome
from studio.store.database import open_store

trained: list[GeneratorFamily] = []
_distribute = GeneratorFamily.distribute


def _remember(self: GeneratorFamily, *args: Any) -> None:
    trained.append(self)
    _distribute(self, *args)


def digest(family: GeneratorFamily) -> str:
    """A hash of every network's parameters (the EMA copies' too), and of the VQ codebook's state.

    Other buffers (batch-norm running statistics, spectral-norm vectors) are each rank's own between
    steps, as DistributedDataParallel leaves them; rank 0's are the ones saved and broadcast.
    """
    hasher = hashlib.sha256()
    for name, network in sorted(family.networks().items()):
        weights = dict(network.named_parameters())
        weights.update({key: value for key, value in network.named_buffers() if "codebook" in key})
        for key, value in sorted(weights.items()):
            hasher.update(f"{name}.{key}".encode())
            hasher.update(value.detach().cpu().contiguous().numpy().tobytes())
    return hasher.hexdigest()


def main(spec: str, digests: str) -> None:
    """Train each job of `spec` (a JSON list of TrainOptions fields) in turn."""
    GeneratorFamily.distribute = _remember  # type: ignore[method-assign]
    store = open_store(DataHome.resolve().ensure(), maintenance=os.environ["RANK"] == "0")
    try:
        for fields in json.loads(spec):
            run_job(train(store, TrainOptions(**fields)))
            Path(digests, f"{fields['name']}.{os.environ['RANK']}").write_text(digest(trained[-1]))
    finally:
        store.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
