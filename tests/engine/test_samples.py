"""Sample datasets: shipped digits and seeded shapes, no download."""

from __future__ import annotations

import numpy as np
import pytest

from studio.engine.datasets.samples import SHAPE_KINDS, add_sample
from studio.engine.datasets.storage import get_dataset, load_images, load_labels
from studio.engine.jobs import CancelToken, Progress, run_job
from studio.errors import CancelledError, StudioError
from studio.store.database import Store


def test_digits_has_1797_images_in_ten_classes(store: Store) -> None:
    summary = run_job(add_sample(store, "digits", size=16))
    assert (summary.count, summary.channels, summary.size) == (1797, 1, 16)
    assert sorted(summary.class_counts) == [str(d) for d in range(10)]
    assert sum(summary.class_counts.values()) == 1797
    images = np.asarray(load_images(store, "digits"))
    assert images.shape == (1797, 16, 16, 1)
    assert images.max() == 255 and images.min() == 0
    assert images[:, :2, :2].mean() < 10  # white ink on a black background: corners are dark


def test_digits_at_native_size_match_the_source_values(store: Store) -> None:
    run_job(add_sample(store, "digits", size=8))
    first = np.asarray(load_images(store, "digits")[0])[..., 0]
    # First UCI test digit, row 0: 0,0,5,13,9,1,0,0 (values 0..16 scaled to 0..255).
    assert first[0].tolist() == [v * 255 // 16 for v in (0, 0, 5, 13, 9, 1, 0, 0)]
    assert load_labels(store, "digits")[0] == "0"


def test_shapes_are_seeded_and_labelled(store: Store) -> None:
    run_job(add_sample(store, "shapes", name="a", count=50, seed=7, size=16))
    run_job(add_sample(store, "shapes", name="b", count=50, seed=7, size=16))
    run_job(add_sample(store, "shapes", name="c", count=50, seed=8, size=16))
    a, b, c = (np.asarray(load_images(store, n)) for n in "abc")
    assert a.shape == (50, 16, 16, 3)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert set(load_labels(store, "a")) <= set(SHAPE_KINDS)
    assert get_dataset(store, "a").origin == "sample:shapes"


def test_unknown_sample_and_bad_count_are_refused(store: Store) -> None:
    with pytest.raises(StudioError, match="unknown sample 'faces'"):
        run_job(add_sample(store, "faces"))
    with pytest.raises(StudioError, match="invalid count 0"):
        run_job(add_sample(store, "shapes", count=0))


def test_cancelled_sample_leaves_nothing(store: Store) -> None:
    token = CancelToken()
    with pytest.raises(CancelledError):
        for event in add_sample(store, "shapes", count=500, cancel=token):
            if isinstance(event, Progress):
                token.cancel()
    assert list(store.home.staging.iterdir()) == [] and list(store.home.datasets.iterdir()) == []
