"""Inference speed: ONNX Runtime against torch eager, same weights, same inputs, same work, in one run.

Setup: the `digits` sample at 32x32; each family (default settings) trains 2 steps, is exported to
ONNX (`studio export`), then loaded twice: the torch family from its checkpoint and the ONNX model
from its export. Both backends get the same thread count (torch threads = ONNX Runtime intra-op
threads, default all cores), and every call is numpy in, numpy out (the pipelines' contract), torch
under no_grad in eval mode.

1. Network throughput (images/s) at batch B: GAN generator, VAE decoder, one diffusion denoiser step
   (one U-Net call; its batch is smaller, --diffusion-batch).
2. Latency of one image (batch 1), ms, for the same three networks.
3. End to end through the pipelines: diffusion sampling (DDIM, 50 steps) and PixelCNN sampling
   (raster order, one network call per sub-pixel; small images, small counts: it is slow).

The machine is shared and noisy, so each figure is compared only with the other backend measured in
the same run: after a warm-up, both run the same number of calls, in alternating order, best of N
rounds. ratio = ONNX speed / torch speed (above 1: ONNX is faster); `max diff` is the largest
absolute difference between their outputs (images in [-1, 1]; uint8 levels for the pipelines).
Usage: python bench/inference.py [--batch 64] [--diffusion-batch 16] [--rounds 5] [--threads N]
       [--provider cpu|cuda] [--pixelcnn-size 32] [--quick]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studio.engine.checkpoints import load_model
from studio.engine.datasets.samples import add_sample
from studio.engine.export import export_model
from studio.engine.families.base import GeneratorFamily
from studio.engine.jobs import run_job
from studio.engine.library import model_folder
from studio.engine.runtime.package import EXPORT_FOLDER, OnnxModel, load_exported
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.home import DataHome
from studio.store.database import Store, open_store

RESOLUTION = 32
TARGET = "target on CPU: ONNX >= 1.5x torch for gan generator, vae decoder, diffusion step"
SETTLE_SECONDS = 0.1
Call = Callable[[], Any]


@dataclass
class Row:
    """One line of the table: the two backends' best figures and how they compare."""

    family: str
    operation: str
    batch: int
    unit: str  # "img/s" (higher is better) or "ms" (latency of one call, lower is better)
    torch_value: float
    onnx_value: float
    difference: float

    @property
    def ratio(self) -> float:
        """ONNX speed over torch speed: above 1 means ONNX is faster."""
        if self.unit == "ms":
            return self.torch_value / self.onnx_value
        return self.onnx_value / self.torch_value

    def line(self) -> str:
        """The row as printed."""
        return (
            f"{self.family:<10} {self.operation:<24} {self.batch:>5} {self.torch_value:>11.2f} "
            f"{self.onnx_value:>11.2f} {self.unit:<6} {self.ratio:>6.2f}x {self.difference:>9.2g}"
        )


HEADER = (
    f"{'family':<10} {'operation':<24} {'batch':>5} {'torch':>11} {'onnx':>11} {'unit':<6} {'ratio':>7} {'max diff':>9}"
)


class Clock:
    """Times calls on one device: synchronises CUDA before reading the clock."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def sync(self) -> None:
        """Wait for queued GPU work (a no-op on the CPU)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def seconds(self, call: Call, repeats: int) -> float:
        """Seconds per call, over `repeats` calls, after a pause that lets the other backend's threads go idle.

        Both thread pools spin-wait for a while after their last task; on few cores a pool still spinning
        would slow whichever backend runs next.
        """
        self.sync()
        time.sleep(SETTLE_SECONDS)
        start = time.perf_counter()
        for _ in range(repeats):
            call()
        self.sync()
        return (time.perf_counter() - start) / repeats


def compare(clock: Clock, torch_call: Call, onnx_call: Call, rounds: int, budget: float) -> tuple[float, float, float]:
    """Best seconds per call of each backend, and the largest difference between their outputs.

    Each backend is warmed up first; the number of calls per round is set so that a round of both
    takes about `budget` seconds, the same count for both (a budget of 0: one call each, for calls
    that take seconds). Rounds alternate which backend goes first.
    """
    torch_out = np.asarray(torch_call(), np.float64)
    onnx_out = np.asarray(onnx_call(), np.float64)
    difference = float(np.abs(torch_out - onnx_out).max()) if torch_out.size else 0.0
    repeats = 1
    if budget > 0:
        # A second call each (timed) finishes the warm-up and sizes the rounds.
        single = clock.seconds(torch_call, 1) + clock.seconds(onnx_call, 1)
        repeats = max(1, math.ceil(budget / max(single, 1e-6)))
    torch_times, onnx_times = [], []
    for round_index in range(rounds):
        if round_index % 2 == 0:
            torch_times.append(clock.seconds(torch_call, repeats))
            onnx_times.append(clock.seconds(onnx_call, repeats))
        else:
            onnx_times.append(clock.seconds(onnx_call, repeats))
            torch_times.append(clock.seconds(torch_call, repeats))
    return min(torch_times), min(onnx_times), difference


def torch_function(module: Callable[..., torch.Tensor], device: torch.device) -> Callable[..., np.ndarray]:
    """numpy arrays in, float32 numpy out, through a torch computation under no_grad (the pipelines' contract)."""

    def run(*arrays: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            inputs = [torch.from_numpy(a).to(device) for a in arrays]
            return module(*inputs).float().cpu().numpy()

    return run


def onnx_function(session: ort.InferenceSession) -> Callable[..., np.ndarray]:
    """numpy arrays in, numpy out, through an ONNX Runtime session (what the ONNX pipelines call)."""
    names = [i.name for i in session.get_inputs()]

    def run(*arrays: np.ndarray) -> np.ndarray:
        return session.run(None, dict(zip(names, arrays, strict=True)))[0]

    return run


def network_pair(family: GeneratorFamily, model: OnnxModel) -> tuple[Callable[..., np.ndarray], ...]:
    """The torch and ONNX callables of the network measured for this family."""
    device = family.device
    if family.name == "gan":
        network = family.networks()["ema"].eval()
        return torch_function(network, device), onnx_function(model.sessions["generator"])
    if family.name == "vae":
        decoder = family.networks()["decoder"].eval()
        return (
            torch_function(lambda z: torch.sigmoid(decoder(z)) * 2 - 1, device),
            onnx_function(model.sessions["decoder"]),
        )
    network = family.networks()["ema"].eval()
    return torch_function(network, device), onnx_function(model.sessions["denoiser"])


def network_inputs(family: GeneratorFamily, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Inputs of one call at `batch`: latents, or noisy images and timesteps for the denoiser."""
    if family.name in ("gan", "vae"):
        return (rng.standard_normal((batch, family.hparams["latent_dim"])).astype(np.float32),)
    images = rng.standard_normal((batch, family.channels, family.resolution, family.resolution)).astype(np.float32)
    return images, rng.integers(0, family.hparams["timesteps"], batch).astype(np.int64)


def prepare(
    store: Store, family: str, dataset: str, device: torch.device, provider: str, threads: int
) -> tuple[GeneratorFamily, OnnxModel]:
    """Train `family` 2 steps, export it, and open both backends over the same weights."""
    name = f"{family}-{dataset}"
    run_job(
        train(
            store,
            TrainOptions(
                name, family=family, dataset=dataset, steps=2, preview_every=0, preview_count=0, checkpoint_every=1000
            ),
        )
    )
    run_job(export_model(store, name))
    folder = model_folder(store, name)
    loaded = load_model(folder, device, with_optimizers=False).family
    loaded.train_mode(False)
    exported = load_exported(folder / EXPORT_FOLDER, provider=provider, threads=threads)
    if exported.provider != provider:
        raise SystemExit(f"ONNX Runtime runs on {exported.provider}, not {provider}")
    return loaded, exported


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64, help="batch of the GAN and VAE throughput rows")
    parser.add_argument("--diffusion-batch", type=int, default=16, help="batch of the denoiser-step row")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per round (both backends) per row")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--provider", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--diffusion-images", type=int, default=4, help="images per diffusion sampling run")
    parser.add_argument("--diffusion-steps", type=int, default=50)
    parser.add_argument("--pixelcnn-images", type=int, default=2)
    parser.add_argument("--pixelcnn-size", type=int, default=32, choices=(8, 16, 32))
    parser.add_argument("--quick", action="store_true", help="a sanity run: tiny batches and counts, 2 rounds")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="where to write the table (default bench/results/inference-<provider>.txt)",
    )
    args = parser.parse_args()
    if args.quick:
        args.batch, args.diffusion_batch, args.rounds, args.budget = 8, 2, 2, 0.1
        args.diffusion_images, args.diffusion_steps, args.pixelcnn_images, args.pixelcnn_size = 1, 5, 1, 8
    use_cuda = args.provider == "cuda" and torch.cuda.is_available()
    device = torch.device("cuda" if use_cuda else "cpu")
    torch.set_num_threads(args.threads)
    clock = Clock(device)
    rng = np.random.default_rng(0)
    work = Path(tempfile.mkdtemp(prefix="studio-inference-bench-"))
    store = open_store(DataHome(work / "home"))
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    try:
        run_job(add_sample(store, "digits", size=RESOLUTION))
        if args.pixelcnn_size != RESOLUTION:
            run_job(add_sample(store, "digits", name="digits-small", size=args.pixelcnn_size))
        card = f", {torch.cuda.get_device_name(device)}" if use_cuda else ""
        say(
            f"machine: {platform.machine()}, {os.cpu_count()} cores{card}, torch {torch.__version__} on "
            f"{device.type}, onnxruntime {ort.__version__} on {args.provider}, {torch.get_num_threads()} torch "
            f"threads = {args.threads} ORT intra-op threads; digits {RESOLUTION}x{RESOLUTION}x1, default settings; "
            f"best of {args.rounds} rounds, alternating order{' (--quick)' if args.quick else ''}; "
            f"load average {os.getloadavg()[0]:.2f} at start"
        )
        if args.provider == "cuda" and not use_cuda:
            say(
                f"note: this torch ({torch.__version__}) has no CUDA: torch runs on the CPU, so the ratios "
                "compare devices as well as runtimes"
            )
        say("ratio = ONNX speed / torch speed (above 1: ONNX faster); max diff = largest |torch - onnx| of outputs")
        say(HEADER)
        models = {
            family: prepare(store, family, "digits", device, args.provider, args.threads)
            for family in ("gan", "vae", "diffusion")
        }
        operations = {"gan": "generator", "vae": "decoder", "diffusion": "denoiser step"}
        # 1 and 2: one network call, at the throughput batch, then at batch 1.
        for latency in (False, True):
            for family, (loaded, exported) in models.items():
                batch = 1 if latency else args.diffusion_batch if family == "diffusion" else args.batch
                torch_net, onnx_net = network_pair(loaded, exported)
                inputs = network_inputs(loaded, batch, rng)
                seconds_torch, seconds_onnx, difference = compare(
                    clock,
                    lambda n=torch_net, x=inputs: n(*x),
                    lambda n=onnx_net, x=inputs: n(*x),
                    args.rounds,
                    args.budget,
                )
                if latency:
                    row = Row(
                        family,
                        f"{operations[family]} latency",
                        1,
                        "ms",
                        seconds_torch * 1000,
                        seconds_onnx * 1000,
                        difference,
                    )
                else:
                    row = Row(
                        family,
                        operations[family],
                        batch,
                        "img/s",
                        batch / seconds_torch,
                        batch / seconds_onnx,
                        difference,
                    )
                say(row.line())
        # 3: end to end through the pipelines (numpy procedures over each backend's networks).
        loaded, exported = models["diffusion"]
        seeds = list(range(args.diffusion_images))
        options = {"sampler": "ddim", "steps": args.diffusion_steps}
        torch_pipe, onnx_pipe = loaded.pipeline(), exported.pipeline
        seconds_torch, seconds_onnx, difference = compare(
            clock,
            lambda: torch_pipe.sample(seeds, options),
            lambda: onnx_pipe.sample(seeds, options),
            args.rounds,
            args.budget * 4,
        )
        count = len(seeds)
        say(
            Row(
                "diffusion",
                f"sample ddim {args.diffusion_steps} steps",
                count,
                "img/s",
                count / seconds_torch,
                count / seconds_onnx,
                difference,
            ).line()
        )
        size = args.pixelcnn_size
        dataset = "digits" if size == RESOLUTION else "digits-small"
        loaded, exported = prepare(store, "pixelcnn", dataset, device, args.provider, args.threads)
        seeds = list(range(args.pixelcnn_images))
        torch_pipe, onnx_pipe = loaded.pipeline(), exported.pipeline
        # A PixelCNN run takes seconds (one network call per sub-pixel): one run per round, 3 rounds at most.
        seconds_torch, seconds_onnx, difference = compare(
            clock, lambda: torch_pipe.sample(seeds, {}), lambda: onnx_pipe.sample(seeds, {}), min(args.rounds, 3), 0.0
        )
        count = len(seeds)
        say(
            Row(
                "pixelcnn",
                f"sample at {size}x{size}",
                count,
                "img/s",
                count / seconds_torch,
                count / seconds_onnx,
                difference,
            ).line()
        )
        say(TARGET)
        output = args.output or Path(__file__).resolve().parent / "results" / f"inference-{args.provider}.txt"
        if not args.quick or args.output:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text("\n".join(lines) + "\n", encoding="utf-8")
            print(f"written to {output}")
    finally:
        store.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
