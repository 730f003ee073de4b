"""The contrastive encoder's settings: architecture, SimCLR augmentations and training (torch-free).

Each augmentation is a switch, so a user whose images must not be mirrored (digits, text) or whose
colours carry the meaning turns that one off; `validate_options` gives the same one-line errors as
every family's settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from studio.engine.families.schema import Hyperparameter, validate_options
from studio.errors import StudioError

# Fewer images than this cannot give SimCLR a batch of distinct negatives worth learning from.
MIN_IMAGES = 32
ENCODER_KIND = "simclr"

ENCODER_SCHEMA: tuple[Hyperparameter, ...] = (
    Hyperparameter(
        "input_size",
        int,
        32,
        "side the images are resized to before encoding (at most the dataset's size): small is fast",
        group="model",
        minimum=8,
        maximum=128,
    ),
    Hyperparameter(
        "width", int, 32, "feature maps of the first block (doubled at each of the 3 blocks)", "model", 8, 256
    ),
    Hyperparameter(
        "projection_dims",
        int,
        64,
        "output of the projection head the loss sees (dropped after training)",
        "model",
        8,
        512,
    ),
    Hyperparameter(
        "batch_size", int, 128, "images per step (each seen as two augmented views)", minimum=8, maximum=2048
    ),
    Hyperparameter(
        "learning_rate", float, 2e-3, "AdamW learning rate (cosine decay after a warm-up)", minimum=1e-6, maximum=1.0
    ),
    Hyperparameter(
        "temperature",
        float,
        0.2,
        "NT-Xent temperature: lower sharpens the contrast between views",
        minimum=0.01,
        maximum=2.0,
    ),
    Hyperparameter("crop", bool, True, "random resized crop (the augmentation SimCLR found matters most)"),
    Hyperparameter("crop_scale", float, 0.5, "smallest share of the image a crop keeps", minimum=0.1, maximum=1.0),
    Hyperparameter("flip", bool, True, "mirror left-right (turn off when mirrored images mean something else)"),
    Hyperparameter("colour_jitter", bool, True, "brightness and contrast (and saturation and hue for colour images)"),
    Hyperparameter("grayscale", bool, True, "colour images: drop the colour of some views (20%)"),
    # Off by default: an encoder taught that blur does not matter cannot see the blur of a VAE's samples,
    # and the quality score then ranked a blurry VAE above a sharper GAN (bench/results/agreement-blur-cpu.txt).
    Hyperparameter("blur", bool, False, "Gaussian blur of half the views (makes the encoder blind to blur)"),
    Hyperparameter("cutout", bool, True, "erase a random square of a quarter of the views (suits small images)"),
    Hyperparameter("noise", bool, False, "add a little Gaussian pixel noise"),
)

DEFAULTS: dict[str, Any] = {setting.name: setting.default for setting in ENCODER_SCHEMA}


def encoder_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """Every encoder setting: the defaults overlaid with validated `values` (text is parsed)."""
    unknown = sorted(set(values) - set(DEFAULTS))
    if unknown:
        raise StudioError(f"unknown encoder setting '{unknown[0]}': choose from {', '.join(sorted(DEFAULTS))}")
    return validate_options(ENCODER_SCHEMA, DEFAULTS, values, "the encoder")
