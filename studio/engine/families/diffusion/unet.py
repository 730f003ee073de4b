"""diffusers' networks as Studio's diffusion networks: UNet2DModel (and the latent autoencoders), built from
checked configurations.

A configuration read from a user's file decides how big a network is, so it is checked before any
memory is spent: every value typed and bounded, only the block kinds an unconditional UNet2DModel
takes, and the parameter count measured on torch's "meta" device (no storage) against a cap.

Class conditioning (a model of K classes): the UNet2DModel is built with `num_class_embeds = K + 1`, a
real diffusers configuration whose embedding table E has one row per class and a last row, index K,
for "no class" (the unconditional branch of classifier-free guidance). Studio feeds it class weights
w (N x K: one-hot, zeros, or a mix) instead of indices: `WeightedClassEmbedding` computes
w @ E[:K] + (1 - sum(w)) E[K], which is linear in w, equals E[k] for a one-hot row and E[K] for zeros,
and keeps diffusers' parameter name (class_embedding.weight). A diffusers user of the exported U-Net
passes int class_labels and K for no class.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from studio.errors import StudioError

# The largest network Studio builds from a file (CompVis/ldm-celebahq-256's U-Net has 274 M parameters).
MAX_PARAMETERS = 1_500_000_000
MAX_CHANNELS = 4096
MAX_LEVELS = 8
MAX_LIST = 16
# Unconditional UNet2DModel blocks (the cross-attention and k-diffusion blocks need conditioning).
UNET_DOWN_BLOCKS = frozenset(
    {"DownBlock2D", "ResnetDownsampleBlock2D", "AttnDownBlock2D", "SkipDownBlock2D", "AttnSkipDownBlock2D"}
)
UNET_UP_BLOCKS = frozenset(
    {"UpBlock2D", "ResnetUpsampleBlock2D", "AttnUpBlock2D", "SkipUpBlock2D", "AttnSkipUpBlock2D"}
)
ENCODER_BLOCKS = frozenset({"DownEncoderBlock2D", "AttnDownEncoderBlock2D"})
DECODER_BLOCKS = frozenset({"UpDecoderBlock2D", "AttnUpDecoderBlock2D"})
BLOCK_LISTS = {
    "down_block_types": UNET_DOWN_BLOCKS | ENCODER_BLOCKS,
    "up_block_types": UNET_UP_BLOCKS | DECODER_BLOCKS,
}
CHOICES = {
    "act_fn": ("silu", "swish", "mish", "gelu", "relu"),
    "time_embedding_type": ("positional", "fourier", "learned"),
    "mid_block_type": ("UNetMidBlock2D",),
    "resnet_time_scale_shift": ("default", "scale_shift"),
    "downsample_type": ("conv", "resnet"),
    "upsample_type": ("conv", "resnet"),
    "norm_type": ("group", "spatial"),
}
# Keys that would make a network conditional: refused, Studio loads unconditional pipelines only (its own
# conditional U-Nets have num_class_embeds = classes + 1 and no class_embed_type, see the module docstring).
CONDITIONING_KEYS = ("class_embed_type", "num_class_embeds")
CLASS_EMBEDS = "num_class_embeds"
# Channel multipliers per level of the U-Nets Studio builds itself, highest resolution first.
CHANNEL_MULTIPLIERS = (1, 2, 2, 2, 4, 4)
LOWEST_RESOLUTION = 4


def _diffusers() -> Any:
    """diffusers' model classes, imported on first use (the import costs about a second)."""
    import diffusers

    return diffusers


def network_class(name: str) -> type[nn.Module]:
    """UNet2DModel, VQModel or AutoencoderKL by name."""
    if name not in ("UNet2DModel", "VQModel", "AutoencoderKL"):
        raise StudioError(f"Studio builds UNet2DModel, VQModel and AutoencoderKL networks, not {name}")
    return getattr(_diffusers(), name)


def _check_value(key: str, value: Any, where: str) -> Any:
    """One configuration value: a bounded number, a short text, a flag, null, or a short list of those."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -1 <= value <= 1_000_000:
            raise StudioError(f"{where}: {key} = {value} is out of range")
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) > 1e6:
            raise StudioError(f"{where}: {key} = {value} is not a usable number")
        return value
    if isinstance(value, str):
        if len(value) > 64:
            raise StudioError(f"{where}: {key} is too long")
        return value
    if isinstance(value, list | tuple):
        if len(value) > MAX_LIST:
            raise StudioError(f"{where}: {key} has more than {MAX_LIST} entries")
        return [_check_value(key, item, where) for item in value]
    raise StudioError(f"{where}: {key} is not a number, text or list")


def checked_config(class_name: str, raw: Mapping[str, Any], where: str, class_count: int = 0) -> dict[str, Any]:
    """The constructor arguments of a diffusers network from its config.json, checked; unknown keys dropped
    (as diffusers does), conditioning refused, sizes bounded.

    `class_count` K > 0: the configuration of a Studio conditional U-Net, which must have
    num_class_embeds = K + 1 (K classes and "no class") and nothing else conditional.
    """
    cls = network_class(class_name)
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    config = {key: _check_value(key, value, where) for key, value in raw.items() if key in accepted}
    if class_count > 0:
        if class_name != "UNet2DModel" or config.get(CLASS_EMBEDS) != class_count + 1:
            raise StudioError(
                f"{where}: a U-Net of {class_count} classes has num_class_embeds = {class_count + 1}, "
                f"not {config.get(CLASS_EMBEDS)}"
            )
        config = {key: value for key, value in config.items() if key != CLASS_EMBEDS}
    for key in CONDITIONING_KEYS:
        if config.get(key) is not None:
            raise StudioError(
                f"{where}: a class-conditional {class_name} ({key}); Studio loads unconditional pipelines only"
            )
    for key, allowed in BLOCK_LISTS.items():
        for block in config.get(key) or []:
            if block not in allowed:
                raise StudioError(
                    f"{where}: the block kind {block!r} is not one Studio builds (conditional, or unknown)"
                )
    for key, allowed_choices in CHOICES.items():
        if key in config and config[key] is not None and config[key] not in allowed_choices:
            raise StudioError(f"{where}: {key} = {config[key]!r} is not one of {', '.join(allowed_choices)}")
    channels = config.get("block_out_channels") or []
    if not 1 <= len(channels) <= MAX_LEVELS or not all(isinstance(c, int) and 1 <= c <= MAX_CHANNELS for c in channels):
        raise StudioError(f"{where}: block_out_channels must be 1 to {MAX_LEVELS} widths of 1 to {MAX_CHANNELS}")
    for key in ("in_channels", "out_channels", "latent_channels"):
        if key in config and not (isinstance(config[key], int) and 1 <= config[key] <= 16):
            raise StudioError(f"{where}: {key} must be 1 to 16")
    if "layers_per_block" in config and not (
        isinstance(config["layers_per_block"], int) and 1 <= config["layers_per_block"] <= 8
    ):
        raise StudioError(f"{where}: layers_per_block must be 1 to 8")
    if "num_vq_embeddings" in config and not (
        isinstance(config["num_vq_embeddings"], int) and 2 <= config["num_vq_embeddings"] <= 65536
    ):
        raise StudioError(f"{where}: num_vq_embeddings must be 2 to 65536")
    for key in ("down_block_types", "up_block_types"):
        if key in config and len(config[key]) != len(channels):
            raise StudioError(f"{where}: {key} needs one entry per block_out_channels width")
    try:
        with torch.device("meta"):  # shapes only: a forged width costs nothing here
            count = sum(p.numel() for p in cls(**config).parameters())
    except (TypeError, ValueError, AssertionError, RuntimeError, KeyError, IndexError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise StudioError(f"{where}: diffusers cannot build this {class_name} ({detail[:160]})") from None
    if count > MAX_PARAMETERS:
        raise StudioError(f"{where}: a {class_name} of {count / 1e6:.0f} M parameters is above Studio's limit")
    if class_count > 0:
        config[CLASS_EMBEDS] = class_count + 1
    return config


class WeightedClassEmbedding(nn.Embedding):
    """diffusers' class embedding table E (K + 1 rows: the classes, then "no class") looked up by class weights.

    Given float weights w (N x K) it returns w @ E[:K] + (1 - sum(w)) E[K] (linear in w: a one-hot row
    gives its class's row, zeros the null row, a mix the mix); given int64 indices, a plain lookup
    (what diffusers' UNet2DModel users pass). Its one parameter keeps nn.Embedding's name, `weight`.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """The class embeddings of class weights (N x K, float) or class indices (N, int)."""
        if not input.is_floating_point():
            return super().forward(input)
        table = self.weight
        weights = input.to(table.dtype)
        null = (1.0 - weights.sum(dim=1, keepdim=True)) * table[-1][None, :]
        return weights @ table[:-1] + null


def weighted_class_embedding(table: nn.Embedding) -> WeightedClassEmbedding:
    """The same table (sharing its weight, no new random draws) looked up by class weights."""
    return WeightedClassEmbedding(table.num_embeddings, table.embedding_dim, _weight=table.weight)


def build_network(class_name: str, config: Mapping[str, Any]) -> nn.Module:
    """The network of a configuration that `checked_config` accepted (a UNet2DModel with num_class_embeds
    takes class weights, see WeightedClassEmbedding)."""
    network = network_class(class_name)(**config)
    embedding = getattr(network, "class_embedding", None)
    if config.get(CLASS_EMBEDS) is not None and isinstance(embedding, nn.Embedding):
        network.class_embedding = weighted_class_embedding(embedding)
    return network


def studio_unet_config(
    resolution: int, channels: int, width: int, attention: bool, class_count: int = 0
) -> dict[str, Any]:
    """The UNet2DModel Studio trains at `resolution`: levels down to 4 px (six at most), one residual
    block per level, self-attention in the middle when asked (DDPM's layout, sized for a CPU); a model
    of `class_count` classes has their embeddings plus the "no class" one (see the module docstring)."""
    levels = min(len(CHANNEL_MULTIPLIERS), int(math.log2(resolution // LOWEST_RESOLUTION)) + 1)
    widths = [width * multiplier for multiplier in CHANNEL_MULTIPLIERS[:levels]]
    return {
        "sample_size": resolution,
        "in_channels": channels,
        "out_channels": channels,
        "down_block_types": ["DownBlock2D"] * levels,
        "up_block_types": ["UpBlock2D"] * levels,
        "block_out_channels": widths,
        "layers_per_block": 1,
        "norm_num_groups": math.gcd(8, width),
        "attention_head_dim": None,  # one head, as in DDPM
        "add_attention": attention,
        "time_embedding_type": "positional",
    } | ({CLASS_EMBEDS: class_count + 1} if class_count > 0 else {})


class Denoiser(nn.Module):
    """eps_theta(x_t, t) over a UNet2DModel: returns the tensor where diffusers returns an output object.

    With `channels_last`, the network's weights and its input are laid out NHWC: oneDNN's (and cuDNN's)
    convolutions run 1.4x faster that way on this CPU for the same numbers to float rounding (measured
    on google/ddpm-cifar10-32's U-Net, batch 8: 0.36 s a call against 0.50 s).
    """

    def __init__(self, unet: nn.Module, channels_last: bool = False) -> None:
        super().__init__()
        self.unet = unet
        self.channels_last = channels_last
        if channels_last:
            unet.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch documents it

    def forward(
        self, sample: torch.Tensor, timestep: torch.Tensor, class_weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The network's output for [N, C, H, W] samples and [N] timesteps (and, for a conditional U-Net,
        [N, K] class weights)."""
        if self.channels_last:
            sample = sample.contiguous(memory_format=torch.channels_last)
            return self.unet(sample, timestep, class_labels=class_weights).sample.contiguous()
        return self.unet(sample, timestep, class_labels=class_weights).sample
