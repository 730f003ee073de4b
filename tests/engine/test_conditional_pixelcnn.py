"""Class-conditional PixelCNN: asking for a digit gives it, the class is an input of the export, and both
backends give the same image for the same seed and class."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.engine.checkpoints import load_model
from studio.engine.datasets.samples import add_sample
from studio.engine.export import export_model
from studio.engine.families.pixelcnn.model import GatedLayer, GatedPixelCnn, PixelCnnFamily
from studio.engine.families.pixelcnn.pipeline import PixelCnnPipeline
from studio.engine.jobs import run_job
from studio.engine.runtime import load_exported
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.errors import StudioError
from studio.home import DataHome
from studio.store.database import Store, open_store
from tests.engine.class_judge import CHANCE, digit_judge

DIGITS = [str(digit) for digit in range(10)]
# Small enough to train in seconds, large enough to learn what each digit looks like at 8x8; the logistic
# mixture output, so the export parity below covers it (the softmax's is in test_export_runtime).
SETTINGS = {"layers": 3, "width": 24, "batch_size": 32, "learning_rate": 3e-3, "output": "logistic_mixture"}
STEPS = 300
ASKED = ("0", "1")  # two digits unlike each other: a model that ignores the class cannot get both
SAMPLES = 40


@pytest.fixture(scope="module")
def digits_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A home with the digits at 8x8 grey (the `digits8` sample), a trained conditional PixelCNN, exported."""
    home = DataHome(tmp_path_factory.mktemp("conditional-pixelcnn") / "home").ensure()
    store = open_store(home)
    run_job(add_sample(store, "digits", size=8))
    options = TrainOptions("cond", family="pixelcnn", dataset="digits", steps=STEPS, settings=SETTINGS, seed=0)
    run_job(train(store, options))
    run_job(export_model(store, "cond"))
    yield store
    store.close()


def model_folder(store: Store, name: str) -> Path:
    return store.home.models / name


def torch_family(store: Store, name: str = "cond") -> PixelCnnFamily:
    family = load_model(model_folder(store, name), torch.device("cpu"), with_optimizers=False).family
    assert isinstance(family, PixelCnnFamily)
    family.train_mode(False)
    return family


def onnx_pipeline(store: Store) -> PixelCnnPipeline:
    pipeline = load_exported(model_folder(store, "cond") / "onnx", "cpu").pipeline
    assert isinstance(pipeline, PixelCnnPipeline)
    return pipeline


def largest_difference(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    return int(np.abs(a.astype(int) - b.astype(int)).max())


def test_a_labelled_dataset_makes_a_conditional_mixture_model(digits_home: Store) -> None:
    config = json.loads((model_folder(digits_home, "cond") / "config.json").read_text())
    assert config["classes"] == DIGITS and config["hyperparameters"]["output"] == "logistic_mixture"
    family = torch_family(digits_home)
    assert family.conditional and family.network.class_count == 10
    manifest = json.loads((model_folder(digits_home, "cond") / "onnx" / "manifest.json").read_text())
    assert manifest["classes"] == DIGITS
    assert manifest["networks"]["pixelcnn"]["inputs"] == ["image", "class_weights"]


def test_asking_for_a_digit_gives_that_digit_far_more_often_than_chance(digits_home: Store) -> None:
    family = torch_family(digits_home)
    judge = digit_judge()
    seeds = list(range(SAMPLES))
    for digit in ASKED:
        images = family.sample(seeds, {"class": digit})
        rate = judge.hit_rate(images, int(digit))
        assert rate >= 3 * CHANCE, f"asked for {digit}, the judge found it in {rate:.0%} of the samples"


def test_the_class_changes_the_image_and_any_class_is_each_seeds_own_draw(digits_home: Store) -> None:
    pipeline = torch_family(digits_home).pipeline()
    zeros, ones = pipeline.sample([4, 5], {"class": "0"}), pipeline.sample([4, 5], {"class": "1"})
    assert not np.array_equal(zeros, ones)
    # Any class: each seed draws its own, the same alone or in a batch, and asking for that class repeats it.
    drawn = pipeline.labels([4, 5], {"class": None})
    assert drawn is not None
    mixed = pipeline.sample([4, 5], {})
    assert np.array_equal(mixed[1], pipeline.sample([5], {})[0])
    assert np.array_equal(mixed[0], pipeline.sample([4], {"class": DIGITS[int(drawn[0])]})[0])
    with pytest.raises(StudioError, match="no class '12'"):
        pipeline.sample([1], {"class": "12"})


def test_same_seed_and_class_same_image_on_both_backends(digits_home: Store) -> None:
    runtime, reference = onnx_pipeline(digits_home), torch_family(digits_home).pipeline()
    for options in ({"class": "7"}, {}):
        onnx_images, torch_images = runtime.sample([3, 11, 12], options), reference.sample([3, 11, 12], options)
        assert largest_difference(onnx_images, torch_images) <= 2
        assert onnx_images.std() > 0


def test_completion_takes_the_class_on_both_backends(digits_home: Store) -> None:
    runtime, reference = onnx_pipeline(digits_home), torch_family(digits_home).pipeline()
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (2, 8, 8, 1), dtype=np.uint8)
    known = np.zeros((2, 8, 8), bool)
    known[:, :3] = True  # the top rows known
    filled = runtime.inpaint(images, known, [7, 8], {"class": "3"})
    assert np.array_equal(filled[:, :3], images[:, :3])
    assert largest_difference(filled, reference.inpaint(images, known, [7, 8], {"class": "3"})) <= 2
    assert not np.array_equal(filled, reference.inpaint(images, known, [7, 8], {"class": "4"}))


def test_the_class_embedding_is_linear_and_zero_weights_mean_no_class() -> None:
    torch.manual_seed(0)
    network = GatedPixelCnn(1, layers=2, width=12, output="logistic_mixture", class_count=3).eval()
    layer = network.layers[0]
    assert isinstance(layer, GatedLayer) and layer.class_vertical is not None and layer.class_horizontal is not None
    assert layer.class_vertical.bias is None and layer.class_horizontal.bias is None
    images = torch.rand(2, 1, 8, 8) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(network(images, torch.zeros(2, 3)), network(images))
        first, second = torch.eye(3)[[0]], torch.eye(3)[[2]]
        mix = 0.3 * first + 0.7 * second
        embedded = layer.class_vertical(mix)
        torch.testing.assert_close(embedded, 0.3 * layer.class_vertical(first) + 0.7 * layer.class_vertical(second))
        assert not torch.allclose(network(images, first.expand(2, 3)), network(images, second.expand(2, 3)))


def test_conditional_no_gives_an_unconditional_model(digits_home: Store) -> None:
    settings = {"layers": 1, "width": 6, "batch_size": 8, "conditional": "no"}
    run_job(train(digits_home, TrainOptions("plain", family="pixelcnn", dataset="digits", steps=2, settings=settings)))
    family = torch_family(digits_home, "plain")
    assert not family.conditional and family.network.class_count == 0
    assert not any("class" in key for key in family.network.state_dict())
    assert family.sample([1, 2], {}).shape == (2, 8, 8, 1)
    with pytest.raises(StudioError, match="not class-conditional"):
        family.sample([1], {"class": "3"})
