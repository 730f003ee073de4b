"""Gated PixelCNN: an autoregressive generator that predicts one sub-pixel at a time.

The network follows van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders":
a vertical stack sees every row above, a horizontal stack sees the current row to the left (so there
is no blind spot), activations are gated (tanh * sigmoid) and the horizontal stack is residual. Inside
a pixel the channels are ordered R -> G -> B by splitting feature maps into one group per channel and
masking the centre tap (type A in the first layer, type B after), as in the original PixelCNN paper.
Each sub-pixel gets a 256-way softmax: logits have the shape (N, 256, C, H, W).

Sampling convention (the ONNX runtime must copy it to give the same images): image i draws
`u = numpy.random.default_rng(seeds[i]).random((H, W, C))` up front; sub-pixels are visited row,
column, channel; each takes the network's logits at that sub-pixel divided by the temperature,
a float64 softmax, and the smallest value k with cumsum(p)[k] > u[row, column, channel], capped at 255.
The torch path computes those logits without running the whole network per sub-pixel (the vertical
stack once per row, the horizontal stack over the columns it sees), which gives the same numbers as
`forward` up to float rounding; an ONNX runtime may run the whole network per sub-pixel instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch alias)
from torch import nn

from studio.engine.families.base import GeneratorFamily, NetworkExport, Precision
from studio.engine.families.pipeline import ModelSpec
from studio.engine.families.pixelcnn.declaration import DECLARATION
from studio.engine.families.pixelcnn.pipeline import PixelCnnPipeline
from studio.engine.numerics import inverse_cdf

LEVELS = 256  # values a sub-pixel can take
FIRST_KERNEL = 7  # the first layer's wider kernel gives a useful receptive field with few layers
KERNEL = 3


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

    def __init__(self, in_channels: int, width: int, colour_channels: int, kernel: int, first: bool) -> None:
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

    def vertical_pre_activation(self, vertical: torch.Tensor) -> torch.Tensor:
        """The vertical stack before its gate: row r sees rows r - kernel//2 .. r of the layer below."""
        half = self.kernel // 2
        return self.vertical(F.pad(vertical, (half, half, half, 0)))

    def link(self, vertical_pre: torch.Tensor) -> torch.Tensor:
        """What the vertical stack adds to the horizontal stack at the same rows (after shifting down a row)."""
        return self.vertical_to_horizontal(shift_down(vertical_pre))

    def horizontal_step(self, horizontal: torch.Tensor, link: torch.Tensor) -> torch.Tensor:
        """The next horizontal feature map, given the vertical stack's link at the same positions."""
        out = self.horizontal_out(gate(self.horizontal(horizontal) + link))
        return out + horizontal if self.residual else out


class GatedPixelCnn(nn.Module):
    """Images in [-1, 1] (N, C, H, W) to logits (N, 256, C, H, W); logits at a sub-pixel see only earlier ones."""

    def __init__(self, channels: int, layers: int, width: int) -> None:
        super().__init__()
        if width < channels:
            raise ValueError(f"width {width} cannot hold one feature group per channel ({channels})")
        self.channels = channels
        # A ModuleList yields plain Modules to a type checker: loops over it cast to GatedLayer (a no-op).
        self.layers = nn.ModuleList(
            GatedLayer(
                channels if index == 0 else width,
                width,
                channels,
                FIRST_KERNEL if index == 0 else KERNEL,
                first=index == 0,
            )
            for index in range(layers)
        )
        # How far (in rows up, or columns left or right) the deepest features look: sampling computes
        # only this window, which gives the same numbers as the whole image.
        self.reach = FIRST_KERNEL // 2 + (layers - 1) * (KERNEL // 2)
        feature_groups = channel_groups(width, channels)
        # Output map k * C + c holds the logit of value k for channel c, so a plain view gives (256, C).
        output_groups = torch.arange(LEVELS * channels) % channels
        self.head_hidden = MaskedConv2d(width, width, 1, feature_groups, feature_groups, "B")
        self.head_out = MaskedConv2d(width, LEVELS * channels, 1, feature_groups, output_groups, "B")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of every sub-pixel's 256 values given the sub-pixels before it."""
        vertical, horizontal = images, images
        for layer in cast("Iterable[GatedLayer]", self.layers):
            vertical_pre = layer.vertical_pre_activation(vertical)
            horizontal = layer.horizontal_step(horizontal, layer.link(vertical_pre))
            vertical = gate(vertical_pre)
        return self.head(horizontal)

    def head(self, horizontal: torch.Tensor) -> torch.Tensor:
        """Horizontal features (N, width, H, W) to logits (N, 256, C, H, W)."""
        # ELU rather than the paper's ReLU: with a few feature maps per colour group, ReLU can switch a
        # whole group off at a pixel and cut the link from earlier channels of that pixel.
        logits = self.head_out(F.elu(self.head_hidden(F.elu(horizontal))))
        batch, _, height, width = logits.shape
        return logits.view(batch, LEVELS, self.channels, height, width)

    def row_links(self, images: torch.Tensor, row: int) -> list[torch.Tensor]:
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
            vertical_pre = layer.vertical_pre_activation(vertical)
            links.append(layer.vertical_to_horizontal(vertical_pre[:, :, -1:]))
            vertical = gate(vertical_pre)
        return links

    def logits_at(self, row_pixels: torch.Tensor, links: Sequence[torch.Tensor], column: int) -> torch.Tensor:
        """Logits (N, 256, C) at `column` of a row, from the row's pixels (N, C, 1, W) and its `row_links`.

        Equals forward(images)[..., row, column]; only the horizontal stack runs, on the columns it sees.
        """
        left = max(0, column - self.reach)
        horizontal = row_pixels[..., left : column + 1]
        for layer, link in zip(cast("Iterable[GatedLayer]", self.layers), links, strict=True):
            horizontal = layer.horizontal_step(horizontal, link[..., left : column + 1])
        return self.head(horizontal[..., -1:])[..., 0, 0]


def to_levels(images: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] to integer targets 0..255."""
    return images.add(1).mul(127.5).round().clamp(0, LEVELS - 1).long()


def from_levels(levels: torch.Tensor) -> torch.Tensor:
    """Integer values 0..255 to the network's input scale [-1, 1]."""
    return levels.float().div(127.5).sub(1)


class PixelCnnFamily(GeneratorFamily):
    """The autoregressive family: a Gated PixelCNN trained by maximum likelihood, sampled sub-pixel by sub-pixel."""

    declaration = DECLARATION
    accepts_classes = False  # class conditioning: not built yet

    def __init__(
        self,
        resolution: int,
        channels: int,
        hparams: Mapping[str, Any],
        architecture: Mapping[str, Any] | None = None,
        classes: Sequence[str] = (),
    ) -> None:
        super().__init__(resolution, channels, hparams, architecture, classes)
        self.network = GatedPixelCnn(channels, self.hparams["layers"], self.hparams["width"])
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=self.hparams["learning_rate"])

    def networks(self) -> dict[str, nn.Module]:
        """The one network, under the name "pixelcnn"."""
        return {"pixelcnn": self.network}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The Adam optimiser of the network."""
        return {"pixelcnn": self.optimizer}

    def training_step(
        self, batch: torch.Tensor, step: int, precision: Precision, labels: torch.Tensor | None = None
    ) -> dict[str, float]:
        """One maximum-likelihood step: cross-entropy of every sub-pixel given those before it."""
        del step
        self.network.train()
        images = batch.to(self.device)
        targets = to_levels(images)
        with precision.autocast():
            logits = self.network(images)
        # The loss in float32 even under autocast: log-softmax over 256 values loses precision in half.
        loss = F.cross_entropy(logits.float(), targets)
        precision.step(loss, self.optimizer, clip=1.0)
        nll = loss.item()
        return {"nll": nll, "bits_per_dim": nll / math.log(2)}

    def spec(self) -> ModelSpec:
        """The common spec plus the network's reach (ONNX sampling crops windows that wide)."""
        return replace(super().spec(), reach=self.network.reach)

    def network_exports(self, rng: np.random.Generator) -> list[NetworkExport]:
        """The PixelCNN, with dynamic height and width: the runtime feeds the window around each sub-pixel."""
        size = self.resolution
        spatial = {0: "batch", 2: "height", 3: "width"}
        return [
            NetworkExport(
                "pixelcnn",
                self.network,
                (torch.zeros(2, self.channels, size, size),),
                ("image",),
                ("logits",),
                {"image": spatial},
                [(self.random_images(rng, 3),), (self.random_images(rng, 2, max(1, size // 2), max(1, size - 3)),)],
            )
        ]

    def pipeline(self) -> PixelCnnPipeline:
        """Raster sampling and completion; logits come from the row-wise fast path below."""
        return PixelCnnPipeline(self.spec(), lambda: _TorchRaster(self))

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

    def __init__(self, family: PixelCnnFamily) -> None:
        self.network = family.network
        self.device = family.device
        self.links: list[torch.Tensor] = []
        self.network.eval()  # sampling only happens in eval mode; training steps set train() again

    @torch.no_grad()
    def start_row(self, inputs: np.ndarray, row: int) -> None:
        """Rows above `row` are final: compute their links into it once."""
        self.links = self.network.row_links(torch.from_numpy(inputs).to(self.device), row)

    @torch.no_grad()
    def logits(self, inputs: np.ndarray, row: int, column: int) -> np.ndarray:
        """Logits (N, 256, C) at (row, column), from the row's pixels and the links."""
        row_pixels = torch.from_numpy(np.ascontiguousarray(inputs[:, :, row : row + 1])).to(self.device)
        return self.network.logits_at(row_pixels, self.links, column).double().cpu().numpy()


__all__ = ["GatedPixelCnn", "PixelCnnFamily", "from_levels", "inverse_cdf", "to_levels"]
