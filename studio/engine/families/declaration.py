"""What a family declares about itself, torch-free: who it is, what it can do, why it refuses, what it exports.

Every part of Studio that needs a fact about a family (the CLI's choices, the UI's pickers and forms,
the ONNX runtime's checks, the refusals users read) asks the family's declaration instead of keeping
its own table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from studio.engine.families.schema import COMMON_SCHEMA, Hyperparameter
from studio.errors import StudioError

# Every capability a family may declare, and what it means to a user (for the one-line refusals).
CAPABILITIES = ("sample", "interpolate", "encode", "inpaint")
_VERBS = {"sample": "sample", "interpolate": "interpolate", "encode": "encode images", "inpaint": "inpaint"}
DEFAULT_PREVIEW_COUNT = 16
RESOLUTIONS = (8, 16, 32, 64, 128, 256)  # square image sizes every family takes
# The largest size each kind of device trains: on a CPU a 256 px step takes minutes even for a small
# network, so 128 px (slow but usable) is the ceiling there; any GPU trains every size.
CPU_TRAINING_LIMIT = 128
GPU_TRAINING_LIMIT = 256


def describe_resolutions(sizes: tuple[int, ...] = RESOLUTIONS) -> str:
    """The sizes as a sentence fragment: "8, 16, 32, 64, 128 or 256"."""
    words = [str(size) for size in sizes]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def training_limit(device_type: str) -> int:
    """The largest image size (px) training takes on a torch device type: "cpu" or a GPU ("cuda", "mps")."""
    return CPU_TRAINING_LIMIT if device_type == "cpu" else GPU_TRAINING_LIMIT


def check_training_size(resolution: int, device_type: str) -> None:
    """Refuse, in one line, to train at a size the device cannot manage in reasonable time."""
    limit = training_limit(device_type)
    if resolution > limit:
        raise StudioError(
            f"training at {resolution} px needs a GPU: on the {device_type.upper()} Studio trains at most "
            f"{limit} px (one step at {resolution} px would take minutes); "
            f"import the dataset again with --size {limit} or train on a CUDA GPU"
        )


@dataclass(frozen=True)
class NetworkSignature:
    """One exported inference network: its role in the manifest, input names and output names."""

    role: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    # Inputs a conditional model's network takes after `inputs` (the class weights, see conditioning).
    conditional_inputs: tuple[str, ...] = ()

    def input_names(self, conditional: bool) -> tuple[str, ...]:
        """The inputs of this network in a conditional or unconditional model."""
        return self.inputs + self.conditional_inputs if conditional else self.inputs


@dataclass(frozen=True)
class FamilyDeclaration:
    """A generator family's identity and promises.

    `model_class` names the torch class in the family's `model` module (loaded only when training or
    exporting); `networks` are the ONNX files an export holds; `refusals` say, per capability the
    family lacks, why (shown to users as "gan models cannot inpaint: <reason>").
    """

    name: str
    title: str
    description: str  # how it works, what it is good at, what goes wrong (shown in the UI)
    capabilities: frozenset[str]
    schema: tuple[Hyperparameter, ...]  # family-specific settings; the common ones are added
    networks: tuple[NetworkSignature, ...]
    model_class: str
    refusals: Mapping[str, str] = field(default_factory=dict)
    preview_count: int = DEFAULT_PREVIEW_COUNT  # images the Train page shows at each preview
    preview_caption: str = "Samples from fixed seeds: the same images sharpen as training goes on."
    interpolation_note: str = ""  # how this family interpolates, when users would not guess it
    # A sampling setting bounded by one of the model's hyperparameters (diffusion: steps <= timesteps).
    sampling_limits: Mapping[str, str] = field(default_factory=dict)
    # Sampling settings interpolation fixes (diffusion: deterministic DDIM), and those only inpainting uses.
    interpolation_settings: Mapping[str, Any] = field(default_factory=dict)
    inpainting_settings: frozenset[str] = frozenset()
    # False for a family with no torch side (imported ONNX generators): it is never trained, fine-tuned
    # or exported, runs only on the ONNX backend, and has no training settings.
    trainable: bool = True

    def __post_init__(self) -> None:
        unknown = sorted(set(self.capabilities) - set(CAPABILITIES))
        if unknown or "sample" not in self.capabilities:
            raise ValueError(f"family {self.name}: capabilities must include sample and come from {CAPABILITIES}")

    def can(self, capability: str) -> bool:
        """Whether the family declares `capability`."""
        return capability in self.capabilities

    def refusal(self, capability: str) -> StudioError:
        """The one-line refusal for a capability this family lacks."""
        reason = self.refusals.get(capability, f"the {self.name} family does not support it")
        return StudioError(f"{self.name} models cannot {_VERBS.get(capability, capability)}: {reason}")

    def full_schema(self) -> tuple[Hyperparameter, ...]:
        """The common settings followed by the family's own (only its own when it is not trainable:
        the common ones are training settings)."""
        return COMMON_SCHEMA + self.schema if self.trainable else self.schema

    def sampling_schema(self) -> tuple[Hyperparameter, ...]:
        """The settings a generation may change (`--set` at generate time)."""
        return tuple(h for h in self.full_schema() if h.group == "sampling")

    def settings_for(self, operation: str) -> tuple[Hyperparameter, ...]:
        """The sampling settings a user may choose for `operation` ("sample", "interpolate" or "inpaint")."""
        hidden = set() if operation == "inpaint" else set(self.inpainting_settings)
        if operation == "interpolate":
            hidden |= set(self.interpolation_settings)
        return tuple(h for h in self.sampling_schema() if h.name not in hidden)

    def check_geometry(self, resolution: int, channels: int) -> None:
        """Every family takes square 8-256 px images (powers of two, RESOLUTIONS) with 1 or 3 channels."""
        if resolution not in RESOLUTIONS:
            nearest = min(RESOLUTIONS, key=lambda size: (abs(size - resolution), size))
            raise StudioError(
                f"{self.name} models take {describe_resolutions()} px images, not {resolution} px: "
                f"import the dataset again with --size {nearest}"
            )
        if channels not in (1, 3):
            raise StudioError(f"{self.name} models take 1 or 3 channels, not {channels}")

    def network_inputs(self, conditional: bool = False) -> dict[str, tuple[str, ...]]:
        """Role -> input names of every exported network (what the runtime feeds)."""
        return {network.role: network.input_names(conditional) for network in self.networks}
