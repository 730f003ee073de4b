"""The Gallery page in UI tests: reach it and wait for its rows (read off the GUI thread) to arrive."""

from __future__ import annotations

import time

from PySide6.QtCore import QCoreApplication, QEventLoop

from studio.ui.gallery.page import GalleryPage
from studio.ui.main_window import MainWindow


def gallery_page(window: MainWindow) -> GalleryPage:
    """The window's Gallery page."""
    page = window.page["gallery"]
    assert isinstance(page, GalleryPage)
    return page


def settle_gallery(page: GalleryPage, timeout: float = 10.0) -> None:
    """Let a reload on its way arrive: the grid reads its id list off the GUI thread."""
    deadline = time.monotonic() + timeout
    while page.loading:
        assert time.monotonic() < deadline, "the gallery's rows never arrived"
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        time.sleep(0.001)
