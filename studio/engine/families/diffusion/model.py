"""The diffusion family: a small U-Net learns to predict the noise added to an image (DDPM), and
sampling removes it step by step with the numpy DDPM, DDIM or DPM-Solver++(2M) scheduler.

Random numbers for sampling come from one `numpy.random.default_rng(seed)` per image, in this order:
x_T = standard_normal((C, H, W)); then, for DDPM and for DDIM with eta > 0, one more
standard_normal((C, H, W)) per step, in step order (the last step included, though it is unused);
when completing an image (inpainting), one more draw per step follows for re-noising the known pixels.
`generate` (interpolation) takes x_T itself and allows only deterministic DDIM.

Class conditioning (a model trained on a labelled dataset): the U-Net adds a class embedding to its time
embedding, read from class weights (see unet.WeightedClassEmbedding). Training drops each image's class
with probability `class_dropout` (its weights become zeros, "no class"), so the one network learns both
eps(x, t, class) and eps(x, t); sampling mixes them with classifier-free guidance (Ho & Salimans 2022),
eps = eps_u + w (eps_c - eps_u), in the numpy pipeline (see DiffusionPipeline.predict).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 (the conventional name)

from studio.engine.families.base import GeneratorFamily, NetworkExport, Precision
from studio.engine.families.diffusion.declaration import DECLARATION
from studio.engine.families.diffusion.pipeline import DiffusionPipeline, scheduler_for
from studio.engine.families.diffusion.unet import (
    Denoiser,
    WeightedClassEmbedding,
    build_network,
    checked_config,
    studio_unet_config,
)
from studio.engine.families.pipeline import ModelSpec
from studio.engine.schedulers import DdimConfig, DdimScheduler, DdpmScheduler, DpmSolverScheduler
from studio.errors import StudioError

# Channel multiplier per resolution level, highest resolution first; the U-Net uses as many as fit.
CHANNEL_MULTIPLIERS = (1, 2, 2, 2)
LOWEST_RESOLUTION = 4
MAX_LEVELS = len(CHANNEL_MULTIPLIERS)
# Training previews run this many DDIM steps at most: enough to judge progress at a fraction of the cost.
PREVIEW_STEPS = 20
# DDPM's linear betas (1e-4 to 0.02) are for T = 1000; Improved DDPM scales them by 1000 / T so that a
# shorter chain still ends in (nearly) pure noise.
LINEAR_BETAS = (1e-4, 0.02)
# Latent diffusion's scaled-linear betas (CompVis/ldm-celebahq-256), the same 1000 / T scaling applied.
SCALED_LINEAR_BETAS = (0.0015, 0.0195)
# EMA warm-up as in diffusers' EMAModel: decay = min(ema_decay, (1 + step) / (10 + step)), so early
# previews follow the network instead of averaging in its random initialisation for thousands of steps.
EMA_WARMUP_OFFSET = 10


def _group_count(channels: int) -> int:
    """GroupNorm groups: 8 where the width allows, fewer for narrow tiny-test models."""
    return math.gcd(8, channels)


def _zero_initialised(module: nn.Module) -> nn.Module:
    """A layer that starts as zero, so residual branches start as the identity (as in the DDPM code)."""
    for parameter in module.parameters():
        nn.init.zeros_(parameter)
    return module


class SinusoidalTimeEmbedding(nn.Module):
    """The Transformer's sinusoidal position encoding of the timestep (DDPM appendix B)."""

    frequencies: torch.Tensor  # a buffer (register_buffer below); declared for type checkers

    def __init__(self, dimension: int) -> None:
        super().__init__()
        half = dimension // 2
        frequencies = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        # Not persistent: it is derived from the width, so checkpoints need not carry it.
        self.register_buffer("frequencies", frequencies, persistent=False)

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        """[N] timesteps (int or float) to [N, dimension] features, in the network's precision."""
        # In float32 even in a half-precision network: float16 cannot hold t * frequency finely enough.
        angles = timesteps.float()[:, None] * self.frequencies.float()[None, :]
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1).to(self.frequencies.dtype)


class ResidualBlock(nn.Module):
    """GroupNorm, SiLU, conv; plus the time embedding; GroupNorm, SiLU, conv; plus the input."""

    def __init__(self, in_channels: int, out_channels: int, time_dimension: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_group_count(in_channels), in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time_projection = nn.Linear(time_dimension, out_channels)
        self.norm2 = nn.GroupNorm(_group_count(out_channels), out_channels)
        self.conv2 = _zero_initialised(nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.shortcut = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, time_embedding: torch.Tensor) -> torch.Tensor:
        """The block's output for features x and the shared (already activated) time embedding."""
        hidden = self.conv1(F.silu(self.norm1(x)))
        hidden = hidden + self.time_projection(time_embedding)[:, :, None, None]
        hidden = self.conv2(F.silu(self.norm2(hidden)))
        return hidden + self.shortcut(x)


class SelfAttention(nn.Module):
    """Single-head self-attention over pixels, used at the lowest resolution only (cost grows as pixels^2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(_group_count(channels), channels)
        self.query_key_value = nn.Conv2d(channels, 3 * channels, 1)
        self.output = _zero_initialised(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x plus attention over its pixels."""
        batch, channels, height, width = x.shape
        query, key, value = self.query_key_value(self.norm(x)).reshape(batch, 3, channels, height * width).unbind(1)
        # Plain matmul + softmax rather than scaled_dot_product_attention: it exports to every ONNX opset.
        weights = torch.softmax(query.transpose(1, 2) @ key / math.sqrt(channels), dim=-1)  # [N, pixels, pixels]
        attended = (value @ weights.transpose(1, 2)).reshape(batch, channels, height, width)
        return x + self.output(attended)


class Downsample(nn.Module):
    """Halve the resolution with a strided 3x3 convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x at half the resolution."""
        return self.conv(x)


class Upsample(nn.Module):
    """Double the resolution: nearest-neighbour then a 3x3 convolution (no checkerboard artefacts)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x at twice the resolution."""
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class NoisePredictionUNet(nn.Module):
    """eps_theta(x_t, t): a U-Net with one residual block per level on each side, joined by skip connections.

    Levels run from the image resolution down to 4 px (at most four levels: 64 px stops at 8 px);
    the middle has two residual blocks and, optionally, self-attention. One block per level (DDPM
    has two or three) keeps training affordable on a CPU.

    A model of K classes adds a class embedding to the time embedding, as diffusers' UNet2DModel does:
    a table of K + 1 rows (the classes, then "no class") read with class weights (WeightedClassEmbedding).
    """

    def __init__(self, resolution: int, channels: int, width: int, attention: bool, class_count: int = 0) -> None:
        super().__init__()
        levels = min(MAX_LEVELS, int(math.log2(resolution // LOWEST_RESOLUTION)) + 1)
        level_channels = [width * multiplier for multiplier in CHANNEL_MULTIPLIERS[:levels]]
        time_dimension = 4 * width
        self.time_embedding = nn.Sequential(
            SinusoidalTimeEmbedding(width),
            nn.Linear(width, time_dimension),
            nn.SiLU(),
            nn.Linear(time_dimension, time_dimension),
        )
        # Only a conditional network has one: an unconditional network's weights for a torch seed, and
        # its checkpoint keys, are what they always were.
        self.class_embedding: WeightedClassEmbedding | None = (
            WeightedClassEmbedding(class_count + 1, time_dimension) if class_count > 0 else None
        )
        self.input = nn.Conv2d(channels, width, 3, padding=1)

        self.down_blocks = nn.ModuleList()
        self.downsamples = nn.ModuleList()
        current = width
        for out_channels in level_channels:
            self.down_blocks.append(ResidualBlock(current, out_channels, time_dimension))
            current = out_channels
        for out_channels in level_channels[:-1]:
            self.downsamples.append(Downsample(out_channels))

        self.middle_first = ResidualBlock(current, current, time_dimension)
        self.middle_attention: nn.Module = SelfAttention(current) if attention else nn.Identity()
        self.middle_second = ResidualBlock(current, current, time_dimension)

        # Deepest level first; each block takes the features so far beside the same level's skip.
        self.up_blocks = nn.ModuleList()
        self.upsamples = nn.ModuleList()
        for out_channels in reversed(level_channels):
            self.up_blocks.append(ResidualBlock(current + out_channels, out_channels, time_dimension))
            current = out_channels
        for deeper_channels in reversed(level_channels[1:]):
            self.upsamples.append(Upsample(deeper_channels))
        self.output = nn.Sequential(
            nn.GroupNorm(_group_count(current), current),
            nn.SiLU(),
            _zero_initialised(nn.Conv2d(current, channels, 3, padding=1)),
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor, class_weights: torch.Tensor | None = None) -> torch.Tensor:
        """The predicted noise for x: [N, C, H, W] noisy images and t: [N] timesteps (int64 or float), and for
        a conditional network [N, K] class weights."""
        embedding = self.time_embedding(t)
        if self.class_embedding is not None:
            if class_weights is None:
                raise ValueError("a class-conditional U-Net needs class weights")
            embedding = embedding + self.class_embedding(class_weights).to(embedding.dtype)
        time_embedding = F.silu(embedding)
        hidden = self.input(x)
        skips = []
        for level, block in enumerate(self.down_blocks):
            if level > 0:
                hidden = self.downsamples[level - 1](hidden)
            hidden = block(hidden, time_embedding)
            skips.append(hidden)
        hidden = self.middle_first(hidden, time_embedding)
        hidden = self.middle_attention(hidden)
        hidden = self.middle_second(hidden, time_embedding)
        for level, block in enumerate(self.up_blocks):
            if level > 0:
                hidden = self.upsamples[level - 1](hidden)
            hidden = block(torch.cat([hidden, skips.pop()], dim=1), time_embedding)
        return self.output(hidden)


class DiffusionFamily(GeneratorFamily):
    """Denoising diffusion (DDPM training; DDPM, DDIM or DPM-Solver++ sampling) with a small noise-predicting U-Net."""

    declaration = DECLARATION
    accepts_architecture = True
    # An imported model's trainable U-Net starts as its published (sampling) weights.
    copied_networks: ClassVar[Mapping[str, str]] = {"unet": "ema"}

    def __init__(
        self,
        resolution: int,
        channels: int,
        hparams: Mapping[str, Any],
        architecture: Mapping[str, Any] | None = None,
        classes: Sequence[str] = (),
    ) -> None:
        super().__init__(resolution, channels, hparams, architecture, classes)
        self._check_steps(self.hparams["steps"])
        self.unet_config: dict[str, Any] | None = None
        self.imported_scheduler: dict[str, Any] | None = None
        if self.hparams.get("network", "unet2d") == "unet2d":  # latent diffusion has no choice
            self.unet_config, self.imported_scheduler = self._unet_architecture(architecture)
            # A given U-Net's true width, so what the settings show (and batch sizing reads) is the network's.
            self.hparams["width"] = max(8, min(256, int(self.unet_config["block_out_channels"][0])))
            self.unet: nn.Module = build_network("UNet2DModel", self.unet_config)
        else:
            self.unet = NoisePredictionUNet(
                resolution, channels, self.hparams["width"], self.hparams["attention"], self.class_count
            )
        self.ema = copy.deepcopy(self.unet).requires_grad_(False)
        # No weight decay: DDPM trains with plain Adam, and decay would pull the EMA weights towards zero.
        self.optimizer = torch.optim.AdamW(self.unet.parameters(), lr=self.hparams["learning_rate"], weight_decay=0.0)
        self._alphas_cumprod = torch.from_numpy(self.scheduler("ddpm").alphas_cumprod.astype(np.float32))
        self._prediction_type = self.scheduler_config().prediction_type  # what the U-Net learns to predict

    def _unet_architecture(
        self, architecture: Mapping[str, Any] | None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The UNet2DModel configuration (given, or Studio's own for these settings) and an imported scheduler."""
        if architecture is None or "unet" not in architecture:
            settings = self.hparams
            config = studio_unet_config(
                self.resolution, self.channels, settings["width"], settings["attention"], self.class_count
            )
            return config, None
        config = checked_config("UNet2DModel", architecture["unet"], "the U-Net's configuration", self.class_count)
        size = config.get("sample_size")
        if size is not None and size not in (self.latent_resolution(), [self.latent_resolution()] * 2):
            raise StudioError(f"the U-Net works at {size} px, not at this model's {self.latent_resolution()} px")
        if (
            config.get("in_channels", 3) != self.latent_channels()
            or config.get("out_channels", 3) != self.latent_channels()
        ):
            raise StudioError(
                f"the U-Net maps {config.get('in_channels', 3)} to {config.get('out_channels', 3)} channels; "
                f"this model needs {self.latent_channels()} (a learned-variance U-Net is not supported)"
            )
        scheduler = architecture.get("scheduler")
        if scheduler is not None:
            try:
                DdimScheduler.from_dict(dict(scheduler))
            except (TypeError, ValueError) as error:
                raise StudioError(f"the scheduler configuration is not usable ({error})") from None
        return config, (dict(scheduler) if scheduler is not None else None)

    def latent_resolution(self) -> int:
        """The size the U-Net works at: the image's (latent diffusion: its latents')."""
        return self.resolution

    def latent_channels(self) -> int:
        """The channels the U-Net works on: the image's (latent diffusion: its latents')."""
        return self.channels

    def architecture(self) -> dict[str, Any] | None:
        """The UNet2DModel configuration and the scheduler, for config.json (None for Studio's own U-Net)."""
        if self.unet_config is None:
            return None
        return {"unet": dict(self.unet_config), "scheduler": self.scheduler_config().to_dict()}

    def denoiser(self, network: nn.Module, fast: bool = False) -> nn.Module:
        """eps_theta(x_t, t) -> tensor over `network` (unwrapping diffusers' output object); `fast`: for
        inference, in the memory layout the convolutions run fastest in (see Denoiser)."""
        return Denoiser(network, channels_last=fast) if self.unet_config is not None else network

    # --- networks -----------------------------------------------------------------------

    def networks(self) -> dict[str, nn.Module]:
        """The trained U-Net and its EMA copy (the one sampling uses)."""
        return {"unet": self.unet, "ema": self.ema}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """AdamW over the U-Net."""
        return {"unet": self.optimizer}

    def trained_modules(self) -> dict[str, nn.Module]:
        """The U-Net as the denoising loss calls it (the EMA follows on every process)."""
        return {"denoiser": self.denoiser(self.unet)}

    def sampling_networks(self) -> tuple[str, ...]:
        """Only the EMA network generates images."""
        return ("ema",)

    def scheduler_config(self) -> DdimConfig:
        """The scheduler settings this model was trained with (what an ONNX manifest needs)."""
        if self.imported_scheduler is not None:
            return DdimConfig.from_dict(dict(self.imported_scheduler))
        timesteps = self.hparams["timesteps"]
        scale = 1000 / timesteps
        start, end = SCALED_LINEAR_BETAS if self.hparams["schedule"] == "scaled_linear" else LINEAR_BETAS
        return DdimConfig(
            num_train_timesteps=timesteps,
            beta_schedule=self.hparams["schedule"],
            beta_start=start * scale,
            beta_end=min(end * scale, 0.999),
            clip_sample=True,  # training images lie in [-1, 1], so a predicted x_0 outside it is an error
        )

    def scheduler(self, sampler: str) -> DdpmScheduler | DdimScheduler | DpmSolverScheduler:
        """A fresh scheduler of the named kind ("ddpm", "ddim" or "dpmpp2m") for this model's noise schedule."""
        return scheduler_for(self.scheduler_config().to_dict(), sampler)

    # --- training -----------------------------------------------------------------------

    def training_step(
        self, batch: torch.Tensor, step: int, precision: Precision, labels: torch.Tensor | None = None
    ) -> dict[str, float]:
        """DDPM Algorithm 1: noise each image to a random t, regress the target (Eq. 14), update the EMA.

        A conditional model sees each image's class, dropped to "no class" with probability class_dropout.
        """
        self.unet.train()
        weights = self.class_weights(self.drop_labels(labels))
        loss = self.denoising_loss(batch.to(self.device, torch.float32), precision, weights)
        precision.step(loss, self.optimizer, clip=1.0)
        self._update_ema(step)
        return {"loss": float(loss.detach())}

    def drop_labels(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        """Classifier-free guidance's label dropout: each class index becomes -1 ("no class", zero class
        weights) with probability `class_dropout` (torch's generator draws); None for an unconditional model."""
        if labels is None or not self.conditional:
            return None
        if labels.shape[0] == 0:
            raise StudioError("a conditional training batch needs its labels")
        labels = labels.to(self.device, torch.int64)
        dropped = torch.rand(labels.shape, device=labels.device) < float(self.hparams["class_dropout"])
        return torch.where(dropped, torch.full_like(labels, -1), labels)

    def denoising_loss(
        self, images: torch.Tensor, precision: Precision, class_weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The mean squared error of the U-Net's prediction of the noise (or of v, or of x_0, as the
        scheduler's prediction type says) for `images` noised to random timesteps (of the classes weighted,
        for a conditional model: N x K)."""
        if self.conditional and class_weights is None:
            raise StudioError("a class-conditional diffusion model trains on labelled images")
        count = images.shape[0]
        timesteps = torch.randint(0, self.hparams["timesteps"], (count,), device=images.device)
        noise = torch.randn_like(images)
        alpha_bar = self._alphas_cumprod.to(images.device)[timesteps].view(count, 1, 1, 1)
        # DDPM Eq. (4): x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps.
        noisy = alpha_bar.sqrt() * images + (1 - alpha_bar).sqrt() * noise
        prediction = self._prediction_type
        if prediction == "v_prediction":  # Salimans & Ho 2022: v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x_0
            target = alpha_bar.sqrt() * noise - (1 - alpha_bar).sqrt() * images
        elif prediction == "sample":
            target = images
        else:
            target = noise
        with precision.autocast():
            network = self.replica("denoiser")
            predicted = network(noisy, timesteps) if class_weights is None else network(noisy, timesteps, class_weights)
        return F.mse_loss(predicted.float(), target)

    @torch.no_grad()
    def _update_ema(self, step: int) -> None:
        decay = min(self.hparams["ema_decay"], (1 + step) / (EMA_WARMUP_OFFSET + step))
        for average, current in zip(self.ema.parameters(), self.unet.parameters(), strict=True):
            average.lerp_(current, 1.0 - decay)
        for average_buffer, buffer in zip(self.ema.buffers(), self.unet.buffers(), strict=True):
            average_buffer.copy_(buffer)

    # --- sampling -----------------------------------------------------------------------

    def spec(self) -> ModelSpec:
        """The common spec plus the noise schedule (an ONNX manifest carries it too)."""
        return replace(super().spec(), scheduler=self.scheduler_config().to_dict())

    def network_exports(self, rng: np.random.Generator) -> list[NetworkExport]:
        """The averaged denoiser: (noisy sample, int64 timestep[, float32 class weights]) -> predicted noise."""
        size = self.resolution
        return [
            self.denoiser_export(
                torch.zeros(2, self.channels, size, size),
                self.random_images(rng, 3) * 2,
                rng.integers(0, self.hparams["timesteps"], 3).astype(np.int64),
                rng,
            )
        ]

    def denoiser_export(
        self, example: torch.Tensor, parity_sample: np.ndarray, parity_timesteps: np.ndarray, rng: np.random.Generator
    ) -> NetworkExport:
        """The EMA denoiser's export over samples shaped like `example`; a conditional model's also takes the
        class weights (parity: a class, no class, and a mix of two)."""
        batch = {0: "batch"}
        inputs: tuple[torch.Tensor, ...] = (example, torch.zeros(len(example), dtype=torch.int64))
        names: tuple[str, ...] = ("sample", "timestep")
        parity: tuple[np.ndarray, ...] = (parity_sample, parity_timesteps)
        if self.conditional:
            inputs += (torch.zeros(len(example), self.class_count),)
            names += ("class_weights",)
            count, classes = len(parity_sample), self.class_count
            weights = np.zeros((count, classes), np.float32)
            weights[0, rng.integers(classes)] = 1.0
            if count > 2:
                pair = rng.choice(classes, 2, replace=False)
                weights[2, pair] = (0.3, 0.7)
            parity += (weights,)
        return NetworkExport(
            "denoiser",
            self.denoiser(self.ema),
            inputs,
            names,
            ("noise",),
            {name: batch for name in names},
            [parity],
        )

    def pipeline(self) -> DiffusionPipeline:
        """Sampling, interpolation and inpainting over the EMA network."""
        network = self.denoiser(self.ema, fast=True)
        return DiffusionPipeline(self.spec(), self.numpy_function(network, [self.ema]))

    def _check_steps(self, steps: int) -> None:
        if steps > self.hparams["timesteps"]:
            raise StudioError(f"steps: {steps} is above this model's {self.hparams['timesteps']} timesteps")

    def latent_shape(self) -> tuple[int, int, int]:
        """The shape of one image's x_T, the latent that interpolation walks through."""
        return (self.channels, self.resolution, self.resolution)

    def initial_noise(self, generators: Sequence[np.random.Generator]) -> np.ndarray:
        """x_T: the first standard-normal (C, H, W) draw of each image's generator, as float32 NCHW."""
        return self.pipeline().initial_noise(generators)

    def preview(self, real: torch.Tensor, seeds: Sequence[int], options: Mapping[str, Any]) -> np.ndarray:
        """Quick training previews: deterministic DDIM with at most PREVIEW_STEPS steps, so each preview
        costs a fraction of a full sample and shows the same seeds' images sharpening over training."""
        options = self.sampling_options(options)
        quick = {"sampler": "ddim", "eta": 0.0, "steps": min(options["steps"], PREVIEW_STEPS)}
        return super().preview(real, seeds, quick)  # a conditional model's cycle through its classes

    def generate(
        self, latents: np.ndarray, options: Mapping[str, Any], class_weights: np.ndarray | None = None
    ) -> np.ndarray:
        """Images from explicit x_T arrays (N x C x H x W, e.g. slerped between seeds): uint8 NHWC (a
        conditional model also takes class weights, N x K).

        Only the deterministic sampler (DDIM with eta 0) maps each x_T to one image, so only it is allowed.
        """
        return self.pipeline().decode(latents, options, class_weights)

    def complete(
        self, images: np.ndarray, known: np.ndarray, seeds: Sequence[int], options: Mapping[str, Any]
    ) -> np.ndarray:
        """Keep the known pixels of uint8 NHWC `images` and generate the rest (RePaint-style inpainting)."""
        return self.pipeline().inpaint(images, known, seeds, options)

    def denoise(
        self,
        initial: np.ndarray,
        generators: Sequence[np.random.Generator],
        options: Mapping[str, Any],
        known: np.ndarray | None = None,
        keep: np.ndarray | None = None,
        class_weights: np.ndarray | None = None,
    ) -> np.ndarray:
        """Run the sampler from x_T (float32 NCHW) to x_0; see DiffusionPipeline.denoise."""
        return self.pipeline().denoise(initial, generators, options, known, keep, class_weights=class_weights)
