"""Transfer learning: a published diffusers model, imported, fine-tuned on a Studio dataset (`--init-from`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DDPMPipeline, DDPMScheduler, LDMPipeline, UNet2DModel, VQModel
from diffusers.schedulers import DDIMScheduler

from studio.engine.checkpoints import load_model
from studio.engine.importers import import_any
from studio.engine.jobs import run_job
from studio.engine.library import model_folder
from studio.engine.training import TrainingProgress, train
from studio.engine.training_options import TrainOptions
from studio.store.database import Store

UNET = {
    "sample_size": 8,
    "in_channels": 1,
    "out_channels": 1,
    "block_out_channels": [8, 16],
    "layers_per_block": 1,
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D"],
    "up_block_types": ["AttnUpBlock2D", "UpBlock2D"],
    "norm_num_groups": 8,
}


def _ddpm(folder: Path) -> Path:
    torch.manual_seed(0)
    scheduler = DDPMScheduler(num_train_timesteps=100, beta_schedule="linear", variance_type="fixed_large")
    DDPMPipeline(unet=UNet2DModel(**UNET), scheduler=scheduler).save_pretrained(folder)
    return folder


def _ldm(folder: Path) -> Path:
    """An LDMPipeline over 8 px grey images: a VQModel halving the size, a U-Net on its 4 x 4 latents."""
    torch.manual_seed(0)
    vqvae = VQModel(
        in_channels=1,
        out_channels=1,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        block_out_channels=[8, 16],
        latent_channels=2,
        num_vq_embeddings=32,
        norm_num_groups=8,
        sample_size=8,
    )
    unet = UNet2DModel(
        sample_size=4,
        in_channels=2,
        out_channels=2,
        block_out_channels=[8, 16],
        layers_per_block=1,
        down_block_types=["DownBlock2D", "DownBlock2D"],
        up_block_types=["UpBlock2D", "UpBlock2D"],
        norm_num_groups=8,
    )
    scheduler = DDIMScheduler(
        num_train_timesteps=100, beta_schedule="scaled_linear", beta_start=0.0015, beta_end=0.0195, clip_sample=False
    )
    LDMPipeline(vqvae=vqvae, unet=unet, scheduler=scheduler).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("kind", ["ddpm", "ldm"])
def test_an_imported_model_fine_tunes_on_a_studio_dataset(digits8: Store, tmp_path: Path, kind: str) -> None:
    source = (_ddpm if kind == "ddpm" else _ldm)(tmp_path / kind)
    published = import_any(digits8, source, "published")
    before = load_model(model_folder(digits8, "published"), with_optimizers=False).family
    events: list[object] = []
    job = train(
        digits8,
        TrainOptions(
            "tuned", dataset="digits", init_from="published", steps=3, preview_every=0, settings={"batch_size": 8}
        ),
    )
    run_job(job, events.append)
    tuned = load_model(model_folder(digits8, "tuned"), with_optimizers=False)
    family = tuned.family
    assert family.name == published.family and tuned.config["architecture"]["unet"] == before.architecture()["unet"]
    # The published network is where training started: it moved, but only a little in three steps.
    start = before.networks()["ema"].state_dict()
    moved = [float((value - start[key]).abs().max()) for key, value in family.networks()["unet"].state_dict().items()]
    assert max(moved) > 0
    losses = [event.losses for event in events if isinstance(event, TrainingProgress)]
    assert losses and all(np.isfinite(list(loss.values())).all() for loss in losses)
    if kind == "ldm":
        # The autoencoder was trained already: no first stage, the U-Net trains from the first step, and
        # the autoencoder and its latent scale stay exactly the published ones.
        assert all(set(loss) == {"loss"} for loss in losses)
        assert tuned.config["architecture"]["scaling_factor"] == before.architecture()["scaling_factor"]
        for key, value in family.networks()["autoencoder"].state_dict().items():
            assert torch.equal(value, before.networks()["autoencoder"].state_dict()[key])
    images = family.pipeline().sample([0, 1], {"steps": 4})
    assert images.shape == (2, 8, 8, 1)
