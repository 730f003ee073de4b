"""The gan family's declaration: what it is, what it can do and refuses, what it exports, its settings."""

from __future__ import annotations

from studio.engine.families.declaration import FamilyDeclaration, NetworkSignature
from studio.engine.families.schema import Hyperparameter

DECLARATION = FamilyDeclaration(
    name="gan",
    title="GAN (generative adversarial network)",
    description=(
        "A generator maps random noise to images while a discriminator learns to tell them from real "
        "ones; the two train against each other. Sharp samples in a single network pass, and a latent "
        "space to interpolate through. Watch for mode collapse (few distinct outputs: the diversity "
        "figure drops and Studio warns) and unstable training (losses that oscillate or vanish); "
        "spectral norm, the hinge loss and an averaged (EMA) generator keep it steadier."
    ),
    capabilities=frozenset({"sample", "interpolate"}),
    schema=(
        Hyperparameter("latent_dim", int, 64, "size of the noise vector z", "model", 2, 512),
        Hyperparameter("width", int, 32, "feature maps of the first layers (network size)", "model", 8, 256),
        Hyperparameter("learning_rate", float, 2e-4, "Adam learning rate of both networks", "training", 1e-6, 1e-1),
        Hyperparameter("loss", str, "hinge", "adversarial loss", "training", choices=("hinge", "nonsaturating")),
        Hyperparameter(
            "ema_decay",
            float,
            0.999,
            "averaging of generator weights used for sampling (0: off)",
            "training",
            0.0,
            0.9999,
        ),
        Hyperparameter(
            "truncation",
            float,
            1.0,
            "scale of the noise at sampling: lower is safer, less varied",
            "sampling",
            0.05,
            2.0,
        ),
    ),
    networks=(NetworkSignature("generator", ("latent",), ("image",), conditional_inputs=("class_weights",)),),
    model_class="GanFamily",
    refusals={
        "inpaint": "a GAN has no way to condition on known pixels (use a VAE, PixelCNN or diffusion model)",
        "encode": "a GAN has no encoder: interpolate between seeds or items sampled from this model",
    },
    preview_count=16,
)
