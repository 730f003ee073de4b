"""Before Qt starts, the app says which system libraries or display a window lacks, in one line."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import pytest

from studio import app


def _without(monkeypatch: pytest.MonkeyPatch, *absent: str) -> None:
    loader = ctypes.CDLL

    def load(name: str, *args: object, **kwargs: object) -> object:
        if name in absent:
            raise OSError(f"{name}: cannot open shared object file")
        return loader(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(app.ctypes, "CDLL", load)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb plugin is Linux's")
def test_missing_xcb_libraries_are_named_with_their_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    _without(monkeypatch, "libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1")
    missing = app.missing_window_libraries({"DISPLAY": ":0"})
    assert {"libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1"} <= set(missing)
    problem = app.window_problem({"DISPLAY": ":0"})
    assert problem is not None and "\n" not in problem
    assert "sudo apt install" in problem and "libxcb-cursor0" in problem
    # Other platforms need none of them.
    assert app.missing_window_libraries({"QT_QPA_PLATFORM": "offscreen"}) == []
    assert app.missing_window_libraries({"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "w"}) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY is X11's")
def test_no_display_is_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    _without(monkeypatch)
    monkeypatch.setattr(app, "missing_window_libraries", lambda environment=None: [])
    assert app.window_problem({}) == (
        "no display to open the window on (DISPLAY is not set): run Studio in a desktop session"
    )
    hidden = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    env = {key: value for key, value in os.environ.items() if key not in hidden}
    done = subprocess.run([sys.executable, "-m", "studio"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.startswith("studio: ") and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
