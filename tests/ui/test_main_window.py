"""The minimal main window opens offscreen and shows the data home's datasets."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from studio.engine.datasets.samples import add_sample
from studio.engine.jobs import run_job
from studio.store.database import Store
from studio.ui.main_window import MainWindow


def test_window_lists_datasets_with_previews(qtbot: QtBot, store: Store) -> None:
    run_job(add_sample(store, "digits", size=8))
    run_job(add_sample(store, "shapes", count=20, size=16))
    window = MainWindow(store)
    qtbot.addWidget(window)
    window.show()
    page = window.datasets_page
    assert page.objectName() == "datasetsPage" and page.accessibleName() == "Datasets"
    assert page.list.count() == 2
    texts = [page.list.item(i).text() for i in range(page.list.count())]
    assert texts[0].startswith("shapes\n20 images, 16x16, colour, ") and "digits" in texts[1]
    assert all(not page.list.item(i).icon().isNull() for i in range(2))
    assert str(store.home.root) in window.statusBar().currentMessage()


def test_empty_home_explains_how_to_start(qtbot: QtBot, store: Store) -> None:
    window = MainWindow(store)
    qtbot.addWidget(window)
    assert window.datasets_page.list.count() == 0
    assert "add-sample" in window.datasets_page.hint.text()


def test_models_page_lists_trained_models(qtbot: QtBot, store: Store) -> None:
    from studio.engine.training import train

    run_job(add_sample(store, "digits", size=8))
    run_job(train(store, "tiny", family="vae", dataset="digits", steps=2, preview_every=0,
                  settings={"width": 8, "latent_dim": 4, "batch_size": 8}))
    window = MainWindow(store)
    qtbot.addWidget(window)
    window.sidebar.setCurrentRow(1)
    assert window.pages.currentWidget() is window.models_page
    table = window.models_page.table
    assert window.models_page.objectName() == "modelsPage" and table.rowCount() == 1
    assert [table.item(0, c).text() for c in range(5)] == ["tiny", "vae", "8x8x1", "digits", "2"]
