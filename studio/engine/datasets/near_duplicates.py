"""Near-duplicates inside a dataset at import, before any encoder exists: a perceptual measure.

Each image becomes a small blurred grey thumbnail (16x16, its own mean subtracted, unit length), and
two images whose thumbnails are closer than THRESHOLD in cosine distance (1 - correlation) are reported
as a pair. For images of 32 px and more, a one-pixel shift or a JPEG re-save of a picture falls below
it; two different digits of one class do not, as a rule (tests/engine/test_import_near_duplicates.py).
Colour is ignored (a recoloured copy is a near-duplicate). Nothing is dropped: the user decides.

The search is numpy blocks over all pairs (as studio.engine.embedding.analysis does for embeddings; that
module is not imported here because the embedding package already depends on this one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

SIDE = 16  # thumbnail side: coarse enough to ignore a pixel's shift and JPEG noise, fine enough for shapes
# Measured on the 1,797 UCI digits imported at 32 px: a one-pixel shift (any direction) reaches at most
# 0.055 (0.014 at 64 px), a JPEG re-save at quality 50 0.0001; two digits of the same class are 0.18
# apart at the median, and 6.5% of such pairs fall below 0.06 (at their native 8x8 many writers' digits
# differ less than a quarter-pixel shift does: those pairs are reported, as near-identical they are).
THRESHOLD = 0.06
MAX_IMAGES = 15_000  # the all-pairs search took 3 s for 15,000 (5.5 s for 20,000) on the shared 2 cores
MAX_PAIRS_KEPT = 1000  # pairs listed in the report (closest first); the count covers all of them
FLAT_LEVELS = 0.5  # thumbnails varying less than this (grey levels, standard deviation) count as flat
BLOCK = 2048  # query rows per block: bounds memory to BLOCK x N floats
_GREY = np.array([0.299, 0.587, 0.114], np.float32)
_SMOOTH = np.array([0.25, 0.5, 0.25], np.float32)  # a 3-tap binomial blur, applied along each axis


def signatures(images: np.ndarray) -> np.ndarray:
    """uint8 N x S x S x C images to float32 N x SIDE^2 unit vectors (zeros for flat images)."""
    count = len(images)
    if count == 0:
        return np.zeros((0, SIDE * SIDE), np.float32)
    # Pillow's area average in C: faster than numpy's strided means at every size measured (8-512 px).
    small = np.stack([_resized(image) for image in images]).astype(np.float32)
    grey = small[..., 0] if small.shape[-1] == 1 else small[..., :3] @ _GREY
    blurred = _blur(_blur(grey, axis=1), axis=2).reshape(count, SIDE * SIDE)
    centred = blurred - blurred.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1, keepdims=True)
    # A flat image has no pattern to compare: a zero vector, 1 from everything, never in a pair.
    flat = FLAT_LEVELS * SIDE  # the norm of SIDE^2 values whose standard deviation is FLAT_LEVELS
    return np.where(norms > flat, centred / np.maximum(norms, flat), 0.0).astype(np.float32)


def _resized(image: np.ndarray) -> np.ndarray:
    """One uint8 HWC image at SIDE x SIDE (area average down, bilinear up), still HWC."""
    picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    method = Image.Resampling.BOX if image.shape[0] > SIDE else Image.Resampling.BILINEAR
    return np.asarray(picture.resize((SIDE, SIDE), method)).reshape(SIDE, SIDE, -1)


def _blur(values: np.ndarray, axis: int) -> np.ndarray:
    """The 3-tap blur along one axis, edges repeated."""
    last = values.shape[axis] - 1
    before = np.take(values, np.r_[0, np.arange(last)], axis=axis)
    after = np.take(values, np.r_[np.arange(1, last + 1), last], axis=axis)
    return _SMOOTH[0] * before + _SMOOTH[1] * values + _SMOOTH[2] * after


@dataclass
class NearDuplicates:
    """What the check found: every pair's count, the closest pairs (row indices) and why it was skipped."""

    checked: bool
    count: int = 0
    pairs: list[tuple[int, int, float]] = field(default_factory=list)
    note: str = ""

    def summary(self) -> dict[str, Any]:
        """How the check ran, for the report: whether it ran, the rule and a note."""
        return {
            "checked": self.checked,
            "threshold": THRESHOLD,
            "measure": f"cosine distance of {SIDE}x{SIDE} blurred grey thumbnails, mean removed",
            "note": self.note,
        }

    def listed(self, sources: list[str]) -> list[dict[str, Any]]:
        """The kept pairs, closest first, named by their source files."""
        return [
            {"first": sources[first], "second": sources[second], "distance": round(distance, 4)}
            for first, second, distance in self.pairs
        ]


def skipped_check(count: int) -> NearDuplicates:
    """The result for a dataset too large to check."""
    return NearDuplicates(
        False,
        note=f"not checked: {count:,} images is above the {MAX_IMAGES:,} the all-pairs check handles in a few seconds",
    )


def find_pairs(
    vectors: np.ndarray,
    threshold: float = THRESHOLD,
    keep: int = MAX_PAIRS_KEPT,
    check: Callable[[], None] | None = None,
) -> NearDuplicates:
    """Every pair of rows closer than `threshold`: their count and the `keep` closest, closest first.

    `check` runs between blocks (the import's cancel check).
    """
    kept_pairs = np.zeros((0, 2), np.int64)
    kept_distances = np.zeros(0, np.float32)
    count = 0
    for start in range(0, len(vectors), BLOCK):
        if check is not None:
            check()
        block = vectors[start : start + BLOCK]
        # Only columns from `start` on: each pair is seen once, from its lower row.
        distances = np.float32(1.0) - block @ vectors[start:].T
        rows, columns = np.nonzero(distances < threshold)
        upper = columns > rows
        rows, columns = rows[upper], columns[upper]
        count += len(rows)
        if len(rows) == 0:
            continue
        found = np.maximum(distances[rows, columns], 0.0)
        kept_pairs = np.concatenate([kept_pairs, np.stack([rows + start, columns + start], axis=1)])
        kept_distances = np.concatenate([kept_distances, found])
        if len(kept_distances) > keep:
            # Keep only the closest `keep` so a set of near-identical images cannot fill the memory.
            chosen = np.argpartition(kept_distances, keep - 1)[:keep]
            kept_pairs, kept_distances = kept_pairs[chosen], kept_distances[chosen]
    order = np.lexsort((kept_pairs[:, 1], kept_pairs[:, 0], kept_distances))  # closest first, then by rows
    pairs = [(int(kept_pairs[i, 0]), int(kept_pairs[i, 1]), float(kept_distances[i])) for i in order]
    note = "" if count <= keep else f"the {keep:,} closest of {count:,} pairs are listed"
    return NearDuplicates(True, count, pairs, note)
