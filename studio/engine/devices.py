"""What this machine can run on: torch devices and the ONNX Runtime providers that really work."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from studio.errors import StudioError

if TYPE_CHECKING:
    import torch


def torch_devices() -> list[dict[str, Any]]:
    """The CPU, and each CUDA GPU (name, memory) or Apple GPU torch can use."""
    devices: list[dict[str, Any]] = [{"kind": "cpu", "name": f"CPU ({os.cpu_count()} cores)"}]
    try:
        import torch
    except ImportError:
        return devices
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            devices.append(
                {"kind": "cuda", "index": index, "name": props.name, "memory_gib": round(props.total_memory / 2**30, 1)}
            )
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append({"kind": "mps", "name": "Apple GPU (MPS)"})
    return devices


def provider_report() -> dict[str, list[str]]:
    """ONNX Runtime providers this build offers, and those on which a session really runs here
    (probed with a one-node model; a provider that cannot start is simply not listed as usable)."""
    from onnx import TensorProto, helper

    from studio.engine.runtime.providers import available_providers, usable_providers

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    probe = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    probe.ir_version = 8
    return {"available": available_providers(), "usable": usable_providers(probe.SerializeToString())}


def select_device(requested: str = "auto") -> torch.device:
    """CUDA, then Apple's MPS, then the CPU; an explicit request must be available."""
    import torch  # here, not at the top: `studio info` lists devices without paying for torch at start-up

    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested not in ("cpu", "cuda", "mps"):
        raise StudioError(f"unknown device '{requested}': choose auto, cpu, cuda or mps")
    if requested == "cuda" and not torch.cuda.is_available():
        raise StudioError("no usable CUDA GPU here: use --device auto or cpu")
    if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise StudioError("Apple MPS is not available here: use --device auto or cpu")
    return torch.device(requested)
