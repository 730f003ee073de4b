"""A small world for the encoder tests, built once per module: digits at 16 px, a tiny encoder, a
tiny GAN trained on the digits and some gallery items (one of them an exact copy of a training image)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from studio.engine.datasets.samples import add_sample
from studio.engine.datasets.storage import load_images
from studio.engine.embedding.training import EncoderOptions, EncoderResult, train_encoder
from studio.engine.generation import generate, write_png
from studio.engine.jobs import run_job
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.home import DataHome
from studio.store.database import Store, open_store
from studio.store.gallery import GalleryRepository
from studio.store.tables import Model

# Small enough to train in a few seconds; the probe and the rules still have something to measure.
TINY_ENCODER: dict[str, Any] = {"width": 16, "input_size": 16, "batch_size": 64, "projection_dims": 16}


@dataclass
class World:
    """What the tests share: the store, the encoder's result, the generated items and the copied one."""

    store: Store
    encoder: EncoderResult
    items: list[int]  # seeds 0..5 of the GAN, then seed 0 again (a duplicate of items[0])
    copy_id: int  # a gallery item whose pixels are training image 3
    copy_position: int


def build_world(root: Path) -> World:
    """Make the shared world under `root` (its own data home)."""
    store = open_store(DataHome(root).ensure())
    run_job(add_sample(store, "digits", size=16))
    encoder = run_job(train_encoder(store, EncoderOptions("digits", steps=40, settings=TINY_ENCODER)))
    gan = {"width": 8, "latent_dim": 8, "batch_size": 8}
    run_job(train(store, TrainOptions("g", family="gan", dataset="digits", steps=3, settings=gan)))
    made = run_job(generate(store, "g", count=6, seed=0)).items
    again = run_job(generate(store, "g", count=1, seed=0)).items
    position = 3
    image = np.asarray(load_images(store, "digits"))[position]
    path = store.home.gallery / "g" / "copied.png"
    write_png(path, image, {"note": "a training image, copied"})
    with store.session() as session:
        model_id = session.scalar(select(Model.id).where(Model.name == "g"))
    copied = GalleryRepository(store).add(
        store.home.relative(path), "g", "gan", 16, 16, model_id=model_id, seed=None, operation="sample"
    )
    return World(store, encoder, [i["id"] for i in made + again], copied.id, position)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The shared world (module scope: training it once keeps the suite fast)."""
    built = build_world(tmp_path_factory.mktemp("world"))
    yield built
    built.store.close()
