"""The contrastive encoder (a small ResNet-style CNN), its projection head and the NT-Xent loss.

SimCLR (Chen et al., 2020): two augmented views of each image go through the encoder f and the
projection head g; NT-Xent pulls the two views of an image together against the other 2N - 2 views
of the batch. After training g is dropped: f's pooled features, L2-normalised, are the embedding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name
from torch import nn


def _group_norm(channels: int) -> nn.GroupNorm:
    # GroupNorm, not BatchNorm: the embedding of an image must not depend on the batch it is in
    # (one image at a time in the gallery, thousands at once for a dataset), and the ONNX graph stays one.
    return nn.GroupNorm(min(8, channels), channels)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut; `stride` 2 halves the map."""

    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.first = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.first_norm = _group_norm(outputs)
        self.second = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.second_norm = _group_norm(outputs)
        self.shortcut: nn.Module = (
            nn.Identity()
            if stride == 1 and inputs == outputs
            else nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False), _group_norm(outputs))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output (same batch, `outputs` maps)."""
        hidden = F.relu(self.first_norm(self.first(x)))
        return F.relu(self.second_norm(self.second(hidden)) + self.shortcut(x))


class ContrastiveEncoder(nn.Module):
    """Images (N x C x S x S in [-1, 1]) to features (N x 4*width) pooled over space."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(channels, width, 3, 1, 1, bias=False), _group_norm(width), nn.ReLU())
        self.blocks = nn.Sequential(
            ResidualBlock(width, width, 1),
            ResidualBlock(width, 2 * width, 2),
            ResidualBlock(2 * width, 4 * width, 2),
        )
        self.features = 4 * width

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled features (the representation SimCLR's linear evaluation uses)."""
        return self.blocks(self.stem(images)).mean(dim=(2, 3))


class EmbeddingNetwork(nn.Module):
    """What the ONNX file holds: the encoder, minus the dataset's mean feature, L2-normalised.

    Pooled ReLU features all lie in the positive orthant, so raw cosine distances crowd near 0;
    centring on the dataset's mean spreads them over [0, 2] and makes thresholds readable.
    """

    def __init__(self, encoder: ContrastiveEncoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.center: torch.Tensor
        self.register_buffer("center", torch.zeros(encoder.features))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Unit-length embeddings, N x features."""
        features = self.encoder(images) - self.center
        return features / features.norm(dim=1, keepdim=True).clamp_min(1e-12)

    @torch.no_grad()
    def centre_on(self, images: torch.Tensor, batch: int = 512) -> None:
        """Set the centre to the mean feature of `images` (the whole training set)."""
        total = torch.zeros(self.encoder.features, device=images.device)
        for start in range(0, len(images), batch):
            total += self.encoder(images[start : start + batch]).sum(0)
        self.center.copy_(total / max(1, len(images)))


class ProjectionHead(nn.Module):
    """g: an MLP from features to the space the loss is computed in (SimCLR: better features in f)."""

    def __init__(self, features: int, dims: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(features, features), nn.ReLU(), nn.Linear(features, dims))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Projections, N x dims."""
        return self.layers(features)


def nt_xent(first: torch.Tensor, second: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent: cross-entropy of each view against its partner among the other 2N - 1 views."""
    views = F.normalize(torch.cat([first, second]), dim=1)
    similarity = views @ views.t() / temperature
    count = len(first)
    similarity.fill_diagonal_(float("-inf"))  # a view is not its own positive or negative
    partners = torch.cat([torch.arange(count, 2 * count), torch.arange(count)]).to(views.device)
    return F.cross_entropy(similarity, partners)


def build_networks(channels: int, settings: Mapping[str, Any]) -> tuple[ContrastiveEncoder, ProjectionHead]:
    """A fresh encoder and projection head for these settings."""
    encoder = ContrastiveEncoder(channels, int(settings["width"]))
    return encoder, ProjectionHead(encoder.features, int(settings["projection_dims"]))
