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
from studio.errors import StudioError

MODE_COLLAPSE_RATIO = 0.3  # samples this much less varied than the data: warn


def _up_blocks(resolution: int) -> int:
    return int(math.log2(resolution)) - 2  # from 4x4 up to the resolution


class ClassModulation(nn.Module):
    """Class-conditional batch norm's class part: per-channel gains 1 + W_g w and biases W_b w of class weights w.

    Both maps are bias-free linear maps of the weights, so a row of zeros leaves the features as they are
    and a mix of two classes mixes their gains and biases (interpolation walks the class embedding).
    """

    def __init__(self, classes: int, features: int) -> None:
        super().__init__()
        self.gain = nn.Linear(classes, features, bias=False)
        self.bias = nn.Linear(classes, features, bias=False)

    def forward(self, features: torch.Tensor, class_weights: torch.Tensor) -> torch.Tensor:
        """Features (N, C, H, W) scaled and shifted per class."""
        gain = 1 + self.gain(class_weights)[:, :, None, None]
        return features * gain + self.bias(class_weights)[:, :, None, None]


class DcganGenerator(nn.Module):
    """z -> 4x4 feature map -> transposed-convolution upsampling (BatchNorm, ReLU) -> tanh image.

    With `classes` > 0 every batch norm is class-conditional: after it, a ClassModulation of the class
    weights scales and shifts its channels (the unconditional networks are built exactly as before).
    """

    def __init__(self, latent_dim: int, width: int, resolution: int, channels: int, classes: int = 0) -> None:
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
        self.classes = classes
        if classes:
            self.modulations = nn.ModuleList(ClassModulation(classes, size) for size in features)

    def forward(self, z: torch.Tensor, class_weights: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [-1, 1] from latent vectors (and, when conditional, class weights N x K)."""
        if not self.classes:
            return self.body(self.project(z))
        if class_weights is None:
            raise ValueError("a class-conditional generator needs class weights")
        modulations = iter(self.modulations)
        x = z
        for layer in (*self.project, *self.body):
            x = layer(x)
            if isinstance(layer, nn.BatchNorm2d):
                x = next(modulations)(x, class_weights)
        return x


class SpectralDiscriminator(nn.Module):
    """Strided convolutions with spectral norm (a Lipschitz bound that steadies training) to one score.

    With `classes` > 0 it is a projection discriminator (Miyato & Koyama 2018): score = psi(phi(x)) +
    <embed(y), phi(x)>, phi the flattened last features, psi the final linear layer, the class embedding
    spectrally normalised like every other layer.
    """

    def __init__(self, width: int, resolution: int, channels: int, classes: int = 0) -> None:
        super().__init__()
        blocks = _up_blocks(resolution)
        features = [min(width * 2**i, width * 8) for i in range(blocks + 1)]
        layers: list[nn.Module] = [spectral_norm(nn.Conv2d(channels, features[0], 3, 1, 1)), nn.LeakyReLU(0.2, True)]
        for before, after in itertools.pairwise(features):
            layers += [spectral_norm(nn.Conv2d(before, after, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        layers += [nn.Flatten(), spectral_norm(nn.Linear(features[-1] * 16, 1))]
        self.body = nn.Sequential(*layers)
        self.classes = classes
        if classes:
            self.embed = spectral_norm(nn.Embedding(classes, features[-1] * 16))

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """One realness score per image (of its class, int64 labels, when conditional)."""
        if not self.classes:
            return self.body(images).squeeze(1)
        if labels is None:
            raise ValueError("a projection discriminator needs the images' labels")
        phi = self.body[:-1](images)
        return self.body[-1](phi).squeeze(1) + (self.embed(labels) * phi).sum(1)


class GanFamily(GeneratorFamily):
    """DCGAN with spectral norm, hinge loss and an EMA generator for sampling."""

    declaration = DECLARATION
    accepts_classes = True  # class-conditional batch norm in the generator, a projection discriminator

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
        self.generator = DcganGenerator(h["latent_dim"], h["width"], resolution, channels, self.class_count)
        self.discriminator = SpectralDiscriminator(h["width"], resolution, channels, self.class_count)
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

    def trained_modules(self) -> dict[str, nn.Module]:
        """Both networks train: each is averaged over processes under torchrun."""
        return {"generator": self.generator, "discriminator": self.discriminator}

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
        """One discriminator step, then one generator step, then the EMA update.

        A conditional model generates the batch's own classes, and the projection discriminator judges
        real and generated images each against its class.
        """
        hinge = self.hparams["loss"] == "hinge"
        if self.conditional and labels is None:
            raise StudioError("a class-conditional GAN trains on labelled batches")
        labels = labels if self.conditional else None
        with precision.autocast():
            fake = self._generate(self.replica("generator"), self._latents(batch.shape[0]), labels)
            discriminator = self.replica("discriminator")
            real_score = discriminator(batch, labels)
            fake_score = discriminator(fake.detach(), labels)
            if hinge:
                d_loss = F.relu(1 - real_score).mean() + F.relu(1 + fake_score).mean()
            else:
                d_loss = F.softplus(-real_score).mean() + F.softplus(fake_score).mean()
        precision.step(d_loss, self._optimizers["discriminator"])
        with precision.autocast():
            # The bare discriminator: this step updates only the generator (whose gradients the generator's
            # replica averages), so the discriminator's gradients need no exchange between processes.
            score = self.discriminator(fake, labels)
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
        """The averaged generator: latents (and, when conditional, class weights) -> images."""
        dim, count = self.hparams["latent_dim"], self.class_count
        latents = rng.standard_normal((3, dim)).astype(np.float32)
        if not self.conditional:
            return [
                NetworkExport(
                    "generator",
                    self.ema,
                    (torch.zeros(2, dim),),
                    ("latent",),
                    ("image",),
                    {"latent": {0: "batch"}},
                    [(latents,)],
                )
            ]
        # Parity on a one-hot row, a row of zeros and a mix of two classes: every use the runtime makes.
        weights = np.zeros((3, count), np.float32)
        weights[0, rng.integers(count)] = 1.0
        weights[2, :2] = 0.5
        return [
            NetworkExport(
                "generator",
                self.ema,
                (torch.zeros(2, dim), torch.eye(count)[:2]),
                ("latent", "class_weights"),
                ("image",),
                {"latent": {0: "batch"}, "class_weights": {0: "batch"}},
                [(latents, weights)],
            )
        ]

    def pipeline(self) -> GanPipeline:
        """Sampling and interpolation over the EMA generator."""
        return GanPipeline(self.spec(), self.numpy_function(self.ema, [self.ema]))

    def generate(self, latents: np.ndarray, class_weights: np.ndarray | None = None) -> np.ndarray:
        """Images from explicit latent vectors (and a conditional model's class weights N x K): uint8 NHWC."""
        return self.pipeline().decode(latents, {}, class_weights)

    def _generate(self, generator: nn.Module, latents: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """A generator's images of latents, of the labels' classes when conditional."""
        weights = self.class_weights(labels)
        return generator(latents) if weights is None else generator(latents, weights)

    @torch.no_grad()
    def diagnostics(self, real: torch.Tensor) -> Diagnostics:
        """Diversity: mean pairwise distance of samples over that of real images (near 0: collapse).

        A conditional model's samples cycle through its classes, the way its previews do.
        """
        count = min(64, real.shape[0])
        if count < 4:
            return Diagnostics()
        fixed = torch.from_numpy(gaussian_noise(range(count), (self.hparams["latent_dim"],))).to(self.device)
        labels = torch.arange(count, device=self.device) % self.class_count if self.conditional else None
        fake = self._generate(self.ema, fixed, labels).float().flatten(1)
        spread_fake = torch.pdist(fake).mean()
        spread_real = torch.pdist(real[:count].float().flatten(1)).mean().clamp_min(1e-8)
        diversity = float(spread_fake / spread_real)
        warnings = []
        if diversity < MODE_COLLAPSE_RATIO:
            warnings.append(f"possible mode collapse: samples are only {diversity:.0%} as varied as the data")
        return Diagnostics({"diversity": diversity}, warnings)
