"""The gpt family: a VQ-VAE and a transformer over its codes, trained in two stages in the same trainer.

Stage 1 (steps before `vq_steps`, while the VQ-VAE is not frozen) trains the VQ-VAE: reconstruction plus
the commitment loss, the codebook following the encoder by moving averages, dead codes restarted. At
the first stage-2 step the VQ-VAE is frozen for good (a saved flag, so a resumed or fine-tuned model
never goes back to stage 1), and the transformer learns the code sequences of the training images by
cross-entropy, with the class as the leading token when the model is conditional.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the conventional name)
from torch import nn

from studio.engine.families.base import Diagnostics, GeneratorFamily, NetworkExport, Precision, to_uint8
from studio.engine.families.gpt.declaration import DECLARATION
from studio.engine.families.gpt.networks import (
    CodeEncoder,
    CodeLookup,
    ConditionalTransformerStep,
    TokenTransformer,
    TransformerStep,
    VqVae,
)
from studio.engine.families.gpt.pipeline import GptPipeline, code_grid
from studio.errors import StudioError

# The transformer's learning rate rises linearly to learning_rate over its first steps in a session.
WARMUP_STEPS = 100
# Stage 2 remembers the frozen VQ-VAE's codes of each training image (by its pixels) instead of encoding
# it again every epoch; at most this many images (a few MB), then the memory starts over.
CODE_CACHE_LIMIT = 200_000

# Fewer codes in use than this share of those a batch could use: warn of codebook collapse.
COLLAPSE_SHARE = 0.05


@dataclass(frozen=True)
class CodebookUsage:
    """How much of the codebook a batch of real images uses."""

    used: int  # distinct codes
    attainable: int  # codes the batch could use at most: min(codebook size, cells in the batch)
    perplexity: float  # exp(entropy) of the codes' frequencies: the number of equally used codes it equals

    @property
    def share(self) -> float:
        """Distinct codes over those attainable."""
        return self.used / max(1, self.attainable)


def codebook_usage(codes: torch.Tensor, size: int) -> CodebookUsage:
    """The usage of a codebook of `size` codes by a batch's codes (any shape)."""
    flat = codes.flatten()
    counts = torch.bincount(flat, minlength=size).double()
    probabilities = counts / counts.sum().clamp_min(1)
    entropy = -(probabilities * probabilities.clamp_min(1e-12).log()).sum()
    return CodebookUsage(int((counts > 0).sum()), min(size, flat.numel()), float(entropy.exp()))


def collapse_warning(usage: CodebookUsage, size: int) -> str | None:
    """The warning for a collapsed codebook (a few codes carry every image), or None."""
    if usage.used >= max(2.0, COLLAPSE_SHARE * usage.attainable):
        return None
    return (
        f"possible codebook collapse: only {usage.used} of {size} codes ({usage.share:.0%} of those a batch could "
        f"use) code the real images (perplexity {usage.perplexity:.1f}); unused codes restart after "
        "dead_code_steps, or try a lower commitment or a smaller codebook_size"
    )


class GptFamily(GeneratorFamily):
    """A VQ-VAE (stage 1) and a decoder-only transformer over its raster-order codes (stage 2)."""

    declaration = DECLARATION
    accepts_classes = True

    def __init__(
        self,
        resolution: int,
        channels: int,
        hparams: Mapping[str, Any],
        architecture: Mapping[str, Any] | None = None,
        classes: Sequence[str] = (),
    ) -> None:
        super().__init__(resolution, channels, hparams, architecture, classes)
        h = self.hparams
        self.grid = code_grid(resolution, h["downscale"], self.name)
        if h["width"] % h["heads"]:
            raise StudioError(f"the transformer width ({h['width']}) must be a multiple of heads ({h['heads']})")
        self.vq = VqVae(channels, h["downscale"], h["vq_width"], h["code_dim"], h["codebook_size"])
        self.transformer = TokenTransformer(
            h["codebook_size"], self.grid**2, h["width"], h["layers"], h["heads"], h["dropout"], self.class_count
        )
        # foreach: one multi-tensor update instead of a Python loop over the parameters (PyTorch only picks
        # it by default on CUDA; on a CPU the loop cost about as much as the rest of a small model's step).
        self.vq_optimizer = torch.optim.Adam(self.vq.parameters(), lr=h["vq_learning_rate"], foreach=True)
        self.optimizer = torch.optim.AdamW(
            self.transformer.parameters(), lr=h["learning_rate"], betas=(0.9, 0.95), weight_decay=0.01, foreach=True
        )
        self._code_cache: dict[bytes, np.ndarray] = {}
        self._transformer_steps = 0  # stage-2 steps in this session: the warm-up's clock

    # --- networks -----------------------------------------------------------------------

    def networks(self) -> dict[str, nn.Module]:
        """The VQ-VAE (with its codebook state) and the transformer."""
        return {"vq": self.vq, "transformer": self.transformer}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Adam over the VQ-VAE, AdamW over the transformer."""
        return {"vq": self.vq_optimizer, "transformer": self.optimizer}

    def trained_modules(self) -> dict[str, nn.Module]:
        """The VQ-VAE's encoder and decoder (stage 1; its codebook moves by averages, not gradients) and the
        transformer (stage 2)."""
        return {"vq_encoder": self.vq.encoder, "vq_decoder": self.vq.decoder, "transformer": self.transformer}

    @property
    def vq_frozen(self) -> bool:
        """Whether stage 1 is over for good."""
        return bool(self.vq.frozen.item())

    def stage(self, step: int) -> int:
        """1 while the VQ-VAE trains, 2 once the transformer does."""
        return 1 if not self.vq_frozen and step < self.hparams["vq_steps"] else 2

    # --- training -----------------------------------------------------------------------

    @staticmethod
    def _set_rate(optimizer: torch.optim.Optimizer, rate: float) -> None:
        # Each stage keeps its own rate (the trainer sets every optimiser to learning_rate on resume).
        for group in optimizer.param_groups:
            group["lr"] = rate

    def training_step(
        self, batch: torch.Tensor, step: int, precision: Precision, labels: torch.Tensor | None = None
    ) -> dict[str, float]:
        """Stage 1: one VQ-VAE step. Stage 2: one transformer step on the frozen VQ-VAE's codes."""
        images = batch.to(self.device, torch.float32)
        if self.stage(step) == 1:
            return self._vq_step(images, precision)
        if not self.vq_frozen:
            self.vq.frozen.fill_(1)
        tokens = self._training_tokens(images)
        self.transformer.train()
        self.transformer.set_dropout(self.hparams["dropout"])
        self._transformer_steps += 1
        warmup = min(1.0, self._transformer_steps / WARMUP_STEPS)
        self._set_rate(self.optimizer, self.hparams["learning_rate"] * warmup)
        with precision.autocast():
            logits = self.replica("transformer")(tokens, self.class_weights(labels))
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), tokens.reshape(-1))
        precision.step(loss, self.optimizer, clip=1.0)
        return {"token_nll": float(loss.detach())}

    @torch.no_grad()
    def _training_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """The frozen VQ-VAE's codes (int64, N x L) of a batch; images seen before come from the cache."""
        keys = [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in images.cpu().numpy()]
        missing = [index for index, key in enumerate(keys) if key not in self._code_cache]
        if missing:
            if len(self._code_cache) + len(missing) > CODE_CACHE_LIMIT:
                self._code_cache.clear()
                missing = list(range(len(keys)))
            self.vq.eval()
            codes = self.vq.encode(images[missing]).flatten(1).cpu().numpy().astype(np.int16)
            for index, row in zip(missing, codes, strict=True):
                self._code_cache[keys[index]] = row
        rows = np.stack([self._code_cache[key] for key in keys])
        return torch.from_numpy(rows.astype(np.int64)).to(images.device)

    def _vq_step(self, images: torch.Tensor, precision: Precision) -> dict[str, float]:
        h = self.hparams
        self.vq.train()
        self._set_rate(self.vq_optimizer, h["vq_learning_rate"])
        codebook = self.vq.codebook
        with precision.autocast():
            latents = self.replica("vq_encoder")(images)
        latents = latents.float()
        flat = latents.detach().permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
        if not codebook.initialised.item():
            codebook.initialise(self.collective.gather(flat))
            self.collective.broadcast_buffers(codebook)  # its random picks: rank 0's
        codes = codebook.codes(latents.detach())
        quantised = codebook.lookup(codes)
        commitment = F.mse_loss(latents, quantised)
        straight_through = latents + (quantised - latents).detach()
        with precision.autocast():
            rebuilt = self.replica("vq_decoder")(straight_through)
        reconstruction = F.mse_loss(rebuilt.float(), images)
        loss = reconstruction + h["commitment"] * commitment
        precision.step(loss, self.vq_optimizer, clip=1.0)
        # The averages move by every process's vectors (the whole global batch), and restarts drawn on
        # rank 0 win, so the codebook stays one codebook.
        codebook.update(
            self.collective.gather(flat),
            self.collective.gather(codes.flatten()),
            h["codebook_decay"],
            h["dead_code_steps"],
        )
        self.collective.broadcast_buffers(codebook)
        usage = codebook_usage(codes, codebook.size)
        return {
            "reconstruction": float(reconstruction.detach()),
            "commitment": float(commitment.detach()),
            "perplexity": usage.perplexity,
        }

    @torch.no_grad()
    def diagnostics(self, real: torch.Tensor) -> Diagnostics:
        """Codebook usage on real images (share of the codes a batch could use, perplexity), and a warning
        when it has collapsed to a few codes."""
        self.vq.eval()
        codes = self.vq.encode(real[:64].to(self.device, torch.float32))
        size = self.vq.codebook.size
        usage = codebook_usage(codes, size)
        figures = {"codebook_usage": usage.share, "codebook_perplexity": usage.perplexity}
        warning = collapse_warning(usage, size)
        return Diagnostics(figures, [warning] if warning else [])

    # --- sampling and export ------------------------------------------------------------

    def _step_module(self) -> nn.Module:
        return ConditionalTransformerStep(self.transformer) if self.conditional else TransformerStep(self.transformer)

    def network_exports(self, rng: np.random.Generator) -> list[NetworkExport]:
        """The transformer's cached step, the codebook, the decoder and the encoder."""
        h = self.hparams
        vocabulary, grid, dim = h["codebook_size"], self.grid, h["code_dim"]
        length = grid * grid
        batch = {0: "batch"}
        entry = self.transformer.cache_entry_shape()
        step_inputs: tuple[torch.Tensor, ...] = (
            torch.zeros(2, dtype=torch.int64),
            torch.zeros(1, dtype=torch.int64),
            torch.zeros(3, 2, *entry),
        )
        names: tuple[str, ...] = ("token", "position", "past")
        dynamic: dict[str, dict[int, str]] = {"token": batch, "past": {0: "length", 1: "batch"}}
        parity: list[tuple[np.ndarray, ...]] = []
        for position in sorted({0, length // 2, length - 1}):
            parity.append(
                (
                    rng.integers(0, vocabulary, 3).astype(np.int64),
                    np.array([position], np.int64),
                    (rng.standard_normal((position + 1, 3, *entry)) * 0.5).astype(np.float32),
                )
            )
        if self.conditional:
            step_inputs += (torch.zeros(2, self.class_count),)
            names += ("class_weights",)
            dynamic["class_weights"] = batch
            parity = [(*p, rng.dirichlet(np.ones(self.class_count), 3).astype(np.float32)) for p in parity]
        codes = rng.integers(0, vocabulary, (3, grid, grid)).astype(np.int64)
        with torch.no_grad():
            latents = self.vq.codebook.lookup(torch.from_numpy(codes)).numpy()
        size = self.resolution
        return [
            NetworkExport(
                "transformer", self._step_module(), step_inputs, names, ("logits", "present"), dynamic, parity
            ),
            NetworkExport(
                "codebook",
                CodeLookup(self.vq.codebook),
                (torch.zeros(2, grid, grid, dtype=torch.int64),),
                ("codes",),
                ("latents",),
                {"codes": batch},
                [(codes,)],
            ),
            NetworkExport(
                "decoder",
                self.vq.decoder,
                (torch.zeros(2, dim, grid, grid),),
                ("latents",),
                ("images",),
                {"latents": batch},
                [(latents,), (rng.standard_normal((2, dim, grid, grid)).astype(np.float32),)],
            ),
            NetworkExport(
                "encoder",
                CodeEncoder(self.vq),
                (torch.zeros(2, self.channels, size, size),),
                ("images",),
                ("codes",),
                {"images": batch},
                [(self.random_images(rng, 3),)],
            ),
        ]

    def pipeline(self) -> GptPipeline:
        """Token sampling, decoding, encoding and inpainting over the transformer and the VQ-VAE."""
        modules = [self.transformer, self.vq]
        return GptPipeline(
            self.spec(),
            self.numpy_function(self._step_module(), modules),
            self.numpy_function(CodeLookup(self.vq.codebook), modules),
            self.numpy_function(self.vq.decoder, modules),
            self.numpy_function(CodeEncoder(self.vq), modules),
        )

    def preview(self, real: torch.Tensor, seeds: Sequence[int], options: Mapping[str, Any]) -> np.ndarray:
        """Stage 1: real images, then their reconstructions through the codebook; stage 2: samples."""
        if self.vq_frozen:
            return super().preview(real, seeds, options)
        shown = min(len(real), max(1, len(seeds) // 2))
        images = real[:shown].to(self.device, torch.float32)
        with torch.no_grad():
            self.vq.eval()
            rebuilt = self.vq.decode(self.vq.encode(images))
        return np.concatenate([to_uint8(images), to_uint8(rebuilt)])
