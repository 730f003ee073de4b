"""The Gallery page as a package of its parts: the grid's model, thumbnails, painting, delegate and view, the
star widget, the filter bar, the detail pane, the compare dialog, the undo commands, and the page itself."""

from studio.ui.gallery.page import GalleryPage

__all__ = ["GalleryPage"]
