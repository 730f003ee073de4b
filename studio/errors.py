"""User-facing errors: each carries a one-line reason that the CLI and UI show as is."""


class StudioError(Exception):
    """An error caused by the user's input or environment, shown without a traceback."""


class NotFoundError(StudioError):
    """A named dataset, model or item does not exist."""


class AlreadyExistsError(StudioError):
    """A name is already taken."""


class CancelledError(StudioError):
    """A job was cancelled by the user; nothing it started was kept."""

    def __init__(self, message: str = "cancelled: nothing was changed") -> None:
        super().__init__(message)


class StoreError(StudioError):
    """The database cannot be opened or written (damaged, newer version, read-only)."""
