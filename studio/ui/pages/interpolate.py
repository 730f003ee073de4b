"""The Interpolate page: frames walking through a model's latent space from one end to another.

Each end is a seed, a gallery item (#ID) or, for families with an encoder (VAE), an image file.
Between two seeds the walk follows the latent sphere (slerp), otherwise a straight line; the engine
job saves every frame to the gallery, pointing back at its endpoints. Families without latents
(PixelCNN) are listed but disabled, with the engine's reason as their tooltip. A class-conditional
model also takes a class at each end (its own by default: a seed's drawn class, an item's class), and
the frames walk between the two classes as well. A result can be saved as an animated GIF or PNG, and a
gallery frame's "Use these settings" fills the page with the model, ends, frames and settings that made it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.engine.animation import MAX_FPS, MIN_FPS, AnimationResult, animate
from studio.engine.families.registry import declaration
from studio.engine.generation import MAX_FRAMES, EndpointRef, interpolate
from studio.engine.jobs import CancelToken, Job
from studio.engine.library import ModelSummary
from studio.errors import StudioError
from studio.store.gallery import GalleryRepository
from studio.ui.context import StudioContext
from studio.ui.jobs import JobHandle
from studio.ui.operations import EngineOp
from studio.ui.pages.generate import restore_form
from studio.ui.widgets import named
from studio.ui.widgets.generation_controls import GenerationPage, result_summary, scroll_column
from studio.ui.widgets.model_picker import families_that_can, unsupported_reason
from studio.ui.widgets.result_strip import ResultStrip
from studio.ui.widgets.seed_box import DICE_RANGE

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.webp *.gif *.tif *.tiff);;All files (*)"
GIF_FILTER, APNG_FILTER = "Animated GIF (*.gif)", "Animated PNG (*.png)"
# The interpolation's own record in a frame's params: not settings of the form.
FRAME_KEYS = ("from", "to", "frame", "frames", "t", "method")


def end_text(end: object) -> str | None:
    """An end as a frame's params record it ({"seed": 3}, {"item": 12}, {"file": ...}) as the field's text."""
    if not isinstance(end, dict):
        return None
    if isinstance(end.get("seed"), int):
        return str(end["seed"])
    if isinstance(end.get("item"), int):
        return f"#{end['item']}"
    return str(end["file"]) if isinstance(end.get("file"), str) else None


def ask_animation_path(parent: QWidget) -> Path | None:
    """Where to save the animation (a .gif or .png outside the data home); None when cancelled."""
    chosen, chosen_filter = QFileDialog.getSaveFileName(
        parent,
        "Save the frames as an animation",
        str(Path.home() / "interpolation.gif"),
        f"{GIF_FILTER};;{APNG_FILTER}",
    )
    if not chosen:
        return None
    path = Path(chosen)
    if path.suffix.lower() not in (".gif", ".png", ".apng"):
        path = path.with_suffix(".png" if chosen_filter == APNG_FILTER else ".gif")
    return path


class EndpointField(QWidget):
    """One end of the walk: a seed, a gallery item `#ID`, or (with an encoder) an image file."""

    changed = Signal()

    def __init__(self, context: StudioContext, side: str, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.title = title
        self.encode_problem: str | None = "choose a model first"
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        row = QHBoxLayout()
        self.edit = named(QLineEdit(), f"interpolate{side}Edit", f"{title}: seed, #item or image file")
        self.dice = named(
            QToolButton(), f"interpolate{side}DiceButton", f"{title}: draw a random seed", "draw a random seed"
        )
        self.dice.setText("Random")
        self.browse = named(QToolButton(), f"interpolate{side}BrowseButton", f"{title}: choose an image file")
        self.browse.setText("File…")
        row.addWidget(self.edit, 1)
        row.addWidget(self.dice)
        row.addWidget(self.browse)
        self.info = named(QLabel(), f"interpolate{side}Info", f"{title}: what it refers to")
        self.info.setWordWrap(True)
        self.info.setStyleSheet("color: palette(placeholder-text);")
        layout.addLayout(row)
        layout.addWidget(self.info)
        self.edit.textChanged.connect(self._describe)
        self.edit.textChanged.connect(self.changed)
        self.dice.clicked.connect(lambda: self.edit.setText(str(secrets.randbelow(DICE_RANGE))))
        self.browse.clicked.connect(self._choose_file)
        self.set_encode_problem(self.encode_problem)

    def text(self) -> str:
        """What the user typed."""
        return self.edit.text().strip()

    def set_text(self, text: str) -> None:
        """Show a seed, `#ID` or path."""
        self.edit.setText(text)

    def set_encode_problem(self, problem: str | None) -> None:
        """Whether the model can encode image files (None) or why not."""
        self.encode_problem = problem
        self.browse.setEnabled(problem is None)
        self.browse.setToolTip("choose an image file to encode" if problem is None else problem)
        self.edit.setPlaceholderText("seed (42) or gallery item (#12)" + (" or image file" if problem is None else ""))
        self.edit.setToolTip(
            "a seed such as 42, a gallery item such as #12"
            + (", or the path of an image file (encoded by the model)" if problem is None else "")
        )
        self._describe()

    def reference(self, class_name: str | None = None) -> EndpointRef:
        """The endpoint for the engine (at class `class_name` of a conditional model; None: its own), or a
        StudioError saying what is wrong with the text."""
        text = self.text()
        if not text:
            raise StudioError(f"{self.title.lower()}: type a seed (such as 42) or a gallery item (such as #12)")
        reference = EndpointRef.parse(text, class_name)
        if reference.file is not None and self.encode_problem is not None:
            raise StudioError(f"{self.title.lower()} is an image file, but {self.encode_problem}")
        return reference

    def _describe(self) -> None:
        text = self.text()
        if not text:
            self.info.setText("")
            return
        try:
            reference = EndpointRef.parse(text)
        except StudioError as error:
            self.info.setText(str(error))
            return
        if reference.seed is not None:
            self.info.setText(f"seed {reference.seed}: its Gaussian latent")
        elif reference.item is not None:
            try:
                entry = GalleryRepository(self.context.store).get(reference.item)
            except StudioError as error:
                self.info.setText(str(error))
                return
            seed = f", seed {entry.seed}" if entry.seed is not None else ""
            made_as = f", class {entry.class_name}" if entry.class_name is not None else ""
            self.info.setText(f"gallery item #{entry.id}: {entry.operation} by {entry.model}{seed}{made_as}")
        else:
            assert reference.file is not None
            self.info.setText(
                f"image file {reference.file.name}"
                + (f" ({self.encode_problem})" if self.encode_problem else ": encoded by the model")
            )

    def _choose_file(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(self, f"{self.title}: an image to encode", "", IMAGE_FILTER)
        if path:
            self.edit.setText(path)


class InterpolatePage(GenerationPage):
    """Choose a model, two ends and a frame count; the frames go to the gallery and show as a strip."""

    OPERATION = "interpolate"
    NO_USABLE_MODEL = "No model here can interpolate: train a {families} model."
    RUN_TIP = "make the frames and add them to the gallery (Ctrl+Return)"

    def __init__(self, context: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(context, "interpolate", "Interpolate", parent)
        self._build_model_controls(
            "interpolate", "the model whose latent space to walk (families without latents are disabled)"
        )
        self.start = EndpointField(context, "From", "From")
        self.end = EndpointField(context, "To", "To")
        self.start.set_text("1")
        self.end.set_text("2")
        own = "a seed's own class (drawn from the seed), or a gallery item's class"
        self.start_class = self._build_class_picker(
            "interpolateFromClassCombo", "From class", f"the class at the From end; Own class: {own}", "Own class"
        )
        self.end_class = self._build_class_picker(
            "interpolateToClassCombo", "To class", f"the class at the To end; Own class: {own}", "Own class"
        )
        self.frames_spin = named(
            QSpinBox(), "interpolateFramesSpin", "Frames", "images from the first end to the last, both included"
        )
        self.frames_spin.setRange(2, MAX_FRAMES)
        self.frames_spin.setValue(int(context.value("interpolate/frames", 8)))
        self.form_note = QLabel()
        self.form_note.setWordWrap(True)
        self.run_button = self._build_run_controls("Interpolate", "interpolateButton", "Interpolation")
        self.strip = named(
            ResultStrip(96),
            "interpolateFrames",
            "Interpolation frames",
            "the frames, first to last: click one to open the gallery",
        )
        self.caption = QLabel("The frames appear here, first to last.")
        self.caption.setObjectName("interpolateFramesCaption")
        self.fps_spin = named(QSpinBox(), "interpolateFpsSpin", "Animation frame rate", "frames per second")
        self.fps_spin.setRange(MIN_FPS, MAX_FPS)
        self.fps_spin.setValue(8)
        self.fps_spin.setSuffix(" fps")
        self.animate_button = named(
            QPushButton("Save as animation…"),
            "interpolateAnimateButton",
            "Save the frames as an animation",
            "save these frames as an animated GIF or PNG, outside the data home",
        )
        self.animate_button.setEnabled(False)
        self.animate_button.clicked.connect(self.save_animation)
        # Tests and scripts replace this to answer without a dialog.
        self.ask_animation_path: Callable[[], Path | None] = lambda: ask_animation_path(self)
        settings = self._build_settings(
            (
                ("From", self.start),
                ("From class", self.start_class),
                ("To", self.end),
                ("To class", self.end_class),
                ("Frames", self.frames_spin),
                ("Backend", self.backend),
            ),
            notes=(self.form_note,),
        )
        self._lay_out(
            self._results_body(settings),
            "Walk through a model's latent space: between two seeds along the sphere of Gaussian "
            "noise (slerp), between encoded images along a straight line; a class-conditional model "
            "walks from one end's class to the other's too. Smooth, meaningful frames are the sign of a "
            "well-formed latent space.",
        )

        self.start.changed.connect(self._update_run_state)
        self.end.changed.connect(self._update_run_state)
        self.strip.itemChosen.connect(self._open_in_gallery)
        context.signals.useGalleryItems.connect(self.use_gallery_items)
        self._start(self.run)

    def _results_body(self, settings: QWidget) -> QHBoxLayout:
        """The settings column beside the results: a caption and the animation controls over the strip."""
        header = QHBoxLayout()
        header.addWidget(self.caption, 1)
        header.addWidget(self.fps_spin)
        header.addWidget(self.animate_button)
        results = QVBoxLayout()
        results.addLayout(header)
        results.addWidget(self.strip, 1)
        body = QHBoxLayout()
        body.addWidget(scroll_column(settings))
        body.addLayout(results, 1)
        return body

    # --- state ---------------------------------------------------------------------------

    def _model_changed(self, model: ModelSummary | None) -> None:
        problem = unsupported_reason(model.family, "encode") if model is not None else "choose a model first"
        self.start.set_encode_problem(problem)
        self.end.set_encode_problem(problem)
        if model is not None:
            note = declaration(model.family).interpolation_note  # e.g. diffusion's forced DDIM
            self.form_note.setText(note)
            self.form_note.setVisible(bool(note))
        super()._model_changed(model)

    def _run_problem(self) -> str | None:
        if self.model_picker.current() is None:
            return "choose a model that can interpolate"
        if not self.start.text() or not self.end.text():
            return "give both ends: a seed or a gallery item (#ID)"
        return None

    # --- actions -------------------------------------------------------------------------

    def run(self) -> JobHandle | None:
        """Queue the interpolation with the settings on show; None (with a message) when something is wrong."""
        if self.running:
            return None
        model = self.model_picker.current()
        if model is None:
            self.context.error(
                "Nothing to interpolate with", f"choose a {families_that_can('interpolate')} model first"
            )
            return None
        try:
            conditional = self.conditional
            start = self.start.reference(self.start_class.chosen() if conditional else None)
            end = self.end.reference(self.end_class.chosen() if conditional else None)
            if conditional:
                self._check_classes(model, ((self.start, start), (self.end, end)))
            options = self.form.values()
        except StudioError as error:
            self.context.error("Cannot interpolate", str(error))
            return None
        name, frames, store = model.name, self.frames_spin.value(), self.store
        backend, provider = self.backend.backend(), self.backend.provider()
        self.context.settings.setValue("interpolate/model", name)
        self.context.settings.setValue("interpolate/frames", frames)
        self.strip.show_items([])
        self.animate_button.setEnabled(False)
        self.caption.setText(f"Interpolating {frames} frames with {name}…")

        def factory(token: CancelToken) -> Job:
            # Runs in the engine thread: plain values only, never a widget.
            return interpolate(
                store, name, start, end, frames, options, backend=backend, provider=provider, cancel=token
            )

        return self._run_job(
            f"Interpolate {frames} frames with {name}", factory, self._finished, "Interpolation failed"
        )

    def _check_classes(self, model: ModelSummary, ends: Sequence[tuple[EndpointField, EndpointRef]]) -> None:
        """A StudioError for an end of a conditional model with no class: an image file, or an item another
        model made, has none of its own, so its class must be chosen."""
        for field, reference in ends:
            if reference.class_name is not None or reference.seed is not None:
                continue
            what = "an image file"
            if reference.item is not None:
                try:
                    entry = GalleryRepository(self.store).get(reference.item)
                except StudioError:
                    continue  # the engine says what is wrong with the item
                if entry.model == model.name and entry.class_name in model.classes:
                    continue  # the item's own class
                what = f"gallery item #{entry.id}" + (", made by another model" if entry.model != model.name else "")
            raise StudioError(
                f"the {field.title} end ({what}) has no class of its own: choose its class as {field.title} class"
            )

    def _finished(self, result: Any) -> None:
        self.status.setText(result_summary(result, "frame"))
        count = len(result.items)
        self.caption.setText(f"{count} frames, first to last, now in the gallery: click one to open the gallery.")
        self.strip.show_items(
            result.items,
            lambda index, item: f"{index} · #{item['id']}" + (f" · {item['class']}" if item.get("class") else ""),
        )
        self.animate_button.setEnabled(count >= 2)

    def save_animation(self) -> JobHandle | None:
        """Ask where, then write the strip's frames as an animated GIF or PNG (an engine job)."""
        ids = self.strip.ids()
        if len(ids) < 2:
            self.context.notify("Interpolate first: an animation needs the frames")
            return None
        path = self.ask_animation_path()
        if path is None:
            return None
        store, fps = self.store, self.fps_spin.value()
        return (
            EngineOp[AnimationResult](
                self.context,
                f"Animate {len(ids)} frames",
                # The file dialog asked before replacing a file: the engine may overwrite it.
                lambda token: animate(store, ids, path, fps, overwrite=True, cancel=token),
            )
            .success(lambda result: self.context.notify(f"Saved {result.frames} frames to {result.destination}"))
            .failure(lambda reason: self.context.error("Animation not saved", reason))
            .run()
        )

    def use_settings_of(self, item_id: int) -> bool:
        """Fill the page with how a gallery frame was made: its model, ends (and their classes), frame count
        and settings; False (and why) when that cannot be done."""
        self.context.go_to("interpolate")
        self.refresh()
        try:
            entry = GalleryRepository(self.store).get(item_id)
        except StudioError as error:
            self.context.error("Gallery item not found", str(error))
            return False
        if not self.model_picker.select(entry.model):
            self.context.error(
                "Cannot use these settings", f"#{item_id} was made by '{entry.model}', which cannot interpolate here"
            )
            return False
        ends = [entry.params.get("from"), entry.params.get("to")]
        for field, picker, end in zip((self.start, self.end), self.class_pickers, ends, strict=False):
            text = end_text(end)
            if text is not None:
                field.set_text(text)
            picker.choose(end.get("class") if isinstance(end, dict) and isinstance(end.get("class"), str) else None)
        frames = entry.params.get("frames")
        if isinstance(frames, int) and not isinstance(frames, bool):
            self.frames_spin.setValue(frames)
        skipped = restore_form(self.form, {k: v for k, v in entry.params.items() if k not in FRAME_KEYS})
        self.backend.set_backend(entry.backend, entry.provider or "auto")
        note = f" (not restored: {', '.join(skipped)})" if skipped else ""
        self.status.setText(f"Settings of #{item_id} restored{note}: Interpolate makes its frames again")
        return True

    def use_gallery_items(self, page_key: str, ids: Sequence[int]) -> None:
        """Items chosen in the gallery become the ends (the first two; one fills From only)."""
        if page_key == "interpolate-settings" and ids:
            self.use_settings_of(int(ids[0]))
            return
        if page_key != "interpolate":
            return
        chosen = [int(item) for item in ids][:2]
        if not chosen:
            return
        self.context.go_to("interpolate")
        self.refresh()
        self.start.set_text(f"#{chosen[0]}")
        if len(chosen) > 1:
            self.end.set_text(f"#{chosen[1]}")
        try:
            entry = GalleryRepository(self.store).get(chosen[0])
        except StudioError as error:
            self.context.error("Gallery item not found", str(error))
            return
        # Items sampled by a model are interpolated by that model (their seeds are its latents).
        if not self.model_picker.select(entry.model) and entry.model in self.model_picker.models:
            family = self.model_picker.models[entry.model].family
            self.context.notify(f"{entry.model} cannot interpolate: {unsupported_reason(family, 'interpolate')}")
        for picker in self.class_pickers:
            picker.choose(None)  # the chosen items keep their own classes
        extra = f" (only the first two of {len(ids)} are used)" if len(ids) > 2 else ""
        self.status.setText(
            f"Ends set from the gallery: #{chosen[0]}" + (f" to #{chosen[1]}" if len(chosen) > 1 else "") + extra
        )
