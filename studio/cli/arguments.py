"""Argument choices that several command groups share, each defined once."""

from __future__ import annotations

from studio.engine.families import registry

# The torch devices a command may ask for ("auto" picks the best one present).
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
BACKEND_CHOICES = ("torch", "onnx")


def family_choices() -> tuple[str, ...]:
    """The generator families' names, as the family registry lists them (the only list there is)."""
    return registry.family_names()
