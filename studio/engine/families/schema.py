"""The typed hyperparameter schema every family declares (torch-free: the ONNX runtime reads it too)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from studio.errors import StudioError

_KINDS: dict[str, type] = {"int": int, "float": float, "bool": bool, "str": str}


@dataclass(frozen=True)
class Hyperparameter:
    """One setting: its type, default, range or choices, and the help text the UI shows.

    group: "model" (architecture, fixed once a model exists), "training" (may change when
    resuming or fine-tuning) or "sampling" (a generation option, `studio generate --set`).
    """

    name: str
    kind: type[Any]
    default: Any
    help: str
    group: str = "training"
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None

    def parse(self, text: str) -> Any:
        """A value from command-line text (`--set name=text`), validated."""
        try:
            if self.kind is bool:
                lowered = text.strip().lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                    raise ValueError(text)
                value: Any = lowered in ("true", "1", "yes", "on")
            elif self.kind is int:
                value = int(text)
            elif self.kind is float:
                value = float(text)
            else:
                value = text
        except ValueError:
            raise StudioError(f"{self.name}: '{text}' is not a valid {self.kind.__name__}") from None
        return self.validate(value)

    def validate(self, value: Any) -> Any:
        """The value if it fits the type and range, else a StudioError with the allowed range."""
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.kind) or (self.kind is int and isinstance(value, bool)):
            raise StudioError(f"{self.name}: expected {self.kind.__name__}, got {value!r}")
        if self.kind is float and not math.isfinite(value):
            raise StudioError(f"{self.name}: {value} is not a finite number")
        if self.choices is not None and value not in self.choices:
            raise StudioError(f"{self.name}: {value!r} is not one of {', '.join(map(str, self.choices))}")
        if self.minimum is not None and value < self.minimum:
            raise StudioError(f"{self.name}: {value} is below the minimum {self.minimum:g}")
        if self.maximum is not None and value > self.maximum:
            raise StudioError(f"{self.name}: {value} is above the maximum {self.maximum:g}")
        return value

    def as_dict(self) -> dict[str, Any]:
        """JSON form for the UI and `studio models show`."""
        return {
            "name": self.name,
            "type": self.kind.__name__,
            "default": self.default,
            "help": self.help,
            "group": self.group,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "choices": list(self.choices) if self.choices else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Hyperparameter:
        """The inverse of `as_dict` (an ONNX manifest carries the sampling schema this way)."""
        kind = _KINDS.get(str(data.get("type")))
        if kind is None:
            raise StudioError(f"setting {data.get('name')!r} has an unknown type {data.get('type')!r}")
        choices = data.get("choices")
        return cls(
            str(data["name"]),
            kind,
            data["default"],
            str(data.get("help", "")),
            str(data.get("group", "sampling")),
            data.get("minimum"),
            data.get("maximum"),
            tuple(choices) if choices else None,
        )


def split_settings(pairs: list[str]) -> dict[str, str]:
    """`key=value` strings (from --set) as a dict of text values, unparsed; one-line error otherwise."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, separator, text = pair.partition("=")
        if not separator or not key.strip():
            raise StudioError(f"--set takes key=value, not '{pair}'")
        values[key.strip()] = text
    return values


def validate_options(
    schema: tuple[Hyperparameter, ...], defaults: Mapping[str, Any], values: Mapping[str, Any], family: str
) -> dict[str, Any]:
    """Sampling settings: `defaults` for every name in `schema`, overlaid with validated `values`.

    A value given as text (from `--set key=text`) is parsed by its setting's type first.
    """
    by_name = {h.name: h for h in schema}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        allowed = ", ".join(sorted(by_name)) or "none"
        raise StudioError(f"unknown sampling setting '{unknown[0]}' for {family}: choose from {allowed}")
    merged = {name: defaults.get(name, h.default) for name, h in by_name.items()}
    for name, value in values.items():
        setting = by_name[name]
        merged[name] = (
            setting.parse(value) if isinstance(value, str) and setting.kind is not str else (setting.validate(value))
        )
    return merged


# Settings every family shares; each family's declaration adds its own.
COMMON_SCHEMA: tuple[Hyperparameter, ...] = (
    Hyperparameter("batch_size", int, 64, "images per training step", minimum=1, maximum=4096),
    Hyperparameter("hflip", bool, False, "randomly mirror training images left-right (augmentation)"),
    Hyperparameter(
        "conditional",
        str,
        "auto",
        "generate a chosen class of the dataset (auto: when its images are labelled with 2 or more classes)",
        "model",
        choices=("auto", "yes", "no"),
    ),
)
