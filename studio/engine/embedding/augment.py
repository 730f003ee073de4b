"""SimCLR's augmentations, batched on the training device (one random draw per view).

Random resized crop, flip, colour jitter, grey, blur, cutout and noise, each switchable in the
encoder's settings. Everything works on N x C x S x S tensors in [-1, 1], so a step never leaves the
device and costs a few milliseconds beside the network.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name

GREY_WEIGHTS = (0.299, 0.587, 0.114)


def _uniform(count: int, low: float, high: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(count, generator=generator, device=device) * (high - low) + low


def _chance(count: int, probability: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(count, generator=generator, device=device) < probability


def resized_crop(images: torch.Tensor, smallest: float, generator: torch.Generator) -> torch.Tensor:
    """A crop of area share in [smallest, 1] and aspect in [3/4, 4/3], resized back to the full size."""
    count, device = len(images), images.device
    area = _uniform(count, smallest, 1.0, generator, device)
    aspect = torch.exp(_uniform(count, math.log(3 / 4), math.log(4 / 3), generator, device))
    width = torch.sqrt(area * aspect).clamp(max=1.0)
    height = torch.sqrt(area / aspect).clamp(max=1.0)
    # Centres chosen so the crop stays inside the image (coordinates span [-1, 1]).
    centre_x = (torch.rand(count, generator=generator, device=device) * 2 - 1) * (1 - width)
    centre_y = (torch.rand(count, generator=generator, device=device) * 2 - 1) * (1 - height)
    theta = torch.zeros(count, 2, 3, device=device)
    theta[:, 0, 0], theta[:, 0, 2] = width, centre_x
    theta[:, 1, 1], theta[:, 1, 2] = height, centre_y
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Half the images mirrored left-right."""
    chosen = _chance(len(images), 0.5, generator, images.device)
    return torch.where(chosen[:, None, None, None], images.flip(3), images)


def grey(images: torch.Tensor) -> torch.Tensor:
    """Luma of RGB images, kept as three equal channels."""
    weights = torch.tensor(GREY_WEIGHTS, device=images.device).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True).expand_as(images)


def colour_jitter(images: torch.Tensor, generator: torch.Generator, strength: float = 0.4) -> torch.Tensor:
    """Brightness and contrast for every image; saturation and a hue turn for colour ones (80% of views)."""
    count, device = len(images), images.device
    apply = _chance(count, 0.8, generator, device)[:, None, None, None]
    pixels = (images + 1) / 2
    brightness = _uniform(count, 1 - strength, 1 + strength, generator, device).view(-1, 1, 1, 1)
    contrast = _uniform(count, 1 - strength, 1 + strength, generator, device).view(-1, 1, 1, 1)
    jittered = pixels * brightness
    mean = jittered.mean(dim=(1, 2, 3), keepdim=True)
    jittered = (jittered - mean) * contrast + mean
    if images.shape[1] == 3:
        saturation = _uniform(count, 1 - strength, 1 + strength, generator, device).view(-1, 1, 1, 1)
        luma = grey(jittered * 2 - 1) / 2 + 0.5
        jittered = (jittered - luma) * saturation + luma
        # A hue turn as a rotation about the grey axis (the YIQ trick): cheap and exact enough here.
        angle = _uniform(count, -0.1, 0.1, generator, device) * 2 * math.pi
        jittered = _rotate_hue(jittered, angle)
    jittered = jittered.clamp(0, 1) * 2 - 1
    return torch.where(apply, jittered, images)


def _rotate_hue(pixels: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    to_yiq = torch.tensor(
        [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], device=pixels.device
    )
    from_yiq = torch.linalg.inv(to_yiq)
    yiq = torch.einsum("ij,njhw->nihw", to_yiq, pixels)
    cos, sin = torch.cos(angle).view(-1, 1, 1), torch.sin(angle).view(-1, 1, 1)
    i, q = yiq[:, 1], yiq[:, 2]
    yiq = torch.stack([yiq[:, 0], cos * i - sin * q, sin * i + cos * q], dim=1)
    return torch.einsum("ij,njhw->nihw", from_yiq, yiq)


def random_grey(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A fifth of colour views turned grey (grey images pass unchanged)."""
    if images.shape[1] != 3:
        return images
    chosen = _chance(len(images), 0.2, generator, images.device)[:, None, None, None]
    return torch.where(chosen, grey(images), images)


def blur(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Half the views blurred by a Gaussian of sigma 0.1-1.0 pixels per 16 of image side."""
    count, channels, size, device = len(images), images.shape[1], images.shape[-1], images.device
    sigma = _uniform(count, 0.1, 1.0, generator, device) * max(1.0, size / 16)
    radius = max(1, math.ceil(2 * float(sigma.max())))
    offsets = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    kernels = torch.exp(-(offsets[None] ** 2) / (2 * sigma[:, None] ** 2))
    kernels = kernels / kernels.sum(dim=1, keepdim=True)
    # One kernel per image: fold the batch into the channels and convolve separably, grouped.
    folded = images.reshape(1, count * channels, size, size)
    weights = kernels.repeat_interleave(channels, dim=0)
    padded = F.pad(folded, (radius, radius, 0, 0), mode="reflect")
    rows = F.conv2d(padded, weights.view(-1, 1, 1, 2 * radius + 1), groups=count * channels)
    padded = F.pad(rows, (0, 0, radius, radius), mode="reflect")
    blurred = F.conv2d(padded, weights.view(-1, 1, 2 * radius + 1, 1), groups=count * channels)
    chosen = _chance(count, 0.5, generator, device)[:, None, None, None]
    return torch.where(chosen, blurred.view_as(images), images)


def cutout(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A quarter of the views get a grey square of a quarter to a half of the side erased."""
    count, size, device = len(images), images.shape[-1], images.device
    side = (_uniform(count, 0.25, 0.5, generator, device) * size).long().clamp(min=1)
    top = (torch.rand(count, generator=generator, device=device) * (size - side + 1).float()).long()
    left = (torch.rand(count, generator=generator, device=device) * (size - side + 1).float()).long()
    positions = torch.arange(size, device=device)
    rows = (positions[None] >= top[:, None]) & (positions[None] < (top + side)[:, None])
    columns = (positions[None] >= left[:, None]) & (positions[None] < (left + side)[:, None])
    square = rows[:, :, None] & columns[:, None, :]
    chosen = _chance(count, 0.25, generator, device)[:, None, None]
    return images.masked_fill((square & chosen)[:, None], 0.0)


def pixel_noise(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Gaussian noise of standard deviation 0.05 (in [-1, 1] units)."""
    noise = torch.randn(images.shape, generator=generator, device=images.device) * 0.05
    return (images + noise).clamp(-1, 1)


def augment(images: torch.Tensor, settings: Mapping[str, Any], generator: torch.Generator) -> torch.Tensor:
    """One augmented view of each image, with the switched-on augmentations in SimCLR's order."""
    views = images
    if settings["crop"]:
        views = resized_crop(views, float(settings["crop_scale"]), generator)
    if settings["flip"]:
        views = flip(views, generator)
    if settings["colour_jitter"]:
        views = colour_jitter(views, generator)
    if settings["grayscale"]:
        views = random_grey(views, generator)
    if settings["blur"]:
        views = blur(views, generator)
    if settings["cutout"]:
        views = cutout(views, generator)
    if settings["noise"]:
        views = pixel_noise(views, generator)
    return views
