"""The contrastive encoder: augmentations, training (cancel, resume), its ONNX export, the dataset's
vectors, the rules and the probe, and the one-line refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from studio.engine.datasets.samples import add_sample
from studio.engine.embedding.augment import augment
from studio.engine.embedding.network import nt_xent
from studio.engine.embedding.runtime import Embedder
from studio.engine.embedding.settings import DEFAULTS, MIN_IMAGES, encoder_settings
from studio.engine.embedding.training import STATE_FILE, EncoderOptions, encoder_folder, train_encoder
from studio.engine.jobs import CancelToken, Finished, run_job
from studio.engine.training import TrainingProgress
from studio.errors import StudioError
from studio.store.database import Store
from studio.store.embeddings import EmbeddingRepository
from tests.embedding.conftest import TINY_ENCODER, World

OFF = {name: False for name in ("crop", "flip", "colour_jitter", "grayscale", "blur", "cutout", "noise")}


@pytest.mark.parametrize("channels", [1, 3])
def test_augmentations_keep_shape_and_range_and_follow_the_seed(channels: int) -> None:
    images = torch.rand(6, channels, 16, 16) * 2 - 1
    settings = encoder_settings({})
    first = augment(images, settings, torch.Generator().manual_seed(1))
    again = augment(images, settings, torch.Generator().manual_seed(1))
    assert first.shape == images.shape and float(first.min()) >= -1 and float(first.max()) <= 1
    torch.testing.assert_close(first, again)
    assert not torch.allclose(first, augment(images, settings, torch.Generator().manual_seed(2)))
    # Every switch off: the views are the images.
    torch.testing.assert_close(augment(images, {**settings, **OFF}, torch.Generator()), images)


@pytest.mark.parametrize("switch", ["crop", "flip", "colour_jitter", "blur", "cutout", "noise"])
def test_each_augmentation_changes_the_views_on_its_own(switch: str) -> None:
    images = torch.rand(32, 3, 16, 16) * 2 - 1
    settings = {**encoder_settings({}), **OFF, switch: True}
    assert not torch.allclose(augment(images, settings, torch.Generator().manual_seed(0)), images)


def test_nt_xent_is_low_for_matching_views_and_high_for_shuffled_ones() -> None:
    views = torch.randn(16, 64, generator=torch.Generator().manual_seed(0))
    matched = nt_xent(views, views + 0.01 * torch.randn(16, 64), 0.1)
    shuffled = nt_xent(views, views.roll(1, dims=0), 0.1)
    assert float(matched) < 0.05 and float(shuffled) > 5.0


def test_settings_refuse_unknown_names_and_bad_values() -> None:
    assert encoder_settings({"flip": "off"})["flip"] is False
    with pytest.raises(StudioError, match="unknown encoder setting 'flipp'"):
        encoder_settings({"flipp": True})
    with pytest.raises(StudioError, match="temperature"):
        encoder_settings({"temperature": 0})
    assert set(DEFAULTS) >= {"crop", "flip", "colour_jitter", "grayscale", "blur", "cutout", "noise"}


def test_trained_encoder_is_registered_with_files_vectors_rules_and_probe(world: World) -> None:
    result = world.encoder
    assert result.status == "completed" and result.steps == 40 and result.encoder is not None
    encoder = result.encoder
    folder = world.store.home.absolute(encoder.folder)
    assert {"encoder.onnx", "encoder.safetensors", "config.json"} <= {p.name for p in folder.iterdir()}
    assert folder.name == encoder.weights_hash[:16]
    config = json.loads((folder / "config.json").read_text())
    assert config["dataset"] == "digits" and config["dims"] == encoder.dims == 64
    repository = EmbeddingRepository(world.store)
    vectors = repository.vectors(encoder, "dataset")
    assert len(vectors.owners) == 1797
    np.testing.assert_allclose(np.linalg.norm(vectors.matrix, axis=1), 1.0, atol=1e-5)
    assert 0 < encoder.memorised_threshold < 2 and 0 < encoder.duplicate_threshold < 2
    # The probe is the encoder's honesty check: far above always guessing the commonest digit.
    assert encoder.metrics["probe_accuracy"] >= 0.9 > 0.2 > encoder.metrics["probe_chance"]
    assert not (encoder_folder(world.store, "digits") / STATE_FILE).exists()


def test_onnx_embeddings_match_torch_and_do_not_depend_on_the_batch(world: World) -> None:
    from safetensors.torch import load_file

    from studio.engine.datasets.storage import load_images
    from studio.engine.embedding.network import ContrastiveEncoder, EmbeddingNetwork
    from studio.engine.embedding.preprocess import to_input

    encoder = world.encoder.encoder
    assert encoder is not None
    folder = world.store.home.absolute(encoder.folder)
    network = EmbeddingNetwork(ContrastiveEncoder(1, TINY_ENCODER["width"]))
    network.load_state_dict(load_file(folder / "encoder.safetensors"))
    images = np.asarray(load_images(world.store, "digits"))[:40]
    with torch.no_grad():
        expected = network.eval()(torch.from_numpy(to_input(images, 16, 1))).numpy()
    embedder = Embedder(folder)
    np.testing.assert_allclose(embedder.embed(images), expected, atol=1e-4)
    np.testing.assert_allclose(embedder.embed(images[7:8]), expected[7:8], atol=1e-4)
    stored = EmbeddingRepository(world.store).vectors(encoder, "dataset").matrix[:40]
    np.testing.assert_allclose(stored, expected, atol=1e-4)


def test_cancel_keeps_the_state_and_resume_continues_it(store: Store) -> None:
    run_job(add_sample(store, "digits", size=8))
    cancel = CancelToken()
    seen = []
    job = train_encoder(store, EncoderOptions("digits", steps=500, settings=TINY_ENCODER), cancel)
    for event in job:
        if isinstance(event, TrainingProgress):
            seen.append(event.step)
            if event.step >= 3:
                cancel.cancel()
        if isinstance(event, Finished):
            stopped = event.result
    assert stopped.status == "cancelled" and stopped.encoder is None and stopped.steps >= 3
    assert (encoder_folder(store, "digits") / STATE_FILE).is_file()
    assert stopped.as_dict()["resume"] == "studio embed train digits --resume"
    with pytest.raises(StudioError, match="cannot change when resuming"):
        run_job(train_encoder(store, EncoderOptions("digits", steps=2, settings={"width": 32}, resume=True)))
    resumed = run_job(train_encoder(store, EncoderOptions("digits", steps=2, resume=True)))
    assert resumed.status == "completed" and resumed.steps == stopped.steps + 2
    assert resumed.encoder is not None and resumed.encoder.settings["width"] == TINY_ENCODER["width"]
    with pytest.raises(StudioError, match="no stopped encoder training of 'digits' to resume"):
        run_job(train_encoder(store, EncoderOptions("digits", steps=2, resume=True)))


def test_a_new_encoder_replaces_the_old_ones_vectors(store: Store) -> None:
    run_job(add_sample(store, "digits", size=8))
    first = run_job(train_encoder(store, EncoderOptions("digits", steps=2, settings=TINY_ENCODER))).encoder
    second = run_job(train_encoder(store, EncoderOptions("digits", steps=2, seed=1, settings=TINY_ENCODER))).encoder
    repository = EmbeddingRepository(store)
    assert repository.current_encoder(second.dataset_id).id == second.id != first.id
    assert len(repository.vectors(first, "dataset").rows) == 0
    assert len(repository.vectors(second, "dataset").rows) == 1797
    assert [e.id for e in repository.encoders(second.dataset_id)] == [second.id, first.id]


def test_shapes_in_colour_train_too(store: Store) -> None:
    run_job(add_sample(store, "shapes", size=16, count=64))
    result = run_job(train_encoder(store, EncoderOptions("shapes", steps=3, settings=TINY_ENCODER)))
    assert result.encoder is not None and result.encoder.channels == 3
    assert result.encoder.metrics["probe_accuracy"] is not None


def test_refusals_are_one_line(store: Store) -> None:
    run_job(add_sample(store, "shapes", size=16, count=MIN_IMAGES - 1))
    with pytest.raises(
        StudioError, match=f"has {MIN_IMAGES - 1} images: an encoder needs at least {MIN_IMAGES}"
    ) as caught:
        run_job(train_encoder(store, EncoderOptions("shapes", steps=2)))
    assert "\n" not in str(caught.value)
    with pytest.raises(StudioError, match="no dataset named 'nope'"):
        run_job(train_encoder(store, EncoderOptions("nope", steps=2)))
    with pytest.raises(StudioError, match="--steps must be at least 1"):
        run_job(train_encoder(store, EncoderOptions("shapes", steps=0)))


def test_an_encoder_of_another_dataset_is_refused(world: World) -> None:
    encoder = world.encoder.encoder
    assert encoder is not None
    with pytest.raises(StudioError, match="was trained on another dataset"):
        Embedder(world.store.home.absolute(encoder.folder), expected_fingerprint="0" * 64)
