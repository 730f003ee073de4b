"""Transitional re-export of `studio.engine.families.schema`."""

from studio.engine.families.schema import Hyperparameter, validate_options

__all__ = ["Hyperparameter", "validate_options"]
