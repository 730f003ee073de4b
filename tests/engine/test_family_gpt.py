"""The gpt family: a VQ-VAE and a transformer over its codes, trained in two stages, sampled with temperature,
top-k and top-p, exported to ONNX with a key/value cache, and conditional on digits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from studio.engine.checkpoints import load_model
from studio.engine.datasets.samples import add_sample
from studio.engine.export import export_model
from studio.engine.families import registry
from studio.engine.families.base import Precision
from studio.engine.families.gpt.model import GptFamily, codebook_usage
from studio.engine.families.gpt.networks import Codebook, TokenTransformer
from studio.engine.families.gpt.pipeline import choose_tokens
from studio.engine.jobs import run_job
from studio.engine.runtime import Endpoint, load_exported
from studio.engine.training import PreviewReady, TrainingWarning, train
from studio.engine.training_options import TrainOptions
from studio.errors import StudioError
from studio.home import DataHome
from studio.store.database import Store, open_store
from tests.engine.class_judge import CHANCE, digit_judge

# Small enough for seconds of CPU, large enough that asking for a digit gives that digit: 4 x 4 codes of 8x8
# digits, a 32-code book, a two-block transformer; 150 VQ-VAE steps, then 450 transformer steps.
SETTINGS: dict[str, Any] = {
    "downscale": 2,
    "codebook_size": 32,
    "code_dim": 8,
    "vq_width": 16,
    "layers": 2,
    "heads": 2,
    "width": 32,
    "dropout": 0.0,
    "learning_rate": 3e-3,
    "vq_learning_rate": 3e-3,
    "vq_steps": 150,
    "batch_size": 32,
}
STEPS = 600
TINY = {**SETTINGS, "downscale": 4, "vq_width": 8, "width": 16, "layers": 1, "batch_size": 8}


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Torch on one thread: on a shared machine two threads wait on each other far longer than they compute."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, list[Any]]]:
    """A conditional gpt trained on 8x8 digits through the trainer (both stages) and exported; its events."""
    home = DataHome(tmp_path_factory.mktemp("gpt") / "home").ensure()
    store = open_store(home)
    run_job(add_sample(store, "digits", size=8))
    events: list[Any] = []
    options = TrainOptions(
        "g", family="gpt", dataset="digits", steps=STEPS, settings=SETTINGS, preview_every=150, threads=1
    )
    run_job(train(store, options), events.append)
    run_job(export_model(store, "g"))
    yield store, events
    store.close()


def torch_pipeline(store: Store) -> Any:
    family = load_model(store.home.models / "g", torch.device("cpu"), with_optimizers=False).family
    family.train_mode(False)
    return family.pipeline()


def onnx_pipeline(store: Store) -> Any:
    return load_exported(store.home.models / "g" / "onnx", "cpu", threads=1).pipeline


def largest_difference(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    return int(np.abs(a.astype(int) - b.astype(int)).max())


def tiny_family(**overrides: Any) -> GptFamily:
    torch.manual_seed(0)
    return GptFamily(8, 1, {**TINY, **overrides})


# --- networks and sampling rules ------------------------------------------------------------


def test_the_transformer_is_causal_and_its_cached_step_matches_the_whole_sequence() -> None:
    torch.manual_seed(0)
    network = TokenTransformer(16, 10, 32, 2, 4, 0.0, classes=3).eval()
    tokens = torch.randint(0, 16, (4, 10))
    weights = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [0.3, 0.7, 0]])
    with torch.no_grad():
        full = network(tokens, weights)
        for position in range(10):
            changed = tokens.clone()
            changed[:, position:] = torch.randint(0, 16, (4, 10 - position))
            # Position t predicts token t from the lead and the tokens before it, never from t or later.
            assert torch.equal(network(changed, weights)[:, : position + 1], full[:, : position + 1])
        past = torch.zeros(10, 4, *network.cache_entry_shape())
        previous = torch.zeros(4, dtype=torch.int64)
        for position in range(10):
            logits, entry = network.step(previous, torch.tensor([position]), past[: position + 1], weights)
            past[position] = entry
            previous = tokens[:, position]
            torch.testing.assert_close(logits, full[:, position], atol=1e-5, rtol=1e-5)
        # The class embedding is linear in the weights: a mix of classes mixes the lead.
        mixed = network.lead(1, weights[3:])
        torch.testing.assert_close(mixed, 0.3 * network.lead(1, weights[:1]) + 0.7 * network.lead(1, weights[1:2]))


def test_token_choice_follows_the_inverse_cdf_with_temperature_top_k_and_top_p() -> None:
    logits = np.log(np.array([[0.1, 0.2, 0.3, 0.4]]))
    rows = np.repeat(logits, 6, axis=0)
    u = np.array([0.05, 0.12, 0.15, 0.35, 0.65, 0.95])
    # The smallest code whose cumulative probability passes u.
    assert choose_tokens(rows, u, 1.0).tolist() == [0, 1, 1, 2, 3, 3]
    # top-k 2 keeps 0.3 and 0.4 (3/7, 4/7); top-p 0.5 keeps the same two (0.4, then 0.3 with 0.4 before it).
    assert choose_tokens(rows, u, 1.0, top_k=2).tolist() == [2, 2, 2, 2, 3, 3]
    assert choose_tokens(rows, u, 1.0, top_p=0.5).tolist() == [2, 2, 2, 2, 3, 3]
    # top-k 1 and a tiny nucleus always take the likeliest code, whatever u; ties go to the lower code.
    assert choose_tokens(rows, u, 1.0, top_k=1).tolist() == [3] * 6
    assert choose_tokens(rows, u, 1.0, top_p=0.01).tolist() == [3] * 6
    assert choose_tokens(np.array([[1.0, 5.0, 5.0]]), np.array([0.99]), 1.0, top_k=1).tolist() == [1]
    # Never a code outside the kept set, even for u a hair below 1.
    descending = np.log(np.array([[0.4, 0.3, 0.2, 0.1]]))
    assert choose_tokens(descending, np.array([1 - 1e-16]), 1.0, top_k=2).tolist() == [1]
    # Temperature: cold draws concentrate on the likeliest code, hot draws spread out.
    grid = np.linspace(0.0, 1.0, 1000, endpoint=False)
    cold = choose_tokens(np.repeat(logits, 1000, axis=0), grid, 0.1)
    hot = choose_tokens(np.repeat(logits, 1000, axis=0), grid, 2.0)
    assert np.mean(cold == 3) > 0.9 and np.mean(hot == 3) < 0.4 and np.mean(hot == 0) > 0.15


def test_sampling_settings_are_validated() -> None:
    pipeline = tiny_family().pipeline()
    assert pipeline.sampling_options({"top_k": "3", "top_p": 0.9, "temperature": 0.5})["top_k"] == 3
    for bad in ({"top_k": -1}, {"top_p": 0.0}, {"top_p": 1.5}, {"temperature": 0.0}, {"top_k": 1.5}):
        with pytest.raises(StudioError):
            pipeline.sampling_options(bad)
    with pytest.raises(StudioError, match="top_k: 33 is above this model's 32 codes"):
        pipeline.sampling_options({"top_k": 33})
    with pytest.raises(StudioError, match="not class-conditional"):
        pipeline.sampling_options({"class": "3"})


def test_geometry_refusals_are_one_line_and_larger_sizes_build() -> None:
    with pytest.raises(StudioError, match="at most 1024 tokens") as refused:
        GptFamily(128, 3, {"downscale": 2})
    assert "\n" not in str(refused.value) and "64 x 64" in str(refused.value)
    with pytest.raises(StudioError, match="multiple of heads"):
        GptFamily(8, 1, {"width": 30, "heads": 4})
    for size, tokens in ((32, 64), (64, 256)):
        family = GptFamily(size, 3, {"layers": 1, "width": 32, "vq_width": 8})
        assert family.transformer.length == tokens
        assert family.pipeline().latent_shape() == (32, size // 4, size // 4)


def test_a_collapsed_codebook_is_warned_about_with_its_figure() -> None:
    family = tiny_family()
    real = torch.rand(32, 1, 8, 8) * 2 - 1
    family.training_step(real, 0, Precision(torch.device("cpu")))  # the codebook starts at encoder outputs
    healthy = family.diagnostics(real)
    assert healthy.warnings == [] and healthy.figures["codebook_usage"] > 0.2
    with torch.no_grad():  # every code but one out of reach: the collapse the warning is for
        family.vq.codebook.embedding.fill_(1e4)
        family.vq.codebook.embedding[5] = 0.0
    collapsed = family.diagnostics(real)
    assert collapsed.figures["codebook_usage"] == pytest.approx(1 / 32)
    assert collapsed.figures["codebook_perplexity"] == pytest.approx(1.0)
    (warning,) = collapsed.warnings
    assert "codebook collapse: only 1 of 32 codes" in warning and "perplexity 1.0" in warning
    assert codebook_usage(torch.tensor([0, 1, 1, 2]), 8).used == 3


def test_unused_codes_restart_from_encoder_outputs() -> None:
    torch.manual_seed(0)
    codebook = Codebook(4, 2)
    vectors = torch.randn(50, 2)
    codebook.initialise(vectors)
    only_first = torch.zeros(50, dtype=torch.int64)
    restarted = [codebook.update(vectors, only_first, 0.9, dead_after=3) for _ in range(3)]
    assert restarted == [0, 0, 3]  # codes 1-3, unused three steps running
    for code in (1, 2, 3):
        assert (codebook.embedding[code] == vectors).all(dim=1).any()  # now one of the batch's vectors
    assert codebook.idle.tolist() == [0, 0, 0, 0]


def test_stage_two_reuses_the_codes_of_images_it_has_seen_and_warms_the_rate_up() -> None:
    family = tiny_family(vq_steps=0, learning_rate=1e-2)
    family.vq.frozen.fill_(1)
    images = torch.rand(6, 1, 8, 8) * 2 - 1
    family.vq.eval()
    with torch.no_grad():
        expected = family.vq.encode(images).flatten(1)
    assert torch.equal(family._training_tokens(images[:4]), expected[:4])
    assert len(family._code_cache) == 4
    encoded: list[int] = []
    handle = family.vq.encoder.register_forward_hook(lambda _m, inputs, _o: encoded.append(len(inputs[0])))
    assert torch.equal(family._training_tokens(images[2:]), expected[2:])
    handle.remove()
    assert encoded == [2]  # only the two new images went through the encoder
    family.training_step(images, 0, Precision(torch.device("cpu")))
    assert family.optimizer.param_groups[0]["lr"] == pytest.approx(1e-2 / 100)  # step 1 of the warm-up


# --- trained through the trainer --------------------------------------------------------------


def test_training_shows_both_stages_and_the_export_matches_torch(trained: tuple[Store, list[Any]]) -> None:
    store, events = trained
    previews = [event for event in events if isinstance(event, PreviewReady)]
    assert [preview.step for preview in previews] == [150, 300, 450, 600]
    first = previews[0].images
    assert first is not None and len(first) == 16  # stage 1: 8 real images, then their reconstructions
    assert np.abs(first[:8].astype(int) - first[8:].astype(int)).mean() < 40
    assert all(0 < preview.figures["codebook_usage"] <= 1 for preview in previews)
    assert not [event for event in events if isinstance(event, TrainingWarning)]
    manifest = json.loads((store.home.models / "g" / "onnx" / "manifest.json").read_text())
    assert set(manifest["networks"]) == {"transformer", "codebook", "decoder", "encoder"}
    assert manifest["classes"] == [str(digit) for digit in range(10)]
    assert manifest["networks"]["transformer"]["inputs"] == ["token", "position", "past", "class_weights"]
    runtime, reference = onnx_pipeline(store), torch_pipeline(store)
    for options in ({}, {"class": "4"}, {"class": "7", "temperature": 0.7, "top_k": 5, "top_p": 0.9}):
        images = runtime.sample([3, 11, 12, 40], options)
        assert largest_difference(images, reference.sample([3, 11, 12, 40], options)) <= 2
        assert images.std() > 0


def test_asking_for_a_digit_gives_that_digit(trained: tuple[Store, list[Any]]) -> None:
    store, _ = trained
    pipeline = torch_pipeline(store)
    judge = digit_judge()
    seeds = list(range(100, 130))
    for digit in (0, 9):
        rate = judge.hit_rate(pipeline.sample(seeds, {"class": str(digit)}), digit)
        assert rate >= 3 * CHANCE, f"digit {digit}: only {rate:.2f} of the samples look like it"


def test_top_k_one_is_greedy_and_temperature_changes_the_variety(trained: tuple[Store, list[Any]]) -> None:
    store, _ = trained
    pipeline = torch_pipeline(store)
    seeds = list(range(20, 30))
    greedy = pipeline.sample(seeds, {"class": "3", "top_k": 1})
    assert all(np.array_equal(image, greedy[0]) for image in greedy)  # the seed no longer matters
    assert np.array_equal(pipeline.sample(seeds[:2], {"class": "3", "top_p": 0.01}), greedy[:2])

    def variety(images: np.ndarray) -> float:
        flat = images.reshape(len(images), -1).astype(float)
        return float(np.abs(flat[:, None] - flat[None]).mean())

    cold = pipeline.sample(seeds, {"class": "3", "temperature": 0.1})
    hot = pipeline.sample(seeds, {"class": "3", "temperature": 2.0})
    assert variety(cold) < variety(hot)


def test_inpainting_keeps_the_known_pixels_on_both_backends(trained: tuple[Store, list[Any]]) -> None:
    store, _ = trained
    runtime, reference = onnx_pipeline(store), torch_pipeline(store)
    images = np.random.default_rng(5).integers(0, 256, (2, 8, 8, 1), dtype=np.uint8)
    known = np.zeros((2, 8, 8), bool)
    known[:, :, :3] = True  # the left three columns: only the first column of codes is wholly known
    filled = runtime.inpaint(images, known, [7, 8], {"class": "2"})
    assert np.array_equal(filled[:, :, :3], images[:, :, :3])
    assert not np.array_equal(filled[:, :, 3:], images[:, :, 3:])
    assert largest_difference(filled, reference.inpaint(images, known, [7, 8], {"class": "2"})) <= 2
    everything = np.ones((2, 8, 8), bool)
    assert np.array_equal(runtime.inpaint(images, everything, [7, 8], {}), images)


def test_interpolation_walks_the_quantised_latents_between_two_samples(trained: tuple[Store, list[Any]]) -> None:
    store, _ = trained
    runtime, reference = onnx_pipeline(store), torch_pipeline(store)
    start, end = Endpoint(seed=1, class_name="0"), Endpoint(seed=2)
    frames = runtime.interpolate(start, end, 5, {})
    assert frames.shape == (5, 8, 8, 1)
    assert largest_difference(frames, reference.interpolate(start, end, 5, {})) <= 2
    assert np.array_equal(frames[0], runtime.sample([1], {"class": "0"})[0])
    assert np.array_equal(frames[-1], runtime.sample([2], {})[0])
    image = runtime.sample([5], {"class": "8"})[0]
    between = runtime.interpolate(Endpoint(image=image), Endpoint(seed=2), 3, {})
    assert largest_difference(between, reference.interpolate(Endpoint(image=image), Endpoint(seed=2), 3, {})) <= 2
    assert "interpolate" in registry.declaration("gpt").interpolation_note


def test_resume_continues_in_the_right_stage(digits8: Store) -> None:
    def run(steps: int, **settings: Any) -> Any:
        options = TrainOptions(
            "u",
            family="gpt",
            dataset="digits",
            steps=steps,
            settings={**TINY, "vq_steps": 4, "conditional": "no", **settings} if steps == 3 else settings,
            resume=steps > 3,
            preview_every=0,
            threads=1,
        )
        return run_job(train(digits8, options))

    def model() -> GptFamily:
        family = load_model(digits8.home.models / "u", with_optimizers=False).family
        assert isinstance(family, GptFamily)
        return family

    assert set(run(3).final_losses) == {"reconstruction", "commitment", "perplexity"}
    assert not model().vq_frozen and not model().conditional
    assert set(run(6).final_losses) == {"token_nll"}  # steps 3 (stage 1), then 4 and 5 (stage 2)
    frozen = {key: value.clone() for key, value in model().vq.state_dict().items()}
    assert model().vq_frozen
    # A longer first stage asked for later does not thaw the VQ-VAE: its codes are what the transformer reads.
    assert set(run(8, vq_steps=100).final_losses) == {"token_nll"}
    after = model().vq.state_dict()
    assert all(torch.equal(after[key], value) for key, value in frozen.items())


def test_the_family_is_registered_after_pixelcnn() -> None:
    names = registry.family_names()
    assert names.index("gpt") == names.index("pixelcnn") + 1
    assert registry.declaration("gpt").can("inpaint") and registry.declaration("gpt").can("encode")
