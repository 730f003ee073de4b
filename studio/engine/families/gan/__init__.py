"""gan family: declaration (torch-free), numpy pipeline, and (in `model`) its torch networks and training."""

from studio.engine.families.gan.declaration import DECLARATION
from studio.engine.families.gan.pipeline import GanPipeline

PIPELINE = GanPipeline  # the registry asks every family for these two names

__all__ = ["DECLARATION", "PIPELINE", "GanPipeline"]
