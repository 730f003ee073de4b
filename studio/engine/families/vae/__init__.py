"""vae family: declaration (torch-free), numpy pipeline, and (in `model`) its torch networks and training."""

from studio.engine.families.vae.declaration import DECLARATION
from studio.engine.families.vae.pipeline import VaePipeline

PIPELINE = VaePipeline  # the registry asks every family for these two names

__all__ = ["DECLARATION", "PIPELINE", "VaePipeline"]
