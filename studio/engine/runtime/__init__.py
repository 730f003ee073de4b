"""ONNX Runtime inference: numpy and onnxruntime only, never torch.

`load_exported(folder, provider)` opens an export made by `studio.engine.export` and returns an
`OnnxModel` whose `pipeline` samples, interpolates and inpaints exactly as the torch backend does.
Importing this package loads nothing: its names load on first use, so that importing one light
module (`provider_names`, for the CLI's parser) costs neither `package` nor onnxruntime, which
`providers` loads only when a session opens.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from studio.engine.families.pipeline import Endpoint, Pipeline
    from studio.engine.runtime.package import ExportError, OnnxModel, load_exported, read_manifest
    from studio.engine.runtime.provider_names import PROVIDER_CHOICES
    from studio.engine.runtime.providers import available_providers

__all__ = [
    "PROVIDER_CHOICES",
    "Endpoint",
    "ExportError",
    "OnnxModel",
    "Pipeline",
    "available_providers",
    "load_exported",
    "read_manifest",
]
_HOMES = {
    "Endpoint": "studio.engine.families.pipeline",
    "Pipeline": "studio.engine.families.pipeline",
    "ExportError": "studio.engine.runtime.package",
    "OnnxModel": "studio.engine.runtime.package",
    "load_exported": "studio.engine.runtime.package",
    "read_manifest": "studio.engine.runtime.package",
    "PROVIDER_CHOICES": "studio.engine.runtime.provider_names",
    "available_providers": "studio.engine.runtime.providers",
}


def __getattr__(name: str) -> Any:
    """Each public name, imported from its module on first use."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
