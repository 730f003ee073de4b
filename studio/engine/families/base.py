"""The torch side every generator family provides: networks, a training step, sampling, an export description.

A family object owns its networks and optimisers. The trainer feeds it batches of float32 NCHW
images in [-1, 1] and saves `networks()` and `optimizers()` in checkpoints. Sampling draws every
random number from `numpy.random.default_rng(seed)`, one generator per image, so the same seed gives
the same image in any batch and in the ONNX backend.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from studio.engine.families.conditioning import CLASS_OPTION, MAX_CLASSES, MIN_CLASSES
from studio.engine.families.declaration import FamilyDeclaration
from studio.engine.families.pipeline import ModelSpec, Pipeline
from studio.engine.families.schema import COMMON_SCHEMA, Hyperparameter
from studio.engine.numerics import gaussian_noise, iterate_batches, seed_generators
from studio.errors import StudioError


class Precision:
    """Mixed precision on CUDA (bfloat16 where supported, else float16 with loss scaling); off elsewhere."""

    def __init__(self, device: torch.device, enabled: bool = True) -> None:
        self.device = device
        self.enabled = enabled and device.type == "cuda"
        self.dtype = torch.bfloat16 if self.enabled and torch.cuda.is_bf16_supported() else torch.float16
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


class MethodAsForward(nn.Module):
    """A module whose forward is another module's method (e.g. `distribution`), so that
    DistributedDataParallel, which averages gradients through forward calls, can wrap that method."""

    def __init__(self, module: nn.Module, method: str) -> None:
        super().__init__()
        self.module = module
        self.method = method

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Call the wrapped method."""
        return getattr(self.module, self.method)(*args, **kwargs)


class Collective:
    """What a training step asks of the other processes of its run; a run of one process needs nothing.

    Under torchrun the trainer gives the family a distributed one (studio.engine.distributed).
    """

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Every process's `tensor` concatenated along the first axis (rank order); here, itself."""
        return tensor

    def broadcast_buffers(self, module: nn.Module) -> None:
        """Make every process's buffers of `module` rank 0's (after an update drawn from each one's RNG)."""
        del module


@dataclass
class Diagnostics:
    """Figures and warnings a family reports at preview time (e.g. GAN diversity, mode collapse)."""

    figures: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class NetworkExport:
    """How to export one inference network: the module, example inputs, names, dynamic axes, parity inputs.

    `role`, `input_names` and `output_names` match the family declaration's NetworkSignature.
    """

    role: str
    module: nn.Module
    inputs: tuple[torch.Tensor, ...]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic: dict[str, dict[int, str]]  # input name -> {axis: symbolic name}
    parity_inputs: list[tuple[np.ndarray, ...]] = field(default_factory=list)


class GeneratorFamily(ABC):
    """Base class of every family's torch side; a subclass sets `declaration` and fills in the methods.

    `name`, `title`, `description`, `capabilities` and `schema` are copied from the declaration.
    """

    declaration: ClassVar[FamilyDeclaration]
    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    capabilities: ClassVar[frozenset[str]]
    schema: ClassVar[tuple[Hyperparameter, ...]]  # family-specific; COMMON_SCHEMA is added
    # Whether config.json may give this family an `architecture` (a network configuration, e.g. diffusers').
    accepts_architecture: ClassVar[bool] = False
    # Whether the family builds class-conditional networks when given classes.
    accepts_classes: ClassVar[bool] = True
    # Networks a checkpoint may omit, each filled from another (an imported model stores only its
    # sampling weights; the trainable copy starts from them).
    copied_networks: ClassVar[Mapping[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "declaration" in cls.__dict__:
            d = cls.declaration
            cls.name, cls.title, cls.description = d.name, d.title, d.description
            cls.capabilities, cls.schema = d.capabilities, d.schema

    def __init__(
        self,
        resolution: int,
        channels: int,
        hparams: Mapping[str, Any],
        architecture: Mapping[str, Any] | None = None,
        classes: Sequence[str] = (),
    ) -> None:
        if architecture is not None and not self.accepts_architecture:
            raise StudioError(f"{self.name} models take no network configuration (architecture)")
        self.check_geometry(resolution, channels)
        if classes and not self.accepts_classes:
            raise StudioError(f"{self.name} models cannot be class-conditional: train with --set conditional=no")
        if classes and (len(classes) < MIN_CLASSES or len(classes) > MAX_CLASSES or len(set(classes)) != len(classes)):
            raise StudioError(f"a conditional model takes {MIN_CLASSES} to {MAX_CLASSES} distinct class names")
        self.resolution = resolution
        self.channels = channels
        self.hparams = self.resolve(hparams)
        # The dataset's class names in label order; the networks take K = len(classes) class weights.
        self.classes: tuple[str, ...] = tuple(classes)
        self.device = torch.device("cpu")
        self.collective = Collective()
        self._replicas: dict[str, nn.Module] = {}  # trained_modules(), wrapped by DDP under torchrun

    @property
    def conditional(self) -> bool:
        """Whether this model generates a chosen class."""
        return bool(self.classes)

    @property
    def class_count(self) -> int:
        """K, the width of the networks' class weights (0 when unconditional)."""
        return len(self.classes)

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
            raise StudioError(f"unknown setting '{unknown[0]}' for {cls.name}: choose from {', '.join(sorted(schema))}")
        return {name: h.validate(values[name]) if name in values else h.default for name, h in schema.items()}

    @classmethod
    def check_geometry(cls, resolution: int, channels: int) -> None:
        """The declaration's check: square 8-256 px images with 1 or 3 channels."""
        cls.declaration.check_geometry(resolution, channels)

    def architecture(self) -> dict[str, Any] | None:
        """The network configuration config.json keeps beside the settings (None: the settings say it all)."""
        return None

    # --- networks -----------------------------------------------------------------------

    @abstractmethod
    def networks(self) -> dict[str, nn.Module]:
        """Every network to checkpoint, by a stable name (e.g. generator, discriminator, ema)."""

    @abstractmethod
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimiser to checkpoint, by a stable name."""

    def trained_modules(self) -> dict[str, nn.Module]:
        """The modules a training step runs forward through and whose gradients an optimiser applies, by
        name: under torchrun each is wrapped in DistributedDataParallel. None: one process only."""
        return {}

    def replica(self, name: str) -> nn.Module:
        """The trained module `name` as a training step must call it (DDP-wrapped when distributed)."""
        if name not in self._replicas:
            self._replicas = self.trained_modules()
        return self._replicas[name]

    def distribute(self, wrap: Callable[[nn.Module], nn.Module], collective: Collective) -> None:
        """Train on several processes: wrap each trained module (those with trainable weights) and talk
        to the other processes through `collective`."""
        modules = self.trained_modules()
        if not modules:
            raise StudioError(f"{self.name} models cannot train on several processes")
        self._replicas = {
            name: wrap(module) if any(p.requires_grad for p in module.parameters()) else module
            for name, module in modules.items()
        }
        self.collective = collective

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
    def training_step(
        self, batch: torch.Tensor, step: int, precision: Precision, labels: torch.Tensor | None = None
    ) -> dict[str, float]:
        """One optimisation step on a float32 NCHW batch in [-1, 1] (and, when conditional, its int64
        class indices); returns named losses as floats."""

    def sample(self, seeds: Sequence[int], options: Mapping[str, Any]) -> np.ndarray:
        """One image per seed as uint8 N x H x W x C (the shared pipeline's procedure)."""
        return self.pipeline().sample(seeds, options)

    def preview(self, real: torch.Tensor, seeds: Sequence[int], options: Mapping[str, Any]) -> np.ndarray:
        """Images to show while training (uint8 NHWC); samples by default, families may add more.

        A conditional model's previews cycle through its classes (seed i asks for class i mod K), so the
        grid shows every class learning.
        """
        del real
        if not self.conditional:
            return self.sample(seeds, options)
        pipeline = self.pipeline()
        images = [
            pipeline.sample(list(seeds[index :: self.class_count]), {**options, CLASS_OPTION: name})
            for index, name in enumerate(self.classes[: len(seeds)])
        ]
        order = np.argsort(np.concatenate([np.arange(len(seeds))[i :: self.class_count] for i in range(len(images))]))
        return np.concatenate(images)[order]

    def class_weights(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        """One-hot float class weights (N x K) of int64 class indices, for the networks (None: unconditional).

        An index of -1 gives a row of zeros: no class (the unconditional half of classifier-free guidance).
        """
        if labels is None or not self.conditional:
            return None
        weights = torch.zeros(len(labels), self.class_count, device=labels.device)
        chosen = labels >= 0
        weights[chosen, labels[chosen]] = 1.0
        return weights

    def spec(self) -> ModelSpec:
        """What the shared pipelines (and an ONNX manifest) need to know besides the networks."""
        sampling = tuple(h for h in self.full_schema() if h.group == "sampling")
        return ModelSpec(self.name, self.resolution, self.channels, dict(self.hparams), sampling, classes=self.classes)

    @abstractmethod
    def network_exports(self, rng: np.random.Generator) -> list[NetworkExport]:
        """The inference networks to export to ONNX, with example and parity inputs drawn from `rng`."""

    def random_images(
        self, rng: np.random.Generator, count: int, height: int | None = None, width: int | None = None
    ) -> np.ndarray:
        """Uniform float32 NCHW images in [-1, 1] at the model's size (or another), for parity checks."""
        shape = (count, self.channels, height or self.resolution, width or self.resolution)
        return rng.uniform(-1, 1, shape).astype(np.float32)

    @abstractmethod
    def pipeline(self) -> Pipeline:
        """The family's numpy procedures (sample, interpolate, inpaint) over this object's torch networks."""

    def numpy_function(self, call: Callable[..., Any], modules: Sequence[nn.Module]) -> Callable[..., Any]:
        """Wrap a torch computation as numpy arrays in, float32 numpy arrays out, in eval mode, no grad."""

        def run(*arrays: np.ndarray) -> Any:
            modes = [module.training for module in modules]
            for module in modules:
                module.eval()
            try:
                with torch.no_grad():
                    inputs = [torch.from_numpy(np.ascontiguousarray(a)).to(self.device) for a in arrays]
                    outputs = call(*inputs)
            finally:
                for module, mode in zip(modules, modes, strict=True):
                    module.train(mode)
            if isinstance(outputs, tuple):
                return tuple(o.float().cpu().numpy() for o in outputs)
            return outputs.float().cpu().numpy()

        return run

    def diagnostics(self, real: torch.Tensor) -> Diagnostics:
        """Figures worth watching during training, given a real batch; none by default."""
        del real
        return Diagnostics()

    def sampling_options(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Sampling settings: the model's stored ones overlaid with `values` (validated)."""
        return self.pipeline().sampling_options(values)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """NCHW floats in [-1, 1] to NHWC uint8, rounding to nearest."""
    array = images.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return array.permute(0, 2, 3, 1).cpu().numpy()


__all__ = [
    "COMMON_SCHEMA",
    "Collective",
    "Diagnostics",
    "GeneratorFamily",
    "Hyperparameter",
    "MethodAsForward",
    "NetworkExport",
    "Precision",
    "gaussian_noise",
    "iterate_batches",
    "seed_generators",
    "to_uint8",
]
