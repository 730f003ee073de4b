"""Embedding images with an encoder's ONNX file (torch-free: the gallery's background worker and the
CLI's queries need only onnxruntime), and opening an encoder's folder safely."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from studio.engine.embedding.preprocess import to_input
from studio.engine.runtime.providers import open_session
from studio.errors import StudioError

ONNX_FILE = "encoder.onnx"
WEIGHTS_FILE = "encoder.safetensors"
CONFIG_FILE = "config.json"
STATE_FILE = "training.safetensors"  # a stopped training's weights, optimiser and step, in one atomic file
BATCH = 256  # images per ONNX call: large enough to keep the CPU busy, small enough for any memory


def dataset_fingerprint(content_hashes: Iterable[str]) -> str:
    """A dataset's identity for its encoder: sha256 over its images' content hashes in order."""
    digest = hashlib.sha256()
    for content_hash in content_hashes:
        digest.update(content_hash.encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class EncoderConfig:
    """What an encoder folder's config.json says."""

    dataset: str
    fingerprint: str
    input_size: int
    channels: int
    dims: int
    settings: dict[str, Any]

    @classmethod
    def read(cls, folder: Path) -> EncoderConfig:
        """The config of an encoder folder; a clear error when it is missing or damaged."""
        try:
            raw = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
            return cls(
                str(raw["dataset"]),
                str(raw["fingerprint"]),
                int(raw["input_size"]),
                int(raw["channels"]),
                int(raw["dims"]),
                dict(raw["settings"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise StudioError(
                f"the encoder in {folder.name} is damaged ({type(error).__name__}): train it again"
            ) from None


class Embedder:
    """An encoder's ONNX session: uint8 NHWC images in, unit vectors (float32 N x dims) out."""

    def __init__(self, folder: Path, expected_fingerprint: str | None = None, provider: str = "cpu") -> None:
        self.config = EncoderConfig.read(folder)
        if expected_fingerprint is not None and self.config.fingerprint != expected_fingerprint:
            raise StudioError(
                f"the encoder in {folder.name} was trained on another dataset ('{self.config.dataset}' as it was "
                "then): train one for this dataset with `studio embed train`"
            )
        path = folder / ONNX_FILE
        if not path.is_file():
            raise StudioError(f"the encoder in {folder.name} has no {ONNX_FILE}: train it again")
        self.session, self.provider = open_session(path, provider)
        self.input_name = self.session.get_inputs()[0].name

    @property
    def dims(self) -> int:
        """Length of each embedding."""
        return self.config.dims

    def embed(self, images: np.ndarray) -> np.ndarray:
        """Embeddings of uint8 NHWC images (any size; 1 or 3 channels)."""
        out = np.zeros((len(images), self.dims), np.float32)
        for start in range(0, len(images), BATCH):
            batch = to_input(images[start : start + BATCH], self.config.input_size, self.config.channels)
            out[start : start + len(batch)] = self.session.run(None, {self.input_name: batch})[0]
        return out
