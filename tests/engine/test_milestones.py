"""Milestone checkpoints: made while training with a sample grid, pruned by the keep rule, promoted,
and used to reproduce images of older weights; damaged ones refused; the CLI's faces of it all."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from studio.cli import main
from studio.engine.checkpoints import CHECKPOINT_FILE, load_model, weights_hash
from studio.engine.curation import read_metadata, reproduce
from studio.engine.generation import generate
from studio.engine.jobs import run_job
from studio.engine.library import delete_model, get_model, model_folder
from studio.engine.milestones import GRID_SEEDS, MilestoneSaved, kept_steps, promote, prune_milestones
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.errors import NotFoundError, StudioError
from studio.store.database import Store
from studio.store.gallery import GalleryFilter, GalleryRepository
from studio.store.milestones import MilestoneRecord, MilestoneRepository

from .conftest import TINY


def _train(store: Store, name: str, steps: int, every: int = 2, keep: int = 5, **options: Any) -> list[object]:
    events: list[object] = []
    values = {} if options.get("resume") else {"settings": TINY["vae"], "family": "vae", "dataset": "digits"}
    run_job(
        train(
            store,
            TrainOptions(
                name,
                steps=steps,
                preview_every=0,
                checkpoint_every=1000,
                milestone_every=every,
                keep_milestones=keep,
                **{**values, **options},
            ),
        ),
        events.append,
    )
    return events


def _steps(store: Store, name: str) -> list[int]:
    return [record.step for record in MilestoneRepository(store).list(name)]


def _folders(store: Store, name: str) -> list[str]:
    return sorted((p.name for p in (model_folder(store, name) / "milestones").iterdir()), key=int)


def test_training_makes_milestones_with_sample_grids_and_keeps_the_newest(digits8: Store) -> None:
    events = _train(digits8, "m", steps=8, keep=2)
    saved = [e for e in events if isinstance(e, MilestoneSaved)]
    assert [(e.step, e.pruned) for e in saved] == [(2, ()), (4, ()), (6, (2,)), (8, (4,))]
    assert _steps(digits8, "m") == [6, 8]
    assert _folders(digits8, "m") == ["6", "8"]
    gallery = GalleryRepository(digits8)
    # Every grid stays in the gallery (the pruned ones' too): the user may have rated them.
    assert gallery.count(GalleryFilter(operation="checkpoint")) == 4 * len(GRID_SEEDS)
    records = MilestoneRepository(digits8).list("m")
    assert [r.current for r in records] == [False, True]
    assert records[1].weights_hash == get_model(digits8, "m").weights_hash
    for record, event in zip(records, saved[2:], strict=True):
        assert record.weights_hash == event.weights_hash and tuple(record.items) == event.items
        assert [gallery.get(i).seed for i in record.items] == list(GRID_SEEDS)
        metadata = read_metadata(digits8.home.absolute(gallery.get(record.items[0]).path))
        assert metadata["operation"] == "checkpoint" and metadata["weights_hash"] == record.weights_hash
        assert metadata["milestone_step"] == record.step and metadata["steps_trained"] == record.step
        folder = digits8.home.absolute(record.folder)
        assert weights_hash(load_model(folder, with_optimizers=False).family) == record.weights_hash
        assert record.size_bytes == sum(p.stat().st_size for p in folder.iterdir())
    # A milestone's file holds the networks only: smaller than the model's checkpoint with its optimiser.
    assert records[1].size_bytes < (model_folder(digits8, "m") / CHECKPOINT_FILE).stat().st_size


def test_milestones_do_not_change_training_and_runs_resume_and_fine_tune(digits8: Store) -> None:
    _train(digits8, "plain", steps=4, every=0)
    _train(digits8, "marked", steps=4, every=2)
    assert get_model(digits8, "plain").weights_hash == get_model(digits8, "marked").weights_hash
    assert _steps(digits8, "plain") == [] and _steps(digits8, "marked") == [2, 4]
    _train(digits8, "plain", steps=6, every=0, resume=True)
    _train(digits8, "marked", steps=6, every=3, keep=2, resume=True)
    assert get_model(digits8, "plain").weights_hash == get_model(digits8, "marked").weights_hash
    assert _steps(digits8, "marked") == [4, 6]  # the newest two
    _train(digits8, "tuned", steps=2, every=2, init_from="marked", dataset="digits")
    assert _steps(digits8, "tuned") == [2] and get_model(digits8, "tuned").parent == "marked"


def _record(step: int, rating: float | None = None, frechet: float | None = None, current: bool = False) -> Any:
    return MilestoneRecord("m", step, f"{step:064x}", "", 0, datetime(2026, 1, 1), [], rating, 1, frechet, current)


def test_the_keep_rule_keeps_the_newest_the_best_rated_the_best_scored_and_the_current() -> None:
    records = [_record(1, rating=2.0), _record(2, frechet=3.0), _record(3, rating=4.5, frechet=9.0), _record(4)]
    assert kept_steps(records, 1) == {4, 3, 2}
    assert kept_steps(records, 2) == {4, 3, 2}
    assert kept_steps([_record(1, current=True), _record(2), _record(3)], 1) == {1, 3}
    assert kept_steps([_record(1, rating=4.0), _record(2, rating=4.0), _record(3)], 1) == {2, 3}  # later on a tie


def test_a_rated_grid_keeps_its_milestone_while_training_goes_on(digits8: Store) -> None:
    _train(digits8, "m", steps=2, keep=1)
    first = MilestoneRepository(digits8).get("m", 2)
    GalleryRepository(digits8).rate(first.items[:3], 5)
    GalleryRepository(digits8).rate(first.items[3:4], 2)
    rated = MilestoneRepository(digits8).get("m", 2)
    assert rated.mean_rating == pytest.approx(17 / 4) and rated.rated == 4
    events = _train(digits8, "m", steps=6, keep=1, resume=True)
    assert [(e.step, e.pruned) for e in events if isinstance(e, MilestoneSaved)] == [(4, ()), (6, (4,))]
    assert _steps(digits8, "m") == [2, 6] and _folders(digits8, "m") == ["2", "6"]


def test_an_image_of_an_older_checkpoint_reproduces_bit_identically(digits8: Store) -> None:
    _train(digits8, "m", steps=4)
    made = run_job(generate(digits8, "m", count=1, seed=11)).items[0]
    _train(digits8, "m", steps=6, resume=True)  # the model's weights move on: step 4 is a milestone now
    gallery = GalleryRepository(digits8)
    old_grid = MilestoneRepository(digits8).get("m", 2).items[5]
    for item in (made["id"], old_grid):
        result = reproduce(digits8, digits8.home.absolute(gallery.get(item).path))
        assert result.match and result.max_difference == 0 and result.backend == "torch"
    prune_milestones(digits8, "m", keep=0, only={6})  # no milestone holds the weights any more
    with pytest.raises(StudioError, match=r"made by other weights of 'm'.*cannot be reproduced"):
        reproduce(digits8, digits8.home.absolute(gallery.get(made["id"]).path))


def test_promote_makes_a_milestone_the_model_and_keeps_the_replaced_weights(digits8: Store) -> None:
    _train(digits8, "m", steps=5)
    before = get_model(digits8, "m")
    second = MilestoneRepository(digits8).get("m", 2)
    result = run_job(promote(digits8, "m", step=2))
    after = get_model(digits8, "m")
    assert (after.steps, after.weights_hash) == (2, second.weights_hash) != (before.steps, before.weights_hash)
    assert (result.previous_step, result.previous_hash, result.kept_previous) == (5, before.weights_hash, 5)
    assert not result.export_stale  # never exported (an export's state follows the weights hash)
    loaded = load_model(model_folder(digits8, "m"))
    assert weights_hash(loaded.family) == second.weights_hash and loaded.state.step == 2
    assert loaded.config["weights_hash"] == second.weights_hash and loaded.config["steps"] == 2
    # The replaced weights became a milestone with its own grid; the others stay.
    assert _steps(digits8, "m") == [2, 4, 5]
    fifth = MilestoneRepository(digits8).get("m", 5)
    assert fifth.weights_hash == before.weights_hash and len(fifth.items) == len(GRID_SEEDS)
    # A grid item of the current weights reproduces with them.
    path = digits8.home.absolute(GalleryRepository(digits8).get(second.items[0]).path)
    assert reproduce(digits8, path).max_difference == 0
    # Back by a grid item, the rest pruned; training goes on from the promoted step.
    back = run_job(promote(digits8, "m", item=fifth.items[2], prune=True))
    assert back.step == 5 and back.pruned == [2, 4] and back.kept_previous is None
    assert _steps(digits8, "m") == [5] and get_model(digits8, "m").weights_hash == before.weights_hash
    assert _folders(digits8, "m") == ["5"]
    _train(digits8, "m", steps=7, resume=True)
    assert get_model(digits8, "m").steps == 7


def test_a_damaged_or_missing_milestone_is_refused_and_the_weights_kept(digits8: Store) -> None:
    _train(digits8, "m", steps=6)
    checkpoint = model_folder(digits8, "m") / CHECKPOINT_FILE
    original, digest = checkpoint.read_bytes(), get_model(digits8, "m").weights_hash
    milestones = model_folder(digits8, "m") / "milestones"
    damaged = milestones / "2" / CHECKPOINT_FILE
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    with pytest.raises(
        StudioError, match=r"^the milestone at step 2 of 'm' is damaged .*: the current weights are kept$"
    ):
        run_job(promote(digits8, "m", step=2))
    (milestones / "4" / CHECKPOINT_FILE).write_bytes((milestones / "6" / CHECKPOINT_FILE).read_bytes())
    with pytest.raises(StudioError, match=r"step 4 of 'm' is damaged .*no longer match"):
        run_job(promote(digits8, "m", step=4))
    for child in (milestones / "2").iterdir():
        child.unlink()
    (milestones / "2").rmdir()
    with pytest.raises(StudioError, match=r"step 2 of 'm' is missing .*the current weights are kept"):
        run_job(promote(digits8, "m", step=2))
    assert checkpoint.read_bytes() == original and get_model(digits8, "m").weights_hash == digest
    assert get_model(digits8, "m").steps == 6 and _steps(digits8, "m") == [2, 4, 6]
    with pytest.raises(NotFoundError, match="no milestone at step 3"):
        run_job(promote(digits8, "m", step=3))
    with pytest.raises(StudioError, match="not in a milestone's sample grid"):
        run_job(promote(digits8, "m", item=10**6))
    # Deleting the model takes its milestones (rows and folders); their grids stay in the gallery.
    grid = MilestoneRepository(digits8).get("m", 6).items
    delete_model(digits8, "m")
    assert not milestones.exists() and MilestoneRepository(digits8).of_item(grid[0]) is None
    with pytest.raises(NotFoundError):
        MilestoneRepository(digits8).list("m")
    assert GalleryRepository(digits8).get(grid[0]).operation == "checkpoint"


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    code = main([*argv, "--json", "--quiet"])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def test_the_command_line(capsys: pytest.CaptureFixture[str], digits8: Store) -> None:
    tiny = [f"--set={key}={value}" for key, value in TINY["vae"].items()]
    code, _, _ = cli(
        capsys, "train", "--family", "vae", "--dataset", "digits", "--name", "m", "--steps", "6", *tiny,
        "--milestone-every", "2", "--keep-milestones", "2", "--no-score",
    )  # fmt: skip
    assert code == 0
    code, listing, _ = cli(capsys, "models", "milestones", "m")
    assert [m["step"] for m in listing["milestones"]] == [4, 6] and listing["milestones"][1]["current"]
    assert set(listing["milestones"][0]) >= {"weights_hash", "created_at", "mean_rating", "size_bytes", "items"}
    code, page, _ = cli(capsys, "gallery", "list", "--operation", "checkpoint", "--limit", "100")
    assert code == 0 and len(page["items"]) == 3 * len(GRID_SEEDS)
    code, promoted, _ = cli(capsys, "models", "promote", "m", "--step", "4")
    assert code == 0 and promoted["step"] == 4 and promoted["kept_previous"] == 6
    code, _, err = cli(capsys, "models", "promote", "m", "--step", "3")
    assert code == 1 and err.strip().splitlines() == [
        "studio: error: model 'm' has no milestone at step 3 (see `studio models milestones m`)"
    ]
    assert main(["models", "milestones", "m"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["STEP", "WEIGHTS", "CREATED", "RATING", "FRECHET", "SIZE", "ITEMS"]
    assert out.splitlines()[1].startswith("4 *")
