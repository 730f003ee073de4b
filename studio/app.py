"""The desktop application: QApplication, the data home and the main window."""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Mapping, Sequence
from typing import cast

from studio import __version__
from studio.errors import StudioError
from studio.home import DataHome
from studio.resources import resource

# The shared libraries Qt's xcb platform plugin (a window on X11) loads, and the Debian/Ubuntu package of
# each: PySide6's wheel brings Qt, not these. Without them Qt prints "could not load the Qt platform
# plugin xcb" and aborts; Studio names the packages instead.
XCB_LIBRARIES = {
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}


def missing_window_libraries(environment: Mapping[str, str] | None = None) -> list[str]:
    """The Debian packages whose libraries an X11 window needs and this machine lacks (none off Linux/xcb)."""
    environment = os.environ if environment is None else environment
    platform = environment.get("QT_QPA_PLATFORM", "")
    if not sys.platform.startswith("linux") or platform not in ("", "xcb"):
        return []
    if not platform and environment.get("XDG_SESSION_TYPE") == "wayland":
        return []  # Qt picks its Wayland plugin there
    missing = []
    for library, package in XCB_LIBRARIES.items():
        try:
            ctypes.CDLL(library)
        except OSError:
            missing.append(package)
    return missing


def window_problem(environment: Mapping[str, str] | None = None) -> str | None:
    """Why no window can open here, in one line with what to do, or None."""
    environment = os.environ if environment is None else environment
    missing = missing_window_libraries(environment)
    if missing:
        return (
            f"the window needs system libraries this machine lacks ({', '.join(missing)}): "
            f"install them (Debian/Ubuntu: sudo apt install {' '.join(missing)}), see the README's quick start"
        )
    platform = environment.get("QT_QPA_PLATFORM", "")
    display = environment.get("DISPLAY") or environment.get("WAYLAND_DISPLAY")
    if sys.platform.startswith("linux") and platform in ("", "xcb") and not display:
        return "no display to open the window on (DISPLAY is not set): run Studio in a desktop session"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Open the main window and run the Qt event loop until it closes."""
    problem = window_problem()
    if problem is not None:
        print(f"studio: {problem}", file=sys.stderr)
        return 1
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication, QMessageBox

    from studio.store.database import open_store
    from studio.ui.main_window import MainWindow

    # instance() is typed as the QCoreApplication base; in a widget app it is always a QApplication.
    app = cast(QApplication, QApplication.instance() or QApplication(list(argv if argv is not None else sys.argv)))
    app.setApplicationName("Studio")
    app.setOrganizationName("Studio")
    # Fusion draws the same everywhere and follows the system's light or dark colour scheme.
    app.setStyle("Fusion")
    app.setApplicationVersion(__version__)
    # The icon on the window and the task bar; the desktop entry (resources/studio.desktop) names the same.
    app.setWindowIcon(QIcon(str(resource("icons", "studio.png"))))
    app.setDesktopFileName("studio")
    home = DataHome.resolve()
    try:
        # $STUDIO_DATABASE_URL, when set, opens a team gallery on PostgreSQL (as the CLI does); the run
        # processes the window starts inherit it, so they write to the same database.
        store = open_store(home)
    except StudioError as error:
        QMessageBox.critical(None, "Studio cannot open its data", str(error))
        return 1
    window = MainWindow(store)
    window.show()
    try:
        return app.exec()
    finally:
        store.close()
