"""Reproduce from a PNG alone, curated exports, gallery to dataset, check/repair, backup and restore."""

from __future__ import annotations

import json
import os
import sqlite3
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from sqlalchemy import update

from studio.engine.curation import check_gallery, export_selection, gallery_to_dataset, reproduce
from studio.engine.datasets.storage import get_dataset, load_images, load_labels
from studio.engine.export import export_model
from studio.engine.generation import EndpointRef, generate, inpaint, interpolate
from studio.engine.jobs import run_job
from studio.engine.thumbnails import THUMBNAIL_SIZE, thumbnail_path
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.engine.untrusted.png import read_png_metadata
from studio.errors import StudioError
from studio.store.database import Store, backup_to, open_store, restore_database
from studio.store.gallery import GalleryFilter, GalleryRepository
from studio.store.tables import Model
from tests.engine.conftest import TINY


def _train(store: Store, family: str, name: str | None = None) -> str:
    name = name or family
    run_job(
        train(
            store, TrainOptions(name, family=family, dataset="digits", steps=3, settings=TINY[family], preview_every=0)
        )
    )
    return name


def _mask(tmp_path: Path) -> Path:
    mask = np.zeros((8, 8), np.uint8)
    mask[4:] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    return tmp_path / "mask.png"


def test_reproduce_every_family_and_operation(digits8: Store, tmp_path: Path) -> None:
    made: list[str] = []
    for family in ("gan", "vae", "pixelcnn", "diffusion"):
        _train(digits8, family)
        made += [item["path"] for item in run_job(generate(digits8, family, 2, seed=4)).items]
        if family != "pixelcnn":
            made += [
                item["path"]
                for item in run_job(
                    interpolate(digits8, family, EndpointRef(seed=1), EndpointRef(seed=2), frames=3)
                ).items
            ][1:2]
        if family != "gan":
            made += [
                item["path"]
                for item in run_job(
                    inpaint(digits8, family, made[0] if family == "gan" else made[-2], _mask(tmp_path), count=1, seed=3)
                ).items
            ]
    # An interpolation between an item (a seed of this model) and a file (encoded by the VAE, which is
    # conditional on the digits: a file end is encoded as the class it is given).
    vae_items = GalleryRepository(digits8).query(GalleryFilter(model="vae", operation="sample")).items
    file_end = EndpointRef(file=Path(made[0]), class_name="3")
    made += [
        item["path"]
        for item in run_job(interpolate(digits8, "vae", EndpointRef(item=vae_items[0].id), file_end, frames=3)).items
    ][1:2]
    # And through ONNX: reproduced on the backend that made it.
    run_job(export_model(digits8, "gan"))
    made += [item["path"] for item in run_job(generate(digits8, "gan", 1, seed=9, backend="onnx")).items]
    for path in made:
        result = reproduce(digits8, path)
        assert result.match and result.max_difference == 0, (path, result)
    assert reproduce(digits8, made[-1]).backend == "onnx"
    assert reproduce(digits8, made[-1], backend="torch").match  # the other backend agrees too


def test_reproduce_refuses_files_it_cannot_trust(digits8: Store, tmp_path: Path) -> None:
    _train(digits8, "gan")
    path = Path(run_job(generate(digits8, "gan", 1, seed=1)).items[0]["path"])
    plain = tmp_path / "plain.png"
    Image.new("L", (8, 8)).save(plain)
    with pytest.raises(StudioError, match="carries no Studio metadata"):
        reproduce(digits8, plain)
    info = PngInfo()
    info.add_text("studio", "{not json")
    Image.new("L", (8, 8)).save(tmp_path / "bad.png", pnginfo=info)
    with pytest.raises(StudioError, match="malformed Studio metadata"):
        reproduce(digits8, tmp_path / "bad.png")
    metadata = json.loads(Image.open(path).text["studio"])
    info = PngInfo()
    info.add_text("studio", json.dumps({**metadata, "model": "stranger"}))
    Image.open(path).save(tmp_path / "stranger.png", pnginfo=info)
    with pytest.raises(StudioError, match="model 'stranger', which is not in this library"):
        reproduce(digits8, tmp_path / "stranger.png")
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(StudioError, match="not a readable image"):
        reproduce(digits8, tmp_path / "text.png")
    run_job(train(digits8, TrainOptions("gan", resume=True, steps=4)))  # other weights now
    with pytest.raises(StudioError, match="made by other weights of 'gan'"):
        reproduce(digits8, path)


def test_curated_export_to_a_folder_and_a_zip(digits8: Store, tmp_path: Path) -> None:
    _train(digits8, "vae")
    items = run_job(generate(digits8, "vae", 4, seed=0)).items
    repo = GalleryRepository(digits8)
    repo.rate([items[0]["id"], items[2]["id"]], 4)
    repo.tag([items[0]["id"]], "best")
    result = run_job(export_selection(digits8, tmp_path / "picked", GalleryFilter(min_rating=4)))
    assert result.count == 2
    manifest = json.loads((tmp_path / "picked" / "manifest.json").read_text())
    assert {entry["id"] for entry in manifest["items"]} == {items[0]["id"], items[2]["id"]}
    assert manifest["filters"] == {"min_rating": 4}
    first = next(entry for entry in manifest["items"] if entry["id"] == items[0]["id"])
    assert first["rating"] == 4 and first["tags"] == ["best"] and first["params"]["temperature"] == 1.0
    # The copy gains XMP (--xmp embed, the default); its pixels and Studio metadata are the original's.
    copied, original = read_png_metadata(tmp_path / "picked" / first["file"]), read_png_metadata(Path(items[0]["path"]))
    assert copied.values == original.values and np.array_equal(copied.pixels, original.pixels)
    run_job(export_selection(digits8, tmp_path / "all.zip", GalleryFilter(model="vae"), as_zip=True))
    with zipfile.ZipFile(tmp_path / "all.zip") as archive:
        assert len(archive.namelist()) == 5 and "manifest.json" in archive.namelist()
    with pytest.raises(StudioError, match="already exists"):
        run_job(export_selection(digits8, tmp_path / "picked"))
    with pytest.raises(StudioError, match="is not a folder"):
        run_job(export_selection(digits8, tmp_path / "all.zip" / "inside"))
    with pytest.raises(StudioError, match="no gallery items match"):
        run_job(export_selection(digits8, tmp_path / "none", GalleryFilter(min_rating=5)))
    assert not (tmp_path / "none").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.zip", "home", "picked"]


def test_gallery_to_dataset_closes_the_curation_loop(digits8: Store) -> None:
    _train(digits8, "gan")
    items = run_job(generate(digits8, "gan", 6, seed=0)).items
    GalleryRepository(digits8).set_flag([i["id"] for i in items[:4]], "pick")
    summary = run_job(gallery_to_dataset(digits8, "picks", GalleryFilter(flag="pick")))
    assert summary.count <= 4 and summary.size == 8 and summary.channels == 1
    images = load_images(digits8, "picks")
    # Labelled by the class each item was made as (the model is conditional on the digits), else by model.
    made_as = {GalleryRepository(digits8).get(i["id"]).class_name or "gan" for i in items[:4]}
    assert images.shape[1:] == (8, 8, 1) and set(load_labels(digits8, "picks")) == made_as
    # Fine-tuning on the curated set works like on any dataset.
    run_job(
        train(
            digits8, TrainOptions("gan-tuned", family="gan", init_from="gan", dataset="picks", steps=2, preview_every=0)
        )
    )
    run_job(add_16px_model(digits8))
    with pytest.raises(StudioError, match="mixes 8x8x1 images"):
        run_job(gallery_to_dataset(digits8, "mixed", GalleryFilter()))
    with pytest.raises(StudioError, match="no dataset named 'mixed'"):
        get_dataset(digits8, "mixed")


def add_16px_model(store: Store):
    """A 16 px dataset, model and image, so a selection can mix sizes."""
    from studio.engine.datasets.samples import add_sample

    run_job(add_sample(store, "digits", name="digits16", size=16))
    run_job(
        train(
            store, TrainOptions("big", family="gan", dataset="digits16", steps=1, settings=TINY["gan"], preview_every=0)
        )
    )
    return generate(store, "big", 1, seed=0)


def test_check_finds_damage_and_repair_fixes_it(digits8: Store) -> None:
    _train(digits8, "gan")
    items = run_job(generate(digits8, "gan", 5, seed=0)).items
    home = digits8.home
    assert all(thumbnail_path(digits8, i["id"]).is_file() for i in items)  # made once, with the image
    assert max(Image.open(thumbnail_path(digits8, items[0]["id"])).size) == THUMBNAIL_SIZE
    assert run_job(check_gallery(digits8)).clean
    # Damage: a lost file, a forgotten row, a partial write, a stale and an orphaned thumbnail.
    Path(items[0]["path"]).unlink()
    with digits8.session() as session:
        session.execute(update(Model).where(Model.name == "gan").values(steps=3))  # unrelated row change
    forgotten = Path(items[1]["path"])
    GalleryRepository(digits8)._writable()
    with digits8.session() as session:
        from studio.store.tables import GalleryItem

        session.delete(session.get(GalleryItem, items[1]["id"]))
    (forgotten.parent / ".x.png.partial").write_bytes(b"half")
    earlier = time.time() - 60
    os.utime(thumbnail_path(digits8, items[2]["id"]), (earlier, earlier))  # the image changed after its thumbnail
    orphan = thumbnail_path(digits8, 99_999)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"orphan")
    report = run_job(check_gallery(digits8))
    assert report.rows_without_files == [items[0]["id"]]
    assert report.files_without_rows == [home.relative(forgotten)]
    assert report.stale_thumbnails == [items[2]["id"]]
    assert len(report.stray_files) == 3  # the partial write, the orphan and the deleted row's thumbnail
    repaired = run_job(check_gallery(digits8, repair=True))
    assert repaired.repaired == {
        "rows_removed": 1,
        "files_registered": 1,
        "thumbnails_made": 1,
        "stray_files_removed": 3,
    }
    after = run_job(check_gallery(digits8))
    assert after.clean, after.as_dict()
    adopted = GalleryRepository(digits8).query(GalleryFilter(seed=1)).items
    assert len(adopted) == 1 and adopted[0].path == home.relative(forgotten) and adopted[0].model == "gan"


def test_backup_and_restore(digits8: Store, tmp_path: Path) -> None:
    _train(digits8, "gan")
    item = run_job(generate(digits8, "gan", 1, seed=0)).items[0]
    repo = GalleryRepository(digits8)
    repo.rate([item["id"]], 2)
    backup = backup_to(digits8.home, tmp_path / "studio-backup.db")
    with pytest.raises(StudioError, match="already exists"):
        backup_to(digits8.home, backup)
    repo.rate([item["id"]], 5)
    digits8.close()
    restored = restore_database(digits8.home, backup)
    assert Path(restored["previous_saved_as"]).is_file()
    store = open_store(digits8.home)
    try:
        assert GalleryRepository(store).get(item["id"]).rating == 2
    finally:
        store.close()
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StudioError, match=r"not a SQLite database|damaged"):
        restore_database(digits8.home, tmp_path / "junk.db")
    newer = tmp_path / "newer.db"
    newer.write_bytes(backup.read_bytes())
    with sqlite3.connect(newer) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StudioError, match="newer Studio"):
        restore_database(digits8.home, newer)
    plain = tmp_path / "plain.db"
    sqlite3.connect(plain).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(StudioError, match="not a Studio database"):
        restore_database(digits8.home, plain)
