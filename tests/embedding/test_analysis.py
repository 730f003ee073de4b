"""The numpy maths over embeddings, against brute force and known cases."""

from __future__ import annotations

import numpy as np
import pytest

from studio.engine.embedding import analysis
from studio.engine.embedding.analysis import (
    Thresholds,
    duplicate_groups,
    frechet_distance,
    nearest,
    nearest_other,
    pca_2d,
    precision_recall,
    spacing_thresholds,
)


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_nearest_matches_brute_force_across_blocks(monkeypatch) -> None:
    monkeypatch.setattr(analysis, "BLOCK", 7)  # several blocks, and a partial last one
    rng = np.random.default_rng(0)
    vectors, queries = unit(rng.normal(size=(200, 12))), unit(rng.normal(size=(30, 12)))
    indices, distances = nearest(queries, vectors, 5)
    brute = 1 - queries @ vectors.T
    np.testing.assert_array_equal(indices, np.argsort(brute, axis=1, kind="stable")[:, :5])
    np.testing.assert_allclose(distances, np.sort(brute, axis=1)[:, :5], atol=1e-6)
    # k above the number of vectors: every vector, sorted.
    assert nearest(queries[:2], vectors[:3], 10)[0].shape == (2, 3)


def test_nearest_other_skips_the_row_itself_even_behind_a_twin() -> None:
    rng = np.random.default_rng(1)
    vectors = unit(rng.normal(size=(20, 6)))
    vectors[5] = vectors[4]  # exact twins: either may come first in the search
    indices, distances = nearest_other(vectors, 2)
    assert all(i not in row for i, row in enumerate(indices))
    assert {indices[4, 0], indices[5, 0]} == {5, 4} and distances[4, 0] < 1e-6


def test_duplicate_groups_link_transitively_and_leave_singletons_out() -> None:
    base = unit(np.eye(4, 8, dtype=np.float32) + 0.01)
    near = unit(base[:1] + np.float32(0.02) * np.eye(1, 8, 5, dtype=np.float32))
    vectors = np.concatenate([base, near, base[2:3]])  # 4 and 0 close; 5 equals 2
    groups = duplicate_groups(vectors, 0.01)
    assert groups == [[0, 4], [2, 5]]
    assert duplicate_groups(vectors, 1e-6) == [[2, 5]]


def test_frechet_distance_is_zero_for_the_same_set_and_grows_with_a_shift() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(size=(500, 6))
    assert abs(frechet_distance(a, a)) < 1e-6
    assert frechet_distance(a, a + 1.0) > frechet_distance(a, a + 0.1) > 0


def test_precision_and_recall_see_fidelity_and_collapse() -> None:
    rng = np.random.default_rng(3)
    real = unit(rng.normal(size=(300, 8)))
    same = unit(rng.normal(size=(300, 8)))
    precision, recall = precision_recall(real, same)
    assert precision > 0.8 and recall > 0.8
    # Collapse: every sample near one real image keeps fidelity and loses diversity.
    collapsed = unit(real[:1] + np.float32(0.01) * rng.normal(size=(300, 8)).astype(np.float32))
    precision, recall = precision_recall(real, collapsed)
    assert precision > 0.9 and recall < 0.1


def test_spacing_rules_are_percentiles_of_distinct_neighbour_distances() -> None:
    rng = np.random.default_rng(4)
    vectors = unit(rng.normal(size=(100, 8)))
    with_twins = np.concatenate([vectors, vectors[:50]])  # a twin is not a neighbour: it is the same image
    brute = 1 - with_twins @ with_twins.T
    nearest_distinct = np.where(brute > 1e-6, brute, np.inf).min(axis=1)
    rules = spacing_thresholds(with_twins)
    assert 0 < rules.duplicate < rules.memorised
    assert rules.memorised == pytest.approx(float(np.percentile(nearest_distinct, 5)), rel=1e-4)
    assert rules.duplicate == pytest.approx(float(np.percentile(nearest_distinct, 1)), rel=1e-4)
    assert spacing_thresholds(vectors[:1]) == Thresholds(0.0, 0.0)


def test_pca_keeps_the_main_axis_and_a_stable_sign() -> None:
    rng = np.random.default_rng(5)
    points = np.zeros((200, 5))
    points[:, 2] = rng.normal(size=200) * 10
    points[:, 4] = rng.normal(size=200)
    mapped = pca_2d(points)
    assert mapped.shape == (200, 2)
    assert abs(np.corrcoef(mapped[:, 0], points[:, 2])[0, 1]) > 0.99
    np.testing.assert_allclose(pca_2d(points), mapped)
    np.testing.assert_allclose(pca_2d(-points)[:, 0], -mapped[:, 0], atol=1e-4)  # the data flips, the axis does not
    assert pca_2d(points[:1]).shape == (1, 2)
