"""ONNX Runtime inference: numpy and onnxruntime only, never torch.

`load_exported(folder, provider)` opens an export made by `studio.engine.export` and returns an
`OnnxModel` whose `pipeline` samples, interpolates and inpaints exactly as the torch backend does.
"""

from studio.engine.families.pipeline import Endpoint, Pipeline
from studio.engine.runtime.package import ExportError, OnnxModel, load_exported, read_manifest
from studio.engine.runtime.providers import PROVIDER_CHOICES, available_providers

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
