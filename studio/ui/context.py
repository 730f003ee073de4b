"""What every page shares: the store, the job runner, settings, and app-wide change notifications."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QSettings, Signal

from studio.store.database import Store
from studio.ui.jobs import JobRunner

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow


class StudioSignals(QObject):
    """Changes one page makes that others show: emitted in the GUI thread after a job ends."""

    datasetsChanged = Signal()  # noqa: N815 - Qt naming
    modelsChanged = Signal()  # noqa: N815
    galleryChanged = Signal()  # noqa: N815
    # A studio PNG's settings to put back in the Generate page (dropped on the gallery).
    restoreGenerateSettings = Signal(dict)  # noqa: N815
    # Items chosen in the gallery for the Interpolate or Inpaint page: (page key, item ids).
    useGalleryItems = Signal(str, list)  # noqa: N815


@dataclass
class StudioContext:
    """Handed to every page at construction."""

    store: Store
    runner: JobRunner
    settings: QSettings
    signals: StudioSignals
    window: MainWindow | None = None

    def go_to(self, page_key: str) -> None:
        """Show another page (e.g. Generate after a PNG's settings were restored)."""
        if self.window is not None:
            self.window.show_page(page_key)

    def notify(self, message: str, timeout_ms: int = 6000) -> None:
        """A short message in the status bar."""
        if self.window is not None:
            self.window.statusBar().showMessage(message, timeout_ms)

    def error(self, title: str, message: str) -> None:
        """A readable error the app survives (a dialog in the window; stderr when there is none)."""
        if self.window is not None:
            self.window.show_error(title, message)

    def value(self, key: str, default: Any = None) -> Any:
        """A remembered UI setting."""
        return self.settings.value(key, default)
