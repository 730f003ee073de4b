"""Concurrent processes on one data home: every write kept, the loser of a race refused at once and clearly.

Races run as real processes (multiprocessing with spawn, or `python -m studio`), released together by a
barrier where the window is narrow, so each case fails reliably without the fix it pins.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import event, text

from studio.errors import StoreError, StudioError
from studio.home import DataHome
from studio.store.database import open_store, quick_check
from studio.store.gallery import GalleryRepository
from tests.faults.concurrency import (
    MODEL,
    TINY_VAE,
    curate,
    error_line,
    hold_write_lock,
    marked_processes,
    model_home,
    reaped,
    run,
    start,
    wait_until,
)

PROCESSES = 4
NAMES = 30


def _home_with_items(root: Path, count: int) -> list[int]:
    """A home whose gallery holds `count` items (tiny PNGs; no model needed)."""
    home = DataHome(root).ensure()
    store = open_store(home)
    try:
        repository = GalleryRepository(store)
        ids = []
        for index in range(count):
            path = home.gallery / "m" / f"item-{index}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((8, 8), index, np.uint8)).save(path)
            ids.append(repository.add(home.relative(path), "m", "vae", 8, 8, seed=index).id)
        return ids
    finally:
        store.close()


def test_processes_creating_the_same_new_tags_and_collections_all_succeed(isolated_home: Path) -> None:
    items = _home_with_items(isolated_home, 3)
    names = [f"race-{index}" for index in range(NAMES)]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    workers = [
        context.Process(target=curate, args=(str(isolated_home), names, items, barrier, results))
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    errors = [error for _ in workers for error in results.get(timeout=120)]
    for worker in workers:
        worker.join(timeout=30)
    assert errors == []
    assert quick_check(DataHome(isolated_home).database) is None
    store = open_store(DataHome(isolated_home))
    try:
        repository = GalleryRepository(store)
        assert {row["name"]: row["count"] for row in repository.tags()} == dict.fromkeys(names, len(items))
        assert {row["name"]: row["count"] for row in repository.collections()} == dict.fromkeys(names, len(items))
        assert all(entry.tags == tuple(sorted(names)) for entry in repository.entries(items))
    finally:
        store.close()


def _short_busy_timeout(store_engine: object, milliseconds: int) -> None:
    """Make SQLite give up waiting for a lock after `milliseconds` on this store's connections.

    Stands for a lock held longer than the real busy timeout (10 s) without making the test wait that long.
    """

    def shorten(connection: object, _record: object) -> None:
        connection.execute(f"PRAGMA busy_timeout={milliseconds}")  # type: ignore[attr-defined]

    event.listen(store_engine, "connect", shorten)
    store_engine.dispose()  # type: ignore[attr-defined]


def test_a_write_waits_out_a_lock_held_past_the_busy_timeout(isolated_home: Path) -> None:
    items = _home_with_items(isolated_home, 1)
    store = open_store(DataHome(isolated_home))
    _short_busy_timeout(store.engine, 100)
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    released = context.Value("d", 0.0)
    holder = context.Process(target=hold_write_lock, args=(str(store.home.database), 1.5, ready, released))
    holder.start()
    try:
        assert ready.wait(timeout=60)
        GalleryRepository(store).rate(items, 4)  # SQLite says "locked" after 0.1 s: retried, with backoff
        committed = time.monotonic()
        holder.join(timeout=30)
        # The change went in once the lock was let go (on a busy machine the test may only have started
        # after that, which proves less but must not fail).
        assert released.value > 0 and committed >= released.value
        assert GalleryRepository(store).get(items[0]).rating == 4
    finally:
        holder.join(timeout=30)
        store.close()


def test_a_lock_that_never_ends_gives_one_clear_error_in_bounded_time(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = _home_with_items(isolated_home, 1)
    monkeypatch.setattr("studio.store.database.BUSY_RETRY_SECONDS", 1.0)
    store = open_store(DataHome(isolated_home))
    _short_busy_timeout(store.engine, 100)
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=hold_write_lock, args=(str(store.home.database), 120, ready))
    holder.start()
    try:
        assert ready.wait(timeout=60)
        started = time.monotonic()
        with pytest.raises(StoreError, match="busy") as raised:
            GalleryRepository(store).rate(items, 4)
        assert time.monotonic() - started < 10
        assert "\n" not in str(raised.value)
    finally:
        holder.kill()
        holder.join(timeout=30)
        store.close()
    store = open_store(DataHome(isolated_home))
    try:
        assert GalleryRepository(store).get(items[0]).rating == 0  # nothing half-done
    finally:
        store.close()


@pytest.mark.slow
def test_a_second_train_of_a_new_name_is_refused_at_once_and_a_kill_frees_the_name(tmp_path: Path) -> None:
    from studio.engine.jobs import run_job
    from studio.engine.training import train
    from studio.engine.training_options import TrainOptions

    home = model_home(tmp_path)
    arguments = ["train", "--family", "vae", "--dataset", "digits", "--name", "fresh", *TINY_VAE]
    # The first trains for long and saves only at the end: the name has no folder and no row yet.
    # One thread: on a small machine, a trainer on every core would slow the second's start-up.
    first = start(home, *arguments, "--steps", "10000000", "--checkpoint-every", "10000000", "--threads", "1")
    with reaped(first):
        first.wait_for(lambda line: line.startswith("step "))
        second = run(home, *arguments, "--steps", "5")
        assert second.returncode == 1
        assert error_line(second.stderr).startswith("studio: error: model 'fresh' is being trained by another process")
        assert first.process.poll() is None, "the first run must not have been disturbed"
        first.kill()
        wait_until(lambda: marked_processes(first.marker) == [], 15, "no process outlives the killed run")
    store = open_store(DataHome(home))  # the next start: nothing of the dead run is left
    try:
        assert list((home / "tmp").iterdir()) == []
        assert not (home / "models" / "fresh").exists()
        options = TrainOptions("fresh", family="vae", dataset="digits", steps=2, settings={"width": 8})
        assert run_job(train(store, options)).steps == 2  # the kill released the name
    finally:
        store.close()


def test_generation_of_a_model_deleted_meanwhile_ends_in_one_line_and_keeps_no_files(tmp_path: Path) -> None:
    """Where file locks do not hold (a network file system), the rows still cannot point at nothing."""
    from studio.engine.generation import generate

    home = model_home(tmp_path)
    store = open_store(DataHome(home))
    try:
        job = generate(store, MODEL, count=4, seed=3, batch_size=2)
        next(job)  # the model is open; the first batch comes next
        with store.engine.begin() as connection:  # a deletion that bypassed Studio's locks
            connection.execute(text("DELETE FROM models WHERE name = :name"), {"name": MODEL})
        with pytest.raises(StudioError, match=f"model '{MODEL}' was deleted") as raised:
            for _ in job:
                pass
        assert "\n" not in str(raised.value)
        assert [p for p in (home / "gallery").rglob("*") if p.is_file()] == []
        assert quick_check(store.home.database) is None
    finally:
        store.close()
