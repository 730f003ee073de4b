"""Argument choices and types that several command groups share, each defined once."""

from __future__ import annotations

import argparse

from studio.engine.families import registry
from studio.engine.runtime.provider_names import PROVIDER_CHOICES
from studio.errors import StudioError
from studio.limits import BACKENDS, ITEM_ID, IntRange, readable

# The torch devices a command may ask for ("auto" picks the best one present).
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
BACKEND_CHOICES = BACKENDS
__all__ = [
    "BACKEND_CHOICES",
    "DEVICE_CHOICES",
    "PROVIDER_CHOICES",
    "BoundedInt",
    "family_choices",
    "trainable_family_choices",
]


def family_choices() -> tuple[str, ...]:
    """The generator families' names, as the family registry lists them (the only list there is)."""
    return registry.family_names()


def trainable_family_choices() -> tuple[str, ...]:
    """The families Studio can train (imported-only ones, such as onnx_generator, left out)."""
    return registry.trainable_family_names()


class BoundedInt:
    """An argparse `type` for a whole number inside `bounds`; anything else is a one-line usage error."""

    def __init__(self, bounds: IntRange) -> None:
        self.bounds = bounds
        self.__name__ = bounds.what  # what argparse names the type in its own messages

    def __call__(self, text: str) -> int:
        """Parse `text`; argparse turns the refusal into `argument --seed: invalid seed ...` and exit 2."""
        try:
            return self.bounds.parse(text)
        except StudioError as error:
            raise argparse.ArgumentTypeError(str(error)) from None


def item_id(text: str) -> int:
    """A gallery item id, as `45` or `#45`; else a one-line StudioError (exit 1) naming the range."""
    digits = text[1:] if text.startswith("#") else text
    if not (digits.isascii() and digits.isdigit()):
        raise StudioError(f"'{text}' is not a gallery item id: choose a number from 1 to {readable(ITEM_ID.high)}")
    return ITEM_ID.parse(digits)
