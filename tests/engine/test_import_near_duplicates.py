"""Near-duplicates inside a dataset at import: what falls below the threshold and what does not, the
report stored with the dataset, the CLI's lines, the size cap, and that nothing is dropped."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.cli import main
from studio.engine.datasets import importer, near_duplicates
from studio.engine.datasets.importer import ImportResult, import_dataset
from studio.engine.datasets.near_duplicates import THRESHOLD, find_pairs, signatures
from studio.engine.datasets.samples import digits_images
from studio.engine.datasets.storage import get_dataset
from studio.engine.jobs import Progress, run_job
from studio.store.database import Store
from tests.images import noise, save, solid

SIZE = 32


def digits(size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """The UCI digits at `size` px (bicubic, as the digits sample makes them) and their labels."""
    pictures, labels = [], []
    for image, label in digits_images():
        pictures.append(np.asarray(image.resize((size, size), Image.Resampling.BICUBIC), np.uint8))
        labels.append(int(label))
    return np.stack(pictures)[..., None], np.array(labels)


def shifted(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Each picture moved by (dy, dx) pixels over a black background (what falls off the edge is lost)."""
    out = np.zeros_like(images)
    size = images.shape[1]
    target = (slice(max(dy, 0), size + min(dy, 0)), slice(max(dx, 0), size + min(dx, 0)))
    source = (slice(max(-dy, 0), size + min(-dy, 0)), slice(max(-dx, 0), size + min(-dx, 0)))
    out[:, target[0], target[1]] = images[:, source[0], source[1]]
    return out


def jpeg(picture: np.ndarray, quality: int = 75) -> np.ndarray:
    """The picture after a JPEG save and load."""
    buffer = io.BytesIO()
    Image.fromarray(picture[..., 0]).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer), np.uint8)[..., None]


def pair_distances(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Distance between row i of each set, row by row."""
    return 1.0 - np.sum(signatures(first) * signatures(second), axis=1)


def run_import(store: Store, folder: Path, name: str = "ds", **options: object) -> ImportResult:
    return run_job(import_dataset(store, [str(folder)], name, size=SIZE, channels=1, workers=1, **options))


# --- the threshold, measured on every digit --------------------------------------------------


@pytest.mark.parametrize("size", [32, 64])
def test_every_one_pixel_shift_and_jpeg_resave_falls_below_the_threshold(size: int) -> None:
    images, _ = digits(size)
    for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
        assert pair_distances(images, shifted(images, dy, dx)).max() < THRESHOLD
    resaved = np.stack([jpeg(picture, quality=50) for picture in images])
    assert pair_distances(images, resaved).max() < THRESHOLD


def test_different_digits_of_one_class_are_not_near_duplicates() -> None:
    """Two different digits of one class are three times the threshold apart at the median; the few
    below it (6.5% measured) are digits that differ less than a pixel's shift at their native 8x8."""
    images, labels = digits()
    vectors = signatures(images)
    same_class = labels[:, None] == labels[None]
    np.fill_diagonal(same_class, False)
    distances = (1.0 - vectors @ vectors.T)[same_class]
    assert np.median(distances) > 2.5 * THRESHOLD
    assert np.mean(distances < THRESHOLD) < 0.1


# --- the import ----------------------------------------------------------------------------


def _digit_folder(folder: Path, others: int = 5) -> dict[str, np.ndarray]:
    """A three, a one-pixel shift of it, a JPEG re-save of it and `others` other threes, as files."""
    images, labels = digits()
    threes = np.flatnonzero(labels == 3)
    pictures = {
        "three.png": images[threes[0]],
        "three-shifted.png": shifted(images[threes[0] : threes[0] + 1], 0, 1)[0],
        "three-resaved.jpg": images[threes[0]],  # saved as JPEG below
        **{f"other-three-{i}.png": images[index] for i, index in enumerate(threes[1 : 1 + others])},
    }
    for name, picture in pictures.items():
        save(Image.fromarray(picture[..., 0]), folder / name, **({"quality": 75} if name.endswith(".jpg") else {}))
    return pictures


def test_import_reports_the_shift_and_the_resave_and_keeps_every_image(store: Store, tmp_path: Path) -> None:
    _digit_folder(tmp_path / "src")
    result = run_import(store, tmp_path / "src")
    assert result.imported == 8  # nothing is dropped: the user decides
    names = {frozenset(Path(pair[end]).name for end in ("first", "second")) for pair in result.near_duplicates}
    copies = {"three.png", "three-shifted.png", "three-resaved.jpg"}
    assert {pair for pair in names if pair & copies} == {
        frozenset({"three.png", "three-shifted.png"}),
        frozenset({"three.png", "three-resaved.jpg"}),
        frozenset({"three-shifted.png", "three-resaved.jpg"}),
    }
    # Other pairs may only join two of the other threes (6.5% of same-class digit pairs are that close).
    others = names - {pair for pair in names if pair & copies}
    assert all(name.startswith("other-three-") for pair in others for name in pair)
    assert result.near_duplicate_count == len(names) == len(result.near_duplicates)
    distances = [pair["distance"] for pair in result.near_duplicates]
    assert distances == sorted(distances) and all(0 <= d < THRESHOLD for d in distances)
    payload = result.as_dict()
    assert payload["near_duplicates"] == result.near_duplicates
    assert payload["near_duplicate_count"] == result.near_duplicate_count
    assert payload["near_duplicate_check"]["checked"] is True
    assert payload["near_duplicate_check"]["threshold"] == THRESHOLD
    report = get_dataset(store, "ds").report  # stored with the dataset
    assert report["near_duplicates"] == result.near_duplicates
    assert report["near_duplicate_count"] == result.near_duplicate_count


def test_exact_copies_are_dropped_not_reported_and_flat_images_never_pair(store: Store, tmp_path: Path) -> None:
    picture = noise(SIZE, SIZE, seed=3, mode="L")
    save(picture, tmp_path / "src" / "one.png")
    save(picture, tmp_path / "src" / "copy.png")  # the same pixels: dropped by content hash
    save(solid(SIZE, SIZE, (10,), mode="L"), tmp_path / "src" / "dark.png")
    save(solid(SIZE, SIZE, (240,), mode="L"), tmp_path / "src" / "light.png")
    for seed in range(4):
        save(noise(SIZE, SIZE, seed=100 + seed, mode="L"), tmp_path / "src" / f"noise{seed}.png")
    result = run_import(store, tmp_path / "src")
    assert (result.imported, result.duplicates) == (7, 1)
    assert (result.near_duplicates, result.near_duplicate_count) == ([], 0)


def test_the_check_is_skipped_above_its_size_and_says_so(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _digit_folder(tmp_path / "src")
    monkeypatch.setattr(importer, "NEAR_DUPLICATE_LIMIT", 5)
    result = run_import(store, tmp_path / "src")
    assert result.imported == 8
    assert (result.near_duplicates, result.near_duplicate_count) == ([], None)
    check = result.as_dict()["near_duplicate_check"]
    assert check["checked"] is False and "not checked: 8 images" in check["note"]


def test_the_check_reports_progress_before_writing(store: Store, tmp_path: Path) -> None:
    _digit_folder(tmp_path / "src")
    events = list(import_dataset(store, [str(tmp_path / "src")], "ds", size=SIZE, channels=1, workers=1))
    stages = [event.stage for event in events if isinstance(event, Progress)]
    assert stages.index("near-duplicates") > stages.index("decoding")
    assert stages.index("near-duplicates") < stages.index("writing")


# --- the search --------------------------------------------------------------------------


def test_the_list_is_capped_at_the_closest_pairs_and_the_count_is_complete() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(1, 16)).astype(np.float32)
    rows = base + 0.01 * rng.normal(size=(40, 16)).astype(np.float32)  # 40 near-identical rows: 780 pairs
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    everything = find_pairs(rows, keep=10_000)
    capped = find_pairs(rows, keep=25)
    assert everything.count == capped.count == 40 * 39 // 2
    assert len(capped.pairs) == 25 and "25 closest of 780" in capped.note
    assert [pair[2] for pair in capped.pairs] == sorted(pair[2] for pair in everything.pairs)[:25]
    assert all(first < second for first, second, _ in everything.pairs)


def test_blocks_see_every_pair_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(near_duplicates, "BLOCK", 3)  # pairs across and inside blocks
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(10, 8)).astype(np.float32)
    rows = np.concatenate([rows, rows[[0, 4, 9]] + 1e-3])  # three twins, in other blocks
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    found = find_pairs(rows)
    assert sorted((first, second) for first, second, _ in found.pairs) == [(0, 10), (4, 11), (9, 12)]


def test_odd_sizes_and_colour_images_get_signatures() -> None:
    rng = np.random.default_rng(2)
    for size, channels in ((8, 1), (24, 3), (48, 3), (17, 1)):
        images = rng.integers(0, 256, (3, size, size, channels), dtype=np.uint8)
        vectors = signatures(images)
        assert vectors.shape == (3, 256) and vectors.dtype == np.float32
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


# --- the CLI -----------------------------------------------------------------------------


def test_cli_import_says_how_many_pairs_and_show_lists_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _digit_folder(tmp_path / "src", others=1)  # that other three is 0.14 from the first
    assert main(["datasets", "import", str(tmp_path / "src"), "--name", "ds", "--size", "32", "--channels", "1"]) == 0
    out = capsys.readouterr().out
    assert "imported 4 images" in out
    assert "3 near-duplicate pairs; see `studio datasets show ds --json`" in out
    assert main(["datasets", "show", "ds"]) == 0
    out = capsys.readouterr().out
    assert "3 pairs closer than" in out and "three-shifted.png" in out
    assert main(["datasets", "show", "ds", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["import"]["near_duplicate_count"] == 3 and len(payload["import"]["near_duplicates"]) == 3
