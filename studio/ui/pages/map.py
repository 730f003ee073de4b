"""The Map page: a 2-D projection (PCA) of a dataset's images and its models' gallery items in the space of
the dataset's encoder.

Dataset images are small grey dots; generated items are larger and coloured by model, class or rating,
one legend entry (a plot item) per colour, so a click on the legend hides that group. Hovering a point
says what it is; clicking a generated item emits `itemChosen(id)`, which the main window answers by
showing that item in the gallery. The points come from the engine's `map_points` in a `QueryOp` (it
embeds any gallery items still missing a vector first, off the GUI thread).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStackedWidget,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from studio.engine.datasets.storage import list_datasets
from studio.engine.embedding.queries import datasets_with_encoders, map_points, no_encoder_hint
from studio.store.database import Store
from studio.ui.context import StudioContext
from studio.ui.operations import QueryOp
from studio.ui.widgets import named
from studio.ui.widgets.plots import style_axes, themed_plot

COLOUR_BY = (("Model", "model"), ("Class", "class"), ("Rating", "rating"))
# Tableau 10: distinct on light and dark backgrounds; groups past ten reuse them in order.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
)
# Unrated, then one to five stars from cool to warm.
RATING_COLOURS = ("#9aa5b1", "#4575b4", "#74add1", "#fdae61", "#f46d43", "#d73027")
DATASET_COLOUR = (150, 150, 150, 110)  # translucent grey: thousands of dots read as a density, not a blot
DATASET_SIZE = 4
GALLERY_SIZE = 10


@dataclass(frozen=True)
class MapChoices:
    """The datasets the page offers, and which of them have an encoder."""

    datasets: list[str]
    with_encoders: set[str]


def read_choices(store: Store) -> MapChoices:
    """Every dataset name and those with an encoder (database reads: off the GUI thread)."""
    return MapChoices([d.name for d in list_datasets(store)], set(datasets_with_encoders(store)))


def group_of(point: dict[str, Any], colour_by: str) -> str:
    """The legend group a gallery point falls in for the "Colour by" choice."""
    if colour_by == "rating":
        rating = int(point.get("rating") or 0)
        return "unrated" if rating == 0 else f"{rating} star{'s' if rating > 1 else ''}"
    value = point.get(colour_by)
    return "no class" if colour_by == "class" and value is None else str(value)


def describe_point(point: dict[str, Any]) -> str:
    """One line (plain text) about a map point: a dataset image or a generated item."""
    if point["kind"] == "dataset":
        label = f", class {point['class']}" if point.get("class") is not None else ""
        return f"Dataset image {point['position']}{label}"
    parts = [f"Gallery item #{point['id']}", f"model {point['model']}"]
    if point.get("class") is not None:
        parts.append(f"class {point['class']}")
    rating = int(point.get("rating") or 0)
    parts.append("\u2605" * rating if rating else "unrated")
    if point.get("flag"):
        parts.append(str(point["flag"]))
    return ", ".join(parts)


def _group_colours(groups: list[str], colour_by: str) -> dict[str, str]:
    if colour_by == "rating":
        order = ["unrated", *(f"{r} star{'s' if r > 1 else ''}" for r in range(1, 6))]
        return {group: RATING_COLOURS[order.index(group)] for group in groups}
    return {group: PALETTE[index % len(PALETTE)] for index, group in enumerate(groups)}


def _sort_groups(groups: set[str], colour_by: str) -> list[str]:
    if colour_by == "rating":
        return sorted(groups, key=lambda g: 0 if g == "unrated" else int(g.split()[0]))
    # Classes that are numbers sort as numbers ("2" before "10"); "no class" goes last.
    return sorted(groups, key=lambda g: (g == "no class", not g.isdigit(), int(g) if g.isdigit() else 0, g))


class MapPage(QWidget):
    """A scatter map of a dataset and its gallery in the encoder's space; a click shows an item in the gallery."""

    itemChosen = Signal(int)  # noqa: N815 - Qt naming: a gallery item clicked on the map

    def __init__(self, context: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.store = context.store
        self.setObjectName("mapPage")
        self.setAccessibleName("Map")
        self.choices = MapChoices([], set())
        self.result: dict[str, Any] | None = None  # the last answer of map_points
        self.points: list[dict[str, Any]] = []
        self.gallery_items: dict[str, pg.ScatterPlotItem] = {}  # legend group -> its plot item
        self.chosen: int | None = None  # the gallery item clicked last
        self.loading = False
        self._stale = True  # reload when next shown (the gallery or the datasets changed meanwhile)
        self._build()
        context.signals.galleryChanged.connect(self._mark_stale)
        context.signals.datasetsChanged.connect(self._mark_stale)

    # --- layout -----------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(QLabel("<h2>Map</h2>"))
        top.addSpacing(12)
        top.addWidget(QLabel("Dataset"))
        self.dataset_combo = named(
            QComboBox(), "mapDatasetCombo", "Dataset", "The dataset whose encoder places the points"
        )
        self.dataset_combo.setMinimumWidth(160)
        self.dataset_combo.currentIndexChanged.connect(lambda _index: self.load())
        top.addWidget(self.dataset_combo)
        top.addSpacing(12)
        top.addWidget(QLabel("Colour by"))
        self.colour_combo = named(
            QComboBox(), "mapColourCombo", "Colour by", "What the colours of the generated items say"
        )
        for title, key in COLOUR_BY:
            self.colour_combo.addItem(title, key)
        self.colour_combo.currentIndexChanged.connect(lambda _index: self._draw_gallery())
        top.addWidget(self.colour_combo)
        top.addSpacing(12)
        self.gallery_check = named(
            QCheckBox("Generated items"),
            "mapGalleryCheck",
            "Show generated items",
            "Place the gallery items of the models trained on this dataset beside its images",
        )
        self.gallery_check.setChecked(True)
        self.gallery_check.toggled.connect(lambda _on: self.load())
        top.addWidget(self.gallery_check)
        top.addStretch(1)
        self.refresh_button = named(
            QPushButton("Refresh"),
            "mapRefreshButton",
            "Refresh the map",
            "Read the datasets and the gallery again (F5)",
        )
        self.refresh_button.clicked.connect(self.refresh)
        top.addWidget(self.refresh_button)
        layout.addLayout(top)

        self.caption = named(QLabel(), "mapCaption", "About the map")
        self.caption.setWordWrap(True)
        self.caption.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.caption)

        self.stack = QStackedWidget()
        self.stack.addWidget(self._build_empty())
        self.stack.addWidget(self._build_plot())
        layout.addWidget(self.stack, 1)
        self.info = named(QLabel(), "mapPointInfo", "The point under the mouse")
        self.info.setTextFormat(Qt.TextFormat.PlainText)
        self.info.setStyleSheet("color: palette(placeholder-text);")
        layout.addWidget(self.info)

    def _build_empty(self) -> QWidget:
        empty = QWidget()
        box = QVBoxLayout(empty)
        box.addStretch(1)
        self.empty_label = named(QLabel(), "mapEmptyState", "Why there is no map")
        self.empty_label.setWordWrap(True)
        self.empty_label.setTextFormat(Qt.TextFormat.RichText)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        box.addWidget(self.empty_label)
        self.datasets_button = named(
            QPushButton("Open the Datasets page"),
            "mapDatasetsButton",
            "Open the Datasets page",
            "Train the dataset's encoder on the Datasets page (its Encoder tab)",
        )
        self.datasets_button.clicked.connect(lambda: self.context.go_to("datasets"))
        box.addWidget(self.datasets_button, 0, Qt.AlignmentFlag.AlignCenter)
        box.addStretch(2)
        return empty

    def _build_plot(self) -> QWidget:
        plot = themed_plot(self, "mapPlot", "Map of the dataset and the gallery", None)
        self.plot, foreground, background = plot.widget, plot.foreground, plot.background
        item = self.plot.getPlotItem()
        style_axes(item, foreground, "first principal component", "second principal component", grid_alpha=0.15)
        for axis_name in ("bottom", "left"):
            item.getAxis(axis_name).enableAutoSIPrefix(False)  # "(x0.001)" on a unitless projection only confuses
        self.legend = item.addLegend(offset=(10, 10), labelTextColor=foreground)
        self.legend.setBrush(pg.mkBrush(background.red(), background.green(), background.blue(), 215))
        self.legend.setPen(pg.mkPen(foreground.red(), foreground.green(), foreground.blue(), 60))
        self._foreground = foreground
        # No `name`: a named item would join the legend by itself; `_draw_gallery` adds them with their counts.
        # Hovered spots grow (pyqtgraph's hover style); what they are is said by `_mouse_moved`, which
        # prefers a generated item over the dataset's dots beneath it (pyqtgraph's own tips do not).
        self.dataset_item = pg.ScatterPlotItem(
            size=DATASET_SIZE,
            pen=None,
            brush=pg.mkBrush(*DATASET_COLOUR),
            hoverable=True,
            hoverSize=DATASET_SIZE + 4,
            hoverBrush=pg.mkBrush(90, 90, 90, 255),
            tip=None,
        )
        self.plot.addItem(self.dataset_item)
        self.plot.scene().sigMouseMoved.connect(self._mouse_moved)
        # A ring around the item clicked last (drawn over everything, never in the legend).
        self.ring = pg.ScatterPlotItem(size=GALLERY_SIZE + 10, pen=pg.mkPen(foreground, width=2), brush=None)
        self.ring.setZValue(10)
        self.plot.addItem(self.ring)
        return self.plot

    # --- loading ----------------------------------------------------------------------------

    @property
    def dataset(self) -> str | None:
        """The dataset chosen in the combo, if any."""
        data = self.dataset_combo.currentData()
        return None if data is None else str(data)

    @property
    def colour_by(self) -> str:
        """'model', 'class' or 'rating'."""
        return str(self.colour_combo.currentData())

    def _mark_stale(self) -> None:
        if self.isVisible():
            self.refresh()
        else:
            self._stale = True

    def on_shown(self) -> None:
        """The page came on screen: read the datasets (and the map) when something changed since."""
        if self._stale:
            self.refresh()

    def refresh(self) -> None:
        """Read the datasets and their encoders, then the chosen dataset's map (off the GUI thread)."""
        self._stale = False
        self.loading = True
        store = self.store
        QueryOp(self, lambda: read_choices(store)).latest_only("choices").success(self._show_choices).failure(
            self._failed
        ).run_in_background()

    def _show_choices(self, choices: MapChoices) -> None:
        self.choices = choices
        keep = self.dataset
        self.dataset_combo.blockSignals(True)  # one load below, not one per row
        self.dataset_combo.clear()
        for name in choices.datasets:
            has = name in choices.with_encoders
            self.dataset_combo.addItem(name if has else f"{name} (no encoder)", name)
        target = (
            keep
            if keep in choices.datasets
            else next(
                (name for name in choices.datasets if name in choices.with_encoders),
                choices.datasets[0] if choices.datasets else None,
            )
        )
        self.dataset_combo.setCurrentIndex(max(0, self.dataset_combo.findData(target)))
        self.dataset_combo.blockSignals(False)
        self.load()

    def load(self) -> None:
        """Read the chosen dataset's map; an empty state says why when there can be none."""
        dataset = self.dataset
        if dataset is None:
            self._show_empty(
                "<b>No dataset yet.</b><br>Add one on the Datasets page and train its encoder: its images and "
                "what your models made of it then show here as a map."
            )
            return
        if dataset not in self.choices.with_encoders:
            self._show_empty(
                f"<b>No map for '{_escape(dataset)}' yet.</b><br>{_escape(no_encoder_hint(dataset))}, "
                "or on the Datasets page (its Encoder tab)."
            )
            return
        self.loading = True
        self.caption.setText(f"Placing the images of '{_escape(dataset)}'\u2026")
        store, gallery = self.store, self.gallery_check.isChecked()
        QueryOp(self, lambda: map_points(store, dataset, gallery=gallery)).latest_only("map").success(
            self._show_points
        ).failure(self._failed).run_in_background()

    def _show_empty(self, text: str) -> None:
        self.loading = False
        self.result, self.points, self.chosen = None, [], None
        self.dataset_item.setData(x=[], y=[], data=[])
        self.ring.setData([], [])
        self._draw_gallery()  # no points: removes the generated items and the legend
        self.empty_label.setText(text)
        self.caption.setText("")
        self.info.setText("")
        self.stack.setCurrentIndex(0)

    def _failed(self, reason: str) -> None:
        self._show_empty(f"<b>The map cannot be drawn.</b><br>{_escape(reason)}")

    # --- drawing ----------------------------------------------------------------------------

    def _show_points(self, result: dict[str, Any]) -> None:
        self.loading = False
        if result["dataset"] != self.dataset:
            return
        self.result = result
        self.points = list(result["points"])
        self.stack.setCurrentIndex(1)
        self.chosen = None
        self.ring.setData([], [])
        indices = [i for i, p in enumerate(self.points) if p["kind"] == "dataset"]
        xy = self._xy(indices)
        self.dataset_item.setData(x=xy[:, 0], y=xy[:, 1], data=indices)
        self._draw_gallery()
        generated = sum(1 for p in self.points if p["kind"] == "gallery")
        self.caption.setText(
            f"{len(indices):,} images of '{_escape(result['dataset'])}' (grey) and {generated:,} generated "
            f"item(s), placed by encoder <code>{_escape(str(result['encoder'])[:12])}</code>: nearby points "
            "look alike to it. Hover a point to see what it is; click a generated item to show it in the gallery."
        )
        self.info.setText("")
        self.plot.getPlotItem().getViewBox().autoRange(padding=0.05)

    def _xy(self, indices: list[int]) -> np.ndarray:
        if not indices:
            return np.zeros((0, 2), np.float64)
        return np.array([(self.points[i]["x"], self.points[i]["y"]) for i in indices], np.float64)

    def _draw_gallery(self) -> None:
        """(Re)draw the generated items, one plot item per colour group (each a legend entry)."""
        for item in self.gallery_items.values():
            self.plot.removeItem(item)
        self.gallery_items.clear()
        self.legend.clear()
        if not self.points:
            return
        self.legend.addItem(self.dataset_item, "dataset images")
        colour_by = self.colour_by
        members: dict[str, list[int]] = {}
        for index, point in enumerate(self.points):
            if point["kind"] == "gallery":
                members.setdefault(group_of(point, colour_by), []).append(index)
        groups = _sort_groups(set(members), colour_by)
        colours = _group_colours(groups, colour_by)
        outline = pg.mkPen(QColor(self._foreground).darker(150), width=0.8)
        for group in groups:
            xy = self._xy(members[group])
            item = pg.ScatterPlotItem(
                x=xy[:, 0],
                y=xy[:, 1],
                data=members[group],
                size=GALLERY_SIZE,
                pen=outline,
                brush=pg.mkBrush(colours[group]),
                hoverable=True,
                hoverSize=GALLERY_SIZE + 4,
                tip=None,
            )
            item.setZValue(5)  # over the dataset's dots
            item.sigClicked.connect(self._clicked)
            self.plot.addItem(item)
            self.gallery_items[group] = item
            self.legend.addItem(item, f"{group} ({len(members[group])})")

    def point_at(self, scene_position: QPointF) -> int | None:
        """The index (in `points`) of the point drawn at a scene position: a generated item before a dataset image."""
        for item in (*self.gallery_items.values(), self.dataset_item):
            if not item.isVisible():
                continue  # hidden from the legend
            found = item.pointsAt(item.mapFromScene(scene_position))
            if len(found):
                return int(found[0].data())
        return None

    def _mouse_moved(self, scene_position: QPointF) -> None:
        index = self.point_at(scene_position)
        text = "" if index is None else describe_point(self.points[index])
        if text != self.info.text():
            self.info.setText(text)
            viewport = self.plot.viewport()
            where = viewport.mapToGlobal(self.plot.mapFromScene(scene_position))
            if text:
                QToolTip.showText(where, text, viewport)
            else:
                QToolTip.hideText()

    def _clicked(self, _item: object, points: Any, _event: object) -> None:
        if len(points):
            self.choose(int(points[0].data()))

    def choose(self, index: int) -> None:
        """Mark the generated item at `index` of the points and ask for it in the gallery."""
        point = self.points[index]
        if point["kind"] != "gallery":
            return
        self.chosen = int(point["id"])
        self.ring.setData([point["x"]], [point["y"]])
        self.info.setText(f"{describe_point(point)}: shown in the gallery")
        self.itemChosen.emit(self.chosen)

    def point_count(self) -> int:
        """How many points the plot draws (dataset images and generated items together)."""
        return len(self.dataset_item.data) + sum(len(item.data) for item in self.gallery_items.values())


def _escape(text: str) -> str:
    return html.escape(text, quote=False)  # the text goes between tags, never into an attribute
