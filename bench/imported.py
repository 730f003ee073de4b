"""An imported diffusers model: images/s of Studio's torch backend, Studio's ONNX backend and diffusers'
own DDIMPipeline, on the same weights, the same device, in one run.

Setup: a UNet2DModel with google/ddpm-cifar10-32's configuration (35.7 M parameters; randomly
initialised: speed does not depend on the weights) and its DDPM scheduler, saved as a DDIMPipeline
with `save_pretrained`, imported with `studio models import`, exported with `studio export`.
Each backend samples the same number of images with DDIM, 50 steps, eta 0, at the same batch size,
after a warm-up call; best of N rounds, the three measured in turn within each round (the machine is
shared and noisy: each figure is compared only with the others of the same run). Torch and ONNX
Runtime get the same thread count. ratio = images/s / diffusers' images/s.

The last line also gives the largest difference between Studio's torch backend and diffusers after one
DDIM step from the same initial noise (they run the same network and the same step; over a whole
chain a randomly initialised network amplifies float rounding, so the tests compare trained-size
chains instead). Studio's torch backend runs the U-Net in the channels-last memory layout.
Usage: python bench/imported.py [--batch 8] [--images 8] [--rounds 3] [--steps 50] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.published import CIFAR10_SCHEDULER, CIFAR10_UNET, best_rates
from studio.engine.export import export_model
from studio.engine.generation import open_model
from studio.engine.importers import import_any
from studio.engine.jobs import run_job
from studio.home import DataHome
from studio.store.database import open_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from diffusers import DDIMPipeline, DDPMPipeline, DDPMScheduler, UNet2DModel

    work = Path(tempfile.mkdtemp(prefix="studio-imported-"))
    store = open_store(DataHome(work / "home").ensure())
    try:
        torch.manual_seed(0)
        # Saved as published (a DDPMPipeline); diffusers samples it with DDIMPipeline, as its docs show.
        DDPMPipeline(unet=UNet2DModel(**CIFAR10_UNET), scheduler=DDPMScheduler(**CIFAR10_SCHEDULER)).save_pretrained(
            work / "ddpm-cifar10-32"
        )
        pipe = DDIMPipeline.from_pretrained(work / "ddpm-cifar10-32")
        pipe.set_progress_bar_config(disable=True)
        unet = pipe.unet.eval()
        import_any(store, work / "ddpm-cifar10-32", "cifar10")
        run_job(export_model(store, "cifar10"))
        parameters = sum(p.numel() for p in unet.parameters())
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, {args.threads} threads, "
            f"torch {torch.__version__}; "
            f"google/ddpm-cifar10-32 configuration ({parameters / 1e6:.1f} M parameters), DDIM {args.steps} steps, "
            f"{args.images} images at batch {args.batch}, best of {args.rounds}"
        )
        options = {"sampler": "ddim", "steps": args.steps, "eta": 0.0}
        seeds = list(range(args.images))
        studio_torch = open_model(store, "cifar10", backend="torch")
        studio_onnx = open_model(store, "cifar10", backend="onnx", provider="cpu")
        latents = studio_torch.pipeline.initial_noise([np.random.default_rng(seed) for seed in seeds])

        def studio_run(opened: object) -> Callable[[], np.ndarray]:
            pipeline = opened.pipeline  # type: ignore[attr-defined]

            def run() -> np.ndarray:
                return np.concatenate(
                    [pipeline.sample(seeds[i : i + args.batch], options) for i in range(0, len(seeds), args.batch)]
                )

            return run

        def first_step_difference() -> float:
            """Studio's first DDIM step against diffusers' from the same x_T (a random network amplifies float
            rounding over a whole chain, so the chain's end is no measure of agreement)."""
            pipeline = studio_torch.pipeline
            scheduler = pipeline.scheduler("ddim")
            scheduler.set_timesteps(args.steps)
            first = int(scheduler.timesteps[0])
            sample = latents[: args.batch]
            ours = scheduler.step(pipeline.denoiser(sample, np.full(len(sample), first, np.int64)), first, sample)
            pipe.scheduler.set_timesteps(args.steps)
            with torch.inference_mode():
                start = torch.from_numpy(sample)
                theirs = pipe.scheduler.step(pipe.unet(start, first).sample, first, start, eta=0.0).prev_sample
            return float(np.abs(ours - theirs.numpy()).max())

        def diffusers_pipeline() -> object:
            return [
                pipe(batch_size=min(args.batch, len(seeds) - i), num_inference_steps=args.steps, output_type="np")
                for i in range(0, len(seeds), args.batch)
            ]

        runs = {
            "diffusers DDIMPipeline": diffusers_pipeline,
            "Studio torch": studio_run(studio_torch),
            "Studio ONNX (cpu)": studio_run(studio_onnx),
        }
        rates = best_rates(runs, args.images, args.rounds)
        difference = first_step_difference()
        baseline = rates["diffusers DDIMPipeline"]
        print(f"{'backend':<24} {'images/s':>9} {'ratio':>7}")
        for name, rate in rates.items():
            print(f"{name:<24} {rate:>9.3f} {rate / baseline:>6.2f}x")
        best = max(rate for name, rate in rates.items() if name.startswith("Studio"))
        verdict = "met" if best >= 1.3 * baseline else "NOT met"
        print(
            f"Studio's best / diffusers: {best / baseline:.2f}x (target 1.3x: {verdict}); "
            f"Studio torch vs diffusers, one DDIM step from the same x_T: max difference {difference:.2g}"
        )
        studio_torch.close()
        studio_onnx.close()
    finally:
        store.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
