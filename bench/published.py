"""What the benchmarks and tests share: the published diffusers configurations Studio measures itself
against, and the timer that lets backends take turns.

The configurations are those models' own config.json files on the Hugging Face Hub (weights are never
downloaded: tests and benchmarks build the networks with random weights and `save_pretrained`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

# google/ddpm-cifar10-32's unet/config.json and scheduler/scheduler_config.json.
CIFAR10_UNET: dict[str, Any] = {
    "act_fn": "silu",
    "attention_head_dim": None,
    "block_out_channels": [128, 256, 256, 256],
    "center_input_sample": False,
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"],
    "downsample_padding": 0,
    "flip_sin_to_cos": False,
    "freq_shift": 1,
    "in_channels": 3,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-06,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 32,
    "time_embedding_type": "positional",
    "up_block_types": ["UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
}
CIFAR10_SCHEDULER: dict[str, Any] = {
    "beta_end": 0.02,
    "beta_schedule": "linear",
    "beta_start": 0.0001,
    "clip_sample": True,
    "num_train_timesteps": 1000,
    "trained_betas": None,
    "variance_type": "fixed_large",
}
# google/ddpm-celebahq-256 (its scheduler: the same betas, the posterior variance).
CELEBAHQ_UNET: dict[str, Any] = {
    **CIFAR10_UNET,
    "block_out_channels": [128, 128, 256, 256, 512, 512],
    "down_block_types": ["DownBlock2D", "DownBlock2D", "DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D"],
    "sample_size": 256,
}
CELEBAHQ_SCHEDULER: dict[str, Any] = {**CIFAR10_SCHEDULER, "variance_type": "fixed_small"}
# CompVis/ldm-celebahq-256: a VQ autoencoder (4 times smaller a side, 3 latent channels) and a U-Net over its
# 64 x 64 latents, sampled with DDIM on scaled-linear betas.
LDM_UNET: dict[str, Any] = {
    "act_fn": "silu",
    "attention_head_dim": 32,
    "block_out_channels": [224, 448, 672, 896],
    "center_input_sample": False,
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 3,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 64,
    "time_embedding_type": "positional",
    "up_block_types": ["AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
}
LDM_VQVAE: dict[str, Any] = {
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512],
    "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
    "in_channels": 3,
    "latent_channels": 3,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "num_vq_embeddings": 8192,
    "out_channels": 3,
    "sample_size": 256,
    "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
}
LDM_SCHEDULER: dict[str, Any] = {
    "beta_end": 0.0195,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.0015,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "trained_betas": None,
}


def best_rates(runs: Mapping[str, Callable[[], object]], images: int, rounds: int) -> dict[str, float]:
    """Images/s of each run's best call after one warm-up call each; the runs take turns within a round,
    so a burst of load elsewhere on the machine hits them alike."""
    for run in runs.values():
        run()
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - started)
    return {name: images / seconds for name, seconds in best.items()}
