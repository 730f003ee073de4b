"""Transitional re-export: pipelines live in `studio.engine.families` now."""

from studio.engine.families.pipeline import Endpoint, ModelSpec, Pipeline
from studio.engine.families.registry import FAMILY_NAMES, pipeline_class

PIPELINES = {name: pipeline_class(name) for name in FAMILY_NAMES}

__all__ = ["PIPELINES", "Endpoint", "ModelSpec", "Pipeline"]
