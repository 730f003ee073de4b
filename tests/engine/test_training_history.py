"""Training history: every run's per-step metrics persist in the store (in batches), survive a restart
and a cancel, continue the step axis when resumed, smooth as TensorBoard does and export as CSV."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from studio.engine.jobs import CancelToken, Finished, run_job
from studio.engine.training import TrainingProgress, train
from studio.engine.training_history import (
    FLUSH_ROWS,
    MetricRecorder,
    export_csv,
    model_runs,
    run_curves,
    smooth,
    tensorboard_available,
)
from studio.engine.training_options import TrainOptions
from studio.errors import NotFoundError, StudioError
from studio.home import DataHome
from studio.store.database import Store, open_store
from studio.store.embeddings import EmbeddingRepository
from studio.store.history import HistoryRepository, MetricRow
from studio.store.tables import TrainingMetric
from tests.engine.conftest import TINY


def options(name: str, steps: int, **changes: Any) -> TrainOptions:
    """A tiny GAN on digits, diagnostics every 5 steps, no previews."""
    values: dict[str, Any] = {
        "family": "gan",
        "dataset": "digits",
        "steps": steps,
        "settings": TINY["gan"],
        "device": "cpu",
        "preview_every": 5,
        "preview_count": 0,
        "checkpoint_every": 10,
        "milestone_every": 0,
    }
    values.update(changes)
    return TrainOptions(name, **values)


def test_every_step_is_recorded_and_survives_a_restart(digits8: Store, home: DataHome) -> None:
    result = run_job(train(digits8, options("kept", 12)))
    assert result.steps == 12
    digits8.close()
    reopened = open_store(home)  # "a restart": a new store over the same data home
    try:
        (run,) = model_runs(reopened, "kept")
        assert run.status == "completed" and (run.start_step, run.end_step) == (0, 12)
        (curves,) = run_curves(reopened, "kept")
        losses = [s for s in curves.series if s.kind == "loss"]
        assert {s.name for s in losses} == set(result.final_losses)
        for series in losses:
            assert series.steps.tolist() == list(range(1, 13))  # every step, none twice
            assert series.values[-1] == pytest.approx(result.final_losses[series.name])
        diversity = curves.get("diagnostic/diversity")
        assert diversity is not None and diversity.steps.tolist() == [5, 10]
        speed = curves.get("speed/samples_per_second")
        assert speed is not None and speed.steps[-1] == 12 and np.all(speed.values > 0)
        assert run.points == sum(s.steps.size for s in curves.series)
    finally:
        reopened.close()


def test_a_cancelled_run_keeps_its_history_and_a_resumed_one_continues_the_step_axis(digits8: Store) -> None:
    token = CancelToken()
    steps_seen: list[int] = []
    for event in train(digits8, options("stopped", 1_000_000), cancel=token):
        if isinstance(event, TrainingProgress):
            steps_seen.append(event.step)
        if steps_seen and steps_seen[-1] >= 3:
            token.cancel()
        if isinstance(event, Finished):
            stopped_at = event.result.steps
    (cancelled,) = run_curves(digits8, "stopped")
    assert cancelled.run.status == "cancelled"
    loss = cancelled.series[0]
    assert loss.kind == "loss" and loss.steps.tolist() == list(range(1, stopped_at + 1))

    run_job(train(digits8, TrainOptions("stopped", steps=stopped_at + 7, resume=True, preview_every=5)))
    first, second = run_curves(digits8, "stopped")
    assert first.run.id == cancelled.run.id and second.run.start_step == stopped_at
    resumed = second.get(loss.tag)
    assert resumed is not None and resumed.steps.tolist() == list(range(stopped_at + 1, stopped_at + 8))
    assert [run.status for run in model_runs(digits8, "stopped")] == ["cancelled", "completed"]


class _Run:
    name = "m"
    run_id: int | None = None


def test_values_are_written_in_batches_not_per_step(digits8: Store) -> None:
    run_job(train(digits8, options("batched", 2)))
    (run,) = model_runs(digits8, "batched")
    handle = _Run()
    recorder = MetricRecorder(digits8, handle)
    writes: list[int] = []
    original = recorder.repository.add

    def counted(run_id: int, rows: list[MetricRow]) -> None:
        writes.append(len(rows))
        original(run_id, rows)

    recorder.repository.add = counted  # type: ignore[method-assign]
    for step in range(1, 101):
        recorder.losses(1000 + step, {"a": float(step), "b": 1.0})
    assert writes == []  # no run row yet: everything waits in memory
    handle.run_id = run.id
    for step in range(101, 201):
        recorder.losses(1000 + step, {"a": float(step), "b": 1.0})
    assert writes == []  # neither FLUSH_ROWS values nor FLUSH_SECONDS yet
    recorder.flush()
    assert writes == [400] and FLUSH_ROWS > 400
    series = {s.name: s for s in HistoryRepository(digits8).series(run.id) if s.steps[0] > 1000}
    assert series["a"].steps.tolist() == list(range(1001, 1201))


def test_a_failed_write_does_not_hide_the_error_that_ended_the_run(digits8: Store) -> None:
    handle = _Run()
    handle.run_id = 999_999  # no such run: the write fails on the foreign key
    recorder = MetricRecorder(digits8, handle)

    def failing() -> Any:
        recorder.losses(1, {"a": 1.0})
        yield 1
        raise RuntimeError("the step failed")

    with pytest.raises(RuntimeError, match="the step failed"):
        list(recorder.watch(failing()))


def test_the_quality_score_is_linked_to_the_run_whose_weights_it_judged(digits8: Store) -> None:
    run_job(train(digits8, options("scored", 4)))
    repository = EmbeddingRepository(digits8)
    model_id = HistoryRepository(digits8).model_id("scored")
    assert model_id is not None
    # An encoder and a score added as `embed train` and `models score` would add them.
    encoder = repository.add_encoder(
        {
            "dataset_id": repository.dataset_id("digits"),
            "folder": "encoders/x",
            "weights_hash": "e" * 64,
            "input_size": 8,
            "channels": 1,
            "dims": 4,
            "steps": 1,
            "duplicate_threshold": 0.1,
            "memorised_threshold": 0.2,
        }
    )
    repository.add_score(
        {
            "model_id": model_id,
            "encoder_id": encoder.id,
            "weights_hash": None,
            "steps": 4,
            "samples": 16,
            "frechet": 1.5,
            "precision": 0.5,
            "recall": 0.25,
        }
    )
    (curves,) = run_curves(digits8, "scored")
    assert curves.run.score is not None and curves.run.score["frechet"] == 1.5
    frechet = curves.get("score/frechet")
    assert frechet is not None and frechet.steps.tolist() == [4] and frechet.values.tolist() == [1.5]


def test_smoothing_matches_tensorboard_by_hand() -> None:
    # w = 0.5 over 1, 2, 3: last = 0.5, 1.25, 2.125; debiased by 0.5, 0.75, 0.875.
    assert smooth(np.array([1.0, 2.0, 3.0]), 0.5).tolist() == pytest.approx([1.0, 5 / 3, 2.125 / 0.875])
    assert smooth(np.array([4.0, 8.0]), 0.0).tolist() == [4.0, 8.0]  # 0: no smoothing
    assert smooth(np.array([2.0, 2.0, 2.0]), 0.9).tolist() == [2.0, 2.0, 2.0]  # constant: unchanged
    with_nan = smooth(np.array([1.0, math.nan, 3.0]), 0.5)
    assert math.isnan(with_nan[1]) and with_nan[2] == pytest.approx((0.25 + 1.5) / 0.75)  # NaN skipped
    with pytest.raises(StudioError, match=r"between 0 and 0\.99"):
        smooth(np.array([1.0, 2.0]), 1.0)


@pytest.mark.parametrize("weight", [0.3, 0.9, 0.99])
def test_the_vectorised_smoothing_equals_tensorboards_loop_on_long_curves(weight: float) -> None:
    values = np.random.default_rng(0).normal(5.0, 2.0, 5000)
    last, expected = 0.0, []
    for count, value in enumerate(values, start=1):  # TensorBoard's own loop, transcribed
        last = last * weight + (1 - weight) * value
        expected.append(last / (1 - weight**count))
    assert np.allclose(smooth(values, weight), expected, rtol=1e-9, atol=1e-9)


def test_csv_holds_one_row_per_run_and_step_and_a_column_per_metric(digits8: Store, tmp_path: Path) -> None:
    run_job(train(digits8, options("table", 10)))
    run_job(train(digits8, TrainOptions("table", steps=15, resume=True, preview_every=5)))
    first, second = model_runs(digits8, "table")
    report = export_csv(digits8, "table", tmp_path / "history.csv")
    with open(tmp_path / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert report["rows"] == len(rows) == 15 and report["runs"] == [first.id, second.id]
    assert list(rows[0])[:2] == ["run", "step"] and list(rows[0])[2].startswith("loss/")
    assert "diagnostic/diversity" in rows[0] and "speed/samples_per_second" in rows[0]
    assert [(int(r["run"]), int(r["step"])) for r in rows] == [(first.id, s) for s in range(1, 11)] + [
        (second.id, s) for s in range(11, 16)
    ]
    (curves,) = run_curves(digits8, "table", [second.id])
    loss = curves.get("loss/g_loss")
    assert loss is not None
    assert [float(r["loss/g_loss"]) for r in rows[10:]] == loss.values.tolist()  # exact: repr round-trips
    assert rows[4]["diagnostic/diversity"] != "" and rows[3]["diagnostic/diversity"] == ""
    only = export_csv(digits8, "table", tmp_path / "second.csv", [second.id])
    assert only["rows"] == 5 and not list(tmp_path.glob(".*partial"))


def test_bad_requests_are_one_line_errors(digits8: Store, home: DataHome, tmp_path: Path) -> None:
    run_job(train(digits8, options("one", 2)))
    with pytest.raises(NotFoundError, match="no model named 'nope'"):
        model_runs(digits8, "nope")
    with pytest.raises(NotFoundError, match="has no run 999"):
        run_curves(digits8, "one", [999])
    with pytest.raises(StudioError, match="inside the data home"):
        export_csv(digits8, "one", home.root / "out.csv")
    with pytest.raises(StudioError, match="is a folder"):
        export_csv(digits8, "one", tmp_path)
    with pytest.raises(StudioError, match="does not exist"):
        export_csv(digits8, "one", tmp_path / "missing" / "out.csv")


def test_deleting_a_model_deletes_its_history(digits8: Store) -> None:
    from studio.engine.library import delete_model

    run_job(train(digits8, options("gone", 2)))
    delete_model(digits8, "gone")
    with digits8.session() as session:
        assert session.scalar(select(func.count()).select_from(TrainingMetric)) == 0


def test_tensorboard_folder_checks(digits8: Store, home: DataHome, tmp_path: Path) -> None:
    with pytest.raises(StudioError, match="inside the data home"):
        train(digits8, options("tb", 5, tensorboard=str(home.root / "tb"))).send(None)
    if not tensorboard_available():
        with pytest.raises(StudioError, match="pip install tensorboard"):
            train(digits8, options("tb", 5, tensorboard=str(tmp_path / "tb"))).send(None)


@pytest.mark.skipif(not tensorboard_available(), reason="the tensorboard package is not installed")
def test_tensorboard_event_files_hold_the_same_values(digits8: Store, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_job(train(digits8, options("board", 10, tensorboard=str(tmp_path / "tb"))))
    events = EventAccumulator(str(tmp_path / "tb" / "board"))
    events.Reload()
    (curves,) = run_curves(digits8, "board")
    loss = curves.get("loss/g_loss")
    assert loss is not None
    scalars = events.Scalars("loss/g_loss")
    assert [s.step for s in scalars] == loss.steps.tolist()
    assert np.allclose([s.value for s in scalars], loss.values, rtol=1e-6)


def test_reading_history_loads_no_torch() -> None:
    script = "import json, sys, studio.engine.training_history; print(json.dumps('torch' in sys.modules))"
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(output.stdout) is False


def test_rows_are_plain_sql_whatever_the_driver(digits8: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    run_job(train(digits8, options("sql", 2)))
    (run,) = model_runs(digits8, "sql")
    HistoryRepository(digits8).add(run.id, [("diagnostic", "extra", 2, 0.5)])
    # A driver with another parameter style (none Studio runs on today) takes SQLAlchemy's own insert.
    monkeypatch.setattr("studio.store.history._MARKERS", {})
    HistoryRepository(digits8).add(run.id, [("diagnostic", "extra", 3, 0.75)])
    extra = next(s for s in HistoryRepository(digits8).series(run.id) if s.name == "extra")
    assert extra.steps.tolist() == [2, 3] and extra.values.tolist() == [0.5, 0.75]
    with digits8.session() as session:
        kinds = set(session.scalars(select(TrainingMetric.kind).where(TrainingMetric.run_id == run.id)))
    assert kinds == {"loss", "speed", "diagnostic"}


def test_the_cli_lists_runs_shows_one_and_writes_csv(
    digits8: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from studio.cli import main

    run_job(train(digits8, options("cli", 4)))
    (run,) = model_runs(digits8, "cli")
    assert main(["models", "history", "cli"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:4] == ["RUN", "STATUS", "STEPS", "VALUES"]
    assert f"{run.id}    completed  0-4" in out
    assert main(["models", "history", "cli", "--run", str(run.id), "--csv", str(tmp_path / "h.csv"), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["run"]["metrics"]["loss/g_loss"]["steps"] == [1, 2, 3, 4]
    assert payload["csv"]["rows"] == 4 and (tmp_path / "h.csv").read_text().startswith("run,step,loss/")
    assert main(["models", "history", "cli", "--run", "99"]) == 1
    assert capsys.readouterr().err.strip() == "studio: error: model 'cli' has no run 99 (its runs: 1)"
    if not tensorboard_available():
        code = main(["train", "--name", "x", "--family", "gan", "--dataset", "digits", "--steps", "2",
                     "--tensorboard", str(tmp_path / "tb")])  # fmt: skip
        assert code == 1 and "pip install tensorboard" in capsys.readouterr().err
