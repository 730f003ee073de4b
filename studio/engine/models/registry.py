"""Transitional re-export of `studio.engine.families.registry`."""

from typing import Any

from studio.engine.families import registry as _registry
from studio.engine.families.registry import FAMILY_NAMES, describe_families, family_class

__all__ = ["FAMILY_NAMES", "describe_families", "family_class", "parse_overrides"]


def parse_overrides(family: Any, pairs: list[str]) -> dict[str, Any]:
    """`key=value` strings to validated settings of a family given by name or class."""
    return _registry.parse_overrides(family if isinstance(family, str) else family.name, pairs)
