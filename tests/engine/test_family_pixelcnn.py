"""The PixelCNN family: causal masking, shapes, both outputs (256-way softmax and logistic mixture),
training, seeded sampling and completion, and models made before the output setting."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from studio.engine.checkpoints import CHECKPOINT_FILE, CONFIG_FILE, load_model, weights_hash
from studio.engine.datasets.samples import add_sample
from studio.engine.families.base import Precision
from studio.engine.families.pixelcnn.model import (
    LEVELS,
    WARMUP_STEPS,
    GatedPixelCnn,
    PixelCnnFamily,
    mixture_log_probabilities,
)
from studio.engine.jobs import run_job
from studio.engine.library import model_folder
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.errors import StudioError
from studio.store.database import Store

TINY = {"layers": 2, "width": 12}
MIXTURE = "logistic_mixture"
OUTPUTS = ("softmax", MIXTURE)


def tiny_family(resolution: int = 8, channels: int = 3, **overrides: object) -> PixelCnnFamily:
    """A seeded, few-thousand-parameter family so tests are fast and repeatable."""
    torch.manual_seed(0)
    return PixelCnnFamily(resolution, channels, {**TINY, **overrides})


def input_gradients(network: GatedPixelCnn, channels: int, size: int) -> np.ndarray:
    """Gradient of each sub-pixel's logits w.r.t. the input, for every sub-pixel at once.

    Returns (H, W, C, H, W, C): [r, c, ch] is the gradient of a random projection of the distribution's
    parameters at (r, c, ch) (the logits, or the mixture's numbers, from which that sub-pixel's logits
    alone are computed). Each target sub-pixel gets its own batch item, so one backward pass gives all.
    """
    torch.manual_seed(1)
    positions = [(r, c, ch) for r in range(size) for c in range(size) for ch in range(channels)]
    inputs = (torch.rand(len(positions), channels, size, size) * 2 - 1).requires_grad_(True)
    logits = network.distribution(inputs)
    # A random projection rather than a sum, so no structure in the weights can cancel a dependency.
    projection = torch.randn(network.distribution_size)
    rows, columns, chans = (torch.tensor(axis) for axis in zip(*positions, strict=True))
    picked = logits[torch.arange(len(positions)), :, chans, rows, columns]
    (picked @ projection).sum().backward()
    assert inputs.grad is not None
    gradients = inputs.grad.permute(0, 2, 3, 1).numpy()  # (positions, H, W, C)
    return gradients.reshape(size, size, channels, size, size, channels)


@pytest.mark.parametrize(
    ("channels", "width", "output"),
    [(1, 12, "softmax"), (3, 12, "softmax"), (3, 10, "softmax"), (1, 12, "logistic_mixture"), (3, 10, MIXTURE)],
)
def test_logits_never_depend_on_the_current_or_later_sub_pixels(channels: int, width: int, output: str) -> None:
    size = 8
    torch.manual_seed(0)
    network = GatedPixelCnn(channels, layers=3, width=width, output=output)
    gradients = input_gradients(network, channels, size)
    # Raster order: row, then column, then channel (R -> G -> B inside a pixel).
    order = np.arange(size * size * channels).reshape(size, size, channels)
    for r in range(size):
        for c in range(size):
            for ch in range(channels):
                dependence = np.abs(gradients[r, c, ch]) > 0
                assert not dependence[order >= order[r, c, ch]].any(), f"({r}, {c}, {ch}) sees itself or later"
                # The nearest earlier neighbours must be seen: earlier channels, the pixel left, the pixel above.
                assert dependence[r, c, :ch].all()
                if c > 0:
                    assert dependence[r, c - 1].all(), f"({r}, {c}, {ch}) misses the pixel to its left"
                if r > 0:
                    assert dependence[r - 1, c].all(), f"({r}, {c}, {ch}) misses the pixel above"


@pytest.mark.parametrize("channels", [1, 3])
def test_no_blind_spot_the_last_row_sees_every_earlier_sub_pixel(channels: int) -> None:
    # The original PixelCNN misses pixels above and to the right; the two stacks must not.
    size = 8
    torch.manual_seed(0)
    network = GatedPixelCnn(channels, layers=4, width=12)  # reaches 6 columns each side, 7 rows up
    gradients = input_gradients(network, channels, size)
    order = np.arange(size * size * channels).reshape(size, size, channels)
    for ch in range(channels):
        dependence = np.abs(gradients[7, 4, ch]) > 0
        assert dependence[order < order[7, 4, ch]].all()
        assert not dependence[order >= order[7, 4, ch]].any()


@pytest.mark.parametrize(
    ("channels", "output", "classes"),
    [(1, "softmax", 0), (3, "softmax", 0), (1, "logistic_mixture", 0), (3, "logistic_mixture", 4)],
)
def test_row_by_row_sampling_path_matches_the_full_forward_pass(channels: int, output: str, classes: int) -> None:
    # Sampling uses row_links + logits_at with windows narrower than the image; they must agree with forward.
    size = 16
    torch.manual_seed(0)
    network = GatedPixelCnn(channels, layers=2, width=12, output=output, class_count=classes).eval()
    assert network.reach < size - 1  # the windows really crop
    images = torch.rand(2, channels, size, size) * 2 - 1
    weights = torch.tensor([[1.0, 0, 0, 0], [0, 0.3, 0.7, 0]]) if classes else None
    with torch.no_grad():
        full = network(images, weights)
        for row in range(size):
            links = network.row_links(images, row, weights)
            for column in range(size):
                partial = network.logits_at(images[:, :, row : row + 1], links, column, weights)
                torch.testing.assert_close(partial, full[..., row, column], atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("resolution", [8, 16, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_forward_gives_256_logits_per_sub_pixel(resolution: int, channels: int) -> None:
    family = tiny_family(resolution, channels)
    images = torch.rand(2, channels, resolution, resolution) * 2 - 1
    with torch.no_grad():
        logits = family.networks()["pixelcnn"](images)
    assert logits.shape == (2, LEVELS, channels, resolution, resolution)


def test_default_model_is_cpu_sized_and_checkpoints_hold_only_weights() -> None:
    # The defaults measured to reach the quality target in 5 CPU minutes (README, Sample quality).
    family = PixelCnnFamily(32, 3, {})
    assert (family.hparams["layers"], family.hparams["width"], family.hparams["output"]) == (6, 32, "softmax")
    assert (family.hparams["learning_rate"], family.hparams["ema_decay"]) == (8e-3, 0.995)
    assert family.parameter_count() < 1_000_000
    # "pixelcnn" is the running average that samples, "current" the network the optimiser trains.
    assert set(family.networks()) == {"pixelcnn", "current"} and set(family.optimizers()) == {"pixelcnn"}
    assert family.sampling_networks() == ("pixelcnn",)
    assert not any("mask" in key for network in family.networks().values() for key in network.state_dict())
    assert family.capabilities == frozenset({"sample", "inpaint"})


@pytest.mark.parametrize("output", OUTPUTS)
def test_a_few_steps_overfit_a_tiny_batch(output: str) -> None:
    family = tiny_family(8, 3, learning_rate=1e-2, output=output)
    # Stripes and checks of two levels: structure a small model can learn in a few steps.
    rows, columns = np.mgrid[0:8, 0:8]
    patterns = [rows % 2, columns % 2, (rows + columns) % 2, (rows // 4) % 2]
    images = np.stack([np.stack([p, 1 - p, p], axis=0) for p in patterns]).astype(np.float32) * 2 - 1
    batch = torch.from_numpy(images)
    precision = Precision(torch.device("cpu"))
    # Steps counted from the end of the learning rate's warm-up: the rate is the one set.
    losses = [family.training_step(batch, WARMUP_STEPS + step, precision) for step in range(30)]
    assert set(losses[0]) == {"nll", "bits_per_dim"}
    assert losses[0]["bits_per_dim"] == pytest.approx(losses[0]["nll"] / math.log(2))
    if output == "softmax":
        assert losses[0]["nll"] == pytest.approx(math.log(LEVELS), abs=0.5)  # untrained: about uniform
        assert losses[-1]["nll"] < losses[0]["nll"] - 2.0
    else:
        # A wide untrained logistic puts about a quarter of its mass on each end value (0 and 255): the
        # loss starts low on two-level images, and learning the pattern must still halve it.
        assert losses[-1]["nll"] < losses[0]["nll"] / 2


def test_same_seed_same_image_alone_or_in_a_batch() -> None:
    family = tiny_family(8, 3)
    alone = family.sample([7], {})
    batch = family.sample([3, 7, 11], {})
    assert alone.shape == (1, 8, 8, 3) and alone.dtype == np.uint8
    assert batch.shape == (3, 8, 8, 3)
    assert np.array_equal(alone[0], batch[1])
    assert np.array_equal(family.sample([7], {}), alone)
    assert not np.array_equal(batch[0], batch[2])


def test_sampling_is_the_inverse_cdf_of_the_seeded_uniforms() -> None:
    # Pin the convention an ONNX runtime must copy: fixed logits make the result a function of u alone.
    family = tiny_family(8, 3, output="softmax")
    head = family.average.head_out  # what samples: the running average
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.randn(LEVELS * 3))
    temperature = 0.7
    images = family.sample([5, 9], {"temperature": temperature})
    logits = head.bias.detach().double().numpy().reshape(LEVELS, 3) / temperature
    probabilities = np.exp(logits - logits.max(axis=0))
    cumulative = np.cumsum(probabilities / probabilities.sum(axis=0), axis=0)
    for image, seed in zip(images, [5, 9], strict=True):
        uniforms = np.random.default_rng(seed).random((8, 8, 3))
        expected = np.stack(
            [np.searchsorted(cumulative[:, ch], uniforms[..., ch], side="right") for ch in range(3)], axis=-1
        )
        assert np.array_equal(image, np.minimum(expected, LEVELS - 1))


def test_mixture_sampling_is_the_same_inverse_cdf_over_the_mixture_probabilities() -> None:
    # A logistic mixture changes what the logits are (log-probabilities of the 256 values), not the draw.
    family = tiny_family(8, 3, output="logistic_mixture", mixtures=2)
    head = family.average.head_out
    with torch.no_grad():
        head.weight.zero_()
        # Rows: the two components' weight logits, means (on [-1, 1]) and log scales; columns: R, G, B.
        weights = [[0.0, 1.0, -0.3], [1.0, 0.0, 0.2]]
        means = [[-0.5, 0.1, 0.6], [0.4, -0.7, 0.9]]
        log_scales = [[-3.0, -2.5, -2.0], [-2.0, -4.0, -1.0]]
        parameters = torch.tensor(weights + means + log_scales)
        head.bias.copy_(parameters.reshape(-1))  # map k * 3 + c holds parameter k of channel c
    images = family.sample([5, 9], {"temperature": 0.8})
    bias = head.bias.detach().view(6, 3)[None]  # (1, parameters, channels)
    logits = mixture_log_probabilities(bias, torch.arange(LEVELS).view(1, 1, LEVELS, 1), 2)[0]
    assert logits.shape == (LEVELS, 3)
    probabilities = torch.softmax(logits.double() / 0.8, dim=0).numpy()
    cumulative = np.cumsum(probabilities, axis=0)
    for image, seed in zip(images, [5, 9], strict=True):
        uniforms = np.random.default_rng(seed).random((8, 8, 3))
        expected = np.stack(
            [np.searchsorted(cumulative[:, ch], uniforms[..., ch], side="right") for ch in range(3)], axis=-1
        )
        assert np.array_equal(image, np.minimum(expected, LEVELS - 1))


def test_mixture_logits_are_normalised_log_probabilities_and_the_loss_reads_them() -> None:
    torch.manual_seed(0)
    network = GatedPixelCnn(3, layers=2, width=12, output="logistic_mixture", mixtures=3)
    with torch.no_grad():
        # Scale the head up so components get narrow (log scales near the floor) and means spread out.
        network.head_out.weight.mul_(20)
        images = torch.rand(2, 3, 8, 8) * 2 - 1
        logits = network(images)
        assert logits.shape == (2, LEVELS, 3, 8, 8) and torch.isfinite(logits).all()
        total = logits.double().exp().sum(dim=1)
        torch.testing.assert_close(total, torch.ones_like(total), atol=2e-3, rtol=0)
        targets = torch.randint(0, LEVELS, (2, 3, 8, 8))
        picked = logits.gather(1, targets[:, None]).mean()
        loss = network.negative_log_likelihood(network.distribution(images), targets)
        torch.testing.assert_close(loss, -picked, atol=1e-4, rtol=1e-5)


def test_temperature_changes_the_samples() -> None:
    family = tiny_family(8, 1, output="softmax")
    cold = family.sample([1, 2], {"temperature": 0.3})
    hot = family.sample([1, 2], {"temperature": 1.7})
    assert not np.array_equal(cold, hot)
    # With clearly uneven logits a cold softmax concentrates on the likeliest values: fewer distinct ones.
    with torch.no_grad():
        family.average.head_out.weight.zero_()
        family.average.head_out.bias.copy_(torch.randn(LEVELS) * 3)
    cold = family.sample([1, 2], {"temperature": 0.3})
    hot = family.sample([1, 2], {"temperature": 1.7})
    assert len(np.unique(cold)) * 3 < len(np.unique(hot))


def test_complete_keeps_known_pixels_and_conditions_on_them() -> None:
    family = tiny_family(8, 3)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    known = rng.random((3, 8, 8)) < 0.5
    completed = family.complete(images, known, [1, 2, 3], {})
    assert completed.shape == images.shape and completed.dtype == np.uint8
    assert np.array_equal(completed[known], images[known])

    # Per sub-pixel: keep only the red channel everywhere.
    red_only = np.zeros((3, 8, 8, 3), bool)
    red_only[..., 0] = True
    completed = family.complete(images, red_only, [1, 2, 3], {})
    assert np.array_equal(completed[..., 0], images[..., 0])

    # Nothing known is plain sampling; everything known changes nothing.
    nothing = np.zeros((3, 8, 8), bool)
    assert np.array_equal(family.complete(images, nothing, [1, 2, 3], {}), family.sample([1, 2, 3], {}))
    assert np.array_equal(family.complete(images, ~nothing, [1, 2, 3], {}), images)

    # The unknown bottom half depends on the known top half.
    top_half = np.zeros((2, 8, 8), bool)
    top_half[:, :4] = True
    pair = np.stack([np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)])
    completed = family.complete(pair, top_half, [4, 4], {})
    assert not np.array_equal(completed[0, 4:], completed[1, 4:])


def test_complete_refuses_mismatched_shapes() -> None:
    family = tiny_family(8, 1)
    images = np.zeros((2, 8, 8, 1), np.uint8)
    with pytest.raises(StudioError, match="shape"):
        family.complete(images, np.zeros((2, 8, 8), bool), [1], {})
    with pytest.raises(StudioError, match="known mask"):
        family.complete(images, np.zeros((2, 4, 4), bool), [1, 2], {})
    with pytest.raises(StudioError, match="uint8"):
        family.complete(images.astype(np.float32), np.zeros((2, 8, 8), bool), [1, 2], {})


def test_schema_groups_defaults_and_temperature_range() -> None:
    schema = {h.name: h for h in PixelCnnFamily.schema}
    assert {name: h.group for name, h in schema.items()} == {
        "layers": "model",
        "width": "model",
        "output": "model",
        "mixtures": "model",
        "learning_rate": "training",
        "ema_decay": "training",
        "temperature": "sampling",
    }
    assert schema["output"].choices == ("softmax", "logistic_mixture")
    with pytest.raises(StudioError, match="output"):
        PixelCnnFamily.resolve({"output": "gaussian"})
    assert (schema["temperature"].minimum, schema["temperature"].maximum) == (0.05, 2.0)
    with pytest.raises(StudioError, match="maximum"):
        PixelCnnFamily.resolve({"temperature": 2.5})
    family = tiny_family(8, 1)
    with pytest.raises(StudioError, match="minimum"):
        family.sampling_options({"temperature": 0.01})
    with pytest.raises(StudioError, match="maximum"):
        family.sample([1], {"temperature": 3.0})
    with pytest.raises(StudioError, match="unknown sampling setting"):
        family.sample([1], {"steps": 10})
    assert family.sampling_options({"temperature": 1}) == {"temperature": 1.0}


def test_a_model_made_before_the_output_setting_and_averaging_loads_and_samples_the_same(store: Store) -> None:
    # Configs written before `output` existed lack it: they were 256-way softmax models, whatever today's
    # default. Their checkpoints hold one network, "pixelcnn" (what sampled); "current" starts as its copy.
    run_job(add_sample(store, "digits", size=8))
    settings = {"layers": 1, "width": 6, "batch_size": 8, "output": "softmax", "conditional": "no"}
    run_job(train(store, TrainOptions("old", family="pixelcnn", dataset="digits", steps=3, settings=settings)))
    folder = model_folder(store, "old")
    before = load_model(folder, with_optimizers=False).family.sample([1, 2, 3], {})
    config = json.loads((folder / CONFIG_FILE).read_text())
    for key in ("output", "mixtures", "conditional", "ema_decay"):
        del config["hyperparameters"][key]
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    with safe_open(folder / CHECKPOINT_FILE, "pt") as checkpoint:
        metadata = checkpoint.metadata()
        names = [key for key in checkpoint.keys() if not key.startswith("network.current.")]  # noqa: SIM118
        kept = {key: checkpoint.get_tensor(key) for key in names}
    save_file(kept, folder / CHECKPOINT_FILE, metadata=metadata)
    loaded = load_model(folder)
    family = loaded.family
    assert isinstance(family, PixelCnnFamily)
    assert family.hparams["output"] == "softmax" and not family.conditional
    assert np.array_equal(family.sample([1, 2, 3], {}), before)
    assert weights_hash(family) == config["weights_hash"]  # images made by the old model still name it
    for current, average in zip(family.network.parameters(), family.average.parameters(), strict=True):
        assert torch.equal(current, average)
    # It trains on: the optimiser state fits the network being trained.
    run_job(train(store, TrainOptions("old", resume=True, steps=5)))
