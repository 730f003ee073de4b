"""Gated PixelCNN: an autoregressive generator that predicts one sub-pixel at a time.

The network follows van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders":
a vertical stack sees every row above, a horizontal stack sees the current row to the left (so there
is no blind spot), activations are gated (tanh * sigmoid) and the horizontal stack is residual. Inside
a pixel the channels are ordered R -> G -> B by splitting feature maps into one group per channel and
masking the centre tap (type A in the first layer, type B after), as in the original PixelCNN paper.
Each sub-pixel gets a distribution over its 256 values, in one of two forms (the `output` setting):
- `softmax`: 256 free logits per sub-pixel (the original; models made before the setting have it);
- `logistic_mixture`: a mixture of a few logistics discretised to the 256 values (PixelCNN++,
  Salimans et al. 2017): 3 numbers per component (weight logit, mean, log scale) instead of 256, and
  neighbouring values share probability, so it learns far faster. Each channel gets its own mixture;
  the channel order inside a pixel comes from the masks as before, not from PixelCNN++'s coefficients.
Either way the network's `forward` (and its ONNX export) returns logits (N, 256, C, H, W): for a
mixture, the log-probabilities of the 256 values, so sampling is the same procedure for both.

A class-conditional model (van den Oord et al. 2016, section 2.3) adds V_f h and V_g h to the two
halves of every gated layer, in both stacks, before tanh and sigmoid, where h is the class weights
(N, K): a bias-free linear map, so a mix of two classes interpolates their embeddings and a row of
zeros is "no class".

Sampling convention (the ONNX runtime must copy it to give the same images): image i draws
`u = numpy.random.default_rng(seeds[i]).random((H, W, C))` up front; sub-pixels are visited row,
column, channel; each takes the network's logits at that sub-pixel divided by the temperature,
a float64 softmax, and the smallest value k with cumsum(p)[k] > u[row, column, channel], capped at 255.
The torch path computes those logits without running the whole network per sub-pixel (the vertical
stack once per row, the horizontal stack over the columns it sees), which gives the same numbers as
`forward` up to float rounding; an ONNX runtime may run the whole network per sub-pixel instead.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar, cast

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch alias)
from torch import nn

from studio.engine.families.base import GeneratorFamily, MethodAsForward, NetworkExport, Precision
from studio.engine.families.pipeline import ModelSpec
from studio.engine.families.pixelcnn.declaration import DECLARATION
from studio.engine.families.pixelcnn.pipeline import PixelCnnPipeline
from studio.engine.numerics import inverse_cdf

LEVELS = 256  # values a sub-pixel can take
OUTPUTS = ("softmax", "logistic_mixture")
MIXTURE_PARAMETERS = 3  # per component: weight logit, mean, log scale
MIN_LOG_SCALE = -7.0  # PixelCNN++'s floor: a logistic narrower than this would be sharper than one value
BIN = 1.0 / (LEVELS - 1)  # half the distance between neighbouring values on the [-1, 1] scale
FIRST_KERNEL = 7  # the first layer's wider kernel gives a useful receptive field with few layers
KERNEL = 3
GRADIENT_CLIP = 1.0  # largest gradient norm per step
WARMUP_STEPS = 100  # the learning rate rises linearly to its setting over the first steps


def channel_groups(count: int, groups: int) -> torch.Tensor:
    """The group (colour channel) of each of `count` feature maps split into `groups` contiguous blocks.

    Uneven splits are fine (a width not divisible by 3 gives slightly unequal groups).
    """
    return torch.arange(count) * groups // count


class MaskedConv2d(nn.Conv2d):
    """A 1 x k convolution over the current row whose last (centre) tap respects channel order.

    Taps left of the centre see every channel of earlier pixels. At the centre, output group g sees
    input groups < g (mask "A", the first layer: a sub-pixel never sees itself) or <= g (mask "B").
    """

    mask: torch.Tensor  # a buffer (register_buffer below); declared for type checkers

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_width: int,
        in_groups: torch.Tensor,
        out_groups: torch.Tensor,
        mask_type: str,
    ) -> None:
        super().__init__(in_channels, out_channels, (1, kernel_width))
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask type must be 'A' or 'B', not {mask_type!r}")
        mask = torch.ones_like(self.weight)
        if mask_type == "A":
            centre = out_groups[:, None] > in_groups[None, :]
        else:
            centre = out_groups[:, None] >= in_groups[None, :]
        mask[:, :, 0, -1] = centre.to(mask.dtype)
        # Not saved: the mask follows from the architecture, and checkpoints stay plain weights.
        self.register_buffer("mask", mask, persistent=False)
        with torch.no_grad():
            self.weight.mul_(mask)  # masked taps start (and, with zero gradient, stay) at zero

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Left-pad so each output sees only its own column and those to its left."""
        padded = F.pad(inputs, (self.kernel_size[1] - 1, 0, 0, 0))
        return F.conv2d(padded, self.weight * self.mask, self.bias)


def gate(pre_activation: torch.Tensor) -> torch.Tensor:
    """tanh(a) * sigmoid(b), where a and b are the two halves of the channels."""
    content, gate_values = pre_activation.chunk(2, dim=1)
    return torch.tanh(content) * torch.sigmoid(gate_values)


def shift_down(features: torch.Tensor) -> torch.Tensor:
    """Move features one row down (zeros on top), so row r carries what the vertical stack saw above r."""
    return F.pad(features, (0, 0, 1, 0))[:, :, :-1, :]


class GatedLayer(nn.Module):
    """One gated layer: a vertical stack over the rows above and a horizontal stack along the row."""

    def __init__(
        self, in_channels: int, width: int, colour_channels: int, kernel: int, first: bool, class_count: int = 0
    ) -> None:
        super().__init__()
        self.kernel = kernel
        self.residual = not first  # the first layer maps image channels to features, so no identity path
        in_groups = channel_groups(in_channels, colour_channels)
        feature_groups = channel_groups(width, colour_channels)
        # The gate splits 2*width maps into halves; both halves must carry the same group layout.
        gate_groups = torch.cat([feature_groups, feature_groups])
        # Vertical: rows r - kernel//2 .. r. It may include row r because it reaches the horizontal
        # stack only one row down (shift_down), and never feeds the output directly.
        self.vertical = nn.Conv2d(in_channels, 2 * width, (kernel // 2 + 1, kernel))
        self.vertical_to_horizontal = nn.Conv2d(2 * width, 2 * width, 1)
        self.horizontal = MaskedConv2d(
            in_channels, 2 * width, kernel // 2 + 1, in_groups, gate_groups, "A" if first else "B"
        )
        self.horizontal_out = MaskedConv2d(width, width, 1, feature_groups, feature_groups, "B")
        # The class embedding of each stack (V_f and V_g stacked): bias-free, so linear in the weights.
        # The same for every position, so it never carries information from one sub-pixel to another.
        self.class_vertical = nn.Linear(class_count, 2 * width, bias=False) if class_count else None
        self.class_horizontal = nn.Linear(class_count, 2 * width, bias=False) if class_count else None

    @staticmethod
    def _class_term(embedding: nn.Linear | None, class_weights: torch.Tensor | None) -> torch.Tensor | float:
        """V h as (N, 2*width, 1, 1), or 0 when unconditional (None weights: no class, the same as zeros)."""
        if embedding is None or class_weights is None:
            return 0.0
        return embedding(class_weights.to(embedding.weight.dtype))[:, :, None, None]

    def vertical_pre_activation(
        self, vertical: torch.Tensor, class_weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The vertical stack before its gate: row r sees rows r - kernel//2 .. r of the layer below."""
        half = self.kernel // 2
        return self.vertical(F.pad(vertical, (half, half, half, 0))) + self._class_term(
            self.class_vertical, class_weights
        )

    def link(self, vertical_pre: torch.Tensor) -> torch.Tensor:
        """What the vertical stack adds to the horizontal stack at the same rows (after shifting down a row)."""
        return self.vertical_to_horizontal(shift_down(vertical_pre))

    def horizontal_step(
        self, horizontal: torch.Tensor, link: torch.Tensor, class_weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The next horizontal feature map, given the vertical stack's link at the same positions."""
        pre = self.horizontal(horizontal) + link + self._class_term(self.class_horizontal, class_weights)
        out = self.horizontal_out(gate(pre))
        return out + horizontal if self.residual else out


class GatedPixelCnn(nn.Module):
    """Images in [-1, 1] (N, C, H, W) to logits (N, 256, C, H, W); logits at a sub-pixel see only earlier ones.

    A conditional network (`class_count` K > 0) also takes class weights (N, K); without them it sees
    no class (the same as a row of zeros).
    """

    def __init__(
        self,
        channels: int,
        layers: int,
        width: int,
        output: str = "softmax",
        mixtures: int = 5,
        class_count: int = 0,
    ) -> None:
        super().__init__()
        if width < channels:
            raise ValueError(f"width {width} cannot hold one feature group per channel ({channels})")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, not {output!r}")
        self.channels = channels
        self.output = output
        self.mixtures = mixtures
        self.class_count = class_count
        # A ModuleList yields plain Modules to a type checker: loops over it cast to GatedLayer (a no-op).
        self.layers = nn.ModuleList(
            GatedLayer(
                channels if index == 0 else width,
                width,
                channels,
                FIRST_KERNEL if index == 0 else KERNEL,
                first=index == 0,
                class_count=class_count,
            )
            for index in range(layers)
        )
        # How far (in rows up, or columns left or right) the deepest features look: sampling computes
        # only this window, which gives the same numbers as the whole image.
        self.reach = FIRST_KERNEL // 2 + (layers - 1) * (KERNEL // 2)
        feature_groups = channel_groups(width, channels)
        # Output map k * C + c holds parameter k (a logit, or a mixture number) of channel c, so a plain
        # view gives (parameters, C).
        self.distribution_size = LEVELS if output == "softmax" else MIXTURE_PARAMETERS * mixtures
        output_groups = torch.arange(self.distribution_size * channels) % channels
        self.head_hidden = MaskedConv2d(width, width, 1, feature_groups, feature_groups, "B")
        self.head_out = MaskedConv2d(width, self.distribution_size * channels, 1, feature_groups, output_groups, "B")

    def forward(self, images: torch.Tensor, class_weights: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of every sub-pixel's 256 values given the sub-pixels before it (and the class)."""
        return self.to_logits(self.distribution(images, class_weights))

    def distribution(self, images: torch.Tensor, class_weights: torch.Tensor | None = None) -> torch.Tensor:
        """The head's output (N, P, C, H, W): 256 logits, or the mixture's 3 x components numbers."""
        vertical, horizontal = images, images
        for layer in cast("Iterable[GatedLayer]", self.layers):
            vertical_pre = layer.vertical_pre_activation(vertical, class_weights)
            horizontal = layer.horizontal_step(horizontal, layer.link(vertical_pre), class_weights)
            vertical = gate(vertical_pre)
        return self.head(horizontal)

    def head(self, horizontal: torch.Tensor) -> torch.Tensor:
        """Horizontal features (N, width, H, W) to the distribution's parameters (N, P, C, H, W)."""
        # ELU rather than the paper's ReLU: with a few feature maps per colour group, ReLU can switch a
        # whole group off at a pixel and cut the link from earlier channels of that pixel.
        parameters = self.head_out(F.elu(self.head_hidden(F.elu(horizontal))))
        batch, _, height, width = parameters.shape
        return parameters.view(batch, self.distribution_size, self.channels, height, width)

    def to_logits(self, parameters: torch.Tensor) -> torch.Tensor:
        """The head's output to logits over the 256 values, dimension 1 (a mixture: its log-probabilities)."""
        if self.output == "softmax":
            return parameters
        values = torch.arange(LEVELS, device=parameters.device)
        shape = (1, 1, LEVELS) + (1,) * (parameters.dim() - 2)
        return mixture_log_probabilities(parameters, values.view(shape), self.mixtures)

    def negative_log_likelihood(self, parameters: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean nats per sub-pixel of the integer `targets` (N, C, H, W) under the head's output."""
        parameters = parameters.float()  # in float32 even under autocast: half loses the small probabilities
        if self.output == "softmax":
            return F.cross_entropy(parameters, targets)
        return -mixture_log_probabilities(parameters, targets[:, None, None], self.mixtures).mean()

    def row_links(
        self, images: torch.Tensor, row: int, class_weights: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """Per layer, the vertical stack's link into `row` (N, 2*width, 1, W): it depends only on rows above.

        Sampling computes these once per row rather than once per sub-pixel.
        """
        top = max(0, row - 1 - self.reach)
        vertical = images[:, :, top:row]
        links = []
        for layer in cast("Iterable[GatedLayer]", self.layers):
            if row == 0:
                # Nothing above the first row: the full forward pass shifts in zeros here.
                above = torch.zeros(
                    images.shape[0],
                    layer.vertical_to_horizontal.in_channels,
                    1,
                    images.shape[3],
                    dtype=images.dtype,
                    device=images.device,
                )
                links.append(layer.vertical_to_horizontal(above))
                continue
            vertical_pre = layer.vertical_pre_activation(vertical, class_weights)
            links.append(layer.vertical_to_horizontal(vertical_pre[:, :, -1:]))
            vertical = gate(vertical_pre)
        return links

    def logits_at(
        self,
        row_pixels: torch.Tensor,
        links: Sequence[torch.Tensor],
        column: int,
        class_weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits (N, 256, C) at `column` of a row, from the row's pixels (N, C, 1, W) and its `row_links`.

        Equals forward(images)[..., row, column]; only the horizontal stack runs, on the columns it sees.
        """
        left = max(0, column - self.reach)
        horizontal = row_pixels[..., left : column + 1]
        for layer, link in zip(cast("Iterable[GatedLayer]", self.layers), links, strict=True):
            horizontal = layer.horizontal_step(horizontal, link[..., left : column + 1], class_weights)
        return self.to_logits(self.head(horizontal[..., -1:])[..., 0, 0])


def mixture_log_probabilities(parameters: torch.Tensor, values: torch.Tensor, mixtures: int) -> torch.Tensor:
    """log P(value) under each sub-pixel's discretised logistic mixture (PixelCNN++'s likelihood).

    `parameters` (N, 3 * mixtures, ...) hold the weight logits, means and log scales of the components
    (means on the [-1, 1] scale); `values` are integers 0..255 that broadcast against (N, 1, ...) with
    the component axis at dimension 2 of the result, e.g. (1, 1, 256, 1, ...) for every value or
    (N, 1, 1, C, H, W) for one target each. Returns (N, V, ...), the components summed out.

    A value's probability is the logistic's mass over its bin [x - 1/255, x + 1/255] (0 and 255 take
    the tails). With u, l the bin's ends in units of the scale, sigmoid(u) - sigmoid(l) =
    sigmoid(u) * (1 - sigmoid(l)) * (1 - exp(l - u)), whose log is a sum of terms that float32 (and
    ONNX Runtime) compute accurately everywhere, with no cancellation in the tails.
    """
    parameters = parameters.float()
    logit_weights, means, log_scales = (part.unsqueeze(2) for part in parameters.split(mixtures, dim=1))
    log_scales = log_scales.clamp(min=MIN_LOG_SCALE)
    inverse_scale = torch.exp(-log_scales)
    centred = values.float() / (LEVELS - 1) * 2 - 1 - means
    below = -F.softplus(-inverse_scale * (centred + BIN))  # log sigmoid(u): the mass below the bin's top
    above = -F.softplus(inverse_scale * (centred - BIN))  # log (1 - sigmoid(l)): the mass above its bottom
    # log (1 - exp(-width)) for the bin's width in units of the scale, as log(2 sinh(width/2)) - width/2.
    half_width = inverse_scale * BIN
    narrowing = math.log(2.0) + torch.log(torch.sinh(half_width)) - half_width
    bottom, top = (values == 0).float(), (values == LEVELS - 1).float()
    log_component = below * (1 - top) + above * (1 - bottom) + narrowing * (1 - top) * (1 - bottom)
    log_weights = F.log_softmax(logit_weights, dim=1)
    return torch.logsumexp(log_component + log_weights, dim=1)


def to_levels(images: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] to integer targets 0..255."""
    return images.add(1).mul(127.5).round().clamp(0, LEVELS - 1).long()


def from_levels(levels: torch.Tensor) -> torch.Tensor:
    """Integer values 0..255 to the network's input scale [-1, 1]."""
    return levels.float().div(127.5).sub(1)


class PixelCnnFamily(GeneratorFamily):
    """The autoregressive family: a Gated PixelCNN trained by maximum likelihood, sampled sub-pixel by sub-pixel."""

    declaration = DECLARATION
    accepts_classes = True
    # Checkpoint names: "pixelcnn" is the network that samples (the running average of the weights),
    # "current" the one the optimiser (still named "pixelcnn") trains. A model saved before averaging
    # holds only "pixelcnn", the weights that sampled then: they fill "current" too, so it samples,
    # hashes and trains on exactly as before.
    copied_networks: ClassVar[Mapping[str, str]] = {"current": "pixelcnn"}

    def __init__(
        self,
        resolution: int,
        channels: int,
        hparams: Mapping[str, Any],
        architecture: Mapping[str, Any] | None = None,
        classes: Sequence[str] = (),
    ) -> None:
        super().__init__(resolution, channels, hparams, architecture, classes)
        self.network = GatedPixelCnn(
            channels,
            self.hparams["layers"],
            self.hparams["width"],
            self.hparams["output"],
            self.hparams["mixtures"],
            self.class_count,
        )
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=self.hparams["learning_rate"])
        # The running average of the weights (Polyak averaging): what sampling and export use. A few
        # thousand Adam steps leave the weights jittering around a good point; their average is nearer
        # that point, and its samples are far more digit-like than the last step's.
        self.average = copy.deepcopy(self.network).requires_grad_(False).eval()

    def networks(self) -> dict[str, nn.Module]:
        """The running average (what samples) and the network being trained."""
        return {"pixelcnn": self.average, "current": self.network}

    def sampling_networks(self) -> tuple[str, ...]:
        """Only the average samples (and is exported)."""
        return ("pixelcnn",)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The Adam optimiser of the network being trained (the name older checkpoints give it)."""
        return {"pixelcnn": self.optimizer}

    def trained_modules(self) -> dict[str, nn.Module]:
        """The network being trained, called through its `distribution` (the average follows on every process)."""
        return {"distribution": MethodAsForward(self.network, "distribution")}

    def training_step(
        self, batch: torch.Tensor, step: int, precision: Precision, labels: torch.Tensor | None = None
    ) -> dict[str, float]:
        """One maximum-likelihood step: negative log-likelihood of every sub-pixel given those before it
        (and, for a conditional model, the image's class)."""
        self.network.train()
        rate = self.hparams["learning_rate"] * min(1.0, (step + 1) / WARMUP_STEPS)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        images = batch.to(self.device)
        targets = to_levels(images)
        class_weights = self.class_weights(None if labels is None else labels.to(self.device))
        with precision.autocast():
            parameters = self.replica("distribution")(images, class_weights)
        loss = self.network.negative_log_likelihood(parameters, targets)
        precision.step(loss, self.optimizer, clip=GRADIENT_CLIP)
        self._update_ema(step)
        nll = loss.item()
        return {"nll": nll, "bits_per_dim": nll / math.log(2)}

    @torch.no_grad()
    def _update_ema(self, step: int) -> None:
        # Early on the average would lag far behind a fast-moving network: ramp the decay up.
        decay = min(self.hparams["ema_decay"], (1 + step) / (10 + step))
        for average, current in zip(self.average.parameters(), self.network.parameters(), strict=True):
            average.lerp_(current, 1 - decay)

    def spec(self) -> ModelSpec:
        """The common spec plus the network's reach (ONNX sampling crops windows that wide)."""
        return replace(super().spec(), reach=self.network.reach)

    def network_exports(self, rng: np.random.Generator) -> list[NetworkExport]:
        """The PixelCNN, with dynamic height and width: the runtime feeds the window around each sub-pixel.

        A conditional model's network also takes `class_weights` (N, K)."""
        size = self.resolution
        spatial = {0: "batch", 2: "height", 3: "width"}
        images = [self.random_images(rng, 3), self.random_images(rng, 2, max(1, size // 2), max(1, size - 3))]
        if not self.conditional:
            return [
                NetworkExport(
                    "pixelcnn",
                    self.average,
                    (torch.zeros(2, self.channels, size, size),),
                    ("image",),
                    ("logits",),
                    {"image": spatial},
                    [(image,) for image in images],
                )
            ]
        # One-hot rows, a row of zeros (no class) and convex mixes (a walk between classes).
        weights = rng.dirichlet(np.ones(self.class_count), size=len(images[0])).astype(np.float32)
        weights[0] = np.eye(self.class_count, dtype=np.float32)[rng.integers(self.class_count)]
        weights[1] = 0.0
        return [
            NetworkExport(
                "pixelcnn",
                self.average,
                (torch.zeros(2, self.channels, size, size), torch.zeros(2, self.class_count)),
                ("image", "class_weights"),
                ("logits",),
                {"image": spatial, "class_weights": {0: "batch"}},
                [(images[0], weights), (images[1], weights[1:])],
            )
        ]

    def pipeline(self) -> PixelCnnPipeline:
        """Raster sampling and completion; logits come from the row-wise fast path below."""
        return PixelCnnPipeline(self.spec(), lambda *class_weights: _TorchRaster(self, *class_weights))

    def complete(
        self, images: np.ndarray, known: np.ndarray, seeds: Sequence[int], options: Mapping[str, Any]
    ) -> np.ndarray:
        """Keep the known sub-pixels of uint8 NHWC `images` and sample the rest in raster order.

        `known` is bool N x H x W (whole pixels) or N x H x W x C (sub-pixels); with nothing known
        this is `sample`, with the same seed convention.
        """
        return self.pipeline().inpaint(images, known, seeds, options)


class _TorchRaster:
    """Logits for raster sampling: the vertical stack once per row, the horizontal stack per sub-pixel."""

    def __init__(self, family: PixelCnnFamily, class_weights: np.ndarray | None = None) -> None:
        self.network = family.average
        self.device = family.device
        self.class_weights = None if class_weights is None else torch.from_numpy(class_weights).to(self.device)
        self.links: list[torch.Tensor] = []
        self.network.eval()  # sampling only happens in eval mode; training steps set train() again

    @torch.no_grad()
    def start_row(self, inputs: np.ndarray, row: int) -> None:
        """Rows above `row` are final: compute their links into it once."""
        self.links = self.network.row_links(torch.from_numpy(inputs).to(self.device), row, self.class_weights)

    @torch.no_grad()
    def logits(self, inputs: np.ndarray, row: int, column: int) -> np.ndarray:
        """Logits (N, 256, C) at (row, column), from the row's pixels and the links."""
        row_pixels = torch.from_numpy(np.ascontiguousarray(inputs[:, :, row : row + 1])).to(self.device)
        logits = self.network.logits_at(row_pixels, self.links, column, self.class_weights)
        return logits.double().cpu().numpy()


__all__ = ["GatedPixelCnn", "PixelCnnFamily", "from_levels", "inverse_cdf", "to_levels"]
