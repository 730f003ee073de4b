"""ONNX Runtime's execution providers by the short names users type: plain constants, no onnxruntime.

Kept apart from `providers` (which opens sessions) so that building the CLI's parser or a page's
provider menu costs no onnxruntime import: importing it takes a good part of a second, and it writes
a device id and telemetry files under the user's cache and temp folders (see `providers`).
"""

from __future__ import annotations

from dataclasses import dataclass

# Short names users type, and ONNX Runtime's names for them.
PROVIDERS: dict[str, str] = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "directml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
}
PROVIDER_CHOICES = ("auto", *PROVIDERS)
# What `auto` tries, in order, before the CPU (TensorRT only when asked for by name: it compiles an
# engine on first use, which takes minutes).
AUTO_ORDER = ("cuda", "rocm", "migraphx", "directml", "coreml")


def short_name(provider: str) -> str:
    """ONNX Runtime's provider name to the short one ("CUDAExecutionProvider" -> "cuda")."""
    for short, full in PROVIDERS.items():
        if full == provider:
            return short
    return provider.removesuffix("ExecutionProvider").lower()


@dataclass(frozen=True)
class ProviderChoice:
    """What a request resolved to: the provider that runs, and a note when it is not what was asked."""

    requested: str
    provider: str  # short name of the provider that actually runs the session
    note: str = ""
