"""Class conditioning shared by every family: which classes a model gets, the class each image is made as,
where the class is recorded (gallery row, PNG, --json), and that reproduce and the filters honour it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.engine.curation import gallery_to_dataset, reproduce
from studio.engine.datasets.importer import import_dataset
from studio.engine.datasets.storage import load_labels
from studio.engine.families.conditioning import (
    check_class,
    class_names,
    draw_labels,
    label_indices,
    labels_for,
    one_hot,
    resolve_classes,
)
from studio.engine.generation import EndpointRef, generate, inpaint, interpolate
from studio.engine.jobs import run_job
from studio.engine.library import get_model
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.errors import StudioError
from studio.store.database import Store
from studio.store.gallery import GalleryFilter, GalleryRepository
from tests.engine.conftest import TINY


def test_classes_come_from_labels_in_natural_order() -> None:
    labels = ["10", "2", "cat", "2", "Dog", "1"]
    assert class_names(labels) == ("1", "2", "10", "cat", "Dog")
    assert resolve_classes("auto", labels, "d") == ("1", "2", "10", "cat", "Dog")
    assert resolve_classes("no", labels, "d") == ()
    # auto stays unconditional where conditioning cannot work; yes says why, in one line.
    for labels, why in (
        ([None, None], "no class labels"),
        (["a", "a"], "1 class label"),
        (["a", "b", None], "1 image"),
    ):
        assert resolve_classes("auto", labels, "d") == ()
        with pytest.raises(StudioError, match=why) as refused:
            resolve_classes("yes", labels, "d")
        assert "\n" not in str(refused.value) and "conditional=no" in str(refused.value)


def test_any_class_is_drawn_per_seed_and_does_not_depend_on_the_batch() -> None:
    classes = tuple("0123456789")
    drawn = labels_for(classes, list(range(200)), None)
    assert np.array_equal(drawn[50:60], labels_for(classes, list(range(50, 60)), None))
    assert set(drawn.tolist()) == set(range(10))  # every class turns up
    assert np.array_equal(labels_for(classes, [3, 4], "7"), [7, 7])
    assert np.array_equal(draw_labels([5], 10), draw_labels([5], 10))
    weights = one_hot(np.array([2, -1]), 4)
    assert weights.tolist() == [[0, 0, 1, 0], [0, 0, 0, 0]]  # -1: no class (guidance's unconditional pass)


def test_classes_are_checked_in_one_line() -> None:
    assert check_class(("cat", "dog"), "dog") == "dog"
    assert check_class(("cat", "dog"), None) is None and check_class(("cat", "dog"), "any") is None
    with pytest.raises(StudioError, match="has no class 'cow': choose cat, dog or any"):
        check_class(("cat", "dog"), "cow", "the model")
    with pytest.raises(StudioError, match="is not class-conditional"):
        check_class((), "cat")
    with pytest.raises(StudioError, match="no class label"):
        label_indices(["cat", None], ("cat", "dog"))
    with pytest.raises(StudioError, match="the model does not know \\(cow\\)"):
        label_indices(["cat", "cow"], ("cat", "dog"))


def _train_gan(store: Store, name: str, **settings: object) -> None:
    options = TrainOptions(
        name, family="gan", dataset="digits", steps=2, preview_every=0, settings={**TINY["gan"], **settings}
    )
    run_job(train(store, options))


def test_a_labelled_dataset_gives_a_conditional_model_unless_asked_otherwise(digits8: Store, tmp_path: Path) -> None:
    _train_gan(digits8, "cond")
    assert get_model(digits8, "cond").classes == list("0123456789")
    _train_gan(digits8, "plain", conditional="no")
    assert get_model(digits8, "plain").classes == []
    folder = tmp_path / "unlabelled"
    folder.mkdir()
    for index in range(4):
        Image.fromarray(np.full((8, 8), index * 60, np.uint8)).save(folder / f"{index}.png")
    run_job(import_dataset(digits8, [folder], "nolabels", size=8, channels=1))
    with pytest.raises(StudioError, match="conditional=yes needs a labelled dataset") as refused:
        run_job(
            train(
                digits8,
                TrainOptions("x", family="gan", dataset="nolabels", steps=1, settings={"conditional": "yes"}),
            )
        )
    assert "\n" not in str(refused.value)
    with pytest.raises(StudioError, match="conditional: 'maybe' is not one of auto, yes, no"):
        run_job(
            train(
                digits8, TrainOptions("y", family="gan", dataset="digits", steps=1, settings={"conditional": "maybe"})
            )
        )


def test_the_class_is_recorded_filtered_reproduced_and_kept_by_curation(digits8: Store) -> None:
    _train_gan(digits8, "cond")
    asked = run_job(generate(digits8, "cond", 3, seed=10, options={"class": "7"})).items
    anyclass = run_job(generate(digits8, "cond", 6, seed=20)).items
    assert [item["class"] for item in asked] == ["7"] * 3
    drawn = [str(label) for label in labels_for(tuple("0123456789"), list(range(20, 26)), None)]
    assert [item["class"] for item in anyclass] == drawn
    repository = GalleryRepository(digits8)
    assert {entry.class_name for entry in repository.query(GalleryFilter(class_name="7")).items} == {"7"}
    assert repository.count(GalleryFilter(class_name="7")) == 3 + drawn.count("7")
    assert repository.facets()["class"]["7"] == 3 + drawn.count("7")
    # The PNG says which class; the options keep what was asked (None: any), and reproduce makes it again.
    with Image.open(asked[0]["path"]) as image:
        metadata = json.loads(image.text["studio"])
    assert metadata["class"] == "7" and metadata["params"]["class"] == "7"
    with Image.open(anyclass[0]["path"]) as image:
        metadata = json.loads(image.text["studio"])
    assert metadata["class"] == drawn[0] and metadata["params"]["class"] is None
    for item in (asked[0], anyclass[1]):
        assert reproduce(digits8, item["path"]).match
    # Asking for class 7 with seed 20 gives the image that "any" gave seed 20 when it drew 7.
    seven = drawn.index("7") if "7" in drawn else None
    if seven is not None:
        again = run_job(generate(digits8, "cond", 1, seed=20 + seven, options={"class": "7"})).items[0]
        assert np.array_equal(np.asarray(Image.open(again["path"])), np.asarray(Image.open(anyclass[seven]["path"])))
    with pytest.raises(StudioError, match="has no class 'eleven'"):
        run_job(generate(digits8, "cond", 1, options={"class": "eleven"}))
    # A curated selection becomes a dataset labelled by the classes its items were made as.
    run_job(gallery_to_dataset(digits8, "sevens", GalleryFilter(class_name="7")))
    assert set(load_labels(digits8, "sevens")) == {"7"}


def test_interpolation_walks_between_classes_and_files_frames_by_the_nearer(digits8: Store) -> None:
    _train_gan(digits8, "cond")
    start, end = EndpointRef.parse("5", "1"), EndpointRef.parse("5", "8")
    frames = run_job(interpolate(digits8, "cond", start, end, frames=5)).items
    assert [frame["class"] for frame in frames] == ["1", "1", "1", "8", "8"]  # t = 0.5 leans to the start
    ends = [run_job(generate(digits8, "cond", 1, seed=5, options={"class": c})).items[0] for c in ("1", "8")]
    for frame, made in ((frames[0], ends[0]), (frames[-1], ends[1])):
        assert np.array_equal(np.asarray(Image.open(frame["path"])), np.asarray(Image.open(made["path"])))
    assert reproduce(digits8, frames[2]["path"]).match
    # An item endpoint keeps the class it was made as.
    item = run_job(generate(digits8, "cond", 1, seed=9, options={"class": "4"})).items[0]
    walk = run_job(interpolate(digits8, "cond", EndpointRef.parse(f"#{item['id']}"), EndpointRef.parse("9"), 2))
    assert np.array_equal(np.asarray(Image.open(walk.items[0]["path"])), np.asarray(Image.open(item["path"])))
    with pytest.raises(StudioError, match="has no class 'x'"):
        run_job(interpolate(digits8, "cond", EndpointRef.parse("1", "x"), end, 3))


def test_unconditional_models_refuse_a_class(digits8: Store) -> None:
    _train_gan(digits8, "plain", conditional="no")
    items = run_job(generate(digits8, "plain", 2, seed=0)).items
    assert [item["class"] for item in items] == [None, None]
    with pytest.raises(StudioError, match="is not class-conditional"):
        run_job(generate(digits8, "plain", 1, options={"class": "3"}))


def test_inpainting_an_item_keeps_its_class(digits8: Store) -> None:
    run_job(
        train(
            digits8,
            TrainOptions("vae", family="vae", dataset="digits", steps=2, preview_every=0, settings=TINY["vae"]),
        )
    )
    item = run_job(generate(digits8, "vae", 1, seed=3, options={"class": "6"})).items[0]
    mask = np.zeros((8, 8), bool)
    mask[:4] = True
    done = run_job(inpaint(digits8, "vae", f"#{item['id']}", mask, count=2, seed=0)).items
    assert [made["class"] for made in done] == ["6", "6"]
    other = run_job(inpaint(digits8, "vae", f"#{item['id']}", mask, count=1, seed=0, options={"class": "2"})).items
    assert other[0]["class"] == "2"
    assert reproduce(digits8, done[0]["path"]).match
