"""The Train page as a package: `setup` (the form that makes a TrainOptions), `monitor` (losses,
previews, figures, warnings, progress) and `page` (TrainPage, which joins them to the engine)."""

from studio.ui.train.page import TrainPage

__all__ = ["TrainPage"]
