"""GPU check: every family trains (mixed precision), checkpoints, resumes and generates on CUDA.

Run on a machine with an NVIDIA GPU: python bench/gpu_check.py [--steps 40] [--images 8] [--skip-inference].
Prints one line per family with steps/s on the GPU, the precision used, and whether resume and generation
worked; then the trainer-vs-bare-loop ratio on the GPU for the GAN; then the inference check of
bench/gpu_inference.py (torch vs ONNX Runtime CUDA fp32/fp16, an imported 256 px model), unless skipped.
Without a GPU everything runs on the CPU as a dry run (the inference check in its --quick form).
"""

from __future__ import annotations

import argparse
import math
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
from studio.engine.generation import generate
from studio.engine.jobs import run_job
from studio.engine.training import dataset_tensor, train
from studio.engine.training_options import TrainOptions
from studio.home import DataHome
from studio.store.database import Store, open_store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--overhead-steps", type=int, default=1500)
    parser.add_argument("--images", type=int, help="images per timed call of the inference check")
    parser.add_argument("--skip-inference", action="store_true", help="leave out bench/gpu_inference.py's check")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    precision = Precision(device)
    card = torch.cuda.get_device_name(0) if device.type == "cuda" else "no GPU (dry run on the CPU)"
    print(
        f"torch {torch.__version__}, CUDA {torch.version.cuda}, {card}, "
        f"mixed precision {precision.enabled} ({precision.dtype})"
    )
    work = Path(tempfile.mkdtemp(prefix="studio-gpu-"))
    store = open_store(DataHome(work / "home"))
    try:
        run_job(add_sample(store, "digits", size=16))
        run_job(add_sample(store, "shapes", size=32, count=500))
        for family, dataset in [
            ("gan", "digits"),
            ("vae", "digits"),
            ("pixelcnn", "digits"),
            ("diffusion", "digits"),
            ("gan", "shapes"),
            ("diffusion", "shapes"),
        ]:
            name = f"{family}-{dataset}"
            started = time.perf_counter()
            first = run_job(
                train(
                    store,
                    TrainOptions(
                        name,
                        family=family,
                        dataset=dataset,
                        steps=args.steps,
                        checkpoint_every=args.steps // 2,
                        preview_every=args.steps // 2,
                        preview_count=8,
                    ),
                )
            )
            seconds = time.perf_counter() - started
            resumed = run_job(train(store, TrainOptions(name, resume=True, steps=args.steps + 10, preview_every=0)))
            made = run_job(generate(store, name, count=8, seed=1))
            finite = all(math.isfinite(v) for v in resumed.final_losses.values())
            print(
                f"{name:<18} device {first.device}  {args.steps / seconds:7.1f} steps/s (incl. setup)  "
                f"resumed {resumed.start_step}->{resumed.steps}  finite {finite}  "
                f"generated {len(made.items)} in {made.seconds:.2f}s  losses "
                + ", ".join(f"{k}={v:.3g}" for k, v in resumed.final_losses.items()),
                flush=True,
            )
        # Trainer overhead on the GPU, GAN at 16px: the bare loop against the trainer job.
        steps = args.overhead_steps
        bare_times, studio_times = [], []
        for round_index in range(3):  # alternating order, best of three
            if round_index % 2 == 0:
                bare_times.append(bare_loop(store, steps, device))
                studio_times.append(studio_run(store, steps, round_index))
            else:
                studio_times.append(studio_run(store, steps, round_index))
                bare_times.append(bare_loop(store, steps, device))
        bare, ours = min(bare_times), min(studio_times)
        print(
            f"trainer overhead on {device.type} (gan 16px, {steps} steps): bare {steps / bare:.1f} steps/s, "
            f"studio {steps / ours:.1f} steps/s, ratio {bare / ours:.3f}"
        )
    finally:
        store.close()
        shutil.rmtree(work, ignore_errors=True)
    if not args.skip_inference:
        from bench.gpu_inference import run as run_inference  # onnxruntime and diffusers load only for it

        run_inference(quick=device.type != "cuda", images=args.images)


def studio_run(store: Store, steps: int, seed: int) -> float:
    """Seconds for a GAN run of `steps` through the trainer job."""
    start = time.perf_counter()
    run_job(
        train(
            store,
            TrainOptions(f"speed-{seed}", family="gan", dataset="digits", steps=steps, seed=seed, preview_count=0),
        )
    )
    return time.perf_counter() - start


def bare_loop(store: Store, steps: int, device: torch.device) -> float:
    """The bare loop of bench/train_speed.py on the given device, setup included."""
    start = time.perf_counter()
    torch.manual_seed(0)
    model = family_class("gan")(16, 1, {}).to(device)
    data = dataset_tensor(store, "digits", device)
    precision = Precision(device)
    generator = torch.Generator().manual_seed(0)
    model.train_mode(True)
    for step in range(steps):
        indices = torch.randint(data.shape[0], (64,), generator=generator).to(device)
        model.training_step(data[indices], step, precision)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
