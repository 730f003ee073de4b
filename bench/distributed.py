"""Distributed training: 1 process against 2 gloo processes (torchrun) on this machine, same global batch and data.

For each family, on the `digits` sample at 16x16 with the family's default settings, `studio train` runs
K steps four ways, each a fresh model:
  1p        one process with every core (`--threads = cores`), seed 0: the baseline;
  1p seed1  the same with seed 1: how far two equally good runs' losses lie apart (the noise);
  torchrun1 one process under torchrun (the distributed path, DDP over a world of 1): its overhead;
  2p        two processes under torchrun, cores/2 threads each, batch split in two.
Throughput is the trainer's own (its steps over its loop's time, checkpoints included; process start-up and
the rendezvous excluded, reported apart). The loss is the mean of the last 20% of steps' recorded
(global-batch) loss. Usage: python bench/distributed.py [--steps 300] [--families gan,vae,diffusion]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studio.engine.datasets.samples import add_sample
from studio.engine.jobs import run_job
from studio.engine.training_history import run_curves
from studio.home import DataHome
from studio.store.database import open_store

ROOT = Path(__file__).resolve().parents[1]
WAYS = ("1p", "1p seed1", "torchrun1", "2p")
MAIN_LOSSES = ("loss", "d_loss", "nll", "token_nll")


def studio_train(home: Path, family: str, name: str, steps: int, way: str) -> tuple[dict[str, Any], float]:
    """Run `studio train` one way; its JSON result and the wall-clock seconds of the whole command."""
    cores = os.cpu_count() or 1
    command = [sys.executable, "-m", "studio", "train", "--family", family, "--dataset", "digits", "--name", name]
    command += ["--steps", str(steps), "--json", "--no-score", "--milestone-every", "0", "--diagnostics-every", "0"]
    command += ["--seed", "1" if way == "1p seed1" else "0"]
    environment = {**os.environ, "STUDIO_HOME": str(home)}
    if way in ("1p", "1p seed1"):
        command += ["--threads", str(cores)]
    elif way == "torchrun1":
        # torchrun's own entry point, one worker: the distributed path a one-process `studio train` skips.
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1"]
        command += ["-m", "studio", *command_tail(family, name, steps)]
        environment["OMP_NUM_THREADS"] = str(cores)
    else:
        command += ["--nproc-per-node", "2"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{way} {family} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), seconds


def command_tail(family: str, name: str, steps: int) -> list[str]:
    """The `studio train` arguments of a torchrun worker (the launcher's own options left out)."""
    return [
        "train", "--family", family, "--dataset", "digits", "--name", name, "--steps", str(steps), "--json",
        "--no-score", "--milestone-every", "0", "--diagnostics-every", "0", "--seed", "0",
    ]  # fmt: skip


def late_loss(home: Path, name: str) -> tuple[str, float]:
    """The first loss series' mean over the last 20% of the run's steps."""
    store = open_store(DataHome(home))
    try:
        curves = run_curves(store, name)[-1]
    finally:
        store.close()
    losses = {s.name: s for s in curves.series if s.kind == "loss"}
    # The family's objective where it has one name for it; else its first loss.
    series = next((losses[key] for key in MAIN_LOSSES if key in losses), next(iter(losses.values())))
    tail = max(1, len(series.values) // 5)
    return series.name, float(np.mean(series.values[-tail:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--families", default="gan,vae,diffusion")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="studio-dist-bench-"))
    home = work / "home"
    store = open_store(DataHome(home))
    try:
        run_job(add_sample(store, "digits", size=16))
    finally:
        store.close()
    try:
        print(
            f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, torch "
            f"{torch.__version__}, gloo; digits 16x16x1, default settings, {args.steps} steps, same global batch"
        )
        print(f"{'family':<10} {'way':<10} {'steps/s':>8} {'img/s':>8} {'vs 1p':>6} {'start s':>8} {'late loss':>16}")
        for family in args.families.split(","):
            baseline = 0.0
            late: dict[str, float] = {}
            for way in WAYS:
                name = f"{family}-{way.replace(' ', '-')}"
                result, wall = studio_train(home, family, name, args.steps, way)
                rate = (result["steps"] - result["start_step"]) / result["seconds"]
                config = json.loads((home / "models" / name / "config.json").read_text())
                batch = config["hyperparameters"]["batch_size"]
                baseline = baseline or rate
                loss_name, loss = late_loss(home, name)
                late[way] = loss
                print(
                    f"{family:<10} {way:<10} {rate:8.2f} {rate * batch:8.0f} {rate / baseline:6.2f} "
                    f"{wall - result['seconds']:8.1f} {loss_name + ' ' + format(loss, '.4f'):>16}",
                    flush=True,
                )
            noise = abs(late["1p seed1"] - late["1p"])
            gap = abs(late["2p"] - late["1p"])
            verdict = "within noise" if gap <= 2 * noise else "outside 2x the seed-to-seed difference"
            print(f"{family:<10} 2p vs 1p late loss: |diff| {gap:.4f}, seed-to-seed {noise:.4f}: {verdict}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
