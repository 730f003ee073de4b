"""The one look of Studio's pyqtgraph plots: the palette's text colour on the axes, labelled axes,
grid lines at major ticks only."""

from __future__ import annotations

from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QWidget

from studio.ui.widgets import named


@dataclass(frozen=True)
class ThemedPlot:
    """A plot widget on the palette's base colour, and the colours it was made with."""

    widget: pg.PlotWidget
    foreground: QColor
    background: QColor


def themed_plot(owner: QWidget, object_name: str, accessible_name: str, tooltip: str | None) -> ThemedPlot:
    """A named PlotWidget whose background is `owner`'s base colour (its text colour is the foreground)."""
    palette = owner.palette()
    background = palette.color(QPalette.ColorRole.Base)
    foreground = palette.color(QPalette.ColorRole.Text)
    widget = named(pg.PlotWidget(background=background), object_name, accessible_name, tooltip)
    return ThemedPlot(widget, foreground, background)


def style_axes(item: pg.PlotItem, foreground: QColor, x_label: str, y_label: str, grid_alpha: float = 0.25) -> None:
    """Colour and label both axes of `item`, with a light grid."""
    for axis_name, text in (("bottom", x_label), ("left", y_label)):
        axis = item.getAxis(axis_name)
        axis.setPen(foreground)
        axis.setTextPen(foreground)
        axis.setLabel(text, color=foreground.name())
        # Grid lines at major ticks only: minor ones cost as much to paint as everything else together.
        axis.setStyle(maxTickLevel=0)
    item.showGrid(x=True, y=True, alpha=grid_alpha)
