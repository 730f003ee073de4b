"""What the encoder powers, on real tiny models: similar items, near-duplicates (and keeping the best),
the nearest training image and the memorised flag, scores, exports, the map and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from studio.cli import main
from studio.engine.embedding.queries import (
    duplicates,
    export_embeddings,
    map_points,
    nearest_training,
    reject_duplicates,
    search_duplicates,
    similar,
)
from studio.engine.embedding.scoring import score_model
from studio.engine.jobs import run_job
from studio.errors import StudioError
from studio.store.embeddings import EmbeddingRepository
from studio.store.gallery import GalleryFilter, GalleryRepository
from tests.embedding.conftest import World, build_world


def test_similar_finds_the_identical_item_first_and_never_the_item_itself(world: World) -> None:
    first, twin = world.items[0], world.items[-1]
    found = similar(world.store, first, k=3)
    assert found[0] == {"id": twin, "distance": pytest.approx(0.0, abs=1e-5)}
    assert first not in [i["id"] for i in found] and len(found) == 3
    assert [i["distance"] for i in found] == sorted(i["distance"] for i in found)
    with pytest.raises(StudioError, match="--k must be between 1 and 1000"):
        similar(world.store, first, k=0)


def test_duplicates_group_the_same_seed_and_reject_all_but_the_best(world: World) -> None:
    first, twin = world.items[0], world.items[-1]
    gallery = GalleryRepository(world.store)
    gallery.rate([twin], 4)  # the better rated copy is the one to keep
    groups = [g for g in duplicates(world.store, GalleryFilter(model="g")) if first in g.ids]
    assert len(groups) == 1 and set(groups[0].ids) >= {first, twin} and groups[0].keep == twin
    rejected = reject_duplicates(world.store, groups)
    assert first in rejected and twin not in rejected
    assert gallery.get(first).flag == "reject" and gallery.get(twin).flag != "reject"
    gallery.set_flag([first], "none")
    gallery.rate([twin], 0)
    with pytest.raises(StudioError, match="--threshold must be a cosine distance"):
        duplicates(world.store, None, threshold=3.0)


def test_nearest_training_image_flags_the_copied_one_as_memorised(world: World) -> None:
    copied = nearest_training(world.store, world.copy_id)
    assert copied["position"] == world.copy_position and copied["distance"] < 1e-5 and copied["memorised"]
    assert copied["dataset"] == "digits" and copied["label"] is not None
    generated = nearest_training(world.store, world.items[1])
    assert generated["distance"] > copied["distance"]
    memorised = GalleryRepository(world.store).ids(GalleryFilter(memorised=True))
    assert world.copy_id in memorised
    assert set(memorised) <= {world.copy_id, *world.items}


def test_score_is_recorded_with_fidelity_and_diversity(world: World) -> None:
    record = run_job(score_model(world.store, "g", samples=32))
    assert record.samples == 32 and record.frechet > 0
    assert 0 <= record.precision <= 1 and 0 <= record.recall <= 1
    scores = EmbeddingRepository(world.store).scores(record.model_id)
    assert scores[0] == record
    with pytest.raises(StudioError, match="--samples must be between 16 and 10000"):
        run_job(score_model(world.store, "g", samples=2))


def test_export_writes_vectors_and_an_index(world: World, tmp_path: Path) -> None:
    payload = export_embeddings(world.store, "digits", None, tmp_path / "digits.npy")
    vectors = np.load(tmp_path / "digits.npy")
    index = json.loads((tmp_path / "digits.json").read_text())
    assert vectors.shape == (1797, payload["dims"]) and len(index["rows"]) == 1797
    assert {"dataset_position", "source", "label"} <= set(index["rows"][0])
    mine = export_embeddings(world.store, None, "g", tmp_path / "g.npy")
    assert mine["rows"] == len(world.items) + 1
    with pytest.raises(StudioError, match="outside the data home"):
        export_embeddings(world.store, "digits", None, world.store.home.root / "x.npy")
    with pytest.raises(StudioError, match=r"\.npy"):
        export_embeddings(world.store, "digits", None, tmp_path / "x.csv")


def test_map_places_dataset_and_gallery_points(world: World) -> None:
    mapped = map_points(world.store, "digits")
    kinds = [p["kind"] for p in mapped["points"]]
    assert kinds.count("dataset") == 1797 and kinds.count("gallery") == len(world.items) + 1
    gallery_point = next(p for p in mapped["points"] if p["kind"] == "gallery")
    assert {"id", "model", "rating", "x", "y"} <= set(gallery_point)
    assert len(map_points(world.store, "digits", gallery=False)["points"]) == 1797


def test_items_without_an_encoder_get_a_hint(world: World) -> None:
    from studio.engine.datasets.samples import add_sample
    from studio.engine.generation import generate
    from studio.engine.training import train
    from studio.engine.training_options import TrainOptions

    store = world.store
    run_job(add_sample(store, "shapes", size=16, count=64))
    run_job(
        train(store, TrainOptions("s", family="gan", dataset="shapes", steps=1, settings={"width": 8, "batch_size": 8}))
    )
    item = run_job(generate(store, "s", count=1)).items[0]["id"]
    with pytest.raises(
        StudioError, match=r"dataset 'shapes' has no encoder yet: train one with `studio embed train shapes`"
    ):
        similar(store, item)
    with pytest.raises(StudioError, match="no encoder yet"):
        run_job(score_model(store, "s", samples=16))
    # Near-duplicates over every item leave out the dataset without an encoder instead of refusing ...
    first = GalleryRepository(store).query(GalleryFilter(model="g", seed=0), "oldest", 2).items
    search = search_duplicates(store)
    assert any({entry.id for entry in first} <= set(group.ids) for group in search.groups)
    assert search.left_out == 1 and "dataset 'shapes' has no encoder yet" in search.left_out_reason
    # ... unless no item has one, and then the hint says how to get one.
    with pytest.raises(StudioError, match="no encoder yet"):
        duplicates(store, GalleryFilter(model="s"))


def test_imported_images_are_not_compared(world: World, tmp_path: Path) -> None:
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    from studio.engine.interchange.importer import import_gallery_images

    info = PngInfo()
    info.add_text("parameters", "a digit\nSteps: 20, Sampler: Euler a, Seed: 1, Size: 16x16, Model: g")
    path = tmp_path / "elsewhere.png"
    Image.fromarray(np.full((16, 16), 128, np.uint8)).save(path, pnginfo=info)
    run_job(import_gallery_images(world.store, [path]))
    imported = GalleryRepository(world.store).query(GalleryFilter(operation="import"), "oldest", 1).items[0]
    assert imported.model == "g"  # a namesake of the local model must not borrow its encoder
    with pytest.raises(StudioError, match=r"was imported \(made by"):
        similar(world.store, imported.id)
    assert all(imported.id not in group.ids for group in duplicates(world.store, threshold=2.0))


def cli(capsys: pytest.CaptureFixture[str], home: Path, *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--home", str(home), "--json", "--quiet"])
    out, _ = capsys.readouterr()
    return code, json.loads(out)


def test_cli_commands(world: World, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    home = world.store.home.root
    code, shown = cli(capsys, home, "embed", "show", "digits")
    assert code == 0 and shown["probe_accuracy"] >= 0.9 and shown["pending"] == 0
    code, found = cli(capsys, home, "gallery", "similar", str(world.items[0]), "--k", "2")
    assert code == 0 and len(found["similar"]) == 2
    code, groups = cli(capsys, home, "gallery", "duplicates", "--model", "g")
    assert code == 0 and any(world.items[0] in g["ids"] for g in groups["groups"]) and groups["rejected"] == []
    code, nearest = cli(capsys, home, "gallery", "nearest", f"#{world.copy_id}")
    assert code == 0 and nearest["memorised"] is True
    code, listed = cli(capsys, home, "gallery", "list", "--memorised")
    assert code == 0 and world.copy_id in [i["id"] for i in listed["items"]]
    code, scored = cli(capsys, home, "models", "score", "g", "--samples", "16")
    assert code == 0 and scored["samples"] == 16 and "recall" in scored["reading"]
    code, exported = cli(capsys, home, "embed", "export", "digits", "--to", str(tmp_path / "e.npy"))
    assert code == 0 and exported["rows"] == 1797
    code, mapped = cli(capsys, home, "embed", "map", "digits", "--no-gallery")
    assert code == 0 and len(mapped["points"]) == 1797
    code, error = cli(capsys, home, "embed", "show", "nope")
    assert code != 0 and "no dataset named 'nope'" in error["error"]


def test_embeddings_follow_a_repaired_gallery(tmp_path: Path) -> None:
    from studio.engine.curation import check_gallery

    own = build_world(tmp_path / "home")
    store, gone = own.store, own.items[2]
    before = similar(store, own.items[0], k=20)
    assert gone in [i["id"] for i in before]
    (store.home.root / GalleryRepository(store).get(gone).path).unlink()
    run_job(check_gallery(store, repair=True))
    # The row went, its vector with it (a foreign key), and the cached matrix notices the count.
    after = [i["id"] for i in similar(store, own.items[0], k=20)]
    assert gone not in after and set(after) == {i["id"] for i in before} - {gone}
    encoder = own.encoder.encoder
    assert encoder is not None
    assert gone not in EmbeddingRepository(store).vectors(encoder, "gallery").owners.tolist()
    store.close()
