"""GAN: a DCGAN-style generator and a spectrally normalised discriminator trained against each other."""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from studio.engine.families.base import (
    Diagnostics,
    GeneratorFamily,
    NetworkExport,
    Precision,
    gaussian_noise,
)
from studio.engine.families.gan.declaration import DECLARATION
from studio.engine.families.gan.pipeline import GanPipeline

MODE_COLLAPSE_RATIO = 0.3  # samples this much less varied than the data: warn


def _up_blocks(resolution: int) -> int:
    return int(math.log2(resolution)) - 2  # from 4x4 up to the resolution


class DcganGenerator(nn.Module):
    """z -> 4x4 feature map -> transposed-convolution upsampling (BatchNorm, ReLU) -> tanh image."""

    def __init__(self, latent_dim: int, width: int, resolution: int, channels: int) -> None:
        super().__init__()
        blocks = _up_blocks(resolution)
        features = [min(width * 2 ** (blocks - i), width * 8) for i in range(blocks + 1)]
        self.latent_dim = latent_dim
        self.project = nn.Sequential(
            nn.Linear(latent_dim, features[0] * 16, bias=False),
            nn.Unflatten(1, (features[0], 4, 4)),
            nn.BatchNorm2d(features[0]),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        for before, after in itertools.pairwise(features):
            layers += [nn.ConvTranspose2d(before, after, 4, 2, 1, bias=False), nn.BatchNorm2d(after), nn.ReLU(True)]
        layers += [nn.Conv2d(features[-1], channels, 3, 1, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] from latent vectors."""
        return self.body(self.project(z))


class SpectralDiscriminator(nn.Module):
    """Strided convolutions with spectral norm (a Lipschitz bound that steadies training) to one score."""

    def __init__(self, width: int, resolution: int, channels: int) -> None:
        super().__init__()
        blocks = _up_blocks(resolution)
        features = [min(width * 2**i, width * 8) for i in range(blocks + 1)]
        layers: list[nn.Module] = [spectral_norm(nn.Conv2d(channels, features[0], 3, 1, 1)), nn.LeakyReLU(0.2, True)]
        for before, after in itertools.pairwise(features):
            layers += [spectral_norm(nn.Conv2d(before, after, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        layers += [nn.Flatten(), spectral_norm(nn.Linear(features[-1] * 16, 1))]
        self.body = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """One realness score per image."""
        return self.body(images).squeeze(1)


class GanFamily(GeneratorFamily):
    """DCGAN with spectral norm, hinge loss and an EMA generator for sampling."""

    declaration = DECLARATION
    accepts_classes = False  # class conditioning: not built yet

    def __init__(
        self,
        resolution: int,
        channels: int,
        hparams: Mapping[str, Any],
        architecture: Mapping[str, Any] | None = None,
        classes: Sequence[str] = (),
    ) -> None:
        super().__init__(resolution, channels, hparams, architecture, classes)
        h = self.hparams
        self.generator = DcganGenerator(h["latent_dim"], h["width"], resolution, channels)
        self.discriminator = SpectralDiscriminator(h["width"], resolution, channels)
        self.ema = copy.deepcopy(self.generator).requires_grad_(False).eval()
        betas = (0.5, 0.999)
        self._optimizers: dict[str, torch.optim.Optimizer] = {
            "generator": torch.optim.Adam(self.generator.parameters(), h["learning_rate"], betas=betas),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), h["learning_rate"], betas=betas),
        }

    def networks(self) -> dict[str, nn.Module]:
        """Generator, discriminator and the averaged generator."""
        return {"generator": self.generator, "discriminator": self.discriminator, "ema": self.ema}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One Adam per network."""
        return self._optimizers

    def sampling_networks(self) -> tuple[str, ...]:
        """Sampling uses the averaged generator only."""
        return ("ema",)

    def train_mode(self, training: bool) -> None:
        """The EMA copy always stays in eval mode (its BatchNorm statistics are copied, not learned)."""
        self.generator.train(training)
        self.discriminator.train(training)
        self.ema.eval()

    def _latents(self, count: int) -> torch.Tensor:
        return torch.randn(count, self.hparams["latent_dim"], device=self.device)

    def training_step(
        self, batch: torch.Tensor, step: int, precision: Precision, labels: torch.Tensor | None = None
    ) -> dict[str, float]:
        """One discriminator step, then one generator step, then the EMA update."""
        hinge = self.hparams["loss"] == "hinge"
        with precision.autocast():
            fake = self.generator(self._latents(batch.shape[0]))
            real_score = self.discriminator(batch)
            fake_score = self.discriminator(fake.detach())
            if hinge:
                d_loss = F.relu(1 - real_score).mean() + F.relu(1 + fake_score).mean()
            else:
                d_loss = F.softplus(-real_score).mean() + F.softplus(fake_score).mean()
        precision.step(d_loss, self._optimizers["discriminator"])
        with precision.autocast():
            score = self.discriminator(fake)
            g_loss = -score.mean() if hinge else F.softplus(-score).mean()
        precision.step(g_loss, self._optimizers["generator"])
        self._update_ema(step)
        return {
            "d_loss": d_loss.detach().item(),
            "g_loss": g_loss.detach().item(),
            "d_real": real_score.detach().float().mean().item(),
            "d_fake": fake_score.detach().float().mean().item(),
        }

    @torch.no_grad()
    def _update_ema(self, step: int) -> None:
        decay = self.hparams["ema_decay"]
        # Early on the average would lag far behind a fast-moving generator: ramp the decay up.
        decay = min(decay, (1 + step) / (10 + step))
        for average, current in zip(self.ema.parameters(), self.generator.parameters(), strict=True):
            average.lerp_(current, 1 - decay)
        for average_buffer, buffer in zip(self.ema.buffers(), self.generator.buffers(), strict=True):
            average_buffer.copy_(buffer)

    def network_exports(self, rng: np.random.Generator) -> list[NetworkExport]:
        """The averaged generator: latents -> images."""
        dim = self.hparams["latent_dim"]
        return [
            NetworkExport(
                "generator",
                self.ema,
                (torch.zeros(2, dim),),
                ("latent",),
                ("image",),
                {"latent": {0: "batch"}},
                [(rng.standard_normal((3, dim)).astype(np.float32),)],
            )
        ]

    def pipeline(self) -> GanPipeline:
        """Sampling and interpolation over the EMA generator."""
        return GanPipeline(self.spec(), self.numpy_function(self.ema, [self.ema]))

    def generate(self, latents: np.ndarray) -> np.ndarray:
        """Images from explicit latent vectors (for interpolation): uint8 NHWC."""
        return self.pipeline().decode(latents, {})

    @torch.no_grad()
    def diagnostics(self, real: torch.Tensor) -> Diagnostics:
        """Diversity: mean pairwise distance of samples over that of real images (near 0: collapse)."""
        count = min(64, real.shape[0])
        if count < 4:
            return Diagnostics()
        fixed = torch.from_numpy(gaussian_noise(range(count), (self.hparams["latent_dim"],))).to(self.device)
        fake = self.ema(fixed).float().flatten(1)
        spread_fake = torch.pdist(fake).mean()
        spread_real = torch.pdist(real[:count].float().flatten(1)).mean().clamp_min(1e-8)
        diversity = float(spread_fake / spread_real)
        warnings = []
        if diversity < MODE_COLLAPSE_RATIO:
            warnings.append(f"possible mode collapse: samples are only {diversity:.0%} as varied as the data")
        return Diagnostics({"diversity": diversity}, warnings)
