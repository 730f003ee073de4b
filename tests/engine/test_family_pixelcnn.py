"""The PixelCNN family: causal masking, shapes, training, seeded sampling and completion."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from studio.engine.families.base import Precision
from studio.engine.families.pixelcnn.model import LEVELS, GatedPixelCnn, PixelCnnFamily
from studio.errors import StudioError

TINY = {"layers": 2, "width": 12}


def tiny_family(resolution: int = 8, channels: int = 3, **overrides: object) -> PixelCnnFamily:
    """A seeded, few-thousand-parameter family so tests are fast and repeatable."""
    torch.manual_seed(0)
    return PixelCnnFamily(resolution, channels, {**TINY, **overrides})


def input_gradients(network: GatedPixelCnn, channels: int, size: int) -> np.ndarray:
    """Gradient of each sub-pixel's logits w.r.t. the input, for every sub-pixel at once.

    Returns (H, W, C, H, W, C): [r, c, ch] is the gradient of a random projection of the logits at
    (r, c, ch). Each target sub-pixel gets its own batch item, so one backward pass gives all of them.
    """
    torch.manual_seed(1)
    positions = [(r, c, ch) for r in range(size) for c in range(size) for ch in range(channels)]
    inputs = (torch.rand(len(positions), channels, size, size) * 2 - 1).requires_grad_(True)
    logits = network(inputs)
    # A random projection rather than a sum, so no structure in the weights can cancel a dependency.
    projection = torch.randn(LEVELS)
    rows, columns, chans = (torch.tensor(axis) for axis in zip(*positions, strict=True))
    picked = logits[torch.arange(len(positions)), :, chans, rows, columns]
    (picked @ projection).sum().backward()
    assert inputs.grad is not None
    gradients = inputs.grad.permute(0, 2, 3, 1).numpy()  # (positions, H, W, C)
    return gradients.reshape(size, size, channels, size, size, channels)


@pytest.mark.parametrize(("channels", "width"), [(1, 12), (3, 12), (3, 10)])
def test_logits_never_depend_on_the_current_or_later_sub_pixels(channels: int, width: int) -> None:
    size = 8
    torch.manual_seed(0)
    network = GatedPixelCnn(channels, layers=3, width=width)
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


@pytest.mark.parametrize("channels", [1, 3])
def test_row_by_row_sampling_path_matches_the_full_forward_pass(channels: int) -> None:
    # Sampling uses row_links + logits_at with windows narrower than the image; they must agree with forward.
    size = 16
    torch.manual_seed(0)
    network = GatedPixelCnn(channels, layers=2, width=12).eval()
    assert network.reach < size - 1  # the windows really crop
    images = torch.rand(2, channels, size, size) * 2 - 1
    with torch.no_grad():
        full = network(images)
        for row in range(size):
            links = network.row_links(images, row)
            for column in range(size):
                partial = network.logits_at(images[:, :, row : row + 1], links, column)
                torch.testing.assert_close(partial, full[..., row, column], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("resolution", [8, 16, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_forward_gives_256_logits_per_sub_pixel(resolution: int, channels: int) -> None:
    family = tiny_family(resolution, channels)
    images = torch.rand(2, channels, resolution, resolution) * 2 - 1
    with torch.no_grad():
        logits = family.networks()["pixelcnn"](images)
    assert logits.shape == (2, LEVELS, channels, resolution, resolution)


def test_default_model_is_cpu_sized_and_checkpoints_hold_only_weights() -> None:
    family = PixelCnnFamily(32, 3, {})
    assert family.hparams["layers"] == 6 and family.hparams["width"] == 64
    assert family.parameter_count() < 1_000_000
    assert set(family.networks()) == set(family.optimizers()) == {"pixelcnn"}
    assert not any("mask" in key for key in family.networks()["pixelcnn"].state_dict())
    assert family.capabilities == frozenset({"sample", "inpaint"})


def test_a_few_steps_overfit_a_tiny_batch() -> None:
    family = tiny_family(8, 3, learning_rate=1e-2)
    # Stripes and checks of two levels: structure a small model can learn in a few steps.
    rows, columns = np.mgrid[0:8, 0:8]
    patterns = [rows % 2, columns % 2, (rows + columns) % 2, (rows // 4) % 2]
    images = np.stack([np.stack([p, 1 - p, p], axis=0) for p in patterns]).astype(np.float32) * 2 - 1
    batch = torch.from_numpy(images)
    precision = Precision(torch.device("cpu"))
    losses = [family.training_step(batch, step, precision) for step in range(30)]
    assert set(losses[0]) == {"nll", "bits_per_dim"}
    assert losses[0]["bits_per_dim"] == pytest.approx(losses[0]["nll"] / math.log(2))
    assert losses[0]["nll"] == pytest.approx(math.log(LEVELS), abs=0.5)  # untrained: about uniform
    assert losses[-1]["nll"] < losses[0]["nll"] - 2.0


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
    family = tiny_family(8, 3)
    head = family.network.head_out
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


def test_temperature_changes_the_samples() -> None:
    family = tiny_family(8, 1)
    cold = family.sample([1, 2], {"temperature": 0.3})
    hot = family.sample([1, 2], {"temperature": 1.7})
    assert not np.array_equal(cold, hot)
    # With clearly uneven logits a cold softmax concentrates on the likeliest values: fewer distinct ones.
    with torch.no_grad():
        family.network.head_out.weight.zero_()
        family.network.head_out.bias.copy_(torch.randn(LEVELS) * 3)
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
        "learning_rate": "training",
        "temperature": "sampling",
    }
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
