"""Trainer overhead: steps/s of Studio's trainer against a bare PyTorch loop, same model, batch and data.

For each family, on the `digits` sample at 16x16: the bare loop builds the family, puts the dataset in
memory and calls `training_step` on uniformly drawn batches; the Studio run is the whole
`studio train` job (events, pause/cancel checks, NaN checks, diagnostics every 250 steps, a checkpoint
every 500 and at the end). Both are timed from start to finish, in alternating order, best of N.
Usage: python bench/train_speed.py [--steps 300] [--rounds 2] [--families gan,vae,pixelcnn,diffusion]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studio.engine.datasets.samples import add_sample
from studio.engine.families.base import Precision
from studio.engine.families.registry import family_class
from studio.engine.jobs import run_job
from studio.engine.training import dataset_tensor, train
from studio.engine.training_options import TrainOptions
from studio.home import DataHome
from studio.store.database import Store, open_store


def bare_loop(store: Store, family: str, steps: int, seed: int) -> float:
    """Seconds for `steps` plain training steps, setup included."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    model = family_class(family)(16, 1, {})
    device = torch.device("cpu")
    model.to(device)
    data = dataset_tensor(store, "digits", device)
    precision = Precision(device)
    generator = torch.Generator().manual_seed(seed)
    batch_size = model.hparams["batch_size"]
    model.train_mode(True)
    for step in range(steps):
        indices = torch.randint(data.shape[0], (batch_size,), generator=generator)
        model.training_step(data[indices], step, precision)
    return time.perf_counter() - start


def studio_run(store: Store, family: str, steps: int, seed: int, name: str) -> float:
    """Seconds for the same number of steps through the trainer job."""
    start = time.perf_counter()
    run_job(train(store, TrainOptions(name, family=family, dataset="digits", steps=steps, seed=seed, preview_count=0)))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--families", default="gan,vae,pixelcnn,diffusion")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="studio-train-bench-"))
    store = open_store(DataHome(work / "home"))
    try:
        run_job(add_sample(store, "digits", size=16))
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads; digits 16x16x1, default settings, {args.steps} steps"
        )
        print(f"{'family':<10} {'bare steps/s':>13} {'studio steps/s':>15} {'ratio':>7}")
        for family in args.families.split(","):
            bare, ours = [], []
            for round_index in range(args.rounds):
                # Alternate which side runs first: the machine warms, caches fill, clocks drift.
                if round_index % 2 == 0:
                    bare.append(bare_loop(store, family, args.steps, seed=round_index))
                    ours.append(studio_run(store, family, args.steps, round_index, f"{family}-{round_index}"))
                else:
                    ours.append(studio_run(store, family, args.steps, round_index, f"{family}-{round_index}"))
                    bare.append(bare_loop(store, family, args.steps, seed=round_index))
            best_bare, best_ours = min(bare), min(ours)
            print(
                f"{family:<10} {args.steps / best_bare:>13.1f} {args.steps / best_ours:>15.1f} "
                f"{best_bare / best_ours:>6.3f}x",
                flush=True,
            )
        print("target: ratio >= 0.95")
    finally:
        store.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
