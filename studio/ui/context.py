"""What every page shares: the store, the job runner, settings, and app-wide signals.

The context never holds the main window: `go_to`, `notify` and `error` emit signals on
`StudioSignals` that the window connects to its own slots, so pages and the window import
nothing of each other.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QMetaMethod, QObject, QSettings, Signal

from studio.store.database import Store
from studio.ui.jobs import JobRunner


class StudioSignals(QObject):
    """App-wide notifications, emitted in the GUI thread: changes one page makes that others show, and
    requests for the window (show a page, a status message, an error dialog)."""

    datasetsChanged = Signal()  # noqa: N815 - Qt naming
    modelsChanged = Signal()  # noqa: N815
    galleryChanged = Signal()  # noqa: N815
    # A studio PNG's settings to put back in the Generate page (dropped on the gallery).
    restoreGenerateSettings = Signal(dict)  # noqa: N815
    # Items chosen in the gallery for the Interpolate or Inpaint page: (page key, item ids).
    useGalleryItems = Signal(str, list)  # noqa: N815
    # Requests the main window answers: a page key; a status-bar message and its timeout in ms;
    # an error's title and one-line message.
    goToPage = Signal(str)  # noqa: N815
    statusMessage = Signal(str, int)  # noqa: N815
    errorRaised = Signal(str, str)  # noqa: N815


@dataclass
class StudioContext:
    """Handed to every page at construction."""

    store: Store
    runner: JobRunner
    settings: QSettings
    signals: StudioSignals

    def go_to(self, page_key: str) -> None:
        """Show another page (e.g. Generate after a PNG's settings were restored)."""
        self.signals.goToPage.emit(page_key)

    def notify(self, message: str, timeout_ms: int = 6000) -> None:
        """A short message in the status bar."""
        self.signals.statusMessage.emit(message, timeout_ms)

    def error(self, title: str, message: str) -> None:
        """A readable error the app survives (a dialog in the window; stderr when no window listens)."""
        if self.signals.isSignalConnected(QMetaMethod.fromSignal(self.signals.errorRaised)):
            self.signals.errorRaised.emit(title, message)
        else:
            print(f"studio: {title}: {message}", file=sys.stderr)

    def value(self, key: str, default: Any = None) -> Any:
        """A remembered UI setting."""
        return self.settings.value(key, default)
