"""Transitional re-export of `studio.engine.families.base`."""

from studio.engine.families.base import GeneratorFamily, Precision
from studio.engine.families.declaration import RESOLUTIONS

__all__ = ["RESOLUTIONS", "GeneratorFamily", "Precision"]
