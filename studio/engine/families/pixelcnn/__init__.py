"""pixelcnn family: declaration (torch-free), numpy pipeline, and (in `model`) its torch networks and training."""

from studio.engine.families.pixelcnn.declaration import DECLARATION
from studio.engine.families.pixelcnn.pipeline import PixelCnnPipeline

PIPELINE = PixelCnnPipeline  # the registry asks every family for these two names

__all__ = ["DECLARATION", "PIPELINE", "PixelCnnPipeline"]
