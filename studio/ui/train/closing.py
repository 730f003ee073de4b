"""Closing the window while a supervised training run goes on: stop it, leave it running, or stay."""

from __future__ import annotations

import enum

from PySide6.QtWidgets import QMessageBox, QWidget


class RunClosing(enum.StrEnum):
    """What the user chose for a run going on while the window closes."""

    STOP = "stop"  # ask the run to stop (it saves a checkpoint first), then close
    LEAVE = "leave"  # close and leave the run going: the next window attaches to it
    CANCEL = "cancel"  # do not close


def ask_about_run(parent: QWidget, model: str) -> RunClosing:
    """Ask, in a modal dialog, what to do with the run training `model`."""
    box = QMessageBox(
        QMessageBox.Icon.Question,
        "A training run is going",
        f"Training '{model}' runs in its own process. Stop it (it saves a checkpoint first), or leave it "
        "running? Studio shows it again when you open it; `studio runs` lists it.",
        QMessageBox.StandardButton.NoButton,
        parent,
    )
    box.setObjectName("runClosingDialog")
    stop = box.addButton("Stop the run", QMessageBox.ButtonRole.DestructiveRole)
    stop.setObjectName("runClosingStopButton")
    leave = box.addButton("Leave it running", QMessageBox.ButtonRole.AcceptRole)
    leave.setObjectName("runClosingLeaveButton")
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    cancel.setObjectName("runClosingCancelButton")
    box.setDefaultButton(leave)
    box.setEscapeButton(cancel)
    box.exec()
    clicked = box.clickedButton()
    name = clicked.objectName() if clicked is not None else ""
    return {"runClosingStopButton": RunClosing.STOP, "runClosingLeaveButton": RunClosing.LEAVE}.get(
        name, RunClosing.CANCEL
    )
