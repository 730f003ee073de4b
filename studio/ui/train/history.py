"""The Train page's history: a model's past runs, their curves overlaid (one colour per run), smoothed as
TensorBoard smooths them, and exported as CSV.

The curves come from the store (`training_history.run_curves`, read off the GUI thread), so a finished,
cancelled or interrupted run shows after the app restarts, and a resumed run continues the step axis.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from studio.engine.library import ModelSummary
from studio.engine.training_history import SMOOTHING_MAX, RunCurves, export_csv, run_curves, smooth
from studio.ui.context import StudioContext
from studio.ui.operations import QueryOp
from studio.ui.widgets import named
from studio.ui.widgets.plots import style_axes, themed_plot

RUN_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
# One run's several losses share its colour and differ by dash.
DASHES = (
    Qt.PenStyle.SolidLine,
    Qt.PenStyle.DashLine,
    Qt.PenStyle.DotLine,
    Qt.PenStyle.DashDotLine,
    Qt.PenStyle.DashDotDotLine,
)
ALL_LOSSES = "loss/*"
DEFAULT_SMOOTHING = 0.6  # TensorBoard's default


def run_label(curves: RunCurves) -> str:
    """'Run 3 · completed · 0-1,500' (its steps)."""
    run = curves.run
    return f"Run {run.id} \u00b7 {run.status} \u00b7 {run.start_step:,}-{run.end_step:,}"


def _swatch(colour: str) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(QColor(colour))
    return QIcon(pixmap)


class TrainHistory(QWidget):
    """Pick a model, tick its runs, choose a metric and a smoothing; the plot overlays them."""

    def __init__(self, context: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setObjectName("trainHistoryPanel")
        self.curves: list[RunCurves] = []
        self.model = ""  # the model whose runs are listed
        self.items: list[pg.PlotDataItem] = []
        self.drawn: dict[tuple[int, str], pg.PlotDataItem] = {}  # (run id, tag) -> its smoothed curve
        self.last_export: Path | None = None

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        side = QVBoxLayout()
        side.setSpacing(4)
        self.model_combo = named(QComboBox(), "trainHistoryModelCombo", "Model whose runs are shown")
        self.model_combo.currentIndexChanged.connect(self._model_chosen)
        side.addWidget(self.model_combo)
        self.run_list = named(
            QListWidget(),
            "trainHistoryRunList",
            "Runs of the model",
            "Tick runs to overlay their curves; each run has its colour",
        )
        self.run_list.itemChanged.connect(lambda _item: self.replot())
        side.addWidget(self.run_list, 1)
        self.metric_combo = named(QComboBox(), "trainHistoryMetricCombo", "Metric plotted")
        self.metric_combo.currentIndexChanged.connect(lambda _index: self.replot())
        side.addWidget(self.metric_combo)
        self.smoothing_label = named(QLabel(), "trainHistorySmoothingLabel", "Smoothing")
        side.addWidget(self.smoothing_label)
        self.smoothing_slider = named(
            QSlider(Qt.Orientation.Horizontal),
            "trainHistorySmoothingSlider",
            "Smoothing",
            "TensorBoard's smoothing: an exponential moving average, debiased (0: raw values)",
        )
        self.smoothing_slider.setRange(0, round(SMOOTHING_MAX * 100))
        self.smoothing_slider.valueChanged.connect(self._smoothing_changed)
        side.addWidget(self.smoothing_slider)
        self.export_button = named(
            QPushButton("Export CSV\u2026"),
            "trainHistoryExportButton",
            "Export the ticked runs as CSV",
            "Write the ticked runs' per-step values to a CSV file",
        )
        self.export_button.clicked.connect(self.ask_export)
        side.addWidget(self.export_button)
        self.info_label = named(QLabel(""), "trainHistoryInfoLabel", "About the runs shown")
        self.info_label.setWordWrap(True)
        self.info_label.setTextFormat(Qt.TextFormat.RichText)
        self.info_label.setStyleSheet("color: palette(placeholder-text);")
        side.addWidget(self.info_label)
        holder = QWidget()
        holder.setLayout(side)
        holder.setFixedWidth(250)
        layout.addWidget(holder)

        plot = themed_plot(self, "trainHistoryPlot", "Training history plot", "Past runs' curves against the step")
        self.plot, self._foreground = plot.widget, plot.foreground
        item = self.plot.getPlotItem()
        style_axes(item, plot.foreground, "step", "value")
        item.setDownsampling(auto=True, mode="peak")
        item.setClipToView(True)
        # The run list's swatches say which colour is which run; the legend says which dash is which loss.
        self.legend = item.addLegend(offset=(8, 4), labelTextColor=plot.foreground, colCount=len(DASHES))
        background = plot.background
        self.legend.setBrush(pg.mkBrush(background.red(), background.green(), background.blue(), 200))
        layout.addWidget(self.plot, 1)
        self.smoothing_slider.setValue(round(DEFAULT_SMOOTHING * 100))  # (draws the empty plot)
        self._set_title("Pick a model to see its runs")

    # --- choosing -------------------------------------------------------------------------------

    @property
    def smoothing(self) -> float:
        """The slider's weight, 0-0.99."""
        return self.smoothing_slider.value() / 100

    def show_models(self, models: Sequence[ModelSummary]) -> None:
        """List the models (newest first), keeping the current one; its runs are read again."""
        names = [m.name for m in models]
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for name in names:
            self.model_combo.addItem(name, name)
        self.model_combo.setCurrentIndex(names.index(self.model) if self.model in names else -1)
        self.model_combo.blockSignals(False)
        if self.model in names:
            self.load(self.model)
        else:
            self.model = ""
            self._show([])

    def select_model(self, name: str) -> None:
        """Show `name`'s runs (its latest ticked)."""
        index = self.model_combo.findData(name)
        if index < 0:
            return
        if index == self.model_combo.currentIndex():
            self.load(name)
        else:
            self.model_combo.setCurrentIndex(index)

    def _model_chosen(self, index: int) -> None:
        name = self.model_combo.itemData(index)
        if name:
            self.load(str(name))

    def load(self, model: str) -> None:
        """Read a model's runs and curves in the background, then show them."""
        changed = model != self.model
        self.model = model
        ticked = None if changed else self.ticked_runs()
        store = self.context.store
        QueryOp(self, lambda: run_curves(store, model)).latest_only("runs").success(
            lambda curves: self._show(curves, ticked) if model == self.model else None
        ).failure(lambda message: self.info_label.setText(html.escape(message))).run_in_background()

    def _show(self, curves: list[RunCurves], ticked: list[int] | None = None) -> None:
        """List the runs (ticked: those given, else the latest) and the metrics they share."""
        self.curves = curves
        if ticked is None or not any(c.run.id in ticked for c in curves):
            ticked = [curves[-1].run.id] if curves else []
        self.run_list.blockSignals(True)
        self.run_list.clear()
        for index, run in enumerate(curves):
            item = QListWidgetItem(_swatch(RUN_COLOURS[index % len(RUN_COLOURS)]), run_label(run))
            item.setData(Qt.ItemDataRole.UserRole, run.run.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if run.run.id in ticked else Qt.CheckState.Unchecked)
            item.setToolTip(self._describe(run))
            self.run_list.addItem(item)
        self.run_list.blockSignals(False)
        self._fill_metrics()
        self.replot()

    @staticmethod
    def _describe(curves: RunCurves) -> str:
        run = curves.run
        started = run.started_at.isoformat(sep=" ", timespec="minutes")
        losses = ", ".join(f"{k} {v:.4g}" for k, v in run.final_losses.items())
        lines = [f"started {started} on {run.device}, seed {run.seed}", f"final losses: {losses or '-'}"]
        if run.score is not None:
            lines.append(f"quality: Fr\u00e9chet {run.score['frechet']:.4g} at step {run.score['steps']:,}")
        if run.error:
            lines.append(f"error: {run.error}")
        return "\n".join(lines)

    def _fill_metrics(self) -> None:
        current = self.metric_combo.currentData()
        tags: list[str] = []
        for run in self.curves:
            tags.extend(tag for tag in run.tags if tag not in tags)
        self.metric_combo.blockSignals(True)
        self.metric_combo.clear()
        self.metric_combo.addItem("All losses", ALL_LOSSES)
        for tag in tags:
            self.metric_combo.addItem(tag.replace("_", " "), tag)
        index = self.metric_combo.findData(current)
        self.metric_combo.setCurrentIndex(max(0, index))
        self.metric_combo.blockSignals(False)

    def ticked_runs(self) -> list[int]:
        """The ids of the runs ticked in the list."""
        found = []
        for row in range(self.run_list.count()):
            item = self.run_list.item(row)
            if item.checkState() == Qt.CheckState.Checked:
                found.append(int(item.data(Qt.ItemDataRole.UserRole)))
        return found

    def tick_runs(self, run_ids: Sequence[int]) -> None:
        """Tick exactly these runs (and redraw once)."""
        self.run_list.blockSignals(True)
        for row in range(self.run_list.count()):
            item = self.run_list.item(row)
            wanted = int(item.data(Qt.ItemDataRole.UserRole)) in run_ids
            item.setCheckState(Qt.CheckState.Checked if wanted else Qt.CheckState.Unchecked)
        self.run_list.blockSignals(False)
        self.replot()

    def _smoothing_changed(self, value: int) -> None:
        self.smoothing_label.setText(f"Smoothing: <b>{value / 100:.2f}</b>")
        self.replot()

    # --- drawing --------------------------------------------------------------------------------

    def _set_title(self, text: str) -> None:
        self.plot.getPlotItem().setTitle(text, color=self._foreground.name(), size="10pt")

    def replot(self) -> None:
        """Draw each ticked run's chosen curves: smoothed in the run's colour, raw faintly behind."""
        for item in self.items:
            self.plot.removeItem(item)
        self.items.clear()
        self.drawn.clear()
        self.legend.clear()
        metric = self.metric_combo.currentData() or ALL_LOSSES
        ticked = set(self.ticked_runs())
        weight = self.smoothing
        dashes: dict[str, Qt.PenStyle] = {}
        for index, run in enumerate(self.curves):
            if run.run.id not in ticked:
                continue
            colour = QColor(RUN_COLOURS[index % len(RUN_COLOURS)])
            chosen = [s for s in run.series if (s.kind == "loss" if metric == ALL_LOSSES else s.tag == metric)]
            for series in chosen:
                dash = dashes.setdefault(series.name, DASHES[len(dashes) % len(DASHES)])
                symbol = "o" if series.steps.size == 1 else None  # a lone point (a score) would not show as a line
                if weight > 0 and series.steps.size > 1:
                    faint = QColor(colour)
                    faint.setAlpha(60)
                    self.items.append(self.plot.plot(series.steps, series.values, pen=pg.mkPen(faint, width=1)))
                curve = self.plot.plot(
                    series.steps,
                    smooth(series.values, weight),
                    pen=pg.mkPen(colour, width=1.5, style=dash),
                    symbol=symbol,
                    symbolBrush=colour,
                    symbolSize=7,
                )
                self.items.append(curve)
                self.drawn[(run.run.id, series.tag)] = curve
        if len(dashes) > 1:
            for name, dash in dashes.items():
                self.legend.addItem(pg.PlotDataItem(pen=pg.mkPen(self._foreground, width=1.5, style=dash)), name)
        self._describe_plot(len(self.drawn), metric)

    def _describe_plot(self, drawn: int, metric: str) -> None:
        if not self.model:
            self._set_title("Pick a model to see its runs")
            self.info_label.setText("")
        elif not self.curves:
            self._set_title(f"No runs recorded for '{self.model}'")
            self.info_label.setText("Imported models, and models trained before history was kept, have no curves.")
        elif drawn == 0:
            self._set_title("Tick a run to see its curves")
            self.info_label.setText("")
        else:
            label = "Losses" if metric == ALL_LOSSES else metric.replace("_", " ")
            self._set_title(f"{label} of '{self.model}'")
            scores = [
                f"run {c.run.id}: Fr\u00e9chet {c.run.score['frechet']:.4g}"
                for c in self.curves
                if c.run.score is not None and c.run.id in self.ticked_runs()
            ]
            self.info_label.setText(f"<b>Quality</b> {'; '.join(scores)}" if scores else "")
        self.export_button.setEnabled(bool(self.ticked_runs()))

    # --- export ---------------------------------------------------------------------------------

    def ask_export(self) -> None:
        """Ask for a CSV file and write the ticked runs' per-step values to it."""
        runs = self.ticked_runs()
        if not runs:
            return
        suggested = Path.home() / f"{self.model}-history.csv"
        chosen, _ = QFileDialog.getSaveFileName(self, "Export training history", str(suggested), "CSV (*.csv)")
        if chosen:
            self.export(Path(chosen), runs)

    def export(self, destination: Path, runs: Sequence[int]) -> None:
        """Write the runs' values to `destination` in the background; a line says where, or why not."""
        store, model, wanted = self.context.store, self.model, list(runs)
        QueryOp(self, lambda: export_csv(store, model, destination, wanted)).success(self._exported).failure(
            lambda message: self.context.error("Export failed", message)
        ).run_in_background()

    def _exported(self, report: dict[str, object]) -> None:
        self.last_export = Path(str(report["file"]))
        self.context.notify(f"Wrote {report['rows']} rows of training history to {report['file']}")
