"""SIGKILL in the middle of every long operation: no stray process, no damage, nothing left after the next start.

Only the command's own process is killed (as the kernel's OOM killer or a crash would), never its
process group, so whatever it started must go by itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.engine.jobs import run_job
from studio.errors import StudioError
from studio.files import MARKER
from studio.home import DataHome
from studio.store.database import open_store, quick_check
from tests.faults.concurrency import (
    MODEL,
    error_line,
    gallery_count,
    marked_processes,
    model_home,
    open_files,
    reaped,
    run,
    start,
    wait_until,
)
from tests.images import make_folder

STRAYS_GONE = 15  # seconds a dead command's helpers may take to notice and exit


def _after_next_start(home: Path) -> list[str]:
    """Open the store as the next command would (it sweeps), and list what is left in the staging area."""
    assert quick_check(home / "studio.db") is None
    store = open_store(DataHome(home))
    store.close()
    return sorted(path.name for path in (home / "tmp").iterdir())


def _model_files(folder: Path) -> list[str]:
    """A model folder's files, less the lock files jobs leave (empty, and harmless when free)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


def _no_strays(marker: str) -> None:
    wait_until(lambda: marked_processes(marker) == [], STRAYS_GONE, "processes outlived the killed command")


@pytest.mark.slow
@pytest.mark.parametrize("point", ["decoding", "writing"])
def test_a_killed_import_leaves_no_workers_and_the_next_start_sweeps_its_folder(
    isolated_home: Path, tmp_path: Path, point: str
) -> None:
    make_folder(tmp_path / "src", 1200, size=96)  # enough decoding to catch the workers at it
    importing = start(isolated_home, "datasets", "import", str(tmp_path / "src"), "--name", "big", "--workers", "2")
    with reaped(importing):
        if point == "decoding":  # workers busy, staging folder locked and half written
            importing.wait_for(lambda line: line.startswith("decoding") and not line.split()[1].startswith("0.0"))
            workers = [pid for pid in marked_processes(importing.marker) if pid != importing.process.pid]
            assert workers, "expected the import's decoding workers"
            # Only the import itself holds its staging folder's lock: workers never inherit it.
            assert any(path.endswith(MARKER) for path in open_files(importing.process.pid))
            assert not [path for pid in workers for path in open_files(pid) if path.endswith(MARKER)]
        else:  # the rows may or may not be committed: either all of the dataset exists, or none of it
            importing.wait_for(lambda line: line.startswith("writing"))
        assert list((isolated_home / "tmp").iterdir()) or point == "writing"
        importing.kill()
        _no_strays(importing.marker)
    assert _after_next_start(isolated_home) == []
    store = open_store(DataHome(isolated_home))
    try:
        from studio.engine.datasets.storage import list_datasets, load_images

        datasets = list_datasets(store)
        assert [d.name for d in datasets] in ([], ["big"])
        if datasets:
            assert load_images(store, "big").shape[0] == datasets[0].count
        folders = sorted(p.name for p in (isolated_home / "datasets").iterdir())
        assert folders == [d.name for d in datasets]
    finally:
        store.close()


@pytest.mark.slow
def test_a_killed_training_run_is_resumable_and_its_model_deletable(tmp_path: Path) -> None:
    home = model_home(tmp_path)
    training = start(
        home, "train", "--name", MODEL, "--resume", "--steps", "10000000", "--checkpoint-every", "25", "--threads", "1"
    )
    with reaped(training):
        training.wait_for(lambda line: line.startswith("checkpoint saved"))
        refused = run(home, "models", "delete", MODEL)
        assert refused.returncode == 1
        assert error_line(refused.stderr).startswith(f"studio: error: model '{MODEL}' is being trained by another")
        training.kill()
        _no_strays(training.marker)
    assert _after_next_start(home) == []
    from studio.engine.library import delete_model, get_model
    from studio.engine.runs import interrupted_runs

    store = open_store(DataHome(home))
    try:
        assert get_model(store, MODEL).steps >= 25
        assert [stopped.model for stopped in interrupted_runs(store)] == [MODEL]
        delete_model(store, MODEL)  # the kill released every lock
        assert not (home / "models" / MODEL).exists()
    finally:
        store.close()


@pytest.mark.slow
def test_a_killed_export_leaves_the_model_intact_and_the_next_start_sweeps_its_files(tmp_path: Path) -> None:
    from studio.engine.library import delete_model

    home = model_home(tmp_path)
    folder = home / "models" / MODEL
    before = _model_files(folder)
    exporting = start(home, "export", MODEL, "--fp16")
    with reaped(exporting):
        exporting.wait_for(lambda line: line.startswith("checking"))  # one network written, aside
        assert list((home / "tmp").iterdir()), "the export should stage its files in the home's staging area"
        store = open_store(DataHome(home))
        try:
            with pytest.raises(StudioError, match=f"model '{MODEL}' is being exported by another process"):
                delete_model(store, MODEL)
        finally:
            store.close()
        exporting.kill()
        _no_strays(exporting.marker)
    assert _after_next_start(home) == []
    assert _model_files(folder) == before
    store = open_store(DataHome(home))
    try:
        delete_model(store, MODEL)
    finally:
        store.close()


@pytest.mark.slow
def test_a_killed_generation_loses_no_row_and_leaves_no_file_without_one(tmp_path: Path) -> None:
    from studio.engine.curation import check_gallery
    from studio.engine.library import delete_model

    home = model_home(tmp_path)
    generating = start(home, "generate", MODEL, "--count", "10000", "--seed", "1")
    with reaped(generating):
        wait_until(lambda: gallery_count(home) >= 2, 60, "rows from the generation")
        refused = run(home, "models", "delete", MODEL)
        assert refused.returncode == 1
        line = error_line(refused.stderr)
        assert line.startswith(f"studio: error: model '{MODEL}' is in use by another process"), line
        assert generating.process.poll() is None, "the generation must not have been disturbed"
        generating.kill()
        _no_strays(generating.marker)
    assert _after_next_start(home) == []
    store = open_store(DataHome(home))
    try:
        found = run_job(check_gallery(store))
        assert found.rows_without_files == []  # files are written before their rows: no row lost its image
        # The killed batch's journal named its files: the next start removed those no row points at,
        # and any it was killed while writing.
        assert found.files_without_rows == []
        assert [f for f in found.stray_files if "/.thumbs/" not in f] == []
        # Thumbnails are a cache: one the kill interrupted is remade (or its partial file removed).
        run_job(check_gallery(store, repair=True))
        assert run_job(check_gallery(store)).clean
        delete_model(store, MODEL)  # the kill released the model
    finally:
        store.close()
