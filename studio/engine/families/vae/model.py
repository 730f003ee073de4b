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
from studio.errors import StudioError


def _levels(resolution: int) -> int:
    return int(math.log2(resolution)) - 2  # halvings from the resolution down to 4x4


class ConvEncoder(nn.Module):
    """Image -> (mean, log-variance) of a diagonal Gaussian over the latent space.

    With `classes` > 0 it is q(z | x, y): a bias-free linear map of the class weights adds a per-channel
    bias to the first layer's features (linear in the weights; a row of zeros adds nothing).
    """

    def __init__(self, latent_dim: int, width: int, resolution: int, channels: int, classes: int = 0) -> None:
        super().__init__()
        levels = _levels(resolution)
        features = [min(width * 2**i, width * 8) for i in range(levels + 1)]
        layers: list[nn.Module] = [nn.Conv2d(channels, features[0], 3, 1, 1), nn.LeakyReLU(0.2, True)]
        for before, after in itertools.pairwise(features):
            layers += [nn.Conv2d(before, after, 4, 2, 1), nn.BatchNorm2d(after), nn.LeakyReLU(0.2, True)]
        layers += [nn.Flatten(), nn.Linear(features[-1] * 16, 2 * latent_dim)]
        self.body = nn.Sequential(*layers)
        self.classes = classes
        if classes:
            self.condition = nn.Linear(classes, features[0], bias=False)

    def forward(
        self, images: torch.Tensor, class_weights: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance, each N x latent_dim (given the class weights N x K, when conditional)."""
        if not self.classes:
            output = self.body(images)
        else:
            if class_weights is None:
                raise ValueError("a class-conditional encoder needs class weights")
            first = self.body[0](images) + self.condition(class_weights)[:, :, None, None]
            output = self.body[1:](first)
        mean, log_variance = output.chunk(2, dim=1)
        return mean, log_variance.clamp(-30, 20)


class ConvDecoder(nn.Module):
    """Latent -> 4x4 -> transposed convolutions -> per-pixel Bernoulli logits.

    With `classes` > 0 it is p(x | z, y): the first layer takes [z, w] (its class part a bias-free
    linear map of the class weights w, so a mix of classes mixes their embeddings).
    """

    def __init__(self, latent_dim: int, width: int, resolution: int, channels: int, classes: int = 0) -> None:
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
        self.classes = classes
        if classes:
            self.condition = nn.Linear(classes, features[0] * 16, bias=False)

    def forward(self, latents: torch.Tensor, class_weights: torch.Tensor | None = None) -> torch.Tensor:
        """Logits; sigmoid(logits) is the image in [0, 1]."""
        if not self.classes:
            return self.body(latents)
        if class_weights is None:
            raise ValueError("a class-conditional decoder needs class weights")
        return self.body[1:](self.body[0](latents) + self.condition(class_weights))


class ImageDecoder(nn.Module):
    """The decoder with its output mapped to images in [-1, 1] (sigmoid of the Bernoulli logits): what is exported."""

    def __init__(self, decoder: nn.Module) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, latent: torch.Tensor, class_weights: torch.Tensor | None = None) -> torch.Tensor:
        """Latents (and a conditional model's class weights) to images in [-1, 1]."""
        logits = self.decoder(latent) if class_weights is None else self.decoder(latent, class_weights)
        return torch.sigmoid(logits) * 2 - 1


class MeanEncoder(nn.Module):
    """The encoder as the torch pipeline runs it: images (and class weights) -> latent means."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, images: torch.Tensor, class_weights: torch.Tensor | None = None) -> torch.Tensor:
        """Latent means."""
        return (self.encoder(images) if class_weights is None else self.encoder(images, class_weights))[0]


class VaeFamily(GeneratorFamily):
    """Convolutional VAE with a beta weight on the KL term and a KL warm-up; conditional (a CVAE) with classes."""

    declaration = DECLARATION
    accepts_classes = True  # q(z | x, y) and p(x | z, y), the class entering linearly through its weights

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
        # Unconditional models (class_count 0) are built exactly as before: same parameters, same draws.
        self.encoder = ConvEncoder(h["latent_dim"], h["width"], resolution, channels, self.class_count)
        self.decoder = ConvDecoder(h["latent_dim"], h["width"], resolution, channels, self.class_count)
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

    def trained_modules(self) -> dict[str, nn.Module]:
        """Encoder and decoder train together (one optimiser), each averaged over processes under torchrun."""
        return {"encoder": self.encoder, "decoder": self.decoder}

    def _encode(
        self, images: torch.Tensor, weights: torch.Tensor | None, training: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        encoder = self.replica("encoder") if training else self.encoder
        return encoder(images) if weights is None else encoder(images, weights)

    def _decode(self, latents: torch.Tensor, weights: torch.Tensor | None, training: bool = False) -> torch.Tensor:
        decoder = self.replica("decoder") if training else self.decoder
        return decoder(latents) if weights is None else decoder(latents, weights)

    def training_step(
        self, batch: torch.Tensor, step: int, precision: Precision, labels: torch.Tensor | None = None
    ) -> dict[str, float]:
        """Negative ELBO per image: Bernoulli reconstruction + weighted KL to N(0, I) (given the class, if any)."""
        if self.conditional and labels is None:
            raise StudioError("a class-conditional VAE trains on labelled batches")
        weights = self.class_weights(labels)
        with precision.autocast():
            mean, log_variance = self._encode(batch, weights, training=True)
            latents = mean + torch.randn_like(mean) * torch.exp(0.5 * log_variance)
            logits = self._decode(latents, weights, training=True)
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
        """The decoder (mapped to images in [-1, 1]) and the encoder (mean, log-variance); each also takes the
        class weights when conditional."""
        dim, size, count = self.hparams["latent_dim"], self.resolution, self.class_count
        batch = {0: "batch"}
        latents = rng.standard_normal((3, dim)).astype(np.float32)
        images = self.random_images(rng, 3)
        if not self.conditional:
            return [
                NetworkExport(
                    "decoder",
                    ImageDecoder(self.decoder),
                    (torch.zeros(2, dim),),
                    ("latent",),
                    ("image",),
                    {"latent": batch},
                    [(latents,)],
                ),
                NetworkExport(
                    "encoder",
                    self.encoder,
                    (torch.zeros(2, self.channels, size, size),),
                    ("image",),
                    ("mean", "log_variance"),
                    {"image": batch},
                    [(images,)],
                ),
            ]
        # Parity on a one-hot row, a row of zeros and a mix of two classes: every use the runtime makes.
        weights = np.zeros((3, count), np.float32)
        weights[0, rng.integers(count)] = 1.0
        weights[2, :2] = 0.5
        examples = torch.eye(count)[:2]
        both = {"class_weights": batch}
        return [
            NetworkExport(
                "decoder",
                ImageDecoder(self.decoder),
                (torch.zeros(2, dim), examples),
                ("latent", "class_weights"),
                ("image",),
                {"latent": batch, **both},
                [(latents, weights)],
            ),
            NetworkExport(
                "encoder",
                self.encoder,
                (torch.zeros(2, self.channels, size, size), examples),
                ("image", "class_weights"),
                ("mean", "log_variance"),
                {"image": batch, **both},
                [(images, weights)],
            ),
        ]

    def pipeline(self) -> VaePipeline:
        """Sampling, interpolation, encoding and inpainting over the encoder's means and the decoder."""
        return VaePipeline(
            self.spec(),
            encoder=self.numpy_function(MeanEncoder(self.encoder), [self.encoder]),
            decoder=self.numpy_function(ImageDecoder(self.decoder), [self.decoder]),
        )

    def decode(self, latents: np.ndarray, class_weights: np.ndarray | None = None) -> np.ndarray:
        """Images (uint8 NHWC) from latent vectors (of a conditional model's class weights N x K): the mean image."""
        return self.pipeline().decode(latents, {}, class_weights)

    def encode(self, images: np.ndarray, class_weights: np.ndarray | None = None) -> np.ndarray:
        """Latent means (float32 N x latent_dim) of uint8 NHWC images (given a conditional model's class weights)."""
        return self.pipeline().encode(images, class_weights)

    @torch.no_grad()
    def likeliest_labels(self, real: torch.Tensor) -> torch.Tensor | None:
        """A conditional model's best class for each real image: the one whose ELBO (decoding the latent mean) is
        highest, i.e. the class under which the model explains the image best; None when unconditional.

        The previews and diagnostics get images without their labels; this is the model's own reading of them.
        """
        if not self.conditional:
            return None
        count, classes = real.shape[0], self.class_count
        labels = torch.arange(classes, device=real.device).repeat_interleave(count)
        images = real.repeat(classes, 1, 1, 1)
        weights = self.class_weights(labels)
        mean, log_variance = self._encode(images, weights)
        logits = self._decode(mean, weights).float()
        targets = (images.float() + 1) / 2
        reconstruction = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").flatten(1).sum(1)
        kl = 0.5 * (mean.float().pow(2) + log_variance.float().exp() - 1 - log_variance.float()).sum(1)
        return (reconstruction + kl).view(classes, count).argmin(0)

    @torch.no_grad()
    def diagnostics(self, real: torch.Tensor) -> Diagnostics:
        """Reconstruction error (mean absolute, 0-255 scale): the blur made visible as a number."""
        count = min(64, real.shape[0])
        weights = self.class_weights(self.likeliest_labels(real[:count]))
        mean, _ = self._encode(real[:count], weights)
        rebuilt = torch.sigmoid(self._decode(mean, weights)).float() * 2 - 1
        error = float((rebuilt - real[:count].float()).abs().mean() * 127.5)
        return Diagnostics({"reconstruction_error": error})

    def preview(self, real: torch.Tensor, seeds: Sequence[int], options: Mapping[str, Any]) -> np.ndarray:
        """A row of originals, the row of their reconstructions beneath, then samples: blur made visible.

        A conditional model reconstructs each original under its likeliest class, and its samples cycle
        through the classes.
        """
        shown = min(8, real.shape[0], max(1, len(seeds) // 4))
        return np.concatenate(
            [
                to_uint8(real[:shown]),
                self.reconstruct(real[:shown]),
                super().preview(real, seeds[: max(0, len(seeds) - 2 * shown)], options),
            ]
        )

    @torch.no_grad()
    def reconstruct(self, real: torch.Tensor, labels: torch.Tensor | None = None) -> np.ndarray:
        """Decoded latent means of a real batch (uint8 NHWC), to show beside the originals.

        A conditional model uses the given labels, else each image's likeliest class.
        """
        if self.conditional and labels is None:
            labels = self.likeliest_labels(real)
        weights = self.class_weights(labels)
        mean, _ = self._encode(real, weights)
        return to_uint8(torch.sigmoid(self._decode(mean, weights)) * 2 - 1)
