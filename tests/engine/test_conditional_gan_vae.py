"""Class-conditional GAN (conditional batch norm + projection discriminator) and conditional VAE on the digits.

Each family trains one tiny conditional model on the 8x8 digits (once per module), exports it, and is
asked for digits: a small classifier trained in the session (the judge) must find the requested digit
far more often than chance, on both backends, through sampling, interpolation between classes and
(for the VAE) inpainting.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from studio.engine.checkpoints import load_model
from studio.engine.datasets.samples import add_sample, digits_images
from studio.engine.export import export_model
from studio.engine.families.base import Precision
from studio.engine.families.gan.model import GanFamily
from studio.engine.families.pipeline import Endpoint, Pipeline
from studio.engine.families.vae.model import VaeFamily
from studio.engine.generation import EndpointRef, generate, interpolate, open_model
from studio.engine.jobs import run_job
from studio.engine.library import model_folder
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.errors import StudioError
from studio.home import DataHome
from studio.store.database import Store, open_store
from tests.engine.class_judge import CHANCE, digit_judge

DIGITS = tuple(str(digit) for digit in range(10))
ASKED = ("0", "3", "7")  # the classes each test asks for
PER_CLASS = 50  # samples judged per asked class
HIT_RATE = 0.5  # the share of samples the judge must find to be the asked digit (chance: 0.1)
# Tiny but not too tiny: a few hundred steps at a high learning rate give a clear, seeded class signal.
SETTINGS: dict[str, dict[str, Any]] = {
    "gan": {"width": 16, "latent_dim": 16, "batch_size": 32, "learning_rate": 2e-3},
    "vae": {"width": 8, "latent_dim": 4, "batch_size": 32, "learning_rate": 3e-3, "kl_warmup": 100},
}
STEPS = {"gan": 500, "vae": 300}
FAMILIES = tuple(SETTINGS)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny networks gain nothing from threads, and on a shared machine two threads wait on each other."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def digits_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A home with the digits at 8x8 (the `digits8` fixture's dataset), shared by this module's models."""
    home = DataHome(tmp_path_factory.mktemp("conditional") / "home").ensure()
    store = open_store(home)
    run_job(add_sample(store, "digits", size=8))
    yield store
    store.close()


_trained: set[str] = set()


@pytest.fixture
def conditional(digits_home: Store, request: pytest.FixtureRequest) -> tuple[Store, str]:
    """The store and the name of a trained, exported conditional model of the test's family (made once)."""
    family = request.node.callspec.params["family"]
    name = f"c-{family}"
    if name not in _trained:
        options = TrainOptions(
            name,
            family=family,
            dataset="digits",
            steps=STEPS[family],
            settings=SETTINGS[family],
            checkpoint_every=STEPS[family],
            preview_every=0,
            threads=1,
        )
        run_job(train(digits_home, options))
        run_job(export_model(digits_home, name))
        _trained.add(name)
    return digits_home, name


def largest_difference(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    return int(np.abs(a.astype(int) - b.astype(int)).max())


def both_backends(store: Store, name: str) -> tuple[Pipeline, Pipeline]:
    with open_model(store, name, backend="torch") as on_torch, open_model(store, name, backend="onnx") as on_onnx:
        return on_torch.pipeline, on_onnx.pipeline


def real_digits(count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` digits (uint8 N x 8 x 8 x 1) and their labels, as the dataset holds them."""
    pairs = [(np.asarray(image, np.uint8), int(label)) for image, label in digits_images()][:count]
    return np.stack([image for image, _ in pairs])[..., None], np.array([label for _, label in pairs])


# --- asking for a class ------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_the_asked_digit_is_generated_far_more_often_than_chance(conditional: tuple[Store, str], family: str) -> None:
    store, name = conditional
    config = json.loads((model_folder(store, name) / "config.json").read_text())
    assert config["classes"] == list(DIGITS)  # conditional=auto on a labelled dataset
    judge = digit_judge()
    seeds = list(range(PER_CLASS))
    with open_model(store, name) as opened:
        rates = {digit: judge.hit_rate(opened.pipeline.sample(seeds, {"class": digit}), int(digit)) for digit in ASKED}
        # "any": each seed gets its own draw, and the image is that draw's digit.
        drawn = opened.pipeline.labels(seeds, opened.pipeline.sampling_options({}))
        anything = judge.hit_rate(opened.pipeline.sample(seeds, {}), drawn)
    print(f"{family} hit rates: {rates}, any class: {anything:.2f}")
    assert all(rate >= HIT_RATE for rate in rates.values()), rates
    assert anything >= HIT_RATE > 3 * CHANCE
    assert len(set(drawn.tolist())) > 5  # the draws cover the classes


@pytest.mark.parametrize("family", FAMILIES)
def test_export_gives_the_same_images_as_torch(conditional: tuple[Store, str], family: str) -> None:
    store, name = conditional
    on_torch, on_onnx = both_backends(store, name)
    seeds = list(range(20, 32))
    for options in ({"class": "3"}, {}):
        reference = on_torch.sample(seeds, options)
        assert largest_difference(on_onnx.sample(seeds, options), reference) <= 1
        assert reference.std() > 0
    if family == "vae":
        images, labels = real_digits(6)
        weights = on_torch.class_weights(labels)
        np.testing.assert_allclose(on_onnx.encode(images, weights), on_torch.encode(images, weights), atol=1e-4)
        known = np.zeros((6, 8, 8), bool)
        known[:, :, :4] = True
        filled = on_onnx.inpaint(images, known, seeds[:6], {"class": "7"})
        assert largest_difference(filled, on_torch.inpaint(images, known, seeds[:6], {"class": "7"})) <= 1


@pytest.mark.parametrize("family", FAMILIES)
def test_interpolation_walks_from_one_class_to_another(conditional: tuple[Store, str], family: str) -> None:
    store, name = conditional
    start, end = Endpoint(seed=5, class_name="3"), Endpoint(seed=9, class_name="7")
    on_torch, on_onnx = both_backends(store, name)
    frames = on_torch.interpolate(start, end, 6, {})
    assert frames.shape == (6, 8, 8, 1)
    assert largest_difference(on_onnx.interpolate(start, end, 6, {}), frames) <= 1
    # The end frames are those seeds' samples of those classes; the frames between them differ.
    assert largest_difference(frames[0], on_torch.sample([5], {"class": "3"})[0]) <= 1
    assert largest_difference(frames[-1], on_torch.sample([9], {"class": "7"})[0]) <= 1
    assert len({frame.tobytes() for frame in frames}) == 6
    weights = on_torch.interpolation_weights(start, end, 6)
    assert weights is not None and np.allclose(weights[:, 3] + weights[:, 7], 1) and weights[2, 3] > weights[3, 3]
    # Through the job: the frames are filed under the class that dominates them.
    result = run_job(
        interpolate(store, name, EndpointRef(seed=5, class_name="3"), EndpointRef(seed=9, class_name="7"), 6)
    )
    assert len(result.items) == 6
    if family == "vae":  # an image end is encoded with the class it is given
        images, _ = real_digits(2)
        through = on_torch.interpolate(Endpoint(image=images[0], class_name="0"), Endpoint(seed=9), 3, {})
        latent = on_torch.encode(images[:1], on_torch.class_weights(np.array([0])))
        assert (
            largest_difference(through[0], on_torch.decode(latent, {}, on_torch.class_weights(np.array([0])))[0]) <= 1
        )
        with pytest.raises(StudioError, match="needs a class"):
            on_torch.interpolate(Endpoint(image=images[0]), Endpoint(seed=9), 3, {})


@pytest.mark.parametrize("family", ["vae"])
def test_vae_inpaints_as_the_asked_class_and_previews_reconstructions(
    conditional: tuple[Store, str], family: str
) -> None:
    store, name = conditional
    judge = digit_judge()
    images, labels = real_digits(40)
    known = np.zeros((40, 8, 8), bool)
    known[:, 0, :] = True  # only the top row is known
    with open_model(store, name) as opened:
        filled = opened.pipeline.inpaint(images, known, list(range(40)), {"class": "7"})
    assert np.array_equal(filled[:, 0], images[:, 0])
    assert judge.hit_rate(filled, 7) >= HIT_RATE
    # The preview: originals, their reconstructions (each under the class the model finds likeliest),
    # then samples cycling through the classes.
    family = load_model(model_folder(store, name), torch.device("cpu"), with_optimizers=False).family
    family.train_mode(False)
    real = torch.from_numpy(images.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1)
    assert isinstance(family, VaeFamily)
    with torch.no_grad():
        likeliest = family.likeliest_labels(real)
        assert likeliest is not None and float((likeliest.numpy() == labels).mean()) >= HIT_RATE
        preview = family.preview(real, list(range(32)), family.sampling_options({}))
        figures = family.diagnostics(real).figures
    assert preview.shape == (32, 8, 8, 1) and np.array_equal(preview[:8], images[:8])
    assert judge.hit_rate(preview[8:16], labels[:8]) >= HIT_RATE  # reconstructions keep their digit
    assert judge.hit_rate(preview[16:], [index % 10 for index in range(16)]) >= HIT_RATE
    assert 0 < figures["reconstruction_error"] < 64


# --- bad requests and unconditional models ---------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_an_unknown_class_is_refused_in_one_line(conditional: tuple[Store, str], family: str) -> None:
    store, name = conditional
    for ask in (
        lambda: run_job(generate(store, name, 2, seed=1, options={"class": "11"})),
        lambda: run_job(interpolate(store, name, EndpointRef(seed=1, class_name="eleven"), EndpointRef(seed=2), 3)),
    ):
        with pytest.raises(StudioError, match="has no class") as refused:
            ask()
        assert "\n" not in str(refused.value) and "choose 0, 1, 2" in str(refused.value)
    with open_model(store, name) as opened:
        with pytest.raises(StudioError, match="class weights must be 2 x 10"):
            opened.pipeline.decode(np.zeros((2, SETTINGS[family]["latent_dim"]), np.float32), {}, np.zeros((2, 3)))
        with pytest.raises(StudioError, match="give each image's class weights"):
            opened.pipeline.decode(np.zeros((2, SETTINGS[family]["latent_dim"]), np.float32), {})


@pytest.mark.parametrize("family", FAMILIES)
def test_conditional_no_gives_an_unconditional_model(digits8: Store, family: str) -> None:
    settings = {**SETTINGS[family], "conditional": "no"}
    run_job(
        train(digits8, TrainOptions("u", family=family, dataset="digits", steps=2, settings=settings, preview_every=0))
    )
    loaded = load_model(model_folder(digits8, "u"), torch.device("cpu"), with_optimizers=False)
    assert not loaded.family.conditional and not loaded.config.get("classes")
    names = [key for network in loaded.family.networks().values() for key in network.state_dict()]
    assert not [key for key in names if key.split(".")[0] in ("modulations", "embed", "condition")]
    with pytest.raises(StudioError, match="not class-conditional"):
        run_job(generate(digits8, "u", 1, seed=1, options={"class": "3"}))
    made = run_job(generate(digits8, "u", 2, seed=1)).items
    assert len(made) == 2
    run_job(export_model(digits8, "u"))
    on_torch, on_onnx = both_backends(digits8, "u")
    assert largest_difference(on_onnx.sample([1, 2], {}), on_torch.sample([1, 2], {})) <= 1


def test_unconditional_networks_are_built_as_before_and_conditional_ones_average_their_class_layers() -> None:
    torch.manual_seed(0)
    plain = GanFamily(8, 1, SETTINGS["gan"])
    assert sorted(plain.generator.state_dict()) == sorted(plain.ema.state_dict())
    assert not any("modulations" in key for key in plain.generator.state_dict())
    assert not any("embed" in key for key in plain.discriminator.state_dict())
    gan = GanFamily(8, 1, SETTINGS["gan"], classes=DIGITS)
    before = {key: value.clone() for key, value in gan.ema.state_dict().items() if "modulations" in key}
    assert len(before) == 4  # gains and biases of the two batch norms of an 8 px generator
    batch, labels = torch.rand(8, 1, 8, 8) * 2 - 1, torch.arange(8)
    for step in range(3):
        gan.training_step(batch, step, Precision(torch.device("cpu")), labels)
    after = gan.ema.state_dict()
    assert all(not torch.equal(after[key], value) for key, value in before.items())  # the EMA follows them
    with pytest.raises(StudioError, match="labelled batches"):
        gan.training_step(batch, 3, Precision(torch.device("cpu")))
    vae = VaeFamily(8, 1, SETTINGS["vae"], classes=DIGITS)
    assert {"condition.weight"} <= set(vae.encoder.state_dict()) & set(vae.decoder.state_dict())
    assert not any("condition" in key for key in VaeFamily(8, 1, SETTINGS["vae"]).encoder.state_dict())
