"""`python -m studio.ui.screenshots DIR`: a PNG of every page, from a real (small) session.

It builds a temporary data home (never the user's): the two sample datasets, a VAE and a GAN
trained for a few hundred steps on the digits (class-conditional: the digits are labelled), an ONNX
export, a latent diffusion pipeline imported from the diffusers layout, generated, rated, tagged,
interpolated and inpainted gallery items, and the digits' contrastive encoder (for the map); then
opens the main window offscreen, puts each page in
a telling state (a training run in progress on the Train page, a painted mask on Inpaint...) and
saves `DIR/<page>.png`. Takes a minute or two on a laptop CPU.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

WIDTH, HEIGHT = 1280, 820


def _prepare(home_root: Path) -> None:
    """The session the screenshots show, made through the engine as the CLI would."""
    from studio.engine.datasets.samples import add_sample
    from studio.engine.embedding.training import EncoderOptions, train_encoder
    from studio.engine.export import export_model
    from studio.engine.generation import EndpointRef, generate, inpaint, interpolate
    from studio.engine.jobs import run_job
    from studio.engine.training import train
    from studio.engine.training_options import TrainOptions
    from studio.home import DataHome
    from studio.store.collections import CollectionRepository
    from studio.store.database import open_store
    from studio.store.gallery import GalleryFilter, GalleryRepository

    store = open_store(DataHome(home_root).ensure())
    try:
        run_job(add_sample(store, "digits", size=16))
        run_job(add_sample(store, "shapes", size=32, count=400))
        run_job(
            train(
                store,
                TrainOptions(
                    "digits-vae",
                    family="vae",
                    dataset="digits",
                    steps=600,
                    preview_every=0,
                    settings={"kl_warmup": 100},
                ),
            )
        )
        # Milestones every 200 steps: the Models page shows them with their sample grids.
        gan = TrainOptions(
            "digits-gan", family="gan", dataset="digits", steps=400, preview_every=0, milestone_every=200
        )
        run_job(train(store, gan))
        run_job(train(store, replace(gan, steps=800, resume=True)))  # a second run, for the History tab
        run_job(export_model(store, "digits-vae"))
        made = run_job(generate(store, "digits-gan", 24, seed=100)).items
        made += run_job(generate(store, "digits-vae", 16, seed=200, backend="onnx")).items
        repository = GalleryRepository(store)
        ids = [item["id"] for item in made]
        repository.rate(ids[:6], 5)
        repository.rate(ids[6:12], 3)
        repository.set_flag(ids[:4], "pick")
        repository.set_flag(ids[20:22], "reject")
        repository.tag(ids[:8], "keepers")
        collections = CollectionRepository(store)
        collections.create("Best digits")
        repository.collect(ids[:6], "Best digits")
        checkpoints = repository.query(GalleryFilter(model="digits-gan", operation="checkpoint"), "oldest", 100).items
        repository.rate([item.id for item in checkpoints[-8:]], 4)  # the last milestone's grid, rated
        run_job(
            interpolate(store, "digits-vae", EndpointRef(seed=200), EndpointRef(seed=205), frames=8, backend="onnx")
        )
        mask = np.zeros((16, 16), bool)
        mask[8:] = True
        run_job(inpaint(store, "digits-vae", f"#{ids[24]}", mask, count=4, seed=7, backend="onnx"))
        _import_published(store, home_root.parent / "ldm-celebahq")
        # A minute of encoder training already groups the digits by class on the map.
        run_job(train_encoder(store, EncoderOptions("digits", minutes=1.0, settings={"input_size": 16})))
    finally:
        store.close()


def _import_published(store: object, folder: Path) -> None:
    """A latent diffusion pipeline in CompVis/ldm-celebahq-256's layout (small widths, 64 px, random
    weights) saved by diffusers with a model card, imported as a user would bring one in."""
    import importlib

    import torch

    from studio.engine.importers import import_any

    diffusers: Any = importlib.import_module("diffusers")  # untyped: reached through Any
    DDIMScheduler, LDMPipeline = diffusers.DDIMScheduler, diffusers.LDMPipeline  # noqa: N806 (class names)
    UNet2DModel, VQModel = diffusers.UNet2DModel, diffusers.VQModel  # noqa: N806

    torch.manual_seed(0)
    vqvae = VQModel(
        block_out_channels=[16, 32, 32],
        down_block_types=["DownEncoderBlock2D"] * 3,
        up_block_types=["UpDecoderBlock2D"] * 3,
        latent_channels=3,
        num_vq_embeddings=512,
        norm_num_groups=8,
        sample_size=64,
    )
    unet = UNet2DModel(
        sample_size=16,
        in_channels=3,
        out_channels=3,
        block_out_channels=[16, 32, 48, 64],
        down_block_types=["DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"],
        up_block_types=["AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
        attention_head_dim=8,
        norm_num_groups=8,
    )
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.0015, beta_end=0.0195, clip_sample=False)
    LDMPipeline(vqvae=vqvae, unet=unet, scheduler=scheduler).save_pretrained(folder)
    (folder / "README.md").write_text(
        "---\nlicense: apache-2.0\ntags:\n- diffusers\n---\n\n# Latent Diffusion Models (LDM)\n\n"
        "**Paper**: High-Resolution Image Synthesis with Latent Diffusion Models\n\n"
        "An unconditional latent diffusion model of faces: a VQ autoencoder shrinks each 256 px image to a "
        "64 x 64 x 3 latent grid and a U-Net denoises those latents (here in a small copy of that layout).\n"
    )
    import_any(store, folder, "ldm-faces")  # type: ignore[arg-type]


def _settle(app: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        app.processEvents()  # type: ignore[attr-defined]
        time.sleep(0.02)


def _wait(app: object, done: Callable[[], bool], seconds: float) -> None:
    """Process events until `done()` is true (or `seconds` pass)."""
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        app.processEvents()  # type: ignore[attr-defined]
        time.sleep(0.02)


def capture(destination: Path) -> list[Path]:
    """Make the session, open the window offscreen, save one PNG per page; returns the files."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    root = Path(tempfile.mkdtemp(prefix="studio-screenshots-"))
    os.environ["STUDIO_HOME"] = str(root / "home")
    try:
        _prepare(root / "home")
        from PySide6.QtCore import QSettings
        from PySide6.QtWidgets import QApplication

        from studio.home import DataHome
        from studio.store.database import open_store
        from studio.ui.main_window import MainWindow

        existing = QApplication.instance()
        app = existing if isinstance(existing, QApplication) else QApplication(["studio-screenshots"])
        app.setStyle("Fusion")
        store = open_store(DataHome(root / "home"))
        window = MainWindow(store, QSettings(str(root / "settings.ini"), QSettings.Format.IniFormat))
        window.confirm_close = lambda: True
        window.resize(WIDTH, HEIGHT)
        window.show()
        destination.mkdir(parents=True, exist_ok=True)
        saved = []
        try:
            for key in window.page_keys:
                window.show_page(key)
                _stage(window, key, app)
                _settle(app, 0.8)
                path = destination / f"{key}.png"
                window.grab().save(str(path))
                saved.append(path)
                if key == "train":
                    window.page["train"].cancel()
                    window.runner.wait_idle(60_000)
            saved += _extra_shots(window, app, destination)
        finally:
            window.close()
            store.close()
        return saved
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _extra_shots(window: Any, app: object, destination: Path) -> list[Path]:
    """Views inside pages: a model's training history, its milestones."""
    shots: list[Path] = []
    window.show_page("train")
    train = window.page["train"]
    train.monitor.plot_tabs.setCurrentWidget(train.history)
    train.history.select_model("digits-gan")
    _settle(app, 1.5)
    shots.append(destination / "train-history.png")
    window.grab().save(str(shots[-1]))
    window.show_page("models")
    window.page["models"].refresh(select="digits-gan")
    _settle(app, 2.0)
    shots.append(destination / "milestones.png")
    window.grab().save(str(shots[-1]))
    return shots


def _stage(window: object, key: str, app: object) -> None:
    """Put a page in the state worth showing."""
    page = window.page[key]  # type: ignore[attr-defined]
    if key == "datasets":
        page.refresh(select="digits")
    elif key == "models":
        page.refresh(select="ldm-faces")
    elif key == "train":
        page.setup.set_mode("new")
        page.setup.set_family("diffusion")
        page.setup.set_dataset("digits")
        page.setup.name_edit.setText("digits-diffusion")
        page.setup.steps_spin.setValue(100_000)
        page.setup.preview_every_spin.setValue(60)
        page.start()
        # Long enough for the loss curve to take shape and two previews to arrive.
        _settle(app, 25)
    elif key == "generate":
        page.refresh()
        page.model_picker.select("digits-gan")
        page.findChild(object, "generateClassCombo").choose("7")  # the GAN learnt the digits' classes
        button = page.findChild(object, "generateButton")
        button.click()
        window.runner.wait_idle(60_000)  # type: ignore[attr-defined]
    elif key == "gallery":
        sort = page.findChild(object, "sortCombo")
        sort.setCurrentIndex(max(0, sort.findData("rating")))
        page.refresh()
        _settle(app, 1.0)
        view = page.findChild(object, "galleryView")
        if view is not None and view.model().rowCount() > 1:
            view.setCurrentIndex(view.model().index(1, 0))
    elif key == "map":
        page.refresh()
        _wait(app, lambda: not page.loading, 30)
        combo = page.findChild(object, "mapDatasetCombo")
        combo.setCurrentIndex(max(0, combo.findData("digits")))
        _wait(app, lambda: not page.loading, 120)  # the gallery items are embedded first
        colour = page.findChild(object, "mapColourCombo")
        colour.setCurrentIndex(max(0, colour.findData("model")))
    elif key == "interpolate":
        page.refresh()
        page.findChild(object, "interpolateModelCombo").select("digits-vae")
        page.findChild(object, "interpolateFramesSpin").setValue(12)
        page.findChild(object, "interpolateFromEdit").setText("200")
        page.findChild(object, "interpolateToEdit").setText("205")
        page.findChild(object, "interpolateFromClassCombo").choose("3")  # a walk from a 3 to an 8
        page.findChild(object, "interpolateToClassCombo").choose("8")
        page.run()
        window.runner.wait_idle(60_000)  # type: ignore[attr-defined]
    elif key == "inpaint":
        page.refresh()
        from studio.store.gallery import GalleryFilter, GalleryRepository

        items = (
            GalleryRepository(page.context.store)
            .query(GalleryFilter(model="digits-vae", operation="sample"), "oldest", 1)
            .items
        )
        if items:
            page.load_gallery_item(items[0].id)
            canvas = page.findChild(object, "inpaintCanvas")
            mask = np.zeros(canvas.mask_values().shape, np.float32)
            mask[mask.shape[0] // 2 :] = 1.0
            canvas.set_mask(mask)
            page.run()
            window.runner.wait_idle(60_000)  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    """Save the screenshots to DIR (default docs/screenshots)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", nargs="?", default="docs/screenshots", help="where to write the PNGs")
    args = parser.parse_args(argv)
    for path in capture(Path(args.directory)):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
