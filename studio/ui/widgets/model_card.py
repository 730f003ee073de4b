"""What the Models page shows of a model made elsewhere: where it came from (`provenance_rows`) and its model
card (`ModelCardView`, README.md rendered as Markdown).

A card is a file from the internet: `ModelCardView` loads nothing it names (no image, no stylesheet, local
or remote), follows no link by itself and renders no raw HTML; a click on a web link opens the browser.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from PySide6.QtCore import QUrl
from PySide6.QtGui import QColor, QDesktopServices, QImage, QTextCharFormat, QTextCursor, QTextDocument, QTextFormat
from PySide6.QtWidgets import QTextBrowser, QWidget

from studio.engine.library import ModelSummary
from studio.engine.untrusted.model_files import CARD_FILE
from studio.engine.untrusted.values import open_regular
from studio.errors import StudioError
from studio.ui.widgets import named

MAX_CARD_BYTES = 256 * 1024  # shown at most; a card is a page of text, not a book
NOTE_COLOUR = "#b9770e"
IMPORT_KINDS = {
    "diffusers": "a diffusers pipeline",
    "unet2d": "a diffusers UNet2DModel folder",
    "onnx": "an ONNX file",
    "hf-cache": "the Hugging Face cache",
}
# ![alt](address): shown as its alt text, so a card's images (badges, samples) leave a readable trace.
_IMAGE = re.compile(r"!\[([^\]\n]{0,200})\]\([^)\n]{0,2000}\)")
# Markdown as GitHub writes it, less raw HTML: a card's <img>, <script> or <style> is shown as text.
_MARKDOWN = QTextDocument.MarkdownFeature(
    QTextDocument.MarkdownFeature.MarkdownDialectGitHub.value | QTextDocument.MarkdownFeature.MarkdownNoHTML.value
)


def read_card(folder: Path) -> str | None:
    """A model folder's README.md (its first MAX_CARD_BYTES), front matter left out; None when there is none."""
    try:
        with open_regular(folder / CARD_FILE) as handle:
            data = handle.read(MAX_CARD_BYTES + 1)
    except (OSError, StudioError):
        return None
    text = data[:MAX_CARD_BYTES].decode("utf-8", "replace")
    if len(data) > MAX_CARD_BYTES:
        text = text.rsplit("\n", 1)[0] + "\n\n*(the card is longer: only its start is shown)*\n"
    return strip_front_matter(text)


def strip_front_matter(text: str) -> str:
    """The card without its YAML block (`---` ... `---`: licence, tags), which Markdown would show as a table."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return text
    for index, line in enumerate(lines[1:200], start=1):
        if line.strip() == "---":
            return "".join(lines[index + 1 :]).lstrip("\n")
    return text


def _wrappable(text: str) -> str:
    """Escaped, with break opportunities after '/' so a long path wraps in a narrow pane."""
    return html.escape(text).replace("/", "/\u200b")


def _shape(sizes: Any) -> str:
    return " x ".join(str(size) for size in sizes) if isinstance(sizes, list | tuple) else html.escape(str(sizes))


def _range(values: Any) -> str:
    if isinstance(values, list | tuple) and len(values) == 2:
        return f"{values[0]:g} .. {values[1]:g}"
    return html.escape(str(values))


def origin_rows(origin: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(label, HTML) rows: how the model was imported, from where, its revision, scheduler note and licence."""
    if not origin:
        return []
    kind = str(origin.get("kind") or "")
    what = IMPORT_KINDS.get(kind, html.escape(kind) or "elsewhere")
    pipeline = origin.get("pipeline")
    if pipeline:
        what = f"a diffusers {html.escape(str(pipeline))}"
    if origin.get("repo_id"):
        what += " in the Hugging Face cache"
    rows = [("Imported from", what)]
    if origin.get("repo_id"):
        rows.append(("Repository", html.escape(str(origin["repo_id"]))))
    if origin.get("revision"):
        rows.append(("Revision", f"<code>{html.escape(str(origin['revision']))}</code>"))
    if origin.get("source"):
        rows.append(("Source", _wrappable(str(origin["source"]))))
    scheduler, note = origin.get("scheduler_class"), origin.get("scheduler_note")
    if scheduler or note:
        text = html.escape(str(scheduler or ""))
        if note:
            text += f"<br><span style='color: {NOTE_COLOUR}'>{html.escape(str(note))}</span>"
        rows.append(("Scheduler", text))
    dtypes = origin.get("weights_dtype")
    if isinstance(dtypes, dict):
        stored = ", ".join(f"{html.escape(str(k))}: {html.escape(str(v))}" for k, v in dtypes.items())
        rows.append(("Weights", f"converted to float32 from {stored}"))
    licence = origin.get("license")
    rows.append(("Licence", html.escape(str(licence)) if licence else "- (the card states none: check the source)"))
    return rows


def architecture_rows(model: ModelSummary) -> list[tuple[str, str]]:
    """(label, HTML) rows on the networks: a latent model's autoencoder, an ONNX generator's noise and range."""
    architecture = model.architecture or {}
    rows: list[tuple[str, str]] = []
    if model.family == "latent_diffusion":
        autoencoder = architecture.get("autoencoder")
        config = autoencoder if isinstance(autoencoder, dict) else {}
        hyper = model.hyperparameters
        channels = hyper.get("latent_channels", config.get("latent_channels", "?"))
        downscale = hyper.get("downscale")
        unet = architecture.get("unet")
        side = unet.get("sample_size") if isinstance(unet, dict) else None
        if not isinstance(side, int) and isinstance(downscale, int) and downscale:
            side = model.resolution // downscale
        rows.append(
            ("Autoencoder", html.escape(str(architecture.get("autoencoder_class") or hyper.get("autoencoder"))))
        )
        rows.append(("Latent grid", f"{channels} x {side} x {side}" if side else f"{channels} channels"))
        scale = architecture.get("scaling_factor")
        rows.append(
            ("Scaling factor", f"{scale:g}" if isinstance(scale, int | float) else "not fixed yet (stage 1 trains)")
        )
        count = architecture.get("autoencoder_parameters")
        if isinstance(count, int):
            rows.append(("Autoencoder parameters", f"{count:,}"))
    elif model.family == "onnx_generator":
        rows.append(("Latent shape", _shape(architecture.get("latent_shape", "?"))))
        how = {"inferred": " (inferred from a test run)", "given": " (given at import)"}
        source = how.get(str(architecture.get("value_range_source")), "")
        rows.append(("Value range", _range(architecture.get("value_range", "?")) + source))
        rows.append(
            (
                "Runs on",
                f"<span style='color: {NOTE_COLOUR}'>ONNX Runtime only: Studio cannot train, fine-tune or "
                "export it</span>",
            )
        )
    return rows


class ModelCardView(QTextBrowser):
    """A model card shown as Markdown, read-only: nothing it names is loaded, no link is followed by itself."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        named(self, "modelCard", "Model card", "The model card (README.md) that came with the model")
        self.setOpenExternalLinks(False)
        self.setOpenLinks(False)  # a click never loads another document into the view
        self.anchorClicked.connect(self._clicked)
        self.setReadOnly(True)
        self.setMinimumHeight(120)
        self.blocked: list[str] = []  # what the card asked to load (tests read it)

    def show_card(self, text: str | None) -> None:
        """Render a card's Markdown (None clears the view)."""
        self.blocked.clear()
        self.clear()
        if text:
            shown = _IMAGE.sub(lambda m: f"*(image: {m.group(1)})*" if m.group(1).strip() else "*(image)*", text)
            self.document().setMarkdown(shown, _MARKDOWN)
            self._soften_headings()

    def _soften_headings(self) -> None:
        """Headings one size smaller than Markdown's own: a card's title should not fill a narrow pane."""
        cursor = QTextCursor(self.document())
        block = self.document().begin()
        while block.isValid():
            level = block.blockFormat().headingLevel()
            if level:
                cursor.setPosition(block.position())
                cursor.setPosition(block.position() + block.length() - 1, QTextCursor.MoveMode.KeepAnchor)
                smaller = QTextCharFormat()
                smaller.setProperty(QTextFormat.Property.FontSizeAdjustment, max(0, 2 - level))
                cursor.mergeCharFormat(smaller)
            block = block.next()

    def loadResource(self, kind: int, name: QUrl | str) -> Any:
        """Nothing a card names is loaded, local or remote: an image is an empty placeholder.

        A null answer would let QTextDocument read a local path itself, so a non-null one is given.
        """
        self.blocked.append(name.toString() if isinstance(name, QUrl) else name)
        if kind == QTextDocument.ResourceType.ImageResource.value:
            placeholder = QImage(1, 1, QImage.Format.Format_ARGB32)
            placeholder.fill(QColor(0, 0, 0, 0))
            return placeholder
        return b" "

    def _clicked(self, url: QUrl) -> None:
        """A web link opens in the browser when clicked; anything else (files, relative links) does nothing."""
        if url.scheme() in ("http", "https"):
            QDesktopServices.openUrl(url)
