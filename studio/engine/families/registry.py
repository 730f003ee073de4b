"""The one list of generator families, and what every entry point asks of them.

Adding a family is one package under `studio/engine/families/` plus one line in `FAMILY_NAMES`.
Declarations and pipelines are torch-free; `family_class` loads a family's torch side on first use,
so importing the registry (the CLI, the UI's pickers, the ONNX runtime) stays cheap.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

from studio.engine.families.declaration import FamilyDeclaration
from studio.engine.families.pipeline import Pipeline
from studio.engine.families.schema import Hyperparameter, split_settings
from studio.errors import StudioError

if TYPE_CHECKING:
    from studio.engine.families.base import GeneratorFamily

# The families, in the order the UI and `studio families` list them: each names a package here.
# Families that are not trainable (imported ONNX generators) come last: pickers for training skip them.
FAMILY_NAMES: tuple[str, ...] = ("gan", "vae", "pixelcnn", "gpt", "diffusion", "latent_diffusion", "onnx_generator")


def family_names() -> tuple[str, ...]:
    """The families' names, in registry order (read at call time, so a test may register one more)."""
    return FAMILY_NAMES


def trainable_family_names() -> tuple[str, ...]:
    """The families Studio can train (the choices of `studio train --family` and the Train page)."""
    return tuple(name for name in family_names() if declaration(name).trainable)


def _package(name: str) -> ModuleType:
    if name not in family_names():
        raise StudioError(f"unknown family '{name}': choose one of {', '.join(family_names())}")
    return importlib.import_module(f"{__package__}.{name}")


def declaration(name: str) -> FamilyDeclaration:
    """The declaration of family `name`, or a StudioError listing the families."""
    return _package(name).DECLARATION


def declarations() -> list[FamilyDeclaration]:
    """Every family's declaration, in registry order."""
    return [declaration(name) for name in family_names()]


def pipeline_class(name: str) -> type[Pipeline]:
    """The numpy pipeline class of family `name` (torch-free)."""
    return _package(name).PIPELINE


def family_class(name: str) -> type[GeneratorFamily]:
    """The torch class of family `name` (imports torch on first use); a one-line StudioError for a family
    with no torch side (it cannot be trained, fine-tuned, exported or run with --backend torch)."""
    declared = declaration(name)
    if not declared.trainable:
        raise StudioError(
            f"{name} models are imported ONNX files with no torch side: Studio runs them with --backend onnx "
            "but cannot train, fine-tune or export them (they are ONNX already)"
        )
    module = importlib.import_module(f"{_package(name).__name__}.model")
    return getattr(module, declared.model_class)


def full_schema(name: str) -> tuple[Hyperparameter, ...]:
    """Every setting of family `name`: the common ones followed by its own."""
    return declaration(name).full_schema()


def describe_families() -> list[dict[str, Any]]:
    """Every family's name, title, description, capabilities and schema (what the UI shows)."""
    return [
        {
            "name": d.name,
            "title": d.title,
            "description": d.description,
            "capabilities": sorted(d.capabilities),
            "trainable": d.trainable,
            "schema": [h.as_dict() for h in full_schema(d.name)],
        }
        for d in declarations()
    ]


def parse_overrides(name: str, pairs: list[str]) -> dict[str, Any]:
    """`key=value` strings (from --set) to validated values of family `name`'s schema."""
    schema = {h.name: h for h in full_schema(name)}
    values: dict[str, Any] = {}
    for key, text in split_settings(pairs).items():
        if key not in schema:
            raise StudioError(f"unknown setting '{key}' for {name}: choose from {', '.join(sorted(schema))}")
        values[key] = schema[key].parse(text)
    return values
