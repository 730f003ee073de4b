"""Where the project's shipped resources (icons, style, sample data) live."""

from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "resources"


def resource(*parts: str) -> Path:
    """Absolute path of a shipped resource file."""
    return RESOURCES.joinpath(*parts)
