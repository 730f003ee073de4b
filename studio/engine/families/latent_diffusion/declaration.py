"""The latent diffusion family's declaration: diffusion in an autoencoder's latent space (LDM)."""

from __future__ import annotations

from studio.engine.families.declaration import FamilyDeclaration, NetworkSignature
from studio.engine.families.diffusion.declaration import DECLARATION as DIFFUSION
from studio.engine.families.schema import Hyperparameter

# Diffusion's settings except the choice of U-Net: latent diffusion always uses diffusers' UNet2DModel.
_DIFFUSION_SETTINGS = tuple(h for h in DIFFUSION.schema if h.name != "network")

DECLARATION = FamilyDeclaration(
    name="latent_diffusion",
    title="Latent diffusion (LDM)",
    description=(
        "An autoencoder (KL-regularised, or vector-quantised as in CompVis' LDM) compresses each image to a "
        "small latent grid; a U-Net learns to denoise those latents, and sampling denoises noise in latent space "
        "and decodes the result once. Each step costs a fraction of pixel-space diffusion at the same size, which "
        "is what makes 256 px affordable (Stable Diffusion works this way). "
        "Trained in two stages: the autoencoder first, then the U-Net on its frozen latents. What the autoencoder "
        "loses (fine texture, small details) no sampler can bring back: check its reconstructions."
    ),
    capabilities=frozenset({"sample", "interpolate", "inpaint"}),
    schema=(
        Hyperparameter(
            "autoencoder",
            str,
            "kl",
            "the latent autoencoder: kl (AutoencoderKL, a smooth latent space) or vq (VQModel, a codebook)",
            group="model",
            choices=("kl", "vq"),
        ),
        Hyperparameter(
            "downscale",
            int,
            2,
            "how many times smaller the latent grid is than the image a side (1, 2, 4 or 8)",
            group="model",
            minimum=1,
            maximum=8,
        ),
        Hyperparameter("latent_channels", int, 4, "channels of the latent grid", group="model", minimum=1, maximum=16),
        Hyperparameter(
            "autoencoder_width",
            int,
            32,
            "channels of the autoencoder's first level (doubled further down)",
            group="model",
            minimum=8,
            maximum=512,
        ),
        Hyperparameter(
            "codebook_size", int, 256, "codes in the vq autoencoder's codebook", group="model", minimum=2, maximum=16384
        ),
        Hyperparameter(
            "autoencoder_steps",
            int,
            2000,
            "training steps of the first stage (the autoencoder) before the U-Net trains on its latents; "
            "a model that starts from a trained autoencoder skips the stage",
            minimum=0,
            maximum=10_000_000,
        ),
        Hyperparameter(
            "autoencoder_learning_rate", float, 1e-3, "Adam learning rate of the autoencoder", minimum=1e-7, maximum=1.0
        ),
        Hyperparameter(
            "kl_weight",
            float,
            1e-6,
            "weight of the KL term of the kl autoencoder (LDM keeps it tiny: latents stay detailed, only their "
            "scale is held in check)",
            minimum=0.0,
            maximum=1.0,
        ),
        *_DIFFUSION_SETTINGS,
    ),
    networks=(
        NetworkSignature("denoiser", ("sample", "timestep"), ("noise",), conditional_inputs=("class_weights",)),
        NetworkSignature("decoder", ("latents",), ("images",)),
        NetworkSignature("encoder", ("images",), ("latents",)),
    ),
    model_class="LatentDiffusionFamily",
    refusals={"encode": "interpolate between seeds or items sampled from this model"},
    preview_count=16,
    preview_caption="Stage 1: the autoencoder's reconstructions of real images. Stage 2: samples from fixed seeds.",
    interpolation_note="Latent diffusion interpolates the starting latent noise with deterministic DDIM (eta 0).",
    sampling_limits={"steps": "timesteps"},
    interpolation_settings={"sampler": "ddim", "eta": 0.0},
    inpainting_settings=frozenset({"resample"}),
)
