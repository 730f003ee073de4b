"""The gpt family's declaration: a decoder-only transformer over a VQ-VAE's codebook tokens."""

from __future__ import annotations

from studio.engine.families.declaration import FamilyDeclaration, NetworkSignature
from studio.engine.families.schema import Hyperparameter

# The longest token sequence (codes per image) the transformer takes: a 32 x 32 grid. Sampling costs
# one network call per token, and attention grows with the square of the length.
MAX_TOKENS = 1024

DECLARATION = FamilyDeclaration(
    name="gpt",
    title="GPT over VQ tokens (VQ-VAE + transformer)",
    description=(
        "A VQ-VAE turns each image into a small grid of discrete codes from a learned codebook; a decoder-only "
        "transformer then learns to predict the next code of the grid in raster order, the way a language model "
        "predicts the next word (DALL-E's first version and VQGAN work this way). Sampling draws one code at a "
        "time with a temperature, top-k and top-p, and a class is asked for through the first token. "
        "Trained in two stages: the VQ-VAE first, then the transformer on its frozen codes. Watch for codebook "
        "collapse (only a few codes in use: the usage figure drops and Studio warns; unused codes are restarted "
        "from the data) and for the cost of sampling one code per network call."
    ),
    capabilities=frozenset({"sample", "interpolate", "encode", "inpaint"}),
    schema=(
        Hyperparameter(
            "downscale",
            int,
            4,
            "how many times smaller the code grid is than the image a side (tokens per image: "
            "(resolution / downscale) squared)",
            "model",
            choices=(2, 4, 8),
        ),
        Hyperparameter(
            "codebook_size", int, 256, "codes in the VQ-VAE's codebook (the token vocabulary)", "model", 2, 8192
        ),
        Hyperparameter("code_dim", int, 32, "length of each code vector", "model", 2, 512),
        Hyperparameter(
            "vq_width", int, 16, "feature maps of the VQ-VAE at full size (doubled below it)", "model", 8, 512
        ),
        Hyperparameter("layers", int, 3, "transformer blocks", "model", 1, 24),
        Hyperparameter("heads", int, 4, "attention heads per block (must divide width)", "model", 1, 16),
        Hyperparameter("width", int, 96, "transformer width (embedding size)", "model", 16, 1024),
        Hyperparameter(
            "vq_steps",
            int,
            300,
            "training steps of the first stage (the VQ-VAE) before the transformer trains on its codes; a model "
            "that starts from a trained VQ-VAE skips the stage",
            "training",
            0,
            10_000_000,
        ),
        Hyperparameter("vq_learning_rate", float, 1e-3, "Adam learning rate of the VQ-VAE", "training", 1e-6, 1.0),
        Hyperparameter(
            "commitment",
            float,
            0.25,
            "weight of the commitment loss that keeps encoder outputs near their codes",
            "training",
            0.0,
            10.0,
        ),
        Hyperparameter(
            "codebook_decay",
            float,
            0.99,
            "moving-average decay of the codebook updates (lower follows the encoder faster)",
            "training",
            0.5,
            0.9999,
        ),
        Hyperparameter(
            "dead_code_steps",
            int,
            100,
            "restart a code from a random encoder output after this many steps unused (0: never)",
            "training",
            0,
            1_000_000,
        ),
        Hyperparameter(
            "learning_rate",
            float,
            1e-3,
            "AdamW learning rate of the transformer (reached after a linear warm-up over its first 100 steps)",
            "training",
            1e-6,
            1.0,
        ),
        Hyperparameter("dropout", float, 0.1, "dropout in the transformer while training", "training", 0.0, 0.9),
        Hyperparameter(
            "temperature",
            float,
            1.0,
            "divides the logits: below 1 gives safer, more typical images; above 1 more varied, stranger",
            "sampling",
            0.05,
            2.0,
        ),
        Hyperparameter(
            "top_k",
            int,
            0,
            "draw each code from the k likeliest only (0: off; 1: always the likeliest)",
            "sampling",
            0,
            8192,
        ),
        Hyperparameter(
            "top_p",
            float,
            1.0,
            "draw each code from the likeliest codes whose probabilities add up to p (nucleus sampling; 1: off)",
            "sampling",
            0.01,
            1.0,
        ),
    ),
    networks=(
        # One token per call with a key/value cache (see the pipeline): the previous token, its position
        # and the cache in, the next token's logits and the updated cache out.
        NetworkSignature(
            "transformer", ("token", "position", "past"), ("logits", "present"), conditional_inputs=("class_weights",)
        ),
        NetworkSignature("codebook", ("codes",), ("latents",)),
        NetworkSignature("decoder", ("latents",), ("images",)),
        NetworkSignature("encoder", ("images",), ("codes",)),
    ),
    model_class="GptFamily",
    refusals={},
    preview_count=16,
    preview_caption=(
        "Stage 1 (VQ-VAE): a row of real images, then their reconstructions from codebook tokens. "
        "Stage 2 (transformer): samples from fixed seeds."
    ),
    sampling_limits={"top_k": "codebook_size"},
    interpolation_note=(
        "GPT models interpolate along the VQ latents: each end is a seed's sampled code grid (with its class) or "
        "an image's encoding, and the frames are straight lines between the two grids of code vectors, decoded "
        "directly (the frames in between are not snapped to codes nor drawn by the transformer)."
    ),
)
