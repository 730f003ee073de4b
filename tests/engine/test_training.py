"""The trainer, checkpoints and generation across all four families."""

from __future__ import annotations

import errno
import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from sqlalchemy import select

from studio.engine import checkpoints
from studio.engine.checkpoints import CHECKPOINT_FILE, CheckpointError, DiskFullError, load_model
from studio.engine.datasets.samples import add_sample
from studio.engine.families.registry import (
    describe_families,
    family_class,
    parse_overrides,
    trainable_family_names,
)
from studio.engine.generation import generate
from studio.engine.jobs import CancelToken, Finished, run_job
from studio.engine.library import delete_model, get_model, import_model, list_models, model_folder
from studio.engine.training import CheckpointSaved, TrainingProgress, select_device, train
from studio.engine.training_options import TrainOptions
from studio.errors import AlreadyExistsError, NotFoundError, StudioError
from studio.store.database import Store
from studio.store.gallery import GalleryRepository
from studio.store.tables import Model, TrainingRun
from tests.engine.conftest import TINY


def tiny_train(store: Store, name: str, family: str, steps: int = 4, **options):
    options.setdefault("settings", TINY[family])
    options.setdefault("dataset", "digits")
    options.setdefault("checkpoint_every", 2)
    options.setdefault("preview_every", 0)
    return run_job(train(store, TrainOptions(name, family=family, steps=steps, **options)))


def tensors(store: Store, name: str, prefix: str = "network.") -> dict[str, torch.Tensor]:
    data = load_file(str(model_folder(store, name) / CHECKPOINT_FILE))
    return {k: v for k, v in data.items() if k.startswith(prefix)}


# --- registry -----------------------------------------------------------------------------


def test_registry_describes_every_family() -> None:
    described = {f["name"]: f for f in describe_families()}
    assert set(described) == {"gan", "vae", "pixelcnn", "gpt", "diffusion", "latent_diffusion", "onnx_generator"}
    for entry in described.values():
        assert len(entry["description"]) > 100 and "sample" in entry["capabilities"]
        names = [h["name"] for h in entry["schema"]]
        # The common settings are training settings: an imported-only family has none of them.
        assert (names[:3] == ["batch_size", "hflip", "conditional"]) == entry["trainable"] and len(names) == len(
            set(names)
        )
    assert "encode" in described["vae"]["capabilities"]
    assert "interpolate" not in described["pixelcnn"]["capabilities"]


def test_settings_are_parsed_and_checked() -> None:
    assert parse_overrides("gan", ["latent_dim=16", "hflip=yes", "loss=nonsaturating"]) == {
        "latent_dim": 16,
        "hflip": True,
        "loss": "nonsaturating",
    }
    for bad, message in [
        ("nope=1", "unknown setting 'nope'"),
        ("latent_dim=1", "below the minimum"),
        ("latent_dim=many", "not a valid int"),
        ("loss=wasserstein", "not one of"),
        ("latent_dim", "key=value"),
        ("learning_rate=nan", "not a finite"),
    ]:
        with pytest.raises(StudioError, match=message):
            parse_overrides("gan", [bad])
    with pytest.raises(StudioError, match="unknown family 'flow'"):
        family_class("flow")


# --- every family trains and generates ------------------------------------------------------


@pytest.mark.parametrize("family", trainable_family_names())
def test_each_family_trains_checkpoints_and_generates(digits8: Store, family: str) -> None:
    events: list[object] = []
    result = run_job(
        train(
            digits8,
            TrainOptions(
                f"m-{family}",
                family=family,
                dataset="digits",
                steps=4,
                settings=TINY[family],
                checkpoint_every=2,
                preview_every=2,
                preview_count=4,
            ),
        ),
        events.append,
    )
    assert (result.steps, result.status, result.start_step) == (4, "completed", 0)
    assert result.final_losses and all(np.isfinite(v) for v in result.final_losses.values())
    assert [e.step for e in events if isinstance(e, CheckpointSaved)] == [2, 4]
    assert any(isinstance(e, TrainingProgress) for e in events)
    summary = get_model(digits8, f"m-{family}")
    assert (summary.family, summary.steps, summary.resolution, summary.channels) == (family, 4, 8, 1)
    config = json.loads((model_folder(digits8, f"m-{family}") / "config.json").read_text())
    assert config["steps"] == 4 and config["dataset"] == "digits" and config["weights_hash"] == summary.weights_hash

    made = run_job(generate(digits8, f"m-{family}", count=3, seed=11))
    assert [item["seed"] for item in made.items] == [11, 12, 13]
    first = Path(made.items[0]["path"])
    assert first.is_file() and first.is_relative_to(digits8.home.gallery)
    with Image.open(first) as image:
        meta = json.loads(image.text["studio"])
        assert image.size == (8, 8) and image.mode == "L"
    assert (meta["family"], meta["seed"], meta["model"], meta["backend"]) == (family, 11, f"m-{family}", "torch")
    assert meta["weights_hash"] == summary.weights_hash
    rows = GalleryRepository(digits8).list()
    assert {(r.seed, r.family, r.model) for r in rows} == {(s, family, f"m-{family}") for s in (11, 12, 13)}

    # Same seed, same image: alone or inside a batch with other seeds.
    again = run_job(generate(digits8, f"m-{family}", count=1, seed=12))
    assert np.array_equal(np.asarray(Image.open(made.items[1]["path"])), np.asarray(Image.open(again.items[0]["path"])))


@pytest.mark.parametrize("family", trainable_family_names())
def test_each_family_trains_and_generates_on_colour_shapes(store: Store, family: str) -> None:
    run_job(add_sample(store, "shapes", count=40, size=8))
    result = tiny_train(store, f"colour-{family}", family, dataset="shapes")
    assert result.steps == 4 and get_model(store, f"colour-{family}").channels == 3
    made = run_job(generate(store, f"colour-{family}", count=2, seed=0))
    with Image.open(made.items[0]["path"]) as image:
        assert image.mode == "RGB" and image.size == (8, 8)


# --- resume, cancel, pause ---------------------------------------------------------------


@pytest.mark.parametrize("family", ["gan", "vae"])
def test_resume_continues_exactly_where_it_stopped(digits8: Store, family: str) -> None:
    tiny_train(digits8, "straight", family, steps=8, checkpoint_every=4)
    tiny_train(digits8, "stopped", family, steps=4, checkpoint_every=4)
    result = run_job(train(digits8, TrainOptions("stopped", resume=True, steps=8, checkpoint_every=4, preview_every=0)))
    assert (result.start_step, result.steps) == (4, 8)
    straight, resumed = tensors(digits8, "straight"), tensors(digits8, "stopped")
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight), "resumed weights differ"
    straight_opt, resumed_opt = tensors(digits8, "straight", "optimizer."), tensors(digits8, "stopped", "optimizer.")
    assert all(torch.equal(straight_opt[k], resumed_opt[k]) for k in straight_opt)
    with digits8.sessions() as session:
        runs = session.scalars(
            select(TrainingRun).join(Model).where(Model.name == "stopped").order_by(TrainingRun.id)
        ).all()
    assert [(r.start_step, r.end_step, r.status) for r in runs] == [(0, 4, "completed"), (4, 8, "completed")]


def test_cancel_saves_a_checkpoint_that_resumes(digits8: Store) -> None:
    token = CancelToken()
    job = train(
        digits8,
        TrainOptions(
            "c",
            family="vae",
            dataset="digits",
            steps=1000,
            settings=TINY["vae"],
            checkpoint_every=1000,
            preview_every=0,
        ),
        cancel=token,
    )
    result = None
    for event in job:
        token.cancel()  # at the first event: the run has started and made at least one step
        if isinstance(event, Finished):
            result = event.result
    assert result is not None and result.status == "cancelled" and 0 < result.steps < 1000
    assert get_model(digits8, "c").steps == result.steps
    resumed = run_job(train(digits8, TrainOptions("c", resume=True, steps=result.steps + 2, preview_every=0)))
    assert resumed.start_step == result.steps and resumed.steps == result.steps + 2


def test_pause_holds_the_run_and_resume_lets_it_go(digits8: Store) -> None:
    token = CancelToken()
    token.pause()
    steps_seen: list[int] = []
    outcome: dict[str, object] = {}

    def work() -> None:
        outcome["result"] = run_job(
            train(
                digits8,
                TrainOptions(
                    "p",
                    family="vae",
                    dataset="digits",
                    steps=3,
                    settings=TINY["vae"],
                    checkpoint_every=10,
                    preview_every=0,
                ),
                cancel=token,
            ),
            lambda e: steps_seen.append(e.step) if isinstance(e, TrainingProgress) else None,
        )

    thread = threading.Thread(target=work)
    thread.start()
    time.sleep(0.5)
    assert steps_seen == [] and thread.is_alive()  # paused before the first step
    token.resume()
    thread.join(60)
    assert outcome["result"].steps == 3  # type: ignore[attr-defined]


def test_minutes_budget_stops_the_run(digits8: Store) -> None:
    result = run_job(
        train(
            digits8,
            TrainOptions("timed", family="vae", dataset="digits", minutes=0.02, settings=TINY["vae"], preview_every=0),
        )
    )
    assert result.status == "completed" and result.steps > 0 and result.seconds < 10


# --- failures keep the last good checkpoint -------------------------------------------------


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(digits8: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    tiny_train(digits8, "n", "vae", steps=4, checkpoint_every=4)
    good = tensors(digits8, "n")
    from studio.engine.families.vae.model import VaeFamily

    real_step = VaeFamily.training_step

    def poisoned(self, batch, step, precision, labels=None):  # what a learning rate that is far too high produces
        losses = real_step(self, batch, step, precision, labels)
        return {**losses, "loss": float("nan")} if step >= 5 else losses

    monkeypatch.setattr(VaeFamily, "training_step", poisoned)
    with pytest.raises(StudioError, match=r"diverged at step 6 \(loss=nan\); the last good checkpoint \(step 4\)"):
        run_job(train(digits8, TrainOptions("n", resume=True, steps=20, checkpoint_every=100, preview_every=0)))
    after = tensors(digits8, "n")
    assert all(torch.equal(good[k], after[k]) for k in good)
    assert get_model(digits8, "n").steps == 4
    with digits8.sessions() as session:
        assert session.scalars(select(TrainingRun.status).order_by(TrainingRun.id)).all() == ["completed", "failed"]


def test_full_disk_keeps_the_previous_checkpoint(digits8: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    tiny_train(digits8, "d", "vae", steps=2, checkpoint_every=2)
    before = (model_folder(digits8, "d") / CHECKPOINT_FILE).read_bytes()
    real_open = open

    def full_disk_open(path, mode="r", *args, **kwargs):
        if "w" in mode and str(path).endswith(".partial"):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", full_disk_open)
    with pytest.raises(DiskFullError, match=r"disk full while saving checkpoint\.safetensors: the previous"):
        run_job(train(digits8, TrainOptions("d", resume=True, steps=6, checkpoint_every=2, preview_every=0)))
    monkeypatch.undo()
    folder = model_folder(digits8, "d")
    assert (folder / CHECKPOINT_FILE).read_bytes() == before
    assert not list(folder.glob(".*.partial"))
    assert load_model(folder).state.step == 2


def test_a_crash_mid_save_leaves_the_old_checkpoint(digits8: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    tiny_train(digits8, "k", "gan", steps=2, checkpoint_every=2)
    before = (model_folder(digits8, "k") / CHECKPOINT_FILE).read_bytes()

    def die(*args, **kwargs):  # the process dies after writing the temporary file, before the rename
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints.os, "replace", die)
    with pytest.raises(KeyboardInterrupt):
        run_job(train(digits8, TrainOptions("k", resume=True, steps=4, checkpoint_every=2, preview_every=0)))
    monkeypatch.undo()
    assert (model_folder(digits8, "k") / CHECKPOINT_FILE).read_bytes() == before
    assert load_model(model_folder(digits8, "k")).state.step == 2


# --- fine-tuning -----------------------------------------------------------------------------


def test_fine_tuning_starts_from_another_models_weights(digits8: Store) -> None:
    # Unconditional: a conditional model's classes (the digits) would refuse the shapes' labels.
    tiny_train(digits8, "base", "vae", steps=4, settings={**TINY["vae"], "conditional": "no"})
    run_job(add_sample(digits8, "shapes", name="grey-shapes", count=30, size=8, channels=1))
    run_job(
        train(
            digits8,
            TrainOptions(
                "tuned",
                family="vae",
                dataset="grey-shapes",
                steps=1,
                init_from="base",
                settings={"batch_size": 8, "learning_rate": 1e-6},
                preview_every=0,
            ),
        )
    )
    base, tuned = tensors(digits8, "base"), tensors(digits8, "tuned")
    close = [
        torch.allclose(base[k].float(), tuned[k].float(), atol=1e-4)
        for k in base
        if "running" not in k and "num_batches" not in k
    ]  # BatchNorm statistics move in one step
    assert all(close)  # one step at a tiny learning rate: still the base weights
    summary = get_model(digits8, "tuned")
    assert (summary.parent, summary.dataset, summary.steps) == ("base", "grey-shapes", 1)
    run_job(add_sample(digits8, "shapes", name="colour", count=30, size=8))
    with pytest.raises(StudioError, match="fine-tune on a dataset of the same shape"):
        run_job(train(digits8, TrainOptions("bad", family="vae", dataset="colour", steps=1, init_from="base")))
    with pytest.raises(StudioError, match="cannot change when fine-tuning"):
        run_job(
            train(
                digits8,
                TrainOptions(
                    "bad", family="vae", dataset="digits", steps=1, init_from="base", settings={"latent_dim": 8}
                ),
            )
        )
    with pytest.raises(StudioError, match="fine-tuning keeps the family"):
        run_job(train(digits8, TrainOptions("bad", family="gan", dataset="digits", steps=1, init_from="base")))


# --- bad input ---------------------------------------------------------------------------------


def test_bad_requests_get_one_line_reasons(digits8: Store) -> None:
    run_job(add_sample(digits8, "shapes", name="odd", count=10, size=12))
    cases = [
        ({"family": "flow", "dataset": "digits", "steps": 1}, "unknown family 'flow'"),
        ({"family": "gan", "dataset": "nope", "steps": 1}, "no dataset named 'nope'"),
        ({"family": "gan", "dataset": "odd", "steps": 1}, "8, 16, 32, 64, 128 or 256 px images, not 12 px"),
        ({"family": "gan", "dataset": "digits"}, "give a budget"),
        ({"family": "gan", "dataset": "digits", "steps": 0}, "invalid --steps 0"),
        ({"family": "gan", "dataset": "digits", "minutes": -1}, "invalid --minutes"),
        ({"family": "gan", "dataset": "digits", "steps": 1, "settings": {"width": 4}}, "below the minimum"),
        ({"family": "gan", "dataset": "digits", "steps": 1, "settings": {"depth": 4}}, "unknown setting 'depth'"),
        ({"dataset": "digits", "steps": 1}, "give --family"),
        ({"family": "gan", "steps": 1}, "give --dataset"),
        ({"resume": True, "steps": 5}, "no model named 'x' to resume"),
        ({"family": "gan", "dataset": "digits", "steps": 1, "device": "tpu"}, "unknown device 'tpu'"),
    ]
    for options, message in cases:
        with pytest.raises(StudioError, match=message):
            run_job(train(digits8, TrainOptions("x", **options)))
    assert list_models(digits8) == []
    tiny_train(digits8, "x", "gan", steps=2)
    with pytest.raises(AlreadyExistsError, match="--resume"):
        tiny_train(digits8, "x", "gan", steps=2)
    with pytest.raises(StudioError, match="already at step 2"):
        run_job(train(digits8, TrainOptions("x", resume=True, steps=2)))
    with pytest.raises(StudioError, match="cannot change when resuming"):
        run_job(train(digits8, TrainOptions("x", resume=True, steps=4, settings={"latent_dim": 9})))
    with pytest.raises(StudioError, match="is a gan model, not vae"):
        run_job(train(digits8, TrainOptions("x", resume=True, steps=4, family="vae")))


def test_cuda_request_without_a_gpu_is_refused() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(StudioError, match="no usable CUDA GPU"):
        select_device("cuda")
    assert select_device("auto").type in ("cpu", "mps")


def test_generation_refuses_bad_requests(digits8: Store) -> None:
    tiny_train(digits8, "g", "gan", steps=2)
    for options, message in [
        ({"count": 0}, "invalid count 0"),
        ({"seed": -1}, "invalid seed -1"),
        ({"options": {"temperature": 1.0}}, "unknown sampling setting 'temperature'"),
        ({"options": {"truncation": 9.0}}, "above the maximum"),
        ({"backend": "tensorflow"}, "unknown backend"),
    ]:
        with pytest.raises(StudioError, match=message):
            run_job(generate(digits8, "g", **options))
    with pytest.raises(NotFoundError, match="no model named 'ghost'"):
        run_job(generate(digits8, "ghost"))
    assert GalleryRepository(digits8).list() == []


# --- the model library ----------------------------------------------------------------------


def test_import_a_model_folder_made_elsewhere(digits8: Store, tmp_path: Path) -> None:
    tiny_train(digits8, "orig", "gan", steps=2)
    exported = tmp_path / "shared-model"
    shutil.copytree(model_folder(digits8, "orig"), exported, ignore=shutil.ignore_patterns(".*"))
    imported = import_model(digits8, exported, "copy")
    expected = ("gan", 2, get_model(digits8, "orig").weights_hash)
    assert (imported.family, imported.steps, imported.weights_hash) == expected
    made = run_job(generate(digits8, "copy", count=1, seed=3))
    original = run_job(generate(digits8, "orig", count=1, seed=3))
    assert np.array_equal(
        np.asarray(Image.open(made.items[0]["path"])), np.asarray(Image.open(original.items[0]["path"]))
    )
    with pytest.raises(AlreadyExistsError):
        import_model(digits8, exported, "copy")
    assert sorted(p.name for p in exported.iterdir()) == ["checkpoint.safetensors", "config.json"]  # untouched


def test_bad_model_folders_are_refused_clearly(digits8: Store, tmp_path: Path) -> None:
    tiny_train(digits8, "src", "gan", steps=2)
    source = model_folder(digits8, "src")

    def variant(name: str) -> Path:
        folder = tmp_path / name
        shutil.copytree(source, folder, ignore=shutil.ignore_patterns(".*"))
        return folder

    missing = tmp_path / "empty"
    missing.mkdir()
    no_weights = variant("no-weights")
    (no_weights / CHECKPOINT_FILE).unlink()
    bad_json = variant("bad-json")
    (bad_json / "config.json").write_text("{not json")
    other_family = variant("other-family")
    config = json.loads((other_family / "config.json").read_text())
    (other_family / "config.json").write_text(json.dumps({**config, "family": "vae"}))
    relabelled = variant("relabelled")  # a GAN checkpoint under a config that claims a VAE, settings and all
    vae_settings = {"latent_dim": 8, "width": 8}
    (relabelled / "config.json").write_text(json.dumps({**config, "family": "vae", "hyperparameters": vae_settings}))
    other_size = variant("other-size")
    (other_size / "config.json").write_text(json.dumps({**config, "resolution": 16}))
    truncated = variant("truncated")
    data = (truncated / CHECKPOINT_FILE).read_bytes()
    (truncated / CHECKPOINT_FILE).write_bytes(data[: len(data) // 2])
    for folder, message in [
        (missing, "has no config.json"),
        (no_weights, "has no checkpoint.safetensors"),
        (bad_json, "is not valid JSON"),
        (other_family, "not describe a valid vae model"),
        (relabelled, "holds a gan model but config.json says vae"),
        (other_size, "do not fit a gan model of 16px"),
        (truncated, "damaged"),
        (tmp_path / "nowhere", "not a folder"),
    ]:
        with pytest.raises(CheckpointError, match=message):
            import_model(digits8, folder, "imported")
    assert [m.name for m in list_models(digits8)] == ["src"]


def test_delete_a_model_keeps_its_gallery_items(digits8: Store) -> None:
    tiny_train(digits8, "gone", "vae", steps=2)
    run_job(generate(digits8, "gone", count=2, seed=0))
    folder = model_folder(digits8, "gone")
    delete_model(digits8, "gone")
    assert not folder.exists() and list_models(digits8) == []
    items = GalleryRepository(digits8).list()
    assert len(items) == 2 and all(i.model == "gone" for i in items)
    with digits8.sessions() as session:
        assert session.scalars(select(TrainingRun)).all() == []
