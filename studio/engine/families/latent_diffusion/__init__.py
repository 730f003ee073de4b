"""latent_diffusion family: declaration (torch-free), numpy pipeline, and (in `model`) torch networks and training."""

from studio.engine.families.latent_diffusion.declaration import DECLARATION
from studio.engine.families.latent_diffusion.pipeline import LatentDiffusionPipeline

PIPELINE = LatentDiffusionPipeline  # the registry asks every family for these two names

__all__ = ["DECLARATION", "PIPELINE", "LatentDiffusionPipeline"]
