"""The latent diffusion family: a diffusers autoencoder (AutoencoderKL or VQModel) and a UNet2DModel
denoising its latents, trained in two stages, sampled as diffusers' LDMPipeline does.

Stage 1 (steps before `autoencoder_steps`, only while no latent scale is known) trains the
autoencoder on reconstruction (plus a tiny KL term, or the codebook losses). When stage 2 starts, the
latent scale is fixed once as 1 / std of a batch's latents (LDM's rule: unit-variance latents for the
noise schedule), the autoencoder is frozen, and the U-Net trains exactly as pixel diffusion does.
A model whose autoencoder is already trained (imported, or fine-tuned from one) carries its scale and
never runs stage 1.

A class-conditional model conditions only the U-Net (the same class embedding and label dropout as pixel
diffusion); the autoencoder stays unconditional, so the latent space is the same for every class.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 (the conventional name)

from studio.engine.families.base import NetworkExport, Precision
from studio.engine.families.diffusion.model import DiffusionFamily
from studio.engine.families.diffusion.unet import build_network, checked_config, studio_unet_config
from studio.engine.families.latent_diffusion.declaration import DECLARATION
from studio.engine.families.latent_diffusion.pipeline import LatentDiffusionPipeline
from studio.engine.families.pipeline import ModelSpec
from studio.engine.numerics import to_uint8
from studio.errors import StudioError

AUTOENCODER_CLASSES = {"kl": "AutoencoderKL", "vq": "VQModel"}


class LatentDecoder(nn.Module):
    """latents (unscaled) -> images in [-1, 1]; a VQ autoencoder snaps them to its codebook first."""

    def __init__(self, autoencoder: nn.Module) -> None:
        super().__init__()
        self.autoencoder: Any = autoencoder  # a diffusers autoencoder: encode/decode are its own methods

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """The decoded images."""
        return self.autoencoder.decode(latents).sample


class AutoencoderObjective(nn.Module):
    """Stage 1's loss as a forward pass (so DDP can average its gradients): reconstruction plus the
    autoencoder's regulariser (VQ commitment, or the KL of a KL autoencoder weighted by kl_weight)."""

    def __init__(self, autoencoder: nn.Module, kind: str, kl_weight: float) -> None:
        super().__init__()
        self.autoencoder: Any = autoencoder
        self.kind, self.kl_weight = kind, kl_weight

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss to minimise and its named parts."""
        if self.kind == "VQModel":
            decoded = self.autoencoder.decode(self.autoencoder.encode(images).latents)
            reconstruction = F.mse_loss(decoded.sample.float(), images)
            regulariser = decoded.commit_loss.float().mean()
            return reconstruction + regulariser, {"reconstruction": reconstruction, "codebook": regulariser}
        posterior = self.autoencoder.encode(images).latent_dist
        decoded = self.autoencoder.decode(posterior.sample()).sample
        reconstruction = F.mse_loss(decoded.float(), images)
        kl = posterior.kl().float().mean() / images[0].numel()
        return reconstruction + self.kl_weight * kl, {"reconstruction": reconstruction, "kl": kl}


class LatentEncoder(nn.Module):
    """images in [-1, 1] -> unscaled latents (the KL posterior's mean; the VQ encoder's output before snapping)."""

    def __init__(self, autoencoder: nn.Module) -> None:
        super().__init__()
        self.autoencoder: Any = autoencoder  # a diffusers autoencoder: encode/decode are its own methods

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The encoded latents."""
        encoded = self.autoencoder.encode(images)
        if hasattr(encoded, "latent_dist"):
            return encoded.latent_dist.mean
        return encoded.latents


class LatentDiffusionFamily(DiffusionFamily):
    """Diffusion in an autoencoder's latent space (Rombach et al. 2022), trained in two stages."""

    declaration = DECLARATION

    def __init__(
        self,
        resolution: int,
        channels: int,
        hparams: Mapping[str, Any],
        architecture: Mapping[str, Any] | None = None,
        classes: Sequence[str] = (),
    ) -> None:
        super().__init__(resolution, channels, hparams, architecture, classes)
        autoencoder_class, autoencoder_config, scale = self._autoencoder_architecture(architecture)
        self.autoencoder_class = autoencoder_class
        self.autoencoder_config = autoencoder_config
        self.autoencoder: Any = build_network(autoencoder_class, autoencoder_config)
        self.scaling_factor: float | None = scale
        self.autoencoder_optimizer = torch.optim.Adam(
            self.autoencoder.parameters(), lr=self.hparams["autoencoder_learning_rate"]
        )
        self._freeze_autoencoder(scale is not None)

    # --- architecture ---------------------------------------------------------------------

    def _autoencoder_architecture(
        self, architecture: Mapping[str, Any] | None
    ) -> tuple[str, dict[str, Any], float | None]:
        """The autoencoder's class, configuration and latent scale (None before stage 2 of a new model)."""
        if architecture is None or "autoencoder" not in architecture:
            kind = AUTOENCODER_CLASSES[self.hparams["autoencoder"]]
            return kind, self._studio_autoencoder(kind), None
        kind = str(architecture.get("autoencoder_class", ""))
        if kind not in AUTOENCODER_CLASSES.values():
            raise StudioError(f"the latent autoencoder must be an AutoencoderKL or a VQModel, not {kind or 'unnamed'}")
        config = checked_config(kind, architecture["autoencoder"], f"the {kind}'s configuration")
        levels = len(config.get("block_out_channels") or [64])
        if 2 ** (levels - 1) != self.hparams["downscale"]:
            raise StudioError(
                f"the {kind} shrinks images {2 ** (levels - 1)} times a side, but the settings say downscale "
                f"{self.hparams['downscale']}"
            )
        if config.get("latent_channels", 4 if kind == "AutoencoderKL" else 3) != self.latent_channels():
            raise StudioError(f"the {kind}'s latent channels do not match the settings' latent_channels")
        if config.get("in_channels", 3) != self.channels or config.get("out_channels", 3) != self.channels:
            raise StudioError(f"the {kind} takes {config.get('in_channels', 3)}-channel images, not {self.channels}")
        scale = architecture.get("scaling_factor")
        if scale is not None and not (isinstance(scale, int | float) and math.isfinite(scale) and scale > 0):
            raise StudioError("the latent scaling factor must be a positive number")
        return kind, config, float(scale) if scale is not None else None

    def _studio_autoencoder(self, kind: str) -> dict[str, Any]:
        """The autoencoder Studio trains: one level per halving, one residual block each."""
        factor = self.hparams["downscale"]
        if factor & (factor - 1):
            raise StudioError(f"downscale must be 1, 2, 4 or 8, not {factor}")
        levels = int(math.log2(factor)) + 1
        width = self.hparams["autoencoder_width"]
        config: dict[str, Any] = {
            "in_channels": self.channels,
            "out_channels": self.channels,
            "down_block_types": ["DownEncoderBlock2D"] * levels,
            "up_block_types": ["UpDecoderBlock2D"] * levels,
            "block_out_channels": [width * min(2**level, 4) for level in range(levels)],
            "layers_per_block": 1,
            "latent_channels": self.latent_channels(),
            "norm_num_groups": math.gcd(8, width),
            "sample_size": self.resolution,
        }
        if kind == "VQModel":
            config["num_vq_embeddings"] = self.hparams["codebook_size"]
        return checked_config(kind, config, "the autoencoder's settings")

    def latent_resolution(self) -> int:
        """The latent grid's side: the image's divided by the downscale."""
        factor = self.hparams["downscale"]
        if self.resolution % factor or self.resolution // factor < 4:
            raise StudioError(f"a {self.resolution} px image cannot be shrunk {factor} times (latents below 4 px)")
        return self.resolution // factor

    def latent_channels(self) -> int:
        """The latent grid's channels."""
        return int(self.hparams["latent_channels"])

    def _unet_architecture(
        self, architecture: Mapping[str, Any] | None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The U-Net over latents: given, or Studio's own at the latent grid's size."""
        if architecture is None or "unet" not in architecture:
            settings = self.hparams
            config = studio_unet_config(
                self.latent_resolution(),
                self.latent_channels(),
                settings["width"],
                settings["attention"],
                self.class_count,
            )
            return config, None
        return super()._unet_architecture(architecture)

    def architecture(self) -> dict[str, Any] | None:
        """The U-Net, the scheduler, the autoencoder and the latent scale, for config.json."""
        base = super().architecture() or {}
        autoencoder = dict(self.autoencoder_config)
        if self.scaling_factor is not None:
            autoencoder["scaling_factor"] = self.scaling_factor
        return {
            **base,
            "autoencoder_class": self.autoencoder_class,
            "autoencoder": autoencoder,
            "scaling_factor": self.scaling_factor,
        }

    # --- networks -----------------------------------------------------------------------

    def networks(self) -> dict[str, nn.Module]:
        """The U-Net, its EMA copy and the autoencoder."""
        return {**super().networks(), "autoencoder": self.autoencoder}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """AdamW over the U-Net, Adam over the autoencoder."""
        return {**super().optimizers(), "autoencoder": self.autoencoder_optimizer}

    def sampling_networks(self) -> tuple[str, ...]:
        """The EMA U-Net and the autoencoder make every image."""
        return ("ema", "autoencoder")

    def _freeze_autoencoder(self, frozen: bool) -> None:
        self.autoencoder.requires_grad_(not frozen)

    # --- training -----------------------------------------------------------------------

    def stage(self, step: int) -> int:
        """1 while the autoencoder trains, 2 once the U-Net does."""
        return 1 if self.scaling_factor is None and step < self.hparams["autoencoder_steps"] else 2

    def training_step(
        self, batch: torch.Tensor, step: int, precision: Precision, labels: torch.Tensor | None = None
    ) -> dict[str, float]:
        """Stage 1: one autoencoder step. Stage 2: one denoising step on the frozen autoencoder's latents (of
        each image's class, dropped with probability class_dropout, for a conditional model)."""
        images = batch.to(self.device, torch.float32)
        if self.stage(step) == 1:
            return self._autoencoder_step(images, precision)
        if self.scaling_factor is None:
            self._fix_scale(images)
        self.unet.train()
        self.autoencoder.eval()
        with torch.no_grad():
            latents = LatentEncoder(self.autoencoder)(images) * self.scaling_factor
        loss = self.denoising_loss(latents, precision, self.class_weights(self.drop_labels(labels)))
        precision.step(loss, self.optimizer, clip=1.0)
        self._update_ema(step)
        return {"loss": float(loss.detach())}

    def trained_modules(self) -> dict[str, nn.Module]:
        """The denoiser (stage 2) and the autoencoder's objective (stage 1)."""
        return {
            **super().trained_modules(),
            "autoencoder": AutoencoderObjective(self.autoencoder, self.autoencoder_class, self.hparams["kl_weight"]),
        }

    def _autoencoder_step(self, images: torch.Tensor, precision: Precision) -> dict[str, float]:
        self.autoencoder.train()
        with precision.autocast():
            loss, figures = self.replica("autoencoder")(images)
        precision.step(loss, self.autoencoder_optimizer, clip=1.0)
        return {name: float(value.detach()) for name, value in figures.items()}

    @torch.no_grad()
    def _fix_scale(self, images: torch.Tensor) -> None:
        """LDM's latent scale, once: 1 / std of this batch's latents; the autoencoder is frozen from now on."""
        self.autoencoder.eval()
        latents = self.collective.gather(LatentEncoder(self.autoencoder)(images))  # the global batch's
        self.scaling_factor = float(1.0 / max(float(latents.float().std()), 1e-6))
        self._freeze_autoencoder(True)

    # --- sampling -----------------------------------------------------------------------

    def spec(self) -> ModelSpec:
        """Diffusion's spec plus the latent grid and its scale."""
        shape = [self.latent_channels(), self.latent_resolution(), self.latent_resolution()]
        return replace(super().spec(), extras={"scaling_factor": self.scaling_factor or 1.0, "latent_shape": shape})

    def latent_shape(self) -> tuple[int, int, int]:
        """The shape of one image's x_T: the latent grid."""
        return (self.latent_channels(), self.latent_resolution(), self.latent_resolution())

    def network_exports(self, rng: np.random.Generator) -> list[NetworkExport]:
        """The denoiser over latents, the decoder and the encoder."""
        shape = self.latent_shape()
        batch = {0: "batch"}
        example_latents = torch.zeros(2, *shape)
        parity_latents = rng.standard_normal((3, *shape)).astype(np.float32)
        timesteps = rng.integers(0, self.hparams["timesteps"], 3).astype(np.int64)
        denoiser = self.denoiser_export(example_latents, parity_latents, timesteps, rng)
        size = self.resolution
        return [
            denoiser,
            NetworkExport(
                "decoder",
                LatentDecoder(self.autoencoder),
                (example_latents,),
                ("latents",),
                ("images",),
                {"latents": batch},
                [(parity_latents,)],
            ),
            NetworkExport(
                "encoder",
                LatentEncoder(self.autoencoder),
                (torch.zeros(2, self.channels, size, size),),
                ("images",),
                ("latents",),
                {"images": batch},
                [(self.random_images(rng, 3) * 2,)],
            ),
        ]

    def pipeline(self) -> LatentDiffusionPipeline:
        """Sampling, interpolation and inpainting over the EMA U-Net and the autoencoder."""
        modules = [self.ema, self.autoencoder]
        return LatentDiffusionPipeline(
            self.spec(),
            self.numpy_function(self.denoiser(self.ema, fast=True), modules),
            self.numpy_function(LatentDecoder(self.autoencoder), modules),
            self.numpy_function(LatentEncoder(self.autoencoder), modules),
        )

    def preview(self, real: torch.Tensor, seeds: Sequence[int], options: Mapping[str, Any]) -> np.ndarray:
        """Stage 1: reconstructions of real images (what the autoencoder keeps); stage 2: quick samples."""
        if self.scaling_factor is not None:
            return super().preview(real, seeds, options)
        images = real[: len(seeds)].float().cpu().numpy()  # the pipeline's networks take numpy in
        pipeline = self.pipeline()
        return to_uint8(pipeline.decoder(pipeline.encoder(images)))
