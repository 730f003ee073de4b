"""The desktop application: QApplication, the data home and the main window."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import cast

from studio import __version__
from studio.errors import StudioError
from studio.home import DataHome


def main(argv: Sequence[str] | None = None) -> int:
    """Open the main window and run the Qt event loop until it closes."""
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
    home = DataHome.resolve()
    try:
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
