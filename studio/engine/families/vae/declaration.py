"""The vae family's declaration: what it is, what it can do and refuses, what it exports, its settings."""

from __future__ import annotations

from studio.engine.families.declaration import FamilyDeclaration, NetworkSignature
from studio.engine.families.schema import Hyperparameter

DECLARATION = FamilyDeclaration(
    name="vae",
    title="VAE (variational autoencoder)",
    description=(
        "An encoder maps each image to a Gaussian in a small latent space and a decoder maps latent "
        "samples back to images; training balances reconstruction against a KL term that keeps the "
        "latent space well formed. Its latent space is smooth and it encodes real images, so it "
        "interpolates between them and reconstructs or completes them. Outputs tend to be blurry: "
        "reconstructions are shown beside the originals, and the beta weight trades sharpness for a "
        "better-formed latent space."
    ),
    capabilities=frozenset({"sample", "interpolate", "encode", "inpaint"}),
    schema=(
        Hyperparameter("latent_dim", int, 32, "size of the latent space", "model", 2, 512),
        Hyperparameter("width", int, 32, "feature maps of the first layers (network size)", "model", 8, 256),
        Hyperparameter("learning_rate", float, 1e-3, "Adam learning rate", "training", 1e-6, 1e-1),
        Hyperparameter(
            "beta",
            float,
            1.0,
            "weight of the KL term: higher is smoother latents, blurrier images",
            "training",
            0.0,
            100.0,
        ),
        Hyperparameter(
            "kl_warmup", int, 500, "steps over which the KL weight ramps from 0 to beta", "training", 0, 1_000_000
        ),
        Hyperparameter("temperature", float, 1.0, "scale of the latent noise at sampling", "sampling", 0.05, 2.0),
        Hyperparameter(
            "inpaint_iterations",
            int,
            30,
            "inpainting: encode-decode rounds that pull the filled pixels towards the known ones",
            "sampling",
            1,
            500,
        ),
    ),
    networks=(
        NetworkSignature("decoder", ("latent",), ("image",), conditional_inputs=("class_weights",)),
        NetworkSignature("encoder", ("image",), ("mean", "log_variance"), conditional_inputs=("class_weights",)),
    ),
    model_class="VaeFamily",
    refusals={},
    preview_count=32,  # originals, their reconstructions, then samples: full rows of 8 of each
    inpainting_settings=frozenset({"inpaint_iterations"}),
    preview_caption="Row 1: real images; row 2: their reconstructions (blur shows here); then samples.",
)
