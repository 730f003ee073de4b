"""The main window: a navigation sidebar, the stacked pages and a status bar, nothing else.

The status bar shows the devices (torch device, ONNX Runtime providers) and the engine's current
job with its progress and a cancel button. Drops anywhere on the window are routed: a Studio PNG
restores its settings in Generate, a model folder (Studio's or diffusers') or an .onnx file is imported
as a model, anything else goes to the dataset import dialog. Closing while a job runs asks first, then
cancels it and waits for the engine thread; closing while a training run goes on asks whether to stop it
or leave it running (it is a process of its own: the next window attaches to it).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QWidget,
)

from studio.store.database import Store
from studio.ui.context import StudioContext, StudioSignals
from studio.ui.jobs import JobHandle, JobRunner, JobState
from studio.ui.pages import PAGES
from studio.ui.train.closing import RunClosing, ask_about_run
from studio.ui.widgets.job_queue import install_job_queue

# The map of a dataset's encoder space sits right after the gallery it points into.
MAP_PAGE = ("map", "Map", "studio.ui.pages.map", "MapPage")


def sidebar_pages() -> tuple[tuple[str, str, str, str], ...]:
    """The pages in sidebar order: PAGES with the map after the gallery."""
    keys = [key for key, *_ in PAGES]
    if MAP_PAGE[0] in keys:
        return PAGES
    at = keys.index("gallery") + 1 if "gallery" in keys else len(PAGES)
    return (*PAGES[:at], MAP_PAGE, *PAGES[at:])


def device_summary() -> str:
    """'torch: cuda (NVIDIA ...) | ONNX Runtime: cuda, cpu': the devices that really work here."""
    from studio.engine.devices import provider_report, torch_devices

    devices = torch_devices()
    gpu = next((d for d in devices if d["kind"] != "cpu"), None)
    torch_device = f"{gpu['kind']} ({gpu['name']})" if gpu else "cpu"
    report = provider_report()
    offered_only = [p for p in report["available"] if p not in report["usable"] and p != "tensorrt"]
    note = f" ({', '.join(offered_only)} offered, not usable here)" if offered_only else ""
    return f"torch: {torch_device}  |  ONNX Runtime: {', '.join(report['usable'])}{note}"


def is_model_source(path: Path) -> bool:
    """Whether a dropped path is a model to import: an .onnx file, or a folder with a config.json (Studio's, a
    UNet2DModel's) or a model_index.json (a diffusers pipeline) that is not a Studio dataset (dataset.json)."""
    if path.is_file():
        return path.suffix.lower() == ".onnx"
    if not path.is_dir() or (path / "dataset.json").exists():
        return False
    return (path / "config.json").is_file() or (path / "model_index.json").is_file()


class MainWindow(QMainWindow):
    """Sidebar + stacked pages + status bar."""

    def __init__(self, store: Store, settings: QSettings | None = None) -> None:
        super().__init__()
        self.store = store
        self.setObjectName("mainWindow")
        self.setAccessibleName("Studio")
        self.setWindowTitle("Studio")
        self.setAcceptDrops(True)
        self.runner = JobRunner(self)
        self.settings = settings or QSettings()
        self.context = StudioContext(store, self.runner, self.settings, StudioSignals(self))
        # The pages ask for the window through the context's signals (it never holds the window):
        # connected before any page is built, so a page's first error already shows here.
        self.context.signals.goToPage.connect(self.show_page)
        self.context.signals.statusMessage.connect(self._show_status)
        self.context.signals.errorRaised.connect(self.show_error)
        # Tests and scripts replace this to answer "quit while a job runs?" without a dialog.
        self.confirm_close = self._ask_to_close
        # Likewise for "a training run is going: stop it, leave it running, or cancel closing?" (model -> choice).
        self.choose_run_closing = self._ask_about_run

        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setAccessibleName("Pages")
        self.sidebar.setFixedWidth(150)
        self.pages = QStackedWidget()
        self.page_keys: list[str] = []
        self.page: dict[str, Any] = {}
        for index, (key, title, module, name) in enumerate(sidebar_pages()):
            page = getattr(importlib.import_module(module), name)(self.context)
            self.page[key] = page
            self.page_keys.append(key)
            self.sidebar.addItem(f"{title}")
            self.sidebar.item(index).setToolTip(f"{title} (Ctrl+{index + 1})")
            self.pages.addWidget(page)
            shortcut = QShortcut(QKeySequence(f"Ctrl+{index + 1}"), self)
            shortcut.activated.connect(lambda index=index: self.sidebar.setCurrentRow(index))
        self.sidebar.currentRowChanged.connect(self._page_changed)
        # A generated item clicked on the map is shown in the gallery (pages never hold each other).
        self.page["map"].itemChosen.connect(self.show_gallery_item)
        layout.addWidget(self.sidebar)
        layout.addWidget(self.pages, 1)
        self.setCentralWidget(central)
        QShortcut(QKeySequence(QKeySequence.StandardKey.Refresh), self, self.refresh_current)
        QShortcut(QKeySequence("Ctrl+Q"), self, self.close)

        self._build_status_bar()
        self.job_queue = install_job_queue(self, self.runner)  # see, reorder and cancel queued jobs
        self.runner.jobStarted.connect(self._job_started)
        self.runner.jobEnded.connect(self._job_ended)
        self.runner.queueChanged.connect(self._queue_changed)
        self._restore_state()

    # --- layout and state -----------------------------------------------------------------

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.device_label = QLabel(device_summary())
        self.device_label.setObjectName("deviceLabel")
        self.device_label.setAccessibleName("Devices")
        self.job_label = QLabel("")
        self.job_label.setObjectName("jobLabel")
        self.job_label.setAccessibleName("Current job")
        self.job_progress = QProgressBar()
        self.job_progress.setObjectName("jobProgress")
        self.job_progress.setAccessibleName("Job progress")
        self.job_progress.setFixedWidth(180)
        self.job_progress.setVisible(False)
        self.job_cancel = QPushButton("Cancel")
        self.job_cancel.setObjectName("jobCancelButton")
        self.job_cancel.setAccessibleName("Cancel the current job")
        self.job_cancel.setToolTip("Cancel the running job (Esc)")
        self.job_cancel.setVisible(False)
        self.job_cancel.clicked.connect(self.cancel_current_job)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.cancel_current_job)
        for widget in (self.job_label, self.job_progress, self.job_cancel):
            bar.addPermanentWidget(widget)
        bar.addPermanentWidget(self.device_label)
        if self.store.read_only:
            bar.showMessage(f"Read-only: {self.store.read_only_reason}")

    def _restore_state(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1240, 800)
        last = str(self.settings.value("window/page", "datasets"))
        self.show_page(last if last in self.page_keys else "datasets")

    def _page_changed(self, index: int) -> None:
        self.pages.setCurrentIndex(index)
        if 0 <= index < len(self.page_keys):
            self.settings.setValue("window/page", self.page_keys[index])
            refresh = getattr(self.pages.widget(index), "on_shown", None)
            if refresh is not None:
                refresh()

    def show_page(self, key: str) -> None:
        """Switch to the page with that key."""
        self.sidebar.setCurrentRow(self.page_keys.index(key))

    def show_gallery_item(self, item_id: int) -> None:
        """Show the gallery with one item selected (once its rows are loaded, when a reload is on its way)."""
        gallery = self.page["gallery"]
        self.show_page("gallery")
        if not gallery.loading:
            gallery.show_item(item_id)
            return

        def settled(*_: object) -> None:
            gallery.model.queryLoaded.disconnect(loaded)
            gallery.model.queryFailed.disconnect(settled)

        def loaded() -> None:
            settled()
            gallery.show_item(item_id)

        gallery.model.queryLoaded.connect(loaded)
        gallery.model.queryFailed.connect(settled)

    @property
    def current_key(self) -> str:
        """The key of the page on show."""
        return self.page_keys[self.pages.currentIndex()]

    def refresh_current(self) -> None:
        """F5: reload the page on show from the store."""
        getattr(self.pages.currentWidget(), "refresh", lambda: None)()

    def _show_status(self, message: str, timeout_ms: int) -> None:
        self.statusBar().showMessage(message, timeout_ms)

    def show_error(self, title: str, message: str) -> None:
        """A readable error; the app keeps running."""
        self.statusBar().showMessage(f"{title}: {message}", 10_000)
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setObjectName("errorDialog")
        box.setModal(False)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.show()
        self.last_error = (title, message)

    # --- jobs -------------------------------------------------------------------------------

    def _job_started(self, handle: JobHandle) -> None:
        self.job_label.setText(handle.title)
        self.job_progress.setRange(0, 0)  # busy until the first progress figure
        self.job_progress.setVisible(True)
        self.job_cancel.setVisible(True)
        handle.progressed.connect(self._job_event)

    def _job_event(self, event: Any) -> None:
        done, total = None, None
        if hasattr(event, "fraction") and event.total:
            done, total = event.done, event.total
            self.job_label.setText(f"{self._current_title()}: {event.message or event.stage}")
        elif hasattr(event, "step") and getattr(event, "target_steps", None):
            done, total = event.step, event.target_steps
        if done is not None and total:
            self.job_progress.setRange(0, 1000)
            self.job_progress.setValue(int(1000 * min(1.0, done / total)))

    def _current_title(self) -> str:
        current = self.runner.current
        return current.title if current else ""

    def _job_ended(self, handle: JobHandle) -> None:
        if handle.state is JobState.FAILED and not handle.error_shown:
            self.statusBar().showMessage(f"{handle.title} failed: {handle.error}", 10_000)
        elif handle.state is JobState.CANCELLED:
            self.statusBar().showMessage(f"{handle.title}: cancelled", 6000)
        elif handle.state is JobState.FINISHED:
            self.statusBar().showMessage(f"{handle.title}: done", 4000)

    def _queue_changed(self) -> None:
        pending = self.runner.pending
        if not pending:
            self.job_label.setText("")
            self.job_progress.setVisible(False)
            self.job_cancel.setVisible(False)
        elif len(pending) > 1:
            self.job_label.setText(f"{pending[0].title} (+{len(pending) - 1} queued)")

    def cancel_current_job(self) -> None:
        """Cancel the running job (a training run keeps its last checkpoint)."""
        current = self.runner.current
        if current is not None:
            current.cancel()
            self.job_label.setText(f"{current.title}: cancelling...")

    # --- drops ------------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        """Accept files and folders from anywhere."""
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        """Route dropped paths to the page that handles them."""
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if not paths:
            self.show_error("Nothing to import", "only local files and folders can be dropped here")
            return
        event.acceptProposedAction()
        self.handle_drop(paths)

    def handle_drop(self, paths: list[Path]) -> None:
        """A studio PNG -> Generate settings; a model (folder or .onnx file) -> model import; else a dataset import."""
        if len(paths) == 1 and paths[0].suffix.lower() == ".png" and paths[0].is_file():
            gallery = self.page.get("gallery")
            if gallery is not None and gallery.restore_settings_from(paths[0], quiet=True):
                return
        if len(paths) == 1 and is_model_source(paths[0]):
            self.show_page("models")
            self.page["models"].import_model_folder(paths[0])
            return
        self.show_page("datasets")
        self.page["datasets"].start_import(paths)

    # --- closing ----------------------------------------------------------------------------

    def _ask_to_close(self) -> bool:
        current = self.runner.pending[0].title if self.runner.pending else "a job"
        answer = QMessageBox.question(
            self,
            "A job is running",
            f"{current} is still running. Cancel it and quit? A training run keeps its last checkpoint.",
        )
        return answer == QMessageBox.StandardButton.Yes

    def _ask_about_run(self, model: str) -> RunClosing:
        return ask_about_run(self, model)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Ask when a job or a run goes on; then cancel, wait for the engine thread, and remember the window."""
        train: Any = self.page.get("train")
        if getattr(train, "following", False):
            choice = self.choose_run_closing(train.model_name)
            if choice == RunClosing.CANCEL:  # ==: a test's hook may answer with the plain string
                event.ignore()
                return
            train.let_go(stop=choice == RunClosing.STOP)  # the runner then ends the other jobs as below
        elif self.runner.busy and not self.confirm_close():
            event.ignore()
            return
        for page in self.page.values():
            stop = getattr(page, "shutdown", None)
            if stop is not None:
                stop()
        self.runner.shutdown()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.sync()
        event.accept()
