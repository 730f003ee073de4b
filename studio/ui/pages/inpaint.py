"""The Inpaint page: paint over part of an image and let a model regenerate it, the rest kept as is.

The source is an image file or a gallery item. The mask is painted on a MaskCanvas at the image's
own size (brush, eraser, soft edge, undo/redo, zoom) and handed to the engine's inpaint job as a
boolean array, which centre-crops and scales image and mask alike to the model's resolution. Each
completion lands in the gallery; the page shows it beside the model's view of the original.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from PySide6.QtCore import QRect, QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QImage,
    QImageReader,
    QKeySequence,
    QPainter,
    QPaintEvent,
    QShortcut,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.engine.families.conditioning import CLASS_OPTION
from studio.engine.generation import MAX_COUNT, MAX_SEED, inpaint
from studio.engine.jobs import CancelToken, Job
from studio.engine.library import ModelSummary
from studio.engine.untrusted.png import read_png_metadata
from studio.errors import StudioError
from studio.store.gallery import GalleryRepository
from studio.ui.context import StudioContext
from studio.ui.jobs import JobHandle
from studio.ui.pages.generate import restore_form
from studio.ui.pages.interpolate import IMAGE_FILTER
from studio.ui.widgets import named
from studio.ui.widgets.generation_controls import GenerationPage, result_summary, scroll_column
from studio.ui.widgets.mask_canvas import MASK_COLOUR, MaskCanvas
from studio.ui.widgets.model_picker import families_that_can, model_caption
from studio.ui.widgets.result_strip import ResultStrip, seed_caption
from studio.ui.widgets.seed_box import count_spin, seed_row

MAX_SIDE = 4096  # larger images would make the mask and its undo history needlessly heavy
RIGHT_COLUMN_WIDTH = 300


def grey_array(image: QImage) -> np.ndarray:
    """A QImage as uint8 H x W grey values (a copy)."""
    grey = image.convertToFormat(QImage.Format.Format_Grayscale8)
    data = np.frombuffer(grey.constBits(), np.uint8).reshape(grey.height(), grey.bytesPerLine())
    return data[:, : grey.width()].copy()


def mask_overlay(mask: np.ndarray) -> QImage:
    """A boolean mask as a translucent red RGBA image (the canvas's colours)."""
    height, width = mask.shape
    rgba = np.zeros((height, width, 4), np.uint8)
    rgba[..., :3] = MASK_COLOUR
    rgba[..., 3] = np.where(mask, 130, 0).astype(np.uint8)
    return QImage(rgba.data, width, height, 4 * width, QImage.Format.Format_RGBA8888).copy()


class InpaintComparison(QWidget):
    """The model's view of the original beside one completion, both scaled by whole pixels."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.original: QImage | None = None
        self.result: QImage | None = None
        self.overlay: QImage | None = None
        self.result_caption = "Result"
        self.show_mask = True
        self.setMinimumSize(200, 140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def set_images(
        self, original: QImage | None, result: QImage | None, mask: np.ndarray | None, caption: str = "Result"
    ) -> None:
        """Show an original, a result and (optionally) the regenerated area over the original."""
        self.original, self.result, self.result_caption = original, result, caption
        self.overlay = mask_overlay(mask) if mask is not None else None
        self.update()

    def set_show_mask(self, show: bool) -> None:
        """Whether the regenerated area is tinted on the original."""
        self.show_mask = show
        self.update()

    def sizeHint(self) -> QSize:
        """Room for two panels and their captions."""
        return QSize(RIGHT_COLUMN_WIDTH, 190)

    def heightForWidth(self, width: int) -> int:
        """Square panels side by side, plus the captions."""
        return (width - 8) // 2 + 22

    def hasHeightForWidth(self) -> bool:
        """The panels stay square."""
        return True

    def paintEvent(self, event: QPaintEvent) -> None:
        """Two captioned panels: the original (tinted where regenerated) and the result."""
        del event
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        gap, caption = 8, 20
        side = max(1, min((self.width() - gap) // 2, self.height() - caption))
        panels = (
            ("Original (model input)", self.original, self.overlay if self.show_mask else None),
            (self.result_caption, self.result, None),
        )
        for index, (title, image, overlay) in enumerate(panels):
            left = index * (side + gap)
            painter.setPen(self.palette().windowText().color())
            painter.drawText(
                QRect(left, 0, side, caption), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, title
            )
            frame = QRect(left, caption, side, side)
            painter.fillRect(frame, QColor(40, 40, 40))
            if image is None or image.isNull():
                painter.setPen(QColor(170, 170, 170))
                painter.drawText(frame, Qt.AlignmentFlag.AlignCenter, "—")
                continue
            target = self._fit(image.size(), frame)
            painter.drawImage(target, image)
            if overlay is not None:
                painter.drawImage(target, overlay)
        painter.end()

    @staticmethod
    def _fit(size: QSize, frame: QRect) -> QRectF:
        """The largest whole-pixel scaling of `size` inside `frame`, centred (smaller when it must shrink)."""
        longest = max(size.width(), size.height(), 1)
        scale = frame.width() // longest if longest <= frame.width() else frame.width() / longest
        width, height = size.width() * scale, size.height() * scale
        return QRectF(frame.x() + (frame.width() - width) / 2, frame.y() + (frame.height() - height) / 2, width, height)


class InpaintPage(GenerationPage):
    """Open an image, paint the part to regenerate, choose a model and run; completions go to the gallery."""

    OPERATION = "inpaint"
    NO_USABLE_MODEL = "No model here can inpaint: train a {families} model."
    RUN_TIP = "regenerate the painted area (Ctrl+Return)"

    def __init__(self, context: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(context, "inpaint", "Inpaint", parent)
        self.source: str | None = None  # what the engine gets: a file path or "#ID"
        self._results: list[dict[str, Any]] = []
        self._fit_pending = False

        # The source image.
        self.open_button = named(
            QPushButton("Open image…"), "inpaintOpenButton", "Open an image file", "open an image file to complete"
        )
        self.item_edit = named(
            QLineEdit(),
            "inpaintItemEdit",
            "Gallery item to complete",
            "a gallery item id such as #12 (Return loads it)",
        )
        self.item_edit.setPlaceholderText("#ID")
        self.item_button = named(
            QPushButton("Load"),
            "inpaintItemLoadButton",
            "Load the gallery item",
            "load the gallery item typed on the left",
        )
        self.source_info = named(
            QLabel("No image yet: open a file or load a gallery item."),
            "inpaintSourceInfo",
            "The image being completed",
        )
        self.source_info.setWordWrap(True)

        # Model and sampling.
        self._build_model_controls(
            "inpaint", "the model that regenerates the masked part (families that cannot are disabled)"
        )
        self.count_spin = count_spin(
            "inpaintCountSpin",
            "Number of completions",
            "how many completions to make (seeds seed, seed+1, ...)",
            int(context.value("inpaint/count", 4)),
        )
        seeds, self.seed_spin, self.dice_button = seed_row("inpaint", MAX_SEED - MAX_COUNT)
        self.class_picker = self._build_class_picker(
            "inpaintClassCombo",
            "Class",
            "the class to complete the image as; Any class: a gallery item this model made keeps its own class, "
            "otherwise each completion's class is drawn from its seed",
        )
        self.run_button = self._build_run_controls("Inpaint", "inpaintRunButton", "Inpainting")

        # The canvas and its tools.
        self.canvas = named(
            MaskCanvas(), "inpaintCanvas", "Mask canvas", "paint the area to regenerate; Ctrl+wheel zooms"
        )
        self.canvas_scroll = named(QScrollArea(), "inpaintCanvasScroll", "Mask canvas view")
        self.canvas_scroll.setWidget(self.canvas)
        self.canvas_scroll.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.canvas_scroll.setWidgetResizable(False)
        self.brush_button = self._tool_button("Brush", "inpaintBrushButton", "Brush: paint the area to regenerate (B)")
        self.eraser_button = self._tool_button("Eraser", "inpaintEraserButton", "Eraser: keep these pixels (E)")
        self.brush_button.setCheckable(True)
        self.eraser_button.setCheckable(True)
        self.brush_button.setChecked(True)
        tools = QButtonGroup(self)
        tools.setExclusive(True)
        tools.addButton(self.brush_button)
        tools.addButton(self.eraser_button)
        self.size_slider = named(
            QSlider(Qt.Orientation.Horizontal),
            "inpaintBrushSize",
            "Brush size",
            "the brush's diameter in image pixels ([ and ] change it)",
        )
        self.size_slider.setRange(1, 32)
        self.size_slider.setValue(self.canvas.brush_size)
        self.size_slider.setMinimumWidth(80)
        self.size_label = QLabel()
        self.size_label.setObjectName("inpaintBrushSizeLabel")
        self.size_label.setMinimumWidth(36)
        self.soft_check = named(
            QCheckBox("Soft edge"),
            "inpaintSoftEdgeCheck",
            "Soft edge",
            "a feathered brush rim; the mask is cut at half strength when run",
        )
        self.undo_button = self._tool_button("Undo", "inpaintUndoButton", "undo the last stroke (Ctrl+Z)")
        self.redo_button = self._tool_button("Redo", "inpaintRedoButton", "redo (Ctrl+Shift+Z)")
        self.clear_button = self._tool_button("Clear", "inpaintClearButton", "clear the mask")
        self.invert_button = self._tool_button("Invert", "inpaintInvertButton", "swap painted and kept pixels")
        self.zoom_out_button = self._tool_button("-", "inpaintZoomOutButton", "zoom out (Ctrl+-, Ctrl+wheel)")
        self.zoom_label = named(QLabel(), "inpaintZoomLabel", "Zoom")
        self.zoom_label.setMinimumWidth(32)
        self.zoom_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.zoom_in_button = self._tool_button("+", "inpaintZoomInButton", "zoom in (Ctrl++, Ctrl+wheel)")
        self.zoom_fit_button = self._tool_button("Fit", "inpaintZoomFitButton", "fit the image in view (Ctrl+0)")
        self.mask_info = named(QLabel(), "inpaintMaskInfo", "Mask summary")

        # The results.
        self.comparison = named(InpaintComparison(), "inpaintComparison", "Original and result side by side")
        self.mask_check = named(
            QCheckBox("Tint the regenerated area"),
            "inpaintCompareMaskCheck",
            "Tint the regenerated area on the original",
        )
        self.mask_check.setChecked(True)
        self.strip = named(
            ResultStrip(72),
            "inpaintResults",
            "Inpainting results",
            "click a result to compare it with the original; double-click opens the gallery",
        )
        self.gallery_button = named(
            QPushButton("Open in gallery"), "inpaintOpenGalleryButton", "Open the results in the gallery"
        )
        self.gallery_button.setEnabled(False)

        self._build_layout(seeds)
        self._connect()
        self._start(self.run)
        self._tools_changed()
        self._history_changed()
        self._zoom_changed(self.canvas.zoom)
        self._enable_tools()

    # --- construction --------------------------------------------------------------------

    def _tool_button(self, text: str, object_name: str, tooltip: str) -> QToolButton:
        button = named(QToolButton(), object_name, tooltip.split(" (")[0].split(":")[0].capitalize(), tooltip)
        button.setText(text)
        return button

    def _build_layout(self, seeds: QWidget) -> None:
        source_box = QGroupBox("Image")
        source = QVBoxLayout(source_box)
        item_row = QHBoxLayout()
        item_row.addWidget(self.item_edit, 1)
        item_row.addWidget(self.item_button)
        source.addWidget(self.open_button)
        source.addLayout(item_row)
        source.addWidget(self.source_info)
        settings = self._build_settings(
            (("Backend", self.backend), ("Class", self.class_picker), ("Results", self.count_spin), ("Seed", seeds)),
            top=(source_box,),
        )

        paint_tools = QHBoxLayout()
        for widget in (
            self.brush_button,
            self.eraser_button,
            QLabel("Size"),
            self.size_slider,
            self.size_label,
            self.soft_check,
        ):
            paint_tools.addWidget(widget)
        paint_tools.addStretch(1)
        edit_tools = QHBoxLayout()
        for widget in (self.undo_button, self.redo_button, self.clear_button, self.invert_button):
            edit_tools.addWidget(widget)
        edit_tools.addStretch(1)
        for widget in (self.zoom_out_button, self.zoom_label, self.zoom_in_button, self.zoom_fit_button):
            edit_tools.addWidget(widget)
        self.canvas_area = QWidget()  # the tools and the canvas: single-key shortcuts live here
        self.canvas_area.setObjectName("inpaintCanvasArea")
        centre = QVBoxLayout(self.canvas_area)
        centre.setContentsMargins(0, 0, 0, 0)
        centre.addLayout(paint_tools)
        centre.addLayout(edit_tools)
        centre.addWidget(self.canvas_scroll, 1)
        centre.addWidget(self.mask_info)

        results = QWidget()
        results.setFixedWidth(RIGHT_COLUMN_WIDTH)
        right = QVBoxLayout(results)
        right.setContentsMargins(0, 0, 0, 0)
        right.addWidget(QLabel("<b>Compare</b>"))
        right.addWidget(self.comparison)
        right.addWidget(self.mask_check)
        right.addWidget(QLabel("Results (click one to compare)"))
        right.addWidget(self.strip, 1)
        right.addWidget(self.gallery_button)

        body = QHBoxLayout()
        body.addWidget(scroll_column(settings, 320))
        body.addWidget(self.canvas_area, 1)
        body.addWidget(results)
        self._lay_out(body)

    def _connect(self) -> None:
        self.open_button.clicked.connect(self.choose_image_file)
        self.item_button.clicked.connect(self._load_typed_item)
        self.item_edit.returnPressed.connect(self._load_typed_item)
        self.brush_button.toggled.connect(lambda _on: self._tools_changed())
        self.size_slider.valueChanged.connect(lambda _value: self._tools_changed())
        self.soft_check.toggled.connect(lambda _on: self._tools_changed())
        self.undo_button.clicked.connect(self.canvas.undo)
        self.redo_button.clicked.connect(self.canvas.redo)
        self.clear_button.clicked.connect(self.canvas.clear)
        self.invert_button.clicked.connect(self.canvas.invert)
        self.zoom_in_button.clicked.connect(self.canvas.zoom_in)
        self.zoom_out_button.clicked.connect(self.canvas.zoom_out)
        self.zoom_fit_button.clicked.connect(self.fit_canvas)
        self.canvas.zoomChanged.connect(self._zoom_changed)
        self.canvas.maskChanged.connect(self._mask_changed)
        self.canvas.historyChanged.connect(self._history_changed)
        self.mask_check.toggled.connect(self.comparison.set_show_mask)
        self.strip.itemChosen.connect(self.compare_item)
        self.strip.itemOpened.connect(self._open_in_gallery)
        self.gallery_button.clicked.connect(lambda: self._open_in_gallery(None))
        # Window shortcuts on the page (Ctrl+Return runs it: GenerationPage._start): Qt matches them only
        # while the page is visible, and a focused text field keeps Ctrl+Z for its own undo.
        shortcuts = (
            (("Ctrl+Z",), self.canvas.undo),
            (("Ctrl+Shift+Z", "Ctrl+Y"), self.canvas.redo),
            (("Ctrl++", "Ctrl+="), self.canvas.zoom_in),
            (("Ctrl+-",), self.canvas.zoom_out),
            (("Ctrl+0",), self.fit_canvas),
        )
        for keys, slot in shortcuts:
            for key in keys:
                QShortcut(QKeySequence(key), self, slot)
        # Single keys only while the canvas area has the focus: elsewhere they are typing.
        tool_keys = (
            ("B", lambda: self.brush_button.setChecked(True)),
            ("E", lambda: self.eraser_button.setChecked(True)),
            ("[", lambda: self.size_slider.setValue(self.size_slider.value() - 1)),
            ("]", lambda: self.size_slider.setValue(self.size_slider.value() + 1)),
        )
        for key, slot in tool_keys:
            shortcut = QShortcut(QKeySequence(key), self.canvas_area, slot)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.context.signals.useGalleryItems.connect(self.use_gallery_items)

    # --- state ---------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        """An image opened while the page was hidden is fitted once the view has its real size."""
        super().showEvent(event)
        if self._fit_pending:
            self._fit_pending = False
            layout = self.layout()
            if layout is not None:
                layout.activate()
            self.fit_canvas()

    def _model_text(self, model: ModelSummary) -> str:
        size = model.resolution
        return (
            f"{model_caption(model)}. It completes {size}x{size} images: the image is centre-cropped to a "
            "square and scaled to that size, the mask with it."
        )

    def _run_problem(self) -> str | None:
        if not self.canvas.has_image():
            return "open an image file or a gallery item first"
        if self.model_picker.current() is None:
            return "choose a model that can inpaint"
        # An empty mask still lets the button be pressed: the refusal explains what to do.
        return None

    def _tools_changed(self) -> None:
        self.canvas.set_tool("brush" if self.brush_button.isChecked() else "eraser")
        self.canvas.set_brush_size(self.size_slider.value())
        self.canvas.set_soft_edge(self.soft_check.isChecked())
        self.size_label.setText(f"{self.size_slider.value()} px")

    def _zoom_changed(self, zoom: int) -> None:
        self.zoom_label.setText(f"{zoom}x")
        self.zoom_out_button.setEnabled(zoom > 1)

    def _enable_tools(self) -> None:
        """The painting tools wait for an image."""
        loaded = self.canvas.has_image()
        for widget in (
            self.brush_button,
            self.eraser_button,
            self.size_slider,
            self.soft_check,
            self.clear_button,
            self.invert_button,
            self.zoom_in_button,
            self.zoom_out_button,
            self.zoom_fit_button,
        ):
            widget.setEnabled(loaded)
        if loaded:
            self._zoom_changed(self.canvas.zoom)
        self.zoom_label.setText(f"{self.canvas.zoom}x" if loaded else "")

    def _history_changed(self) -> None:
        self.undo_button.setEnabled(self.canvas.can_undo)
        self.redo_button.setEnabled(self.canvas.can_redo)

    def _mask_changed(self) -> None:
        mask = self.canvas.mask_bool()
        if not mask.size:
            self.mask_info.setText("")
            return
        painted = int(mask.sum())
        self.mask_info.setText(f"{painted:,} of {mask.size:,} pixels to regenerate ({painted / mask.size:.0%})")

    def fit_canvas(self) -> None:
        """Zoom so that the whole image shows."""
        viewport = self.canvas_scroll.viewport().size()
        self.canvas.fit_to(QSize(max(1, viewport.width() - 4), max(1, viewport.height() - 4)))

    # --- the source ----------------------------------------------------------------------

    def choose_image_file(self) -> None:
        """Ask for an image file and open it."""
        path, _filter = QFileDialog.getOpenFileName(self, "An image to complete", "", IMAGE_FILTER)
        if path:
            self.open_image_file(Path(path))

    def open_image_file(self, path: Path) -> bool:
        """Show an image file on the canvas with an empty mask; False (with a message) when it cannot be read."""
        image = self._read_image(Path(path), str(path))
        if image is None:
            return False
        self._set_source(image, str(path), f"{Path(path).name}: {image.width()}x{image.height()}")
        return True

    def load_gallery_item(self, item_id: int) -> bool:
        """Show a gallery item on the canvas; its model is chosen when it can inpaint."""
        try:
            entry = GalleryRepository(self.store).get(item_id)
        except StudioError as error:
            self.context.error("Gallery item not found", str(error))
            return False
        if entry.deleted:
            self.context.error("Gallery item in the trash", f"item #{entry.id} is in the trash: restore it first")
            return False
        image = self._read_image(self.store.home.absolute(entry.path), f"gallery item #{entry.id}")
        if image is None:
            return False
        self.item_edit.setText(f"#{entry.id}")
        self._set_source(
            image,
            f"#{entry.id}",
            f"gallery item #{entry.id} ({entry.operation} by {entry.model}"
            + (f", class {entry.class_name}" if entry.class_name is not None else "")
            + f"): {image.width()}x{image.height()}",
        )
        self.model_picker.select(entry.model)  # the model that made it, when it can inpaint
        return True

    def _read_image(self, path: Path, what: str) -> QImage | None:
        reader = QImageReader(str(path))
        size = reader.size()
        if size.isValid() and max(size.width(), size.height()) > MAX_SIDE:
            self.context.error(
                "Image too large",
                f"{what} is {size.width()}x{size.height()}: open images up to {MAX_SIDE} pixels a side",
            )
            return None
        image = reader.read()
        if image.isNull():
            self.context.error("Cannot open the image", f"{what}: {reader.errorString()}")
            return None
        return image

    def _set_source(self, image: QImage, source: str, description: str) -> None:
        self.source = source
        self.canvas.set_image(image)
        side = min(image.width(), image.height())
        self.canvas.crop = QRect((image.width() - side) // 2, (image.height() - side) // 2, side, side)
        self.size_slider.setRange(1, max(8, max(image.width(), image.height()) // 2))
        self.size_slider.setValue(max(1, round(max(image.width(), image.height()) / 8)))
        self.source_info.setText(
            description
            + ("" if image.width() == image.height() else ". Only the centre square (outlined) reaches the model.")
        )
        self._fit_pending = not self.isVisible()  # a hidden view has no meaningful size yet
        self.fit_canvas()
        self._enable_tools()
        self._mask_changed()
        self._update_run_state()

    def _load_typed_item(self) -> None:
        text = self.item_edit.text().strip().removeprefix("#").removeprefix("item:")
        if not text.isdigit():
            self.context.error("Not a gallery item", f"'{self.item_edit.text()}' is not a gallery item id such as #12")
            return
        self.load_gallery_item(int(text))

    def use_gallery_items(self, page_key: str, ids: Sequence[int]) -> None:
        """An item chosen in the gallery becomes the image to complete (or, for settings, is made again)."""
        if page_key == "inpaint-settings" and ids:
            self.restore_inpainting(int(ids[0]))
            return
        if page_key != "inpaint" or not ids:
            return
        self.context.go_to("inpaint")
        self.refresh()
        if self.load_gallery_item(int(ids[0])) and len(ids) > 1:
            self.context.notify(f"inpainting #{ids[0]}: one image at a time, the other {len(ids) - 1} are left out")

    def restore_inpainting(self, item_id: int) -> bool:
        """Fill the page from an inpainted item: its source, mask, model, class, seed and settings."""
        self.context.go_to("inpaint")
        self.refresh()
        try:
            repository = GalleryRepository(self.store)
            entry = repository.get(item_id)
            metadata = read_png_metadata(self.store.home.absolute(entry.path), with_pixels=False)
        except StudioError as error:
            self.context.error("Cannot use these settings", str(error))
            return False
        sources = [parent for parent, role in repository.parents(item_id) if role == "source"]
        # The source item when it still exists, else the copy of the source kept in the data home.
        opened = self.load_gallery_item(sources[0]) if sources else False
        if not opened and metadata.source is not None:
            opened = self.open_image_file(self.store.home.absolute(metadata.source))
        if not opened:
            return False
        notes = []
        if not self.model_picker.select(entry.model):
            notes.append(f"the model '{entry.model}' is not here: choose one")
        if entry.seed is not None:
            self.seed_spin.setValue(entry.seed)
        params = dict(entry.params)
        asked = params.pop(CLASS_OPTION, None)
        if asked is not None and not self.class_picker.choose(asked if isinstance(asked, str) else None):
            notes.append(f"no class '{asked}'")
        skipped = restore_form(self.form, params)
        if skipped:
            notes.append(f"not restored: {', '.join(skipped)}")
        if metadata.mask is not None:
            notes += self._restore_mask(self.store.home.absolute(metadata.mask))
        message = f"Inpainting of #{item_id} restored, seed {entry.seed}" + (f" ({'; '.join(notes)})" if notes else "")
        self.context.notify(message)
        return True

    def _restore_mask(self, path: Path) -> list[str]:
        """Paint the recorded mask when it fits the image on the canvas; else say why not."""
        try:
            with Image.open(path) as image:
                mask = np.asarray(image.convert("L"), np.float32) / 255.0
        except (OSError, ValueError):
            return ["the mask file is missing: paint the area again"]
        if mask.shape != self.canvas.mask_values().shape:
            return ["the mask was made at another size: paint the area again"]
        self.canvas.set_mask(mask)
        return []

    # --- running -------------------------------------------------------------------------

    def refusal(self) -> tuple[str, str] | None:
        """Why the run cannot start as things stand (a title and a message), or None."""
        if not self.canvas.has_image() or self.source is None:
            return "No image", "open an image file or a gallery item (#ID) first, then paint the area to regenerate"
        if self.model_picker.current() is None:
            return "No model", f"choose a model that can inpaint (a {families_that_can('inpaint')} model)"
        mask = self.canvas.mask_bool()
        crop = self.canvas.crop or QRect(0, 0, mask.shape[1], mask.shape[0])
        seen = mask[crop.y() : crop.y() + crop.height(), crop.x() : crop.x() + crop.width()]
        if not seen.any():
            if mask.any():
                return "Empty mask", "the painted area lies outside the centre square the model sees: paint inside it"
            return "Empty mask", "the mask is empty: paint the area to regenerate with the brush"
        if seen.all():
            return "Full mask", "the mask covers the whole image, so nothing is kept: use Generate instead"
        return None

    def run(self) -> JobHandle | None:
        """Queue the inpainting job; None (with a readable message) when it cannot run."""
        if self.running:
            return None
        refused = self.refusal()
        if refused is not None:
            self.status.setText(f"{refused[0]}: {refused[1]}")
            self.context.error(*refused)
            return None
        model = self.model_picker.current()
        assert model is not None and self.source is not None
        try:
            options = {**self.form.values(), **self.class_options()}
        except StudioError as error:
            self.context.error("Invalid sampling setting", str(error))
            return None
        name, source, mask = model.name, self.source, self.canvas.mask_bool()
        count, seed, store = self.count_spin.value(), self.seed_spin.value(), self.store
        backend, provider = self.backend.backend(), self.backend.provider()
        self.context.settings.setValue("inpaint/model", name)
        self.context.settings.setValue("inpaint/count", count)

        def factory(token: CancelToken) -> Job:
            # Runs in the engine thread: plain values and a copy of the mask, never a widget.
            return inpaint(
                store, name, source, mask, count, seed, options, backend=backend, provider=provider, cancel=token
            )

        shown = source if source.startswith("#") else Path(source).name
        return self._run_job(f"Inpaint {shown} with {name}", factory, self._finished, "Inpainting failed")

    def _finished(self, result: Any) -> None:
        self._results = list(result.items)
        self.status.setText(result_summary(result, "completion"))
        self.strip.show_items(result.items, seed_caption)
        self.gallery_button.setEnabled(bool(result.items))
        if result.items:
            self.compare_item(int(result.items[0]["id"]))

    def compare_item(self, item_id: int) -> None:
        """Show a completion beside the model's view of its original, the regenerated area tinted."""
        try:
            entry = GalleryRepository(self.store).get(item_id)
        except StudioError as error:
            self.context.error("Gallery item not found", str(error))
            return
        home = self.store.home
        result = QImage(str(home.absolute(entry.path)))
        source_path = entry.params.get("source")
        mask_path = entry.params.get("mask")
        original = QImage(str(home.absolute(source_path))) if source_path else None
        mask = None
        if mask_path:
            mask_image = QImage(str(home.absolute(mask_path)))
            mask = grey_array(mask_image) >= 128 if not mask_image.isNull() else None
        self.comparison.set_images(original, result, mask, f"Result #{entry.id} (seed {entry.seed})")

    def _open_in_gallery(self, item_id: int | None) -> None:
        self.context.go_to("gallery")
        ids = [int(item["id"]) for item in self._results]
        if item_id is not None:
            self.context.notify(f"gallery item #{item_id}")
        elif ids:
            self.context.notify(f"inpainting results: #{ids[0]} to #{ids[-1]}")
