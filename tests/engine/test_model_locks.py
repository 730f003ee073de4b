"""A model's use lock against a delete in progress, and which lock errors a job may run without."""

from __future__ import annotations

import errno
import threading
from pathlib import Path

import pytest

from studio.engine import model_locks
from studio.engine.model_locks import USE_LOCK, _shared_use_lock
from studio.errors import NotFoundError
from studio.files import StagingFolder, hold_lock, hold_shared_lock


def test_a_job_waiting_out_a_delete_never_recreates_the_lock_and_the_folder_goes(tmp_path: Path) -> None:
    folder = tmp_path / "models" / "m"
    folder.mkdir(parents=True)
    (folder / "checkpoint.safetensors").write_bytes(b"x")
    held = hold_lock(folder / USE_LOCK)  # the delete's exclusive claim
    assert held is not None
    outcome: list[BaseException | object] = []

    def job() -> None:
        try:
            outcome.append(_shared_use_lock(folder, "m", read_only_store=False))
        except BaseException as error:  # noqa: BLE001 - handed to the test
            outcome.append(error)

    waiter = threading.Thread(target=job)
    waiter.start()
    try:
        StagingFolder.adopt(folder).discard()
    finally:
        held.close()
    waiter.join(timeout=15)
    assert not waiter.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], NotFoundError), outcome
    assert list((tmp_path / "models").iterdir()) == []  # nothing half-removed, nothing recreated


def test_hold_shared_lock_without_create_never_makes_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        hold_shared_lock(tmp_path / USE_LOCK, create=False)
    assert not (tmp_path / USE_LOCK).exists()


@pytest.mark.parametrize(
    ("code", "read_only_store", "runs_unlocked"),
    [
        (errno.EROFS, False, True),
        (errno.EACCES, True, True),
        (errno.EACCES, False, False),
        (errno.EIO, True, False),
        (errno.EBADF, False, False),
    ],
)
def test_only_a_read_only_home_lets_a_job_run_without_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, read_only_store: bool, runs_unlocked: bool
) -> None:
    def refuse(path: Path, create: bool = True) -> None:
        raise OSError(code, "refused", str(path))

    monkeypatch.setattr(model_locks, "hold_shared_lock", refuse)
    if runs_unlocked:
        assert _shared_use_lock(tmp_path, "m", read_only_store) is None
    else:
        with pytest.raises(OSError) as raised:
            _shared_use_lock(tmp_path, "m", read_only_store)
        assert raised.value.errno == code
