"""Transitional re-export: the tables moved to `studio.store.tables` ("model" means a generator)."""

from studio.store.tables import *  # noqa: F403
from studio.store.tables import Dataset, GalleryItem, Model, TrainingRun

__all__ = ["Dataset", "GalleryItem", "Model", "TrainingRun"]
