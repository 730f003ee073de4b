"""Cyclic garbage is collected only in the GUI thread while the engine thread exists.

A collection in the engine thread can free a Qt object left in a cycle by an earlier page; its
destructor then waits for the GUI thread while the GUI thread waits for the interpreter. That froze
the suite once, during an encoder's ONNX export in the engine thread.
"""

from __future__ import annotations

import gc
import threading
from typing import Any

from pytestqt.qtbot import QtBot

from studio.engine.jobs import CancelToken, Finished, Job
from studio.ui.jobs import JobRunner


def _make_cycles(token: CancelToken) -> Job:
    for _ in range(50):
        token.check()
        junk: list[Any] = [[] for _ in range(2_000)]
        for item in junk:
            item.append(item)  # each list refers to itself: only the cyclic collector frees it
    yield Finished(None)


def test_garbage_is_collected_in_the_gui_thread_only(qtbot: QtBot) -> None:
    seen: list[str] = []

    def note(phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            seen.append(threading.current_thread().name)

    runner = JobRunner()
    gc.callbacks.append(note)
    try:
        assert not gc.isenabled()
        handle = runner.submit("cycles", _make_cycles)
        qtbot.waitUntil(lambda: handle.done, timeout=30_000)
        qtbot.waitUntil(lambda: bool(seen), timeout=5_000)  # the GUI thread's timer collects them
    finally:
        gc.callbacks.remove(note)
        runner.shutdown()
    assert set(seen) == {threading.main_thread().name}
    assert gc.isenabled()  # handed back when the runner stops
