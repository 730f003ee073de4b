"""Fixtures for engine tests: small datasets and tiny settings that keep each family fast."""

from __future__ import annotations

from typing import Any

import pytest

from studio.engine.datasets.samples import add_sample
from studio.engine.jobs import run_job
from studio.store.database import Store

TINY: dict[str, dict[str, Any]] = {
    "gan": {"width": 8, "latent_dim": 8, "batch_size": 8},
    "vae": {"width": 8, "latent_dim": 4, "batch_size": 8},
    "pixelcnn": {"layers": 1, "width": 6, "batch_size": 8},
    "gpt": {
        "downscale": 4,
        "codebook_size": 16,
        "code_dim": 8,
        "vq_width": 8,
        "width": 16,
        "layers": 1,
        "heads": 2,
        "vq_steps": 2,
        "batch_size": 8,
    },
    "diffusion": {"width": 8, "timesteps": 50, "attention": False, "batch_size": 8, "steps": 3},
    "latent_diffusion": {
        "width": 8,
        "autoencoder_width": 8,
        "latent_channels": 2,
        "autoencoder_steps": 2,
        "timesteps": 50,
        "attention": False,
        "batch_size": 8,
        "steps": 3,
    },
}


@pytest.fixture
def digits8(store: Store) -> Store:
    """The store with the digits sample at 8x8 (grey)."""
    run_job(add_sample(store, "digits", size=8))
    return store
