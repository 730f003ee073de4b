"""A small digit classifier trained in the test session: the judge of whether a generated image is the class asked.

Trained (seeded, a second or two) on the shipped 8x8 UCI digits, the images the `digits8` fixture imports;
it never sees a generator's own features. Held-out accuracy is checked, so a judge that cannot tell
digits apart fails the tests that use it instead of passing them.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn

from studio.engine.datasets.samples import digits_images

CHANCE = 0.1  # ten digits


class DigitJudge:
    """A two-layer perceptron over 8x8 grey digits in [0, 1]."""

    def __init__(self, network: nn.Module, accuracy: float) -> None:
        self.network = network
        self.accuracy = accuracy  # on the held-out fifth of the digits

    def classify(self, images: np.ndarray) -> np.ndarray:
        """The digit (0-9) of each uint8 N x 8 x 8 x 1 image."""
        pixels = torch.from_numpy(np.asarray(images, np.float32).reshape(len(images), -1) / 255.0)
        with torch.no_grad():
            return self.network(pixels).argmax(1).numpy()

    def hit_rate(self, images: np.ndarray, requested: np.ndarray | list[int] | int) -> float:
        """The share of images classified as the digit asked for each (one digit for all, or one per image)."""
        wanted = np.broadcast_to(np.asarray(requested), (len(images),))
        return float(np.mean(self.classify(images) == wanted))


@functools.cache
def digit_judge() -> DigitJudge:
    """The judge, trained once per test session (about a second on two cores)."""
    images, labels = zip(
        *((np.asarray(image, np.float32), int(label)) for image, label in digits_images()), strict=True
    )
    x = torch.from_numpy(np.stack(images).reshape(len(images), -1) / 255.0)
    y = torch.tensor(labels)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    cut = int(len(x) * 0.8)
    train, held = order[:cut], order[cut:]
    generator_state = torch.get_rng_state()
    torch.manual_seed(0)
    network = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    torch.set_rng_state(generator_state)  # the tests' own randomness is left as it was
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-2)
    for _ in range(300):
        loss = nn.functional.cross_entropy(network(x[train]), y[train])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = float((network(x[held]).argmax(1) == y[held]).float().mean())
    assert accuracy > 0.9, f"the digit judge reaches only {accuracy:.2f} held-out accuracy"
    return DigitJudge(network.eval(), accuracy)
