"""GPU inference check: images/s of Studio's torch backend and ONNX Runtime's CUDA provider (fp32 and fp16),
for every trainable family and for an imported 256 px latent diffusion model, in one run.

Sections (one aligned table each):
1. The machine: torch and CUDA, the GPU, onnxruntime and the CUDA it was built for, the providers it offers,
   and the provider a session really got (`session.get_providers()`: ONNX Runtime falls back silently).
2. Every trainable family, trained briefly on the digits sample at 32 px, exported with fp16: images/s of
   torch on the GPU, ORT CUDA fp32 and ORT CUDA fp16 for the same seeds (diffusion families: DDIM, 50 steps,
   eta 0), best of N after a warm-up call, and each one's largest uint8 difference from torch's images.
3. CompVis/ldm-celebahq-256's layout (a 274 M parameter U-Net over 64 x 64 latents, its VQ autoencoder;
   random weights: speed does not depend on them), saved with diffusers' LDMPipeline.save_pretrained,
   imported, exported with fp16: images/s at batch 4 for torch, ORT fp32, ORT fp16 and diffusers' own
   LDMPipeline on the same device, and the ratio of each to Studio's torch backend.
4. I/O binding is not used: Studio's numpy pipelines copy every step's sample to the device and the
   prediction back. The copy is timed on its own (OrtValue to the GPU and back; torch likewise).

--quick runs all of it on the CPU at tiny sizes (8 px families, the 256 px layout at 1/16 of its widths and
64 px, ORT's CPU provider), to prove the script end to end where there is no GPU; its figures mean nothing.
Writes only into a temporary folder, removed at the end.
Usage: python bench/gpu_inference.py [--quick] [--images 8] [--batch 4] [--rounds 2] [--steps 50]
                                     [--families gan,vae,...] [--skip-ldm]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.published import LDM_SCHEDULER, LDM_UNET, LDM_VQVAE, best_rates
from studio.engine.datasets.samples import add_sample
from studio.engine.export import export_model
from studio.engine.families.registry import full_schema, trainable_family_names
from studio.engine.generation import open_model
from studio.engine.importers import import_any
from studio.engine.jobs import run_job
from studio.engine.runtime import providers  # sets ONNX Runtime's telemetry opt-out before it loads
from studio.engine.runtime.package import load_exported
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.errors import StudioError
from studio.home import DataHome
from studio.store.database import Store, open_store

ort = providers.ort

# Small networks for --quick, by hyperparameter name (only those a family's schema has are passed).
QUICK_SETTINGS: dict[str, Any] = {"width": 8, "layers": 2, "autoencoder_width": 8, "latent_dim": 8}
DIFFUSION_FAMILIES = ("diffusion", "latent_diffusion")
REFUSAL = "no CUDA device: run with --quick for a dry run"


@dataclass
class Plan:
    """What one run does: on which device and provider, at which sizes."""

    quick: bool
    device: str  # torch device: "cuda", or "cpu" for --quick
    provider: str  # ONNX Runtime provider: "cuda", or "cpu" for --quick
    resolution: int
    train_steps: int
    images: int
    batch: int
    rounds: int
    steps: int
    threads: int | None  # ONNX Runtime's intra-op threads on the CPU (the same as torch's), None on the GPU
    families: tuple[str, ...]
    ldm: bool = True
    started: float = field(default_factory=time.perf_counter)

    def log(self, message: str) -> None:
        """A progress line with the time since the start (a run cut short still shows where it got to)."""
        print(f"[{time.perf_counter() - self.started:5.0f}s] {message}", flush=True)


@dataclass
class Row:
    """One backend's figures, or why it could not run."""

    backend: str
    runs_on: str
    rate: float | None = None
    difference: int | None = None
    note: str = ""


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """An aligned table: text columns to the left, the rest to the right."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    numeric = [all(_numeric(row[i]) for row in rows) and bool(rows) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(cell).rjust(width) if right else str(cell).ljust(width)
            for cell, width, right in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    print(f"\n{title}")
    print(line(headers))
    print("  ".join("-" * width for width in widths))
    for row in rows:
        print(line(row))
    sys.stdout.flush()


def _numeric(cell: str) -> bool:
    text = str(cell).rstrip("x%").replace(".", "", 1).replace(",", "")
    return text.isdigit() or text == "-"


def tiny_onnx_model() -> bytes:
    """A one-node model (y = x + x) to ask ONNX Runtime which provider a session really gets."""
    import onnx
    from onnx import TensorProto, helper

    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "x"], ["y"])],
        "probe",
        [value("x", TensorProto.FLOAT, [1, 4])],
        [value("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def machine_section(plan: Plan) -> None:
    """Section 1: versions, the GPU, the providers offered and the one a session really runs on."""
    from onnxruntime.capi import build_and_package_info as build

    card = torch.cuda.get_device_name(0) if plan.device == "cuda" else f"none ({platform.machine()} CPU)"
    try:
        session, _ = providers.open_session(tiny_onnx_model(), plan.provider, plan.threads)
        really = ", ".join(session.get_providers())
    except StudioError as error:
        really = f"{plan.provider} could not start: {error}"
    rows = [
        ["torch", f"{torch.__version__} (CUDA {torch.version.cuda})"],
        ["GPU", card],
        ["onnxruntime", f"{ort.__version__} ({build.package_name}, built for CUDA {build.cuda_version or 'none'})"],
        ["providers offered", ", ".join(ort.get_available_providers())],
        [f"a session asking for '{plan.provider}' got", really],
        ["CPU", f"{os.cpu_count()} cores; threads: torch {torch.get_num_threads()}, ORT {plan.threads or 'default'}"],
    ]
    print_table("1. machine", ["what", "this machine"], rows)


def studio_backends(store: Store, name: str, plan: Plan) -> tuple[dict[str, Any], list[Row], list[Callable[[], None]]]:
    """Studio's pipelines of model `name`: torch on the device, ORT fp32 and fp16 on the provider.

    Returns the pipelines by backend, a row for each backend that could not open, and the closers.
    """
    pipelines: dict[str, Any] = {}
    failed: list[Row] = []
    closers: list[Callable[[], None]] = []
    opened = open_model(store, name, backend="torch", device=plan.device)
    closers.append(opened.close)
    pipelines[f"Studio torch ({plan.device})"] = (opened.pipeline, f"torch {opened.provider}")
    folder = store.home.models / name / "onnx"
    for precision in ("fp32", "fp16"):
        label = f"ORT {plan.provider} {precision}"
        try:
            exported = load_exported(folder, plan.provider, precision, threads=plan.threads)
        except StudioError as error:
            failed.append(Row(label, "-", note=f"unavailable: {error}"))
            continue
        really = sorted({session.get_providers()[0] for session in exported.sessions.values()})
        pipelines[label] = (exported.pipeline, ", ".join(really))
        closers.append(exported.sessions.clear)
    return pipelines, failed, closers


def measure(
    pipelines: Mapping[str, tuple[Any, str]],
    extra: Mapping[str, tuple[Callable[[], np.ndarray], str]],
    seeds: Sequence[int],
    options: Mapping[str, Any],
    batch: int,
    rounds: int,
) -> list[Row]:
    """Rows for Studio's pipelines (sampling `seeds` in batches of `batch`) and any extra runs."""
    outputs: dict[str, np.ndarray] = {}

    def studio_run(label: str, pipeline: Any) -> Callable[[], np.ndarray]:
        def run() -> np.ndarray:
            outputs[label] = np.concatenate(
                [pipeline.sample(seeds[i : i + batch], options) for i in range(0, len(seeds), batch)]
            )
            return outputs[label]

        return run

    runs = {label: studio_run(label, pipeline) for label, (pipeline, _) in pipelines.items()}
    runs.update({label: run for label, (run, _) in extra.items()})
    rates = best_rates(runs, len(seeds), rounds)
    reference = next(iter(outputs.values())).astype(np.int16)  # the torch backend's images
    rows = []
    for label, rate in rates.items():
        runs_on = pipelines[label][1] if label in pipelines else extra[label][1]
        found = outputs.get(label)
        difference = int(np.abs(found.astype(np.int16) - reference).max()) if found is not None else None
        rows.append(Row(label, runs_on, rate, difference))
    return rows


def family_section(store: Store, plan: Plan) -> dict[str, float]:
    """Section 2: each trainable family trained, exported with fp16, and sampled on every backend."""
    run_job(add_sample(store, "digits", size=plan.resolution))
    table: list[list[str]] = []
    per_step: dict[str, float] = {}
    for family in plan.families:
        name = f"{family}-{plan.resolution}"
        schema = {h.name for h in full_schema(family)}
        settings = {k: v for k, v in QUICK_SETTINGS.items() if k in schema} if plan.quick else {}
        if "autoencoder_steps" in schema:  # both stages train, so the U-Net has latents to sample
            settings["autoencoder_steps"] = plan.train_steps // 2
        try:
            trained = train_briefly(store, name, family, settings, plan)
        except StudioError as error:  # one family that cannot train does not stop the others
            table.append([family, "-", "-", "-", "-", "-", f"training failed: {error}"])
            plan.log(f"{family}: training failed: {error}")
            continue
        exported, export_note = export_fp16(store, name)
        started = time.perf_counter()
        options = {"sampler": "ddim", "steps": plan.steps, "eta": 0.0} if family in DIFFUSION_FAMILIES else {}
        pipelines, failed, closers = studio_backends(store, name, plan)
        try:
            seeds = list(range(plan.images))
            # All images in one call: the pipeline splits them as memory allows.
            rows = measure(pipelines, {}, seeds, options, plan.images, plan.rounds) + failed
        finally:
            for close in closers:
                close()
        torch_rate = rows[0].rate or 0.0
        rows[0].note = f"trained {trained:.0f}s, exported {exported:.0f}s{export_note}"
        for row in rows:
            table.append(
                [
                    family,
                    row.backend,
                    row.runs_on,
                    f"{row.rate:.2f}" if row.rate else "-",
                    f"{row.rate / torch_rate:.2f}x" if row.rate and torch_rate else "-",
                    str(row.difference) if row.difference is not None else "-",
                    row.note,
                ]
            )
            if family == "diffusion" and row.rate:
                per_step[row.backend] = plan.images / row.rate / plan.steps
        plan.log(
            f"{family}: trained {trained:.0f}s, exported {exported:.0f}s, measured {time.perf_counter() - started:.0f}s"
        )
    print_table(
        f"2. trainable families at {plan.resolution} px ({plan.train_steps} training steps; {plan.images} images "
        f"per call, diffusion: DDIM {plan.steps} steps, eta 0; best of {plan.rounds} after a warm-up)",
        ["family", "backend", "runs on", "images/s", "vs torch", "max diff", "note"],
        table,
    )
    print(
        "max diff: the largest uint8 difference from torch's images for the same seeds. pixelcnn draws each "
        "sub-pixel from its logits, so one draw flipped by rounding changes the rest of the image: a large "
        "figure there is not an error."
    )
    return per_step


def train_briefly(store: Store, name: str, family: str, settings: Mapping[str, Any], plan: Plan) -> float:
    """Train model `name` briefly on the digits sample; the seconds it took."""
    started = time.perf_counter()
    run_job(
        train(
            store,
            TrainOptions(
                name,
                family=family,
                dataset="digits",
                steps=plan.train_steps,
                settings=settings,
                device=plan.device,
                checkpoint_every=plan.train_steps,
                preview_every=0,
                preview_count=0,
            ),
        )
    )
    return time.perf_counter() - started


def export_fp16(store: Store, name: str) -> tuple[float, str]:
    """Export model `name` with its fp16 variant: the seconds it took, and a note if it was refused (the
    ONNX rows then say the export is missing; the torch row still runs)."""
    started = time.perf_counter()
    try:
        run_job(export_model(store, name, fp16=True))
    except StudioError as error:
        return time.perf_counter() - started, f" (export refused: {error})"
    return time.perf_counter() - started, ""


def ldm_configs(quick: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The U-Net and VQ autoencoder configurations: as published, or (--quick) at 1/16 of the widths, 64 px."""
    if not quick:
        return dict(LDM_UNET), dict(LDM_VQVAE)
    # The reduction tests/engine/test_import_diffusers.py uses: the same levels, blocks and attention.
    unet = {
        **LDM_UNET,
        "block_out_channels": [w // 16 for w in LDM_UNET["block_out_channels"]],
        "norm_num_groups": 7,
        "attention_head_dim": 2,
        "sample_size": 16,
    }
    vqvae = {
        **LDM_VQVAE,
        "block_out_channels": [w // 16 for w in LDM_VQVAE["block_out_channels"]],
        "norm_num_groups": 8,
        "sample_size": 64,
    }
    return unet, vqvae


def ldm_section(store: Store, work: Path, plan: Plan) -> tuple[float | None, tuple[int, ...]]:
    """Section 3: the imported ldm-celebahq-256 layout on every backend and in diffusers' own pipeline.

    Returns ORT fp32's seconds per denoising step of one batch, and the shape of a batch's latents.
    """
    from diffusers import DDIMScheduler, LDMPipeline, UNet2DModel, VQModel

    unet_config, vqvae_config = ldm_configs(plan.quick)
    torch.manual_seed(0)
    pipe = LDMPipeline(
        vqvae=VQModel(**vqvae_config), unet=UNet2DModel(**unet_config), scheduler=DDIMScheduler(**LDM_SCHEDULER)
    )
    with torch.no_grad():  # a random decoder's images reach +-7; a trained one's stay in [-1, 1]
        pipe.vqvae.decoder.conv_out.weight.mul_(0.1)
        pipe.vqvae.decoder.conv_out.bias.mul_(0.1)
    source = work / "ldm-celebahq-256"
    pipe.save_pretrained(source)
    unet_parameters = sum(p.numel() for p in pipe.unet.parameters()) / 1e6
    vq_parameters = sum(p.numel() for p in pipe.vqvae.parameters()) / 1e6
    started = time.perf_counter()
    summary = import_any(store, source, "ldm-celebahq")
    imported = time.perf_counter() - started
    plan.log(f"ldm-celebahq: imported in {imported:.0f}s; exporting (fp32 and fp16)")
    exported, export_note = export_fp16(store, summary.name)
    plan.log(f"ldm-celebahq: exported in {exported:.0f}s{export_note}; measuring")
    pipe.to(plan.device)
    pipe.set_progress_bar_config(disable=True)
    seeds = list(range(plan.images))

    def diffusers_run() -> np.ndarray:
        # diffusers draws its own noise (LDMPipeline takes no latents): its images are not compared.
        return np.concatenate(
            [
                pipe(
                    batch_size=len(seeds[i : i + plan.batch]),
                    generator=torch.Generator().manual_seed(i),
                    eta=0.0,
                    num_inference_steps=plan.steps,
                    output_type="np",
                ).images
                for i in range(0, len(seeds), plan.batch)
            ]
        )

    options = {"sampler": "ddim", "steps": plan.steps, "eta": 0.0}
    pipelines, failed, closers = studio_backends(store, summary.name, plan)
    extra = {f"diffusers LDMPipeline ({plan.device})": (diffusers_run, f"torch {plan.device}")}
    try:
        rows = measure(pipelines, extra, seeds, options, plan.batch, plan.rounds) + failed
    finally:
        for close in closers:
            close()
    torch_rate = rows[0].rate or 0.0
    rows[0].note = export_note.strip(" ()")
    table = [
        [
            row.backend,
            row.runs_on,
            f"{row.rate:.3f}" if row.rate else "-",
            f"{row.rate / torch_rate:.2f}x" if row.rate and torch_rate else "-",
            str(row.difference) if row.difference is not None else "-",
            row.note,
        ]
        for row in rows
    ]
    latent = int(unet_config["sample_size"])
    print_table(
        f"3. imported CompVis/ldm-celebahq-256 layout{' (1/16 widths, 64 px)' if plan.quick else ''}: "
        f"U-Net {unet_parameters:.1f} M + VQ {vq_parameters:.1f} M parameters, {vqvae_config['sample_size']} px "
        f"from {latent} x {latent} latents; {plan.images} images at batch {plan.batch}, DDIM {plan.steps} steps, "
        f"best of {plan.rounds} (imported {imported:.0f}s, exported with fp16 {exported:.0f}s)",
        ["backend", "runs on", "images/s", "vs torch", "max diff", "note"],
        table,
    )
    print("max diff: uint8 levels from Studio torch's images, same seeds ('-': diffusers draws its own noise).")
    ort_fp32 = next((row for row in rows if row.backend.endswith("fp32") and row.rate), None)
    per_step = plan.batch / ort_fp32.rate / plan.steps if ort_fp32 and ort_fp32.rate else None
    return per_step, (plan.batch, int(unet_config["in_channels"]), latent, latent)


def median_seconds(action: Callable[[], object], repeats: int) -> float:
    """Median wall time of `action` after two warm-up calls."""
    action()
    action()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def copy_section(shapes: Mapping[str, tuple[tuple[int, ...], float | None]], plan: Plan) -> None:
    """Section 4: what each DDIM step spends copying the sample to the device and the prediction back."""
    device = "cuda" if plan.provider == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers() else "cpu"
    torch_device = torch.device(plan.device)
    table = []
    for what, (shape, step_seconds) in shapes.items():
        array = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
        size = array.nbytes
        # One step: the sample goes in, the predicted noise (the same size) comes out; the timestep is 4 bytes.
        ort_up = median_seconds(lambda a=array: ort.OrtValue.ortvalue_from_numpy(a, device, 0), 50)
        on_device = ort.OrtValue.ortvalue_from_numpy(array, device, 0)
        ort_down = median_seconds(on_device.numpy, 50)

        def torch_up(a: np.ndarray = array) -> torch.Tensor:
            moved = torch.from_numpy(a).to(torch_device)
            if torch_device.type == "cuda":
                torch.cuda.synchronize()
            return moved

        held = torch_up()
        torch_round = median_seconds(torch_up, 50) + median_seconds(lambda t=held: t.cpu().numpy(), 50)
        for path, seconds in ((f"ORT OrtValue ({device})", ort_up + ort_down), (f"torch ({plan.device})", torch_round)):
            share = f"{100 * seconds / step_seconds:.1f}%" if step_seconds else "-"
            table.append(
                [
                    what,
                    "x".join(map(str, shape)),
                    f"{2 * size / 1024:.0f}",
                    path,
                    f"{seconds * 1e6:.0f}",
                    f"{seconds * plan.steps * 1e3:.2f}",
                    share,
                ]
            )
    print_table(
        f"4. host<->device copy per denoising step (the sample in, the prediction out; {plan.steps} steps)",
        ["model", "sample", "KiB/step", "copied with", "us/step", f"ms/{plan.steps} steps", "of an ORT fp32 step"],
        table,
    )
    print(
        "I/O binding is not used: Studio's pipelines are numpy, so every network call copies its inputs to the "
        "device and its output back (both backends). The table times that copy alone; the share is of ORT "
        "fp32's measured time per step."
        + (" On the CPU there is no device: these rows only exercise the code." if device == "cpu" else "")
    )


def run(
    quick: bool = False,
    images: int | None = None,
    batch: int = 4,
    rounds: int | None = None,
    steps: int = 50,
    ldm: bool = True,
    families: Sequence[str] | None = None,
) -> None:
    """The whole check (sections 1-4); refuses in one line without CUDA unless `quick`."""
    if not quick and not torch.cuda.is_available():
        raise SystemExit(REFUSAL)
    trainable = trainable_family_names()
    unknown = [name for name in families or () if name not in trainable]
    if unknown:
        raise SystemExit(f"unknown family {', '.join(unknown)}: choose from {', '.join(trainable)}")
    threads = None
    if quick:
        # One thread each: on a shared or small CPU, two thread pools that busy-wait (torch's OpenMP and
        # ONNX Runtime's spinning workers) slow each other down many times over.
        torch.set_num_threads(1)
        threads = 1
    plan = Plan(
        quick=quick,
        device="cpu" if quick else "cuda",
        provider="cpu" if quick else "cuda",
        resolution=8 if quick else 32,
        train_steps=4 if quick else 40,
        images=images or (4 if quick else 8),
        batch=batch,
        rounds=rounds or (1 if quick else 2),
        steps=steps,
        threads=threads,
        families=tuple(families) if families else trainable,
        ldm=ldm,
    )
    if quick:
        print("dry run on the CPU: no GPU figures (tiny sizes; every figure below only shows the code runs)")
    machine_section(plan)
    work = Path(tempfile.mkdtemp(prefix="studio-gpu-inference-"))
    store = open_store(DataHome(work / "home").ensure())
    try:
        family_step = family_section(store, plan)
        # The diffusion family's sample: the digits are grey (one channel).
        shapes: dict[str, tuple[tuple[int, ...], float | None]] = {
            f"diffusion {plan.resolution} px": (
                (plan.images, 1, plan.resolution, plan.resolution),
                next((s for label, s in family_step.items() if label.endswith("fp32")), None),
            )
        }
        if plan.ldm:
            ldm_step, latent_shape = ldm_section(store, work, plan)
            shapes[f"ldm-celebahq latents, batch {plan.batch}"] = (latent_shape, ldm_step)
        copy_section(shapes, plan)
    finally:
        store.close()
        shutil.rmtree(work, ignore_errors=True)
    plan.log("inference check done" + (": dry run on the CPU, no GPU figures" if quick else ""))


def main() -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a dry run on the CPU at tiny sizes (no GPU figures)")
    parser.add_argument("--images", type=int, help="images per timed call (default 8; 4 with --quick)")
    parser.add_argument("--batch", type=int, default=4, help="batch of the 256 px model (default 4)")
    parser.add_argument("--rounds", type=int, help="timed calls per backend, best kept (default 2; 1 with --quick)")
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps (default 50)")
    parser.add_argument("--skip-ldm", action="store_true", help="leave out the imported 256 px model")
    parser.add_argument("--families", help="comma-separated trainable families to measure (default: all)")
    args = parser.parse_args()
    families = [name.strip() for name in args.families.split(",") if name.strip()] if args.families else None
    run(args.quick, args.images, args.batch, args.rounds, args.steps, not args.skip_ldm, families)


if __name__ == "__main__":
    main()
