"""The maths over embeddings, in numpy (no torch): nearest neighbours, near-duplicate groups, the
memorisation rule, Frechet distance, precision and recall, and a 2-D map.

Embeddings are unit vectors, so the cosine distance 1 - a.b is one matrix product away; distances
are computed in blocks so a million items never need a million-squared matrix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

Array = np.ndarray
BLOCK = 2048  # query rows per block of a distance matrix: bounds memory to BLOCK x N floats


def cosine_distances(queries: Array, vectors: Array) -> Array:
    """1 - q.v for unit vectors: 0 for the same direction, 2 for opposite ones (Q x N)."""
    return np.float32(1.0) - queries @ vectors.T


def nearest(queries: Array, vectors: Array, k: int) -> tuple[Array, Array]:
    """The k nearest rows of `vectors` for each query, nearest first: (indices Q x k, distances Q x k)."""
    k = min(k, len(vectors))
    indices = np.zeros((len(queries), k), np.int64)
    distances = np.zeros((len(queries), k), np.float32)
    for start, block in _blocks(queries):
        block_distances = cosine_distances(block, vectors)
        if k < len(vectors):
            # argpartition is linear in N; only the k chosen are sorted.
            chosen = np.argpartition(block_distances, k - 1, axis=1)[:, :k]
        else:
            chosen = np.broadcast_to(np.arange(len(vectors)), block_distances.shape).copy()
        picked = np.take_along_axis(block_distances, chosen, axis=1)
        order = np.argsort(picked, axis=1, kind="stable")
        indices[start : start + len(block)] = np.take_along_axis(chosen, order, axis=1)
        distances[start : start + len(block)] = np.take_along_axis(picked, order, axis=1)
    return indices, np.maximum(distances, 0.0)


def nearest_other(vectors: Array, k: int = 1) -> tuple[Array, Array]:
    """Each row's k nearest other rows (itself excluded): (indices N x k, distances N x k)."""
    indices, distances = nearest(vectors, vectors, k + 1)
    own = indices == np.arange(len(vectors))[:, None]
    # Drop each row's own column (or its last when an exact twin came first and hid it).
    keep = ~own
    keep[~own.any(axis=1), -1] = False
    return indices[keep].reshape(len(vectors), k), distances[keep].reshape(len(vectors), k)


def _blocks(rows: Array) -> Iterator[tuple[int, Array]]:
    for start in range(0, len(rows), BLOCK):
        yield start, rows[start : start + BLOCK]


def duplicate_groups(vectors: Array, threshold: float) -> list[list[int]]:
    """Groups (of 2 or more row indices) linked by distances at most `threshold` (single linkage)."""
    parent = np.arange(len(vectors))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = int(parent[index])
        return index

    for start, block in _blocks(vectors):
        rows, columns = np.nonzero(cosine_distances(block, vectors) <= threshold)
        for row, column in zip(rows + start, columns, strict=True):
            if column > row:
                first, second = root(int(row)), root(int(column))
                if first != second:
                    parent[max(first, second)] = min(first, second)
    groups: dict[int, list[int]] = {}
    for index in range(len(vectors)):
        groups.setdefault(root(index), []).append(index)
    return sorted((group for group in groups.values() if len(group) > 1), key=lambda group: group[0])


@dataclass(frozen=True)
class Thresholds:
    """An encoder's distance rules, from how far apart its own dataset's images are.

    Each training image's distance to its nearest other (distinct: exact twins say nothing) training
    image is measured; `memorised` is the 5th percentile of those distances (a generated item closer
    to a training image than 95% of training images are to their nearest neighbour copies it), and
    `duplicate` the 1st percentile (two items closer than 99% of the dataset's nearest pairs are
    near-identical).
    """

    duplicate: float
    memorised: float


DUPLICATE_PERCENTILE = 1.0
TWIN_DISTANCE = 1e-6  # exact copies (the same pixels) embed this close
TWINS_LOOKED_PAST = 3
MEMORISED_PERCENTILE = 5.0


def spacing_thresholds(training: Array) -> Thresholds:
    """The rules measured on the training embeddings (zeros when there are too few to measure)."""
    if len(training) < 2:
        return Thresholds(0.0, 0.0)
    # A few neighbours each, so an image with exact twins still finds its nearest distinct one.
    _, distances = nearest_other(training, min(TWINS_LOOKED_PAST + 1, len(training) - 1))
    apart = distances > TWIN_DISTANCE
    has_distinct = apart.any(axis=1)
    distinct = distances[has_distinct, apart[has_distinct].argmax(axis=1)]
    if not len(distinct):
        return Thresholds(0.0, 0.0)
    return Thresholds(
        float(np.percentile(distinct, DUPLICATE_PERCENTILE)), float(np.percentile(distinct, MEMORISED_PERCENTILE))
    )


def frechet_distance(a: Array, b: Array) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2), with symmetric eigendecompositions."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = np.sqrt(np.clip(middle, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)


def _euclidean(queries: Array, vectors: Array) -> Array:
    # For unit vectors |a - b|^2 = 2 (1 - a.b): Kynkaanniemi's balls are in Euclidean distance.
    return np.sqrt(np.maximum(2.0 * cosine_distances(queries, vectors), 0.0))


def _covered(queries: Array, centres: Array, radii: Array) -> Array:
    """Whether each query lies inside at least one ball (centre, radius)."""
    inside = np.zeros(len(queries), bool)
    for start, block in _blocks(queries):
        inside[start : start + len(block)] = (_euclidean(block, centres) <= radii[None]).any(axis=1)
    return inside


def precision_recall(real: Array, generated: Array, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al., 2019) with k-NN balls.

    Precision: share of generated samples inside the real manifold (fidelity). Recall: share of real
    samples inside the generated manifold (diversity: mode collapse shows as low recall).
    """

    def radii(vectors: Array) -> Array:
        _, distances = nearest_other(vectors, k)
        return np.sqrt(np.maximum(2.0 * distances[:, -1], 0.0))

    precision = float(_covered(generated, real, radii(real)).mean())
    recall = float(_covered(real, generated, radii(generated)).mean())
    return precision, recall


def pca_2d(vectors: Array) -> Array:
    """The first two principal components of the rows (N x 2, float32); fewer than 2 rows: zeros."""
    if len(vectors) < 2:
        return np.zeros((len(vectors), 2), np.float32)
    centred = vectors.astype(np.float64) - vectors.mean(0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    # A fixed sign per axis (its largest loading positive) so the map does not flip between refreshes.
    axes = components[:2] * np.sign(components[:2, np.abs(components[:2]).argmax(axis=1)].diagonal())[:, None]
    return (centred @ axes.T).astype(np.float32)
