"""Sample quality per family: Frechet distance to held-out digits and classes covered, against a floor.

1. Split the shipped UCI digits (16x16 grey) into a training set (70%) and a held-out set (30%).
2. Train a small CNN classifier on the training set: its penultimate layer is the feature space
   (the generators' own features are never used).
3. For each family, train a Studio model on the training set for a fixed wall-clock budget, sample
   images, and report the Frechet distance between sample features and held-out features, and
   how many of the ten digits the classifier finds among the samples (a class counts when it gets
   at least 2% of them: mode collapse shows here).
4. Floor: the same distance between training-set images and the held-out set (real vs real).
5. The training set is labelled, so every family trains class-conditional (its default, conditional=auto):
   the distance is measured on samples of any class (each seed draws its own), and the class column is
   the share of samples asked for a digit (an equal number for each) that the classifier finds to be
   that digit (target >= 0.8 for diffusion and GAN).
6. Diffusion families are sampled again with DDIM and DPM-Solver++(2M) at 10, 20 and 50 steps, so the
   default sampler and step count is the fastest that keeps the quality.
Usage: python bench/quality.py [--minutes 5] [--samples 500] [--families gan,vae,pixelcnn,gpt,diffusion]
A variant of a family is named FAMILY/LABEL and given its settings with --set, e.g.
`--families diffusion,diffusion/studio --set diffusion/studio.network=studio`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studio.engine.checkpoints import load_model
from studio.engine.datasets.samples import digits_images
from studio.engine.datasets.storage import DatasetWriter
from studio.engine.embedding.analysis import frechet_distance
from studio.engine.families.base import GeneratorFamily
from studio.engine.jobs import run_job
from studio.engine.library import model_folder
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.home import DataHome
from studio.store.database import Store, open_store

SIZE = 16
TARGETS = {"gan": 4.0, "diffusion": 4.0, "latent_diffusion": 4.0, "vae": 10.0, "pixelcnn": 10.0, "gpt": 10.0}
CLASS_TARGETS = {"gan": 0.8, "diffusion": 0.8}  # share of samples of the digit asked for
COVERAGE_SHARE = 0.02
SOLVER_STEPS = (10, 20, 50)
SOLVERS = ("ddim", "dpmpp2m")


def digits_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images, train labels, held-out images, held-out labels), uint8 N x 16 x 16 x 1."""
    images, labels = [], []
    for image, label in digits_images():
        images.append(np.asarray(image.resize((SIZE, SIZE), 3), dtype=np.uint8)[..., None])  # 3: bicubic
        labels.append(int(label))
    x, y = np.stack(images), np.array(labels)
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(len(x) * 0.7)
    return x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]


class DigitClassifier(nn.Module):
    """A small CNN; its 64-d penultimate activations are the feature space."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 16, 64),
            nn.ReLU(),
        )
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits."""
        return self.head(self.features(x))


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1)


def train_classifier(x: np.ndarray, y: np.ndarray, epochs: int = 15) -> DigitClassifier:
    """Adam, light shifts as augmentation; a couple of seconds on a CPU."""
    torch.manual_seed(0)
    shifts = np.random.default_rng(0)  # seeded too: the feature space, and so the floor, repeat run to run
    model = DigitClassifier()
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    data, labels = to_tensor(x), torch.from_numpy(y)
    for _ in range(epochs):
        for batch in torch.randperm(len(data)).split(64):
            shifted = torch.roll(data[batch], shifts=tuple(int(v) for v in shifts.integers(-1, 2, 2)), dims=(2, 3))
            loss = nn.functional.cross_entropy(model(shifted), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


@torch.no_grad()
def features_and_classes(model: DigitClassifier, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features (float64) and predicted classes."""
    x = to_tensor(images)
    feats = model.features(x)
    return feats.double().numpy(), model.head(feats).argmax(1).numpy()


class Scorer:
    """Samples a trained family and scores the samples against the held-out digits."""

    def __init__(self, classifier: DigitClassifier, held: np.ndarray, floor: float, samples: int) -> None:
        self.classifier, self.held, self.floor, self.samples = classifier, held, floor, samples

    def images(self, family: GeneratorFamily, seeds: list[int], options: dict[str, object]) -> np.ndarray:
        """Samples for the seeds in chunks of 250 (what memory holds at 16 px)."""
        chosen = family.sampling_options(options)
        return np.concatenate([family.sample(seeds[s : s + 250], chosen) for s in range(0, len(seeds), 250)])

    def quality(self, family: GeneratorFamily, options: dict[str, object]) -> tuple[float, int, float]:
        """Frechet distance of `samples` images (any class), digits covered, seconds per image."""
        begun = time.perf_counter()
        images = self.images(family, list(range(self.samples)), options)
        per_image = (time.perf_counter() - begun) / len(images)
        features, predicted = features_and_classes(self.classifier, images)
        shares = np.bincount(predicted, minlength=10) / len(predicted)
        return frechet_distance(features, self.held), int((shares >= COVERAGE_SHARE).sum()), per_image

    def as_asked(self, family: GeneratorFamily) -> float:
        """The share of samples asked for a digit (an equal number each) that the classifier finds to be it."""
        per_class = max(1, self.samples // len(family.classes))
        hits = 0
        for index, name in enumerate(family.classes):
            seeds = list(range(10_000 + index * per_class, 10_000 + (index + 1) * per_class))
            _, predicted = features_and_classes(self.classifier, self.images(family, seeds, {"class": name}))
            hits += int((predicted == int(name)).sum())
        return hits / (per_class * len(family.classes))


def make_dataset(store: Store, x: np.ndarray, y: np.ndarray) -> None:
    """The training split as a Studio dataset."""
    writer = DatasetWriter(store, "digits-train", SIZE, 1, origin="bench")
    for index, (image, label) in enumerate(zip(x, y, strict=True)):
        pixels = image.tobytes()
        writer.add(
            pixels,
            hashlib.blake2b(pixels + index.to_bytes(4, "little"), digest_size=16).hexdigest(),
            f"digit#{index}",
            str(label),
        )
    writer.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget per family")
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--families", default="gan,vae,pixelcnn,gpt,diffusion")
    parser.add_argument("--no-solvers", action="store_true", help="skip the diffusion sampler/steps sweep")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FAMILY.KEY=VALUE",
        help="a non-default setting for one family, e.g. pixelcnn.width=32",
    )
    args = parser.parse_args()
    from studio.engine.families.registry import parse_overrides

    overrides: dict[str, list[str]] = {}
    for item in args.set:
        family_name, _, pair = item.partition(".")
        overrides.setdefault(family_name, []).append(pair)
    work = Path(tempfile.mkdtemp(prefix="studio-quality-"))
    store = open_store(DataHome(work / "home"))
    try:
        x_train, y_train, x_held, y_held = digits_split()
        make_dataset(store, x_train, y_train)
        started = time.perf_counter()
        classifier = train_classifier(x_train, y_train)
        held_features, held_predicted = features_and_classes(classifier, x_held)
        accuracy = float((held_predicted == y_held).mean())
        floor_sample = x_train[np.random.default_rng(1).choice(len(x_train), len(x_held), replace=False)]
        floor = frechet_distance(features_and_classes(classifier, floor_sample)[0], held_features)
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; digits 16x16, "
            f"{len(x_train)} train / {len(x_held)} held out; classifier accuracy {accuracy:.3f} "
            f"({time.perf_counter() - started:.0f}s); budget {args.minutes:g} min per family"
        )
        print(f"floor (real vs real, {len(x_held)} images): FD {floor:.2f}")
        print(
            f"{'family':<10} {'steps':>7} {'FD':>9} {'x floor':>8} {'target':>7} {'classes':>8} {'s/image':>8} "
            f"{'as asked':>8}  verdict"
        )
        sweeps: list[str] = []
        for entry in args.families.split(","):
            family = entry.split("/")[0]
            model_name = entry.replace("/", "-")
            settings = parse_overrides(family, overrides.get(entry, []))
            result = run_job(
                train(
                    store,
                    TrainOptions(
                        model_name,
                        family=family,
                        dataset="digits-train",
                        minutes=args.minutes,
                        seed=0,
                        checkpoint_every=10**9,
                        milestone_every=0,  # the budget goes to training, as in the figures before milestones existed
                        preview_every=0,
                        settings=settings,
                    ),
                )
            )
            loaded = load_model(model_folder(store, model_name), with_optimizers=False)
            family_model = loaded.family
            family_model.train_mode(False)
            score = Scorer(classifier, held_features, floor, args.samples)
            distance, covered, per_image = score.quality(family_model, {})
            ratio = distance / floor
            accuracy_asked = score.as_asked(family_model) if family_model.conditional else None
            met = ratio <= TARGETS[family] and covered == 10
            if accuracy_asked is not None and family in CLASS_TARGETS:
                met = met and accuracy_asked >= CLASS_TARGETS[family]
            asked = "-" if accuracy_asked is None else f"{accuracy_asked:.2f}"
            print(
                f"{entry:<10} {result.steps:>7} {distance:>9.2f} {ratio:>7.1f}x {TARGETS[family]:>6.0f}x "
                f"{covered:>6}/10 {per_image:>8.4f} {asked:>8}  {'met' if met else 'NOT met'}",
                flush=True,
            )
            if family in ("diffusion", "latent_diffusion") and not args.no_solvers:
                for solver in SOLVERS:
                    for steps in SOLVER_STEPS:
                        fd, classes, seconds = score.quality(family_model, {"sampler": solver, "steps": steps})
                        sweeps.append(
                            f"{entry:<16} {solver:<8} {steps:>5} {fd:>9.2f} {fd / floor:>7.1f}x {classes:>6}/10 "
                            f"{seconds:>8.4f}"
                        )
        if sweeps:
            header = f"{'sampler sweep':<16} {'sampler':<8} {'steps':>5} {'FD':>9} {'x floor':>8}"
            print(f"\n{header} {'classes':>8} {'s/image':>8}")
            print("\n".join(sweeps))
    finally:
        store.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
