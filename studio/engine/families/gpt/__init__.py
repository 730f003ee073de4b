"""gpt family: declaration (torch-free), numpy pipeline, and (in `model`) its torch networks and training."""

from studio.engine.families.gpt.declaration import DECLARATION
from studio.engine.families.gpt.pipeline import GptPipeline

PIPELINE = GptPipeline  # the registry asks every family for these two names

__all__ = ["DECLARATION", "PIPELINE", "GptPipeline"]
