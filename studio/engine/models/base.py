"""What every generator family provides: a hyperparameter schema, networks, a training step, sampling.

A family object owns its networks and optimisers. The trainer feeds it batches of float32 NCHW
images in [-1, 1] and saves `networks()` and `optimizers()` in checkpoints. Sampling draws every
random number from `numpy.random.default_rng(seed)`, one generator per image, so the same seed gives
the same image in any batch and in the ONNX backend.
"""

from __future__ import annotations

import contextlib
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from studio.errors import StudioError

CAPABILITIES = ("sample", "interpolate", "encode", "inpaint")
RESOLUTIONS = (8, 16, 32, 64)


@dataclass(frozen=True)
class Hyperparameter:
    """One setting: its type, default, range or choices, and the help text the UI shows.

    group: "model" (architecture, fixed once a model exists), "training" (may change when
    resuming or fine-tuning) or "sampling" (a generation option, `studio generate --set`).
    """

    name: str
    kind: type
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
            "name": self.name, "type": self.kind.__name__, "default": self.default, "help": self.help,
            "group": self.group, "minimum": self.minimum, "maximum": self.maximum,
            "choices": list(self.choices) if self.choices else None,
        }


# Settings every family shares; families add their own.
COMMON_SCHEMA: tuple[Hyperparameter, ...] = (
    Hyperparameter("batch_size", int, 64, "images per training step", minimum=1, maximum=4096),
    Hyperparameter("hflip", bool, False, "randomly mirror training images left-right (augmentation)"),
)


class Precision:
    """Mixed precision on CUDA (bfloat16 where supported, else float16 with loss scaling); off elsewhere."""

    def __init__(self, device: torch.device, enabled: bool = True) -> None:
        self.device = device
        self.enabled = enabled and device.type == "cuda"
        self.dtype = (
            torch.bfloat16 if self.enabled and torch.cuda.is_bf16_supported() else torch.float16
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.enabled and self.dtype == torch.float16)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The context to run forward passes in."""
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.dtype)

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, clip: float | None = None) -> None:
        """Zero grads, backward (scaled if needed), optional norm clipping, optimiser step."""
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if clip is not None:
            self.scaler.unscale_(optimizer)
            params = [p for group in optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, clip)
        self.scaler.step(optimizer)
        self.scaler.update()


@dataclass
class Diagnostics:
    """Figures and warnings a family reports at preview time (e.g. GAN diversity, mode collapse)."""

    figures: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class GeneratorFamily(ABC):
    """Base class of the four families; subclasses fill in the class attributes and methods."""

    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]  # how it works, what it is good at, what goes wrong (shown in the UI)
    capabilities: ClassVar[frozenset[str]]
    schema: ClassVar[tuple[Hyperparameter, ...]]  # family-specific; COMMON_SCHEMA is added

    def __init__(self, resolution: int, channels: int, hparams: Mapping[str, Any]) -> None:
        self.check_geometry(resolution, channels)
        self.resolution = resolution
        self.channels = channels
        self.hparams = self.resolve(hparams)
        self.device = torch.device("cpu")

    # --- schema -------------------------------------------------------------------------

    @classmethod
    def full_schema(cls) -> tuple[Hyperparameter, ...]:
        """Common settings followed by this family's own."""
        return COMMON_SCHEMA + cls.schema

    @classmethod
    def resolve(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with `values`, every value validated; unknown names refused."""
        schema = {h.name: h for h in cls.full_schema()}
        unknown = sorted(set(values) - set(schema))
        if unknown:
            raise StudioError(
                f"unknown setting '{unknown[0]}' for {cls.name}: choose from {', '.join(sorted(schema))}"
            )
        return {name: h.validate(values[name]) if name in values else h.default for name, h in schema.items()}

    @classmethod
    def check_geometry(cls, resolution: int, channels: int) -> None:
        """Every family takes square 8-64 px images (powers of two) with 1 or 3 channels."""
        if resolution not in RESOLUTIONS:
            raise StudioError(
                f"{cls.name} models take 8, 16, 32 or 64 px images, not {resolution} px: "
                "import the dataset again with --size 32"
            )
        if channels not in (1, 3):
            raise StudioError(f"{cls.name} models take 1 or 3 channels, not {channels}")

    # --- networks -----------------------------------------------------------------------

    @abstractmethod
    def networks(self) -> dict[str, nn.Module]:
        """Every network to checkpoint, by a stable name (e.g. generator, discriminator, ema)."""

    @abstractmethod
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimiser to checkpoint, by a stable name."""

    def to(self, device: torch.device) -> GeneratorFamily:
        """Move every network (and optimiser state) to a device."""
        self.device = device
        for network in self.networks().values():
            network.to(device)
        for optimizer in self.optimizers().values():
            for state in optimizer.state.values():
                for key, value in state.items():
                    if isinstance(value, torch.Tensor):
                        state[key] = value.to(device)
        return self

    def parameter_count(self) -> int:
        """Trainable parameters of the networks used for sampling."""
        return sum(p.numel() for name in self.sampling_networks() for p in self.networks()[name].parameters())

    def sampling_networks(self) -> tuple[str, ...]:
        """Names of the networks that generation needs (exported to ONNX later)."""
        return tuple(self.networks())

    def train_mode(self, training: bool) -> None:
        """Put every network in train or eval mode."""
        for network in self.networks().values():
            network.train(training)

    # --- training and sampling -----------------------------------------------------------

    @abstractmethod
    def training_step(self, batch: torch.Tensor, step: int, precision: Precision) -> dict[str, float]:
        """One optimisation step on a float32 NCHW batch in [-1, 1]; returns named losses as floats."""

    @abstractmethod
    def sample(self, seeds: Sequence[int], options: Mapping[str, Any]) -> np.ndarray:
        """One image per seed as uint8 N x H x W x C; `options` holds validated sampling settings."""

    def preview(self, real: torch.Tensor, seeds: Sequence[int], options: Mapping[str, Any]) -> np.ndarray:
        """Images to show while training (uint8 NHWC); samples by default, families may add more."""
        del real
        return self.sample(seeds, options)

    @torch.no_grad()
    def images_from_latents(
        self, latents: np.ndarray, decode: Callable[[torch.Tensor], torch.Tensor], batch: int = 256
    ) -> np.ndarray:
        """uint8 NHWC images from latent vectors, `batch` at a time; `decode` maps z to [-1, 1] images."""
        out = []
        for part in iterate_batches(len(latents), batch):
            z = torch.from_numpy(np.ascontiguousarray(latents[part], dtype=np.float32)).to(self.device)
            out.append(to_uint8(decode(z)))
        return np.concatenate(out)

    def completion_inputs(
        self, images: np.ndarray, known: np.ndarray, seeds: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """For inpainting: uint8 NHWC images and a per-sub-pixel NHWC known mask, or a StudioError."""
        expected = (len(seeds), self.resolution, self.resolution, self.channels)
        images = np.asarray(images)
        if images.shape != expected or images.dtype != np.uint8:
            raise StudioError(
                f"images to complete must be uint8 of shape {expected}, not {images.dtype} {images.shape}"
            )
        known = np.asarray(known, dtype=bool)
        if known.shape == expected[:3]:
            known = np.repeat(known[..., None], self.channels, axis=3)
        if known.shape != expected:
            raise StudioError(f"the known mask must have shape {expected[:3]} or {expected}, not {known.shape}")
        return images, known

    def diagnostics(self, real: torch.Tensor) -> Diagnostics:
        """Figures worth watching during training, given a real batch; none by default."""
        del real
        return Diagnostics()

    def sampling_options(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Sampling settings: the model's stored ones overlaid with `values` (validated)."""
        schema = {h.name: h for h in self.full_schema() if h.group == "sampling"}
        unknown = sorted(set(values) - set(schema))
        if unknown:
            allowed = ", ".join(sorted(schema)) or "none"
            raise StudioError(f"unknown sampling setting '{unknown[0]}' for {self.name}: choose from {allowed}")
        merged = {name: self.hparams[name] for name in schema}
        merged.update({name: schema[name].validate(value) for name, value in values.items()})
        return merged


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """NCHW floats in [-1, 1] to NHWC uint8, rounding to nearest."""
    array = images.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return array.permute(0, 2, 3, 1).cpu().numpy()


def gaussian_noise(seeds: Sequence[int], shape: tuple[int, ...]) -> np.ndarray:
    """One standard-normal array of `shape` per seed, float32, from default_rng(seed)."""
    return np.stack([np.random.default_rng(seed).standard_normal(shape, dtype=np.float32) for seed in seeds])


def seed_generators(seeds: Sequence[int]) -> list[np.random.Generator]:
    """One numpy generator per image, for families that draw several arrays per image."""
    return [np.random.default_rng(seed) for seed in seeds]


def iterate_batches(count: int, batch: int) -> Iterator[slice]:
    """Slices covering range(count) in chunks of `batch`."""
    for start in range(0, count, batch):
        yield slice(start, min(count, start + batch))
