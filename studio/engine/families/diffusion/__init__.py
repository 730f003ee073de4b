"""diffusion family: declaration (torch-free), numpy pipeline, and (in `model`) its torch networks and training."""

from studio.engine.families.diffusion.declaration import DECLARATION
from studio.engine.families.diffusion.pipeline import DiffusionPipeline

PIPELINE = DiffusionPipeline  # the registry asks every family for these two names

__all__ = ["DECLARATION", "PIPELINE", "DiffusionPipeline"]
