"""The one look of Studio's pyqtgraph plots: the palette's text colour on the axes, labelled axes,
grid lines at major ticks only."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QColor


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
