"""The family registry: names to classes, and the checks every entry point shares."""

from __future__ import annotations

import importlib
from typing import Any

from studio.engine.models.base import GeneratorFamily
from studio.errors import StudioError

# Modules load on first use so that importing the registry stays cheap.
_MODULES = {
    "gan": ("studio.engine.models.gan", "GanFamily"),
    "vae": ("studio.engine.models.vae", "VaeFamily"),
    "pixelcnn": ("studio.engine.models.pixelcnn", "PixelCnnFamily"),
    "diffusion": ("studio.engine.models.diffusion", "DiffusionFamily"),
}
FAMILY_NAMES = tuple(_MODULES)


def family_class(name: str) -> type[GeneratorFamily]:
    """The class registered under `name`, or a StudioError listing the families."""
    if name not in _MODULES:
        raise StudioError(f"unknown family '{name}': choose one of {', '.join(FAMILY_NAMES)}")
    module, attribute = _MODULES[name]
    return getattr(importlib.import_module(module), attribute)


def describe_families() -> list[dict[str, Any]]:
    """Every family's name, title, description, capabilities and schema (what the UI shows)."""
    described = []
    for name in FAMILY_NAMES:
        cls = family_class(name)
        described.append({
            "name": name, "title": cls.title, "description": cls.description,
            "capabilities": sorted(cls.capabilities), "schema": [h.as_dict() for h in cls.full_schema()],
        })
    return described


def parse_overrides(cls: type[GeneratorFamily], pairs: list[str]) -> dict[str, Any]:
    """`key=value` strings (from --set) to validated values of the family's schema."""
    schema = {h.name: h for h in cls.full_schema()}
    values: dict[str, Any] = {}
    for pair in pairs:
        key, separator, text = pair.partition("=")
        key = key.strip()
        if not separator or not key:
            raise StudioError(f"--set takes key=value, not '{pair}'")
        if key not in schema:
            raise StudioError(f"unknown setting '{key}' for {cls.name}: choose from {', '.join(sorted(schema))}")
        values[key] = schema[key].parse(text)
    return values
