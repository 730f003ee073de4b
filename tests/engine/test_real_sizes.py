"""Real sizes (issue 12): 128 and 256 px datasets and models, memory-sized batches, per-step progress and cancel."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from sqlalchemy import func, select

from studio.engine.datasets.importer import import_dataset
from studio.engine.datasets.samples import add_sample
from studio.engine.datasets.storage import get_dataset, load_images
from studio.engine.export import export_model
from studio.engine.families import declaration as declaration_module
from studio.engine.families import pipeline as pipeline_module
from studio.engine.families.declaration import RESOLUTIONS, check_training_size, training_limit
from studio.engine.families.diffusion.pipeline import DiffusionPipeline
from studio.engine.families.pipeline import MAX_CHUNK, ModelSpec, chunk_size
from studio.engine.families.pixelcnn.pipeline import PixelCnnPipeline
from studio.engine.families.registry import family_class
from studio.engine.generation import EndpointRef, generate, inpaint, interpolate
from studio.engine.jobs import CancelToken, Progress, run_job
from studio.engine.library import model_exists
from studio.engine.stepping import fit_memory
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.errors import CancelledError, StudioError
from studio.store.database import Store
from studio.store.tables import GalleryItem
from tests.engine.conftest import TINY

GIB = 1024**3


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread (several spin-wait on each other on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(store: Store, name: str, family: str, dataset: str, **settings: Any) -> None:
    options = TrainOptions(
        name, family=family, dataset=dataset, steps=1, settings={**TINY[family], **settings}, preview_every=0
    )
    run_job(train(store, options))


def gallery_count(store: Store) -> int:
    with store.sessions() as session:
        return int(session.scalar(select(func.count(GalleryItem.id))) or 0)


def messages(events: list[object]) -> list[str]:
    return [event.message for event in events if isinstance(event, Progress)]


def stored_pngs(store: Store) -> list[Path]:
    return [path for path in store.home.gallery.rglob("*.png") if "_inputs" not in path.parts]


# --- sizes ----------------------------------------------------------------------------------


def test_every_family_takes_128_and_256_px_and_refuses_the_rest() -> None:
    assert RESOLUTIONS == (8, 16, 32, 64, 128, 256)
    gan = family_class("gan")
    gan.check_geometry(256, 3)
    with pytest.raises(StudioError, match=r"take 8, 16, 32, 64, 128 or 256 px images, not 512 px: .*--size 256"):
        gan.check_geometry(512, 3)


def test_a_dataset_imports_at_128_px(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(5):
        pixels = rng.integers(0, 256, (150 + 10 * index, 210, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"photo{index}.png")
    result = run_job(import_dataset(store, [folder], "photos", size=128, channels=3, workers=1))
    assert result.imported == 5 and get_dataset(store, "photos").size == 128
    assert np.asarray(load_images(store, "photos")).shape == (5, 128, 128, 3)


def test_training_limits_by_device() -> None:
    assert training_limit("cpu") == 128
    assert training_limit("cuda") == training_limit("mps") == 256
    check_training_size(128, "cpu")
    check_training_size(256, "cuda")
    with pytest.raises(StudioError, match="training at 256 px needs a GPU: on the CPU Studio trains at most 128 px"):
        check_training_size(256, "cpu")


def test_training_above_the_cpu_limit_is_refused_before_anything_is_made(store: Store) -> None:
    run_job(add_sample(store, "shapes", name="big", count=8, size=256))
    with pytest.raises(StudioError, match="needs a GPU") as refused:
        tiny_model(store, "big", "gan", "big")
    assert "\n" not in str(refused.value)
    assert not model_exists(store, "big") and not (store.home.models / "big").exists()


# --- chunk sizing ---------------------------------------------------------------------------


def spec(family: str, resolution: int, channels: int = 3, width: int | None = 32) -> ModelSpec:
    hyperparameters = {} if width is None else {"width": width}
    return ModelSpec(family, resolution, channels, hyperparameters, (), scheduler={"num_train_timesteps": 10})


def test_chunk_follows_the_memory_available(monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = DiffusionPipeline(spec("diffusion", 256), lambda x, t: x)
    per_image = 256 * 256 * 16 * 32 * 4  # pixels x (factor 16 x width 32) float32 maps
    assert pipeline.bytes_per_image() == per_image
    monkeypatch.setattr(pipeline_module, "available_memory", lambda: 4 * GIB)
    assert pipeline.chunk == int(2 * GIB // per_image) == 16  # half of what is available
    monkeypatch.setattr(pipeline_module, "available_memory", lambda: 100 * 1024**2)
    assert pipeline.chunk == 1  # never below one image, even when it does not fit
    monkeypatch.setattr(pipeline_module, "available_memory", lambda: 1024 * GIB)
    assert pipeline.chunk == MAX_CHUNK  # never above the ceiling
    pipeline.memory_budget = 1 * GIB  # a GPU's free memory, when the backend knows it, wins
    assert pipeline.chunk == 4
    # A wider network or more pixels take more; an unknown width is assumed wide.
    assert chunk_size(per_image * 2, 4 * GIB) == 8
    assert DiffusionPipeline(spec("diffusion", 256, width=None), lambda x, t: x).bytes_per_image() == per_image * 4
    small = DiffusionPipeline(spec("diffusion", 8), lambda x, t: x)
    monkeypatch.setattr(pipeline_module, "available_memory", lambda: 4 * GIB)
    assert small.chunk == MAX_CHUNK


def test_a_cuda_model_sizes_its_batches_by_the_gpu_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = DiffusionPipeline(spec("diffusion", 256), lambda x, t: x)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda: (1 * GIB, 80 * GIB))
    fit_memory(pipeline, "onnx", "cpu")
    assert "memory_budget" not in vars(pipeline)  # the host's memory, read at each call
    fit_memory(pipeline, "torch", "cuda")
    assert pipeline.memory_budget == GIB and pipeline.chunk == 4


def test_available_memory_reads_the_system_or_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    assert pipeline_module.available_memory() > 0
    monkeypatch.setattr(pipeline_module, "_meminfo_available", lambda: None)
    monkeypatch.setattr(pipeline_module, "_cgroup_headroom", lambda: None)
    assert pipeline_module.available_memory() > 0  # sysconf's free pages

    def unknown(name: str) -> int:
        raise ValueError(name)

    monkeypatch.setattr(os, "sysconf", unknown)
    assert pipeline_module.available_memory() == pipeline_module.FALLBACK_MEMORY
    monkeypatch.setattr(pipeline_module, "_cgroup_headroom", lambda: 3 * 1024**2)
    assert pipeline_module.available_memory() == 3 * 1024**2  # a container's limit caps it


# --- per-step progress and cancel -----------------------------------------------------------


@pytest.fixture
def tiny_diffusion(digits8: Store) -> Store:
    """digits8 with a tiny diffusion model 'dm' (one training step)."""
    tiny_model(digits8, "dm", "diffusion", "digits")
    return digits8


def test_diffusion_reports_every_step_of_every_batch(tiny_diffusion: Store) -> None:
    store = tiny_diffusion
    events: list[object] = []
    result = run_job(generate(store, "dm", count=4, seed=1, options={"steps": 5}, batch_size=2), events.append)
    assert len(result.items) == 4 and gallery_count(store) == 4
    # Steps the consumer falls behind on may be merged, but each batch ends on its last step.
    assert {"step 5/5 of batch 1/2", "step 5/5 of batch 2/2"} <= set(messages(events))
    fractions = [e.fraction or 0.0 for e in events if isinstance(e, Progress) and e.stage == "generating"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0  # steps and images agree on the fraction


def test_interpolation_and_inpainting_report_their_steps(tiny_diffusion: Store) -> None:
    store = tiny_diffusion
    events: list[object] = []
    frames = run_job(
        interpolate(store, "dm", EndpointRef(seed=1), EndpointRef(seed=2), frames=3, options={"steps": 4}),
        events.append,
    )
    assert "step 4/4" in messages(events) and len(frames.items) == 3
    events.clear()
    mask = np.zeros((8, 8), bool)
    mask[:, :4] = True
    completions = run_job(
        inpaint(store, "dm", f"#{frames.items[0]['id']}", mask, count=2, options={"steps": 4, "resample": 2}),
        events.append,
    )
    # RePaint: every step but the last runs `resample` times.
    assert "step 7/7" in messages(events) and len(completions.items) == 2


def test_a_cancel_mid_batch_stops_the_diffusion_and_stores_nothing(tiny_diffusion: Store) -> None:
    store = tiny_diffusion
    token = CancelToken()
    seen: list[str] = []
    with pytest.raises(CancelledError):
        for event in generate(store, "dm", count=3, seed=1, options={"steps": 40}, cancel=token):
            if isinstance(event, Progress) and event.message.startswith("step"):
                seen.append(event.message)
                token.cancel()
    assert seen and seen[0].startswith("step ") and not seen[0].startswith("step 40/")
    assert gallery_count(store) == 0 and stored_pngs(store) == []
    assert list(store.home.staging.iterdir()) == []
    assert not any(thread.name == "studio-pipeline" for thread in threading.enumerate())


def test_closing_a_paused_job_mid_batch_stops_the_worker(tiny_diffusion: Store) -> None:
    store = tiny_diffusion
    token = CancelToken()
    job = generate(store, "dm", count=2, seed=1, options={"steps": 40}, cancel=token)
    for event in job:
        if isinstance(event, Progress) and event.message.startswith("step"):
            token.pause()  # the worker now waits at its next step, and must not wait for a resume
            break
    job.close()
    assert not any(thread.name == "studio-pipeline" for thread in threading.enumerate())
    assert gallery_count(store) == 0 and stored_pngs(store) == []


def test_pixelcnn_reports_each_row() -> None:
    class Flat:
        def start_row(self, inputs: np.ndarray, row: int) -> None:
            del inputs, row

        def logits(self, inputs: np.ndarray, row: int, column: int) -> np.ndarray:
            del row, column
            return np.zeros((len(inputs), 256, inputs.shape[1]))

    schema = family_class("pixelcnn").declaration.sampling_schema()
    pipeline = PixelCnnPipeline(ModelSpec("pixelcnn", 8, 1, {"temperature": 1.0}, schema), Flat)
    rows: list[tuple[int, int]] = []
    pipeline.on_step = lambda done, total: rows.append((done, total))
    images = pipeline.sample([1, 2], {})
    assert images.shape == (2, 8, 8, 1) and rows == [(row, 8) for row in range(1, 9)]

    def stop(done: int, total: int) -> None:
        if done == 3:
            raise CancelledError()

    pipeline.on_step = stop
    with pytest.raises(CancelledError):
        pipeline.sample([1], {})


# --- large images ---------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["gan", "vae"])
def test_tiny_models_sample_at_256_px(family: str) -> None:
    torch.manual_seed(0)
    model = family_class(family)(256, 3, TINY[family])
    model.train_mode(False)
    images = model.pipeline().sample([1, 2, 3], {})
    assert images.shape == (3, 256, 256, 3) and images.dtype == np.uint8 and images.std() > 0


def test_a_256_px_model_trains_where_allowed_and_fills_the_gallery(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_job(add_sample(store, "shapes", name="big", count=8, size=256))
    monkeypatch.setattr(declaration_module, "CPU_TRAINING_LIMIT", 256)  # as on a GPU
    tiny_model(store, "big", "gan", "big")
    result = run_job(generate(store, "big", count=2, seed=5))
    assert [Image.open(item["path"]).size for item in result.items] == [(256, 256)] * 2


def test_export_and_onnx_generation_at_128_px(store: Store) -> None:
    run_job(add_sample(store, "shapes", name="mid", count=8, size=128))
    tiny_model(store, "mid", "gan", "mid")  # 128 px trains on the CPU
    exported = run_job(export_model(store, "mid"))
    assert exported.networks["generator"]["max_abs_difference"] <= exported.networks["generator"]["tolerance"]
    result = run_job(generate(store, "mid", count=2, seed=3, backend="onnx"))
    assert result.backend == "onnx"
    assert [Image.open(item["path"]).size for item in result.items] == [(128, 128)] * 2
