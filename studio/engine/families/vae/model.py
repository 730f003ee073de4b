"""VAE: a convolutional encoder to a Gaussian latent, a decoder back, reconstruction plus a beta-weighted KL."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name
from torch import nn

from studio.engine.families.base import (
    Diagnostics,
    GeneratorFamily,
    NetworkExport,
    Precision,
    to_uint8,
)
from studio.engine.families.vae.declaration import DECLARATION
from studio.engine.families.vae.pipeline import VaePipeline


def _levels(resolution: int) -> int:
    return int(math.log2(resolution)) - 2  # halvings from the resolution down to 4x4


class ConvEncoder(nn.Module):
    """Image -> (mean, log-variance) of a diagonal Gaussian over the latent space."""

    def __init__(self, latent_dim: int, width: int, resolution: int, channels: int) -> None:
        super().__init__()
        levels = _levels(resolution)
        features = [min(width * 2**i, width * 8) for i in range(levels + 1)]
        layers: list[nn.Module] = [nn.Conv2d(channels, features[0], 3, 1, 1), nn.LeakyReLU(0.2, True)]
        for before, after in itertools.pairwise(features):
            layers += [nn.Conv2d(before, after, 4, 2, 1), nn.BatchNorm2d(after), nn.LeakyReLU(0.2, True)]
        layers += [nn.Flatten(), nn.Linear(features[-1] * 16, 2 * latent_dim)]
        self.body = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance, each N x latent_dim."""
        mean, log_variance = self.body(images).chunk(2, dim=1)
        return mean, log_variance.clamp(-30, 20)


class ConvDecoder(nn.Module):
    """Latent -> 4x4 -> transposed convolutions -> per-pixel Bernoulli logits."""

    def __init__(self, latent_dim: int, width: int, resolution: int, channels: int) -> None:
        super().__init__()
        levels = _levels(resolution)
        features = [min(width * 2 ** (levels - i), width * 8) for i in range(levels + 1)]
        layers: list[nn.Module] = [
            nn.Linear(latent_dim, features[0] * 16),
            nn.Unflatten(1, (features[0], 4, 4)),
            nn.ReLU(True),
        ]
        for before, after in itertools.pairwise(features):
            layers += [nn.ConvTranspose2d(before, after, 4, 2, 1), nn.BatchNorm2d(after), nn.ReLU(True)]
        layers += [nn.Conv2d(features[-1], channels, 3, 1, 1)]
        self.body = nn.Sequential(*layers)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """Logits; sigmoid(logits) is the image in [0, 1]."""
        return self.body(latents)


class ImageDecoder(nn.Module):
    """The decoder with its output mapped to images in [-1, 1] (sigmoid of the Bernoulli logits): what is exported."""

    def __init__(self, decoder: nn.Module) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """Latents to images in [-1, 1]."""
        return torch.sigmoid(self.decoder(latent)) * 2 - 1


class VaeFamily(GeneratorFamily):
    """Convolutional VAE with a beta weight on the KL term and a KL warm-up."""

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
        self.encoder = ConvEncoder(h["latent_dim"], h["width"], resolution, channels)
        self.decoder = ConvDecoder(h["latent_dim"], h["width"], resolution, channels)
        parameters = [*self.encoder.parameters(), *self.decoder.parameters()]
        self._optimizers: dict[str, torch.optim.Optimizer] = {"vae": torch.optim.Adam(parameters, h["learning_rate"])}

    def networks(self) -> dict[str, nn.Module]:
        """Encoder and decoder."""
        return {"encoder": self.encoder, "decoder": self.decoder}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One Adam over both networks."""
        return self._optimizers

    def kl_weight(self, step: int) -> float:
        """beta, ramped up linearly over the warm-up so the decoder learns to use the latents first."""
        warmup = self.hparams["kl_warmup"]
        return self.hparams["beta"] * (1.0 if warmup == 0 else min(1.0, (step + 1) / warmup))

    def training_step(
        self, batch: torch.Tensor, step: int, precision: Precision, labels: torch.Tensor | None = None
    ) -> dict[str, float]:
        """Negative ELBO per image: Bernoulli reconstruction + weighted KL to N(0, I)."""
        with precision.autocast():
            mean, log_variance = self.encoder(batch)
            latents = mean + torch.randn_like(mean) * torch.exp(0.5 * log_variance)
            logits = self.decoder(latents)
        targets = (batch.float() + 1) / 2
        reconstruction = F.binary_cross_entropy_with_logits(logits.float(), targets, reduction="sum") / len(batch)
        kl = 0.5 * (mean.float().pow(2) + log_variance.float().exp() - 1 - log_variance.float()).sum(1).mean()
        loss = reconstruction + self.kl_weight(step) * kl
        precision.step(loss, self._optimizers["vae"], clip=100.0)
        return {
            "loss": loss.detach().item(),
            "reconstruction": reconstruction.detach().item(),
            "kl": kl.detach().item(),
        }

    def network_exports(self, rng: np.random.Generator) -> list[NetworkExport]:
        """The decoder (mapped to images in [-1, 1]) and the encoder (mean, log-variance)."""
        dim, size = self.hparams["latent_dim"], self.resolution
        batch = {0: "batch"}
        return [
            NetworkExport(
                "decoder",
                ImageDecoder(self.decoder),
                (torch.zeros(2, dim),),
                ("latent",),
                ("image",),
                {"latent": batch},
                [(rng.standard_normal((3, dim)).astype(np.float32),)],
            ),
            NetworkExport(
                "encoder",
                self.encoder,
                (torch.zeros(2, self.channels, size, size),),
                ("image",),
                ("mean", "log_variance"),
                {"image": batch},
                [(self.random_images(rng, 3),)],
            ),
        ]

    def pipeline(self) -> VaePipeline:
        """Sampling, interpolation, encoding and inpainting over the encoder's means and the decoder."""
        return VaePipeline(
            self.spec(),
            encoder=self.numpy_function(lambda x: self.encoder(x)[0], [self.encoder]),
            decoder=self.numpy_function(lambda z: torch.sigmoid(self.decoder(z)) * 2 - 1, [self.decoder]),
        )

    def decode(self, latents: np.ndarray) -> np.ndarray:
        """Images (uint8 NHWC) from latent vectors: the decoder's mean image."""
        return self.pipeline().decode(latents, {})

    def encode(self, images: np.ndarray) -> np.ndarray:
        """Latent means (float32 N x latent_dim) of uint8 NHWC images."""
        return self.pipeline().encode(images)

    @torch.no_grad()
    def diagnostics(self, real: torch.Tensor) -> Diagnostics:
        """Reconstruction error (mean absolute, 0-255 scale): the blur made visible as a number."""
        count = min(64, real.shape[0])
        mean, _ = self.encoder(real[:count])
        rebuilt = torch.sigmoid(self.decoder(mean)).float() * 2 - 1
        error = float((rebuilt - real[:count].float()).abs().mean() * 127.5)
        return Diagnostics({"reconstruction_error": error})

    def preview(self, real: torch.Tensor, seeds: Sequence[int], options: Mapping[str, Any]) -> np.ndarray:
        """A row of originals, the row of their reconstructions beneath, then samples: blur made visible."""
        shown = min(8, real.shape[0], max(1, len(seeds) // 4))
        return np.concatenate(
            [
                to_uint8(real[:shown]),
                self.reconstruct(real[:shown]),
                self.sample(seeds[: max(0, len(seeds) - 2 * shown)], options),
            ]
        )

    @torch.no_grad()
    def reconstruct(self, real: torch.Tensor) -> np.ndarray:
        """Decoded latent means of a real batch (uint8 NHWC), to show beside the originals."""
        mean, _ = self.encoder(real)
        return to_uint8(torch.sigmoid(self.decoder(mean)) * 2 - 1)
