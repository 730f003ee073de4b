"""The gpt family's torch networks: a VQ-VAE (encoder, EMA codebook, decoder) and a decoder-only transformer.

VQ-VAE (van den Oord et al. 2017): the encoder maps an image to an h x w grid of code_dim vectors, each
snapped to its nearest codebook vector (straight-through gradients to the encoder, a commitment loss
that keeps the encoder near its codes); the codebook follows the encoder outputs assigned to each code
by exponential moving averages, and codes unused for a while restart from random encoder outputs.

The transformer (GPT) reads the raster-order code sequence after a leading token: the class embedding
`class_weights @ E` of a conditional model (linear in the weights, so a mix of classes mixes the
embedding) or a learned start embedding; position i predicts code i from the lead and the codes before
it. `step` runs one position against a key/value cache of the positions before it, which is what sampling
and the ONNX export use; `forward` runs a whole sequence at once (training), with the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import cast

import torch
import torch.nn.functional as F  # noqa: N812 (the conventional name)
from torch import nn


def _groups(channels: int) -> int:
    return math.gcd(8, channels)


class ResidualBlock(nn.Module):
    """GroupNorm, SiLU, 3x3 convolution, twice, plus the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(_groups(channels), channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, 1, 1),
            nn.GroupNorm(_groups(channels), channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, 1, 1),
        )

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """The block's output, same shape as its input."""
        return inputs + self.body(inputs)


def level_widths(width: int, halvings: int) -> list[int]:
    """Feature maps at each level, from full resolution down: doubled after the first halving, then kept."""
    return [width * min(2**level, 2) for level in range(halvings + 1)]


class VqEncoder(nn.Module):
    """Images in [-1, 1] (N, C, H, W) to continuous code vectors (N, code_dim, H / f, W / f)."""

    def __init__(self, channels: int, halvings: int, width: int, code_dim: int) -> None:
        super().__init__()
        widths = level_widths(width, halvings)
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 3, 1, 1)]
        for level in range(halvings):
            layers += [ResidualBlock(widths[level]), nn.Conv2d(widths[level], widths[level + 1], 4, 2, 1)]
        top = widths[-1]
        layers += [ResidualBlock(top), nn.GroupNorm(_groups(top), top), nn.SiLU(), nn.Conv2d(top, code_dim, 1)]
        self.body = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The encoder outputs before quantisation."""
        return self.body(images)


class VqDecoder(nn.Module):
    """Code vectors (N, code_dim, h, w) to images in [-1, 1] (roughly: the output is not squashed)."""

    def __init__(self, channels: int, halvings: int, width: int, code_dim: int) -> None:
        super().__init__()
        widths = level_widths(width, halvings)
        layers: list[nn.Module] = [nn.Conv2d(code_dim, widths[-1], 3, 1, 1), ResidualBlock(widths[-1])]
        for level in reversed(range(halvings)):
            layers += [nn.ConvTranspose2d(widths[level + 1], widths[level], 4, 2, 1), ResidualBlock(widths[level])]
        layers += [nn.GroupNorm(_groups(widths[0]), widths[0]), nn.SiLU(), nn.Conv2d(widths[0], channels, 3, 1, 1)]
        self.body = nn.Sequential(*layers)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """The decoded images."""
        return self.body(latents)


class Codebook(nn.Module):
    """The codebook: nearest-code lookup, and its moving-average updates and dead-code restarts.

    Its state is buffers (saved in checkpoints): the code vectors, the moving averages behind them,
    how many steps each code has gone unused, and whether it was initialised from data yet.
    """

    embedding: torch.Tensor
    cluster_size: torch.Tensor
    embedding_sum: torch.Tensor
    idle: torch.Tensor
    initialised: torch.Tensor

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.size, self.dim = size, dim
        self.register_buffer("embedding", torch.randn(size, dim))
        self.register_buffer("cluster_size", torch.zeros(size))
        self.register_buffer("embedding_sum", torch.zeros(size, dim))
        self.register_buffer("idle", torch.zeros(size, dtype=torch.int64))
        self.register_buffer("initialised", torch.zeros(1, dtype=torch.int64))

    def codes(self, latents: torch.Tensor) -> torch.Tensor:
        """The nearest code (int64, N x h x w) of each vector of latents (N, dim, h, w)."""
        batch, dim, height, width = latents.shape
        flat = latents.permute(0, 2, 3, 1).reshape(-1, dim).float()
        # |e|^2 - 2 z.e: the |z|^2 term is the same for every code, so it cannot change the nearest.
        distances = self.embedding.pow(2).sum(1)[None, :] - 2 * flat @ self.embedding.t()
        return distances.argmin(1).view(batch, height, width)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """The code vectors (N, dim, h, w) of codes (N, h, w)."""
        return F.embedding(codes, self.embedding).permute(0, 3, 1, 2)

    @torch.no_grad()
    def initialise(self, flat: torch.Tensor) -> None:
        """Start every code at a random encoder output (k-means' usual start), so none begins unreachable."""
        picks = flat[torch.randint(len(flat), (self.size,), device=flat.device)]
        self.embedding.copy_(picks)
        self.embedding_sum.copy_(picks)
        self.cluster_size.fill_(1.0)
        self.idle.zero_()
        self.initialised.fill_(1)

    @torch.no_grad()
    def update(self, flat: torch.Tensor, codes: torch.Tensor, decay: float, dead_after: int) -> int:
        """One moving-average step towards the mean of the vectors assigned to each code; codes unused for
        `dead_after` steps restart at random vectors of this batch. Returns how many codes restarted."""
        counts = torch.bincount(codes, minlength=self.size).float()
        sums = torch.zeros_like(self.embedding_sum).index_add_(0, codes, flat)
        self.cluster_size.mul_(decay).add_(counts, alpha=1 - decay)
        self.embedding_sum.mul_(decay).add_(sums, alpha=1 - decay)
        # Laplace smoothing keeps a code that drifted out of use from dividing by zero.
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + 1e-5) / (total + self.size * 1e-5) * total
        self.embedding.copy_(self.embedding_sum / smoothed[:, None])
        self.idle.add_(1)
        self.idle[counts > 0] = 0
        if dead_after <= 0:
            return 0
        dead = torch.nonzero(self.idle >= dead_after).flatten()
        if len(dead) == 0:
            return 0
        picks = flat[torch.randint(len(flat), (len(dead),), device=flat.device)]
        self.embedding[dead] = picks
        self.embedding_sum[dead] = picks
        self.cluster_size[dead] = 1.0
        self.idle[dead] = 0
        return len(dead)


class VqVae(nn.Module):
    """Encoder, codebook and decoder; `frozen` (a saved buffer) marks the end of the first training stage."""

    frozen: torch.Tensor

    def __init__(self, channels: int, downscale: int, width: int, code_dim: int, codebook_size: int) -> None:
        super().__init__()
        halvings = int(math.log2(downscale))
        self.encoder = VqEncoder(channels, halvings, width, code_dim)
        self.codebook = Codebook(codebook_size, code_dim)
        self.decoder = VqDecoder(channels, halvings, width, code_dim)
        self.register_buffer("frozen", torch.zeros(1, dtype=torch.int64))

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """The codes (int64, N x h x w) of images in [-1, 1]."""
        return self.codebook.codes(self.encoder(images))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Images of codes (N x h x w)."""
        return self.decoder(self.codebook.lookup(codes))


class CodeEncoder(nn.Module):
    """images -> codes: the exported encoder."""

    def __init__(self, vq: VqVae) -> None:
        super().__init__()
        self.vq = vq

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The nearest code of each cell."""
        return self.vq.encode(images)


class CodeLookup(nn.Module):
    """codes -> code vectors: the exported codebook."""

    def __init__(self, codebook: Codebook) -> None:
        super().__init__()
        self.codebook = codebook

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """The codebook vectors of the codes."""
        return self.codebook.lookup(codes)


class SelfAttention(nn.Module):
    """Multi-head causal self-attention."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.dropout = dropout

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(N, T, width) -> (N, T, width); position t attends to positions <= t."""
        batch, length, width = inputs.shape
        query, key, value = (
            part.view(batch, length, self.heads, width // self.heads).transpose(1, 2)
            for part in self.qkv(inputs).split(width, dim=2)
        )
        mixed = F.scaled_dot_product_attention(
            query, key, value, is_causal=True, dropout_p=self.dropout if self.training else 0.0
        )
        return self.proj(mixed.transpose(1, 2).reshape(batch, length, width))

    def step(
        self, inputs: torch.Tensor, keys: torch.Tensor, values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One position (N, width) attending to itself and the cached keys and values of the positions before
        it (N, t, width; t may be 0): the output, and this position's key and value."""
        batch, width = inputs.shape
        head = width // self.heads
        query, key, value = self.qkv(inputs).split(width, dim=1)
        keys = torch.cat([keys, key[:, None]], dim=1)
        values = torch.cat([values, value[:, None]], dim=1)
        length = keys.shape[1]
        query_heads = query.view(batch, self.heads, 1, head)
        key_heads = keys.view(batch, length, self.heads, head).transpose(1, 2)
        value_heads = values.view(batch, length, self.heads, head).transpose(1, 2)
        scores = (query_heads @ key_heads.transpose(-1, -2)) / math.sqrt(head)
        mixed = torch.softmax(scores, dim=-1) @ value_heads
        return self.proj(mixed.reshape(batch, width)), key, value


class Block(nn.Module):
    """A pre-norm transformer block: attention then an MLP, each residual."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(width)
        self.attention = SelfAttention(width, heads, dropout)
        self.mlp_norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        self.dropout = nn.Dropout(dropout)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """The whole sequence (N, T, width)."""
        hidden = inputs + self.dropout(self.attention(self.attention_norm(inputs)))
        return hidden + self.dropout(self.mlp(self.mlp_norm(hidden)))

    def step(
        self, inputs: torch.Tensor, keys: torch.Tensor, values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One position (N, width) against the cache (inference only: no dropout); also its key and value."""
        attended, key, value = self.attention.step(self.attention_norm(inputs), keys, values)
        hidden = inputs + attended
        return hidden + self.mlp(self.mlp_norm(hidden)), key, value


class TokenTransformer(nn.Module):
    """A decoder-only transformer over code sequences of length L after a leading (class or start) token.

    `forward(tokens)` gives logits (N, T, V) where position t predicts tokens[:, t] from the lead and
    tokens[:, :t] (so the last token given is never read): training is cross-entropy against the input.
    """

    def __init__(
        self, vocabulary: int, length: int, width: int, layers: int, heads: int, dropout: float, classes: int
    ) -> None:
        super().__init__()
        self.length, self.width, self.layer_count = length, width, layers
        self.token_embedding = nn.Embedding(vocabulary, width)
        self.position_embedding = nn.Parameter(torch.randn(length, width) * 0.02)
        # A conditional model's lead is class_weights @ E (no bias: linear in the weights); an
        # unconditional one's is a learned start embedding.
        self.class_embedding = nn.Linear(classes, width, bias=False) if classes else None
        self.start = None if classes else nn.Parameter(torch.randn(width) * 0.02)
        self.blocks = nn.ModuleList(Block(width, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocabulary, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, 0.0, 0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def set_dropout(self, rate: float) -> None:
        """Change the dropout rate of every layer (a training setting that may change on resume)."""
        for module in self.modules():
            if isinstance(module, nn.Dropout):
                module.p = rate
            elif isinstance(module, SelfAttention):
                module.dropout = rate

    def lead(self, batch: int, class_weights: torch.Tensor | None) -> torch.Tensor:
        """The leading token's embedding (N, width)."""
        if self.class_embedding is not None:
            if class_weights is None:
                raise ValueError("a conditional transformer needs class weights")
            return self.class_embedding(class_weights)
        assert self.start is not None
        return self.start.expand(batch, -1)

    def _blocks(self) -> Iterable[Block]:
        return cast("Iterable[Block]", self.blocks)

    def forward(self, tokens: torch.Tensor, class_weights: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (N, T, V) of every position of tokens (N, T)."""
        batch, length = tokens.shape
        lead = self.lead(batch, class_weights).to(self.position_embedding.dtype)
        hidden = torch.cat([lead[:, None], self.token_embedding(tokens[:, :-1])], dim=1)
        hidden = self.dropout(hidden + self.position_embedding[:length])
        for block in self._blocks():
            hidden = block(hidden)
        return self.head(self.norm(hidden))

    def cache_entry_shape(self) -> tuple[int, int, int]:
        """One position's cached keys and values, per image: (layers, 2, width)."""
        return (self.layer_count, 2, self.width)

    def step(
        self,
        token: torch.Tensor,
        position: torch.Tensor,
        past: torch.Tensor,
        class_weights: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The logits (N, V) at `position` (int64, shape (1,)) given the token before it (int64, (N,); not read
        at position 0, where the lead stands) and `past`, the cached keys and values of every position up to
        this one, (t + 1, N, layers, 2, width) with t = position (the last entry is a placeholder); and this
        position's entry (N, layers, 2, width) for the cache. Equals forward(...)[:, position] up to rounding.

        The cache leads with the position axis so a sampler's slice of the positions so far is contiguous.
        """
        batch = token.shape[0]
        first = (position == 0).view(1, 1)
        hidden = torch.where(first, self.lead(batch, class_weights), self.token_embedding(token))
        hidden = hidden + self.position_embedding[position]
        before = past[:-1].permute(1, 2, 3, 0, 4)  # (N, layers, 2, t, width)
        entries = []
        for index, block in enumerate(self._blocks()):
            hidden, key, value = block.step(hidden, before[:, index, 0], before[:, index, 1])
            entries.append(torch.stack([key, value], dim=1))
        return self.head(self.norm(hidden)), torch.stack(entries, dim=1)


class TransformerStep(nn.Module):
    """The exported transformer of an unconditional model: (token, position, past) -> (logits, present)."""

    def __init__(self, transformer: TokenTransformer) -> None:
        super().__init__()
        self.transformer = transformer

    def forward(
        self, token: torch.Tensor, position: torch.Tensor, past: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One sampling step."""
        return self.transformer.step(token, position, past)


class ConditionalTransformerStep(nn.Module):
    """The exported transformer of a conditional model: the class weights are its fourth input."""

    def __init__(self, transformer: TokenTransformer) -> None:
        super().__init__()
        self.transformer = transformer

    def forward(
        self, token: torch.Tensor, position: torch.Tensor, past: torch.Tensor, class_weights: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One sampling step of the class weighted."""
        return self.transformer.step(token, position, past, class_weights)
