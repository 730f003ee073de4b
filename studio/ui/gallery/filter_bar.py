"""The gallery's filter bar: model, family, class, rating, flag, tag, memorised and date filters, the sort
order, and the "Like #n" chip of a "more like this" search.

The bar says what it asks for (`filters`, `sort`, `order`) and that it changed; the page reloads the grid. The
bar offers the models, families, classes and tags that occur, counted off the GUI thread by a `QueryOp`. The
class filter (the classes conditional models made items as) shows only once some item has a class.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from PySide6.QtCore import QDate, QSignalBlocker, QThreadPool, Signal
from PySide6.QtWidgets import QComboBox, QDateEdit, QFrame, QHBoxLayout, QLabel, QLineEdit, QToolButton, QWidget

from studio.engine.families.conditioning import natural_key
from studio.store.gallery import SORTS, GalleryFilter, GalleryRepository
from studio.ui.operations import QueryHandle, QueryOp
from studio.ui.widgets import named

ANY_DATE = QDate(2000, 1, 1)  # the date edits' "any" state: their minimum, shown as "any"
CLOSE_MARK = "\u00d7"  # the multiplication sign: the chip's close button
SORT_TITLES = {"newest": "Newest first", "oldest": "Oldest first", "rating": "Top rated"}
CHIP_STYLE = "#similarChip { background: palette(alternate-base); border: 1px solid palette(mid); border-radius: 9px; }"
MEMORISED_TIP = (
    "Only items closer to a training image than their encoder's memorisation rule: likely copies of the "
    "training data (items of datasets without an encoder are never shown)"
)


def day_start_utc(day: date) -> datetime:
    """Local midnight of `day` as the naive UTC the store compares with."""
    return datetime(day.year, day.month, day.day).astimezone().astimezone(UTC).replace(tzinfo=None)


def _day(value: QDate) -> date:
    """A QDate as a date."""
    return date(value.year(), value.month(), value.day())


class FilterBar(QWidget):
    """Filter combos and date edits in a row, plus the sort combo (which the page places in its action bar)."""

    changed = Signal()  # a filter or the sort changed: show what the bar asks for now
    tagTyped = Signal(str)  # noqa: N815 - Qt naming: the tag filter's text when its editing finished
    facetsRead = Signal(object)  # noqa: N815 - the facet counts, once the lists offer them
    facetsFailed = Signal(str)  # noqa: N815 - why the facets could not be counted

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("galleryFilterBar")
        self._facets: QueryHandle | None = None
        self.similar_to: int | None = None  # the item of a "more like this" search, while its chip is on
        self.similar_ids: tuple[int, ...] = ()  # its results, nearest first
        self.collection: str | None = None  # the collection opened from the collections panel
        self._searched = ""  # the search text the grid shows (Enter or leaving the box applies a new one)
        bar = QHBoxLayout(self)
        bar.setContentsMargins(0, 0, 0, 0)
        bar.setSpacing(6)
        self.model_filter = named(QComboBox(), "modelFilter", "Filter by model")
        self.model_filter.addItem("All models", None)
        self.family_filter = named(QComboBox(), "familyFilter", "Filter by family")
        self.family_filter.addItem("All families", None)
        self.class_filter = named(
            QComboBox(), "classFilter", "Filter by class", "the class a class-conditional model made the items as"
        )
        self.class_filter.addItem("Any class", None)
        self.class_filter.setVisible(False)  # until some item has a class
        self.rating_filter = named(QComboBox(), "ratingFilter", "Filter by rating")
        self.rating_filter.addItem("Any rating", None)
        for stars in range(1, 6):
            self.rating_filter.addItem(f"≥ {stars} star{'s' if stars > 1 else ''}", stars)
        self.flag_filter = named(QComboBox(), "flagFilter", "Filter by flag")
        for title, flag in (("Any flag", None), ("Picks", "pick"), ("Rejects", "reject"), ("Unflagged", "none")):
            self.flag_filter.addItem(title, flag)
        self.tag_filter = named(QComboBox(), "tagFilter", "Filter by tag", "Type a tag and press Enter")
        self.tag_filter.setEditable(True)
        self.tag_filter.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.tag_filter.addItem("")
        tag_line = self.tag_filter.lineEdit()
        assert tag_line is not None  # an editable combo has one
        tag_line.setPlaceholderText("any tag")
        self.tag_filter.setMinimumContentsLength(8)
        self.since_filter = self._date_edit("sinceFilter", "Created on or after")
        self.until_filter = self._date_edit("untilFilter", "Created on or before")
        self.sort_combo = named(QComboBox(), "sortCombo", "Sort order")
        for sort in SORTS:
            self.sort_combo.addItem(SORT_TITLES[sort], sort)
        self.sort_combo.setMinimumWidth(48)
        self.memorised_filter = named(QToolButton(), "memorisedFilter", "Only memorised items", MEMORISED_TIP)
        self.memorised_filter.setText("Memorised")
        self.memorised_filter.setCheckable(True)
        self.memorised_filter.toggled.connect(lambda _on: self.changed.emit())
        self.similar_chip = self._chip()
        self.search_edit = named(
            QLineEdit(), "gallerySearchEdit", "Search", "Words found in the notes, tags, model names and settings"
        )
        self.search_edit.setPlaceholderText("search…")
        self.search_edit.setClearButtonEnabled(True)
        for clear in self.search_edit.findChildren(QToolButton):  # the edit's own clear button: named like the rest
            named(clear, "gallerySearchClearButton", "Clear the search")
        self.search_edit.setMinimumWidth(48)
        self.search_edit.returnPressed.connect(self._search_typed)
        self.search_edit.editingFinished.connect(self._search_typed)
        self.search_edit.textChanged.connect(lambda text: None if text else self._search_typed())  # the clear button
        self.collection_chip = named(
            QToolButton(), "collectionChip", "Collection filter", "Only the items of this collection: click to show all"
        )
        self.collection_chip.setVisible(False)
        self.collection_chip.clicked.connect(lambda: self.set_collection(None))
        self.clear_filters_button = named(QToolButton(), "clearFiltersButton", "Clear every filter")
        self.clear_filters_button.setText("Clear")
        for combo, width in (
            (self.model_filter, 12),
            (self.family_filter, 9),
            (self.class_filter, 8),
            (self.rating_filter, 8),
            (self.flag_filter, 8),
            (self.sort_combo, 9),
        ):
            # A fixed width in characters: a 64-character model name must not push the window wider.
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(width)
            combo.currentIndexChanged.connect(self.changed)
        self.tag_filter.activated.connect(self.changed)
        tag_line.editingFinished.connect(lambda: self.tagTyped.emit(self.tag_filter.currentText().strip()))
        for edit in (self.since_filter, self.until_filter):
            edit.dateChanged.connect(self.changed)
        # Explicit small minimums: the bar keeps its natural widths when there is room and squeezes (rather
        # than forcing the window wider) on a small screen.
        for widget in (
            self.model_filter,
            self.family_filter,
            self.class_filter,
            self.rating_filter,
            self.flag_filter,
            self.tag_filter,
            self.since_filter,
            self.until_filter,
        ):
            widget.setMinimumWidth(48)
        bar.addWidget(self.search_edit)
        bar.addWidget(self.collection_chip)
        bar.addWidget(self.model_filter)
        bar.addWidget(self.family_filter)
        bar.addWidget(self.class_filter)
        bar.addWidget(self.rating_filter)
        bar.addWidget(self.flag_filter)
        bar.addWidget(self.tag_filter)
        bar.addWidget(self.memorised_filter)
        bar.addWidget(QLabel("from"))
        bar.addWidget(self.since_filter)
        bar.addWidget(QLabel("to"))
        bar.addWidget(self.until_filter)
        bar.addWidget(self.similar_chip)
        bar.addWidget(self.clear_filters_button)
        bar.addStretch(1)

    def _chip(self) -> QFrame:
        """The "Like #n" chip: says why the grid shows only some items; its close button takes that filter off."""
        chip = named(QFrame(), "similarChip", "More like this filter")
        chip.setStyleSheet(CHIP_STYLE)
        row = QHBoxLayout(chip)
        row.setContentsMargins(8, 1, 2, 1)
        row.setSpacing(2)
        self.similar_label = named(QLabel(), "similarLabel", "Items like")
        self.similar_remove = named(QToolButton(), "similarRemoveButton", "Show every item again")
        self.similar_remove.setText(CLOSE_MARK)
        self.similar_remove.setAutoRaise(True)
        self.similar_remove.setToolTip("Take this filter off")
        self.similar_remove.clicked.connect(self.remove_similar)
        row.addWidget(self.similar_label)
        row.addWidget(self.similar_remove)
        chip.setVisible(False)
        return chip

    def set_similar(self, item_id: int, ids: list[int]) -> None:
        """Show only the items like `item_id` (`ids`, nearest first), in that order, with a chip that says so;
        no `changed` signal: the caller reloads once."""
        self.similar_to = item_id
        self.similar_ids = tuple(ids)
        self.similar_label.setText(f"Like #{item_id}")
        tip = (
            f"The {len(ids)} item{'s' if len(ids) != 1 else ''} most like #{item_id}, nearest first (the sort "
            "order is set aside while this filter is on; the other filters still apply). Its close button shows "
            "every item again."
        )
        self.similar_chip.setToolTip(tip)
        self.similar_label.setToolTip(tip)
        self.similar_chip.setVisible(True)
        self.sort_combo.setEnabled(False)
        self.sort_combo.setToolTip(f"Nearest to #{item_id} first while the 'Like #{item_id}' filter is on")

    def remove_similar(self) -> None:
        """Take the "more like this" filter off (the chip's close button), and say the filters changed."""
        if self.similar_to is not None:
            self._drop_similar()
            self.changed.emit()

    def _drop_similar(self) -> None:
        self.similar_to = None
        self.similar_ids = ()
        self.similar_chip.setVisible(False)
        self.sort_combo.setEnabled(True)
        self.sort_combo.setToolTip("")

    @property
    def order(self) -> tuple[int, ...] | None:
        """The order the grid must show its items in (a "more like this" search's), or None to sort them."""
        return self.similar_ids if self.similar_to is not None else None

    @staticmethod
    def _date_edit(object_name: str, accessible_name: str) -> QDateEdit:
        edit = named(QDateEdit(), object_name, accessible_name, f"{accessible_name} (the earliest date means any)")
        edit.setCalendarPopup(True)
        edit.setMinimumDate(ANY_DATE)
        edit.setSpecialValueText("any")  # shown while the date is at its minimum
        edit.setDisplayFormat("yyyy-MM-dd")
        edit.setDate(ANY_DATE)
        return edit

    def filters(self, trash: bool = False) -> GalleryFilter:
        """What the bar asks for, as a GalleryFilter (a StudioError when its dates contradict each other)."""
        since = self.since_filter.date()
        until = self.until_filter.date()
        tag = self.tag_filter.currentText().strip() or None
        return GalleryFilter(
            model=self.model_filter.currentData(),
            family=self.family_filter.currentData(),
            class_name=self.class_filter.currentData(),
            min_rating=self.rating_filter.currentData(),
            flag=self.flag_filter.currentData(),
            tag=tag,
            since=None if since == ANY_DATE else day_start_utc(_day(since)),
            until=None if until == ANY_DATE else day_start_utc(_day(until) + timedelta(days=1)),
            trash=trash,
            ids=self.order,
            memorised=self.memorised_filter.isChecked(),
            collection=self.collection,
            search=self.search_edit.text().strip() or None,
        )

    @property
    def sort(self) -> str:
        """The sort combo's choice: newest, oldest or rating."""
        return str(self.sort_combo.currentData())

    def clear(self) -> None:
        """Every filter back to "any" (the sort stays), without a `changed` signal: the caller reloads once."""
        for combo in (self.model_filter, self.family_filter, self.class_filter, self.rating_filter, self.flag_filter):
            with QSignalBlocker(combo):
                combo.setCurrentIndex(0)
        with QSignalBlocker(self.tag_filter):
            self.tag_filter.setCurrentIndex(0)
            self.tag_filter.setEditText("")
        for edit in (self.since_filter, self.until_filter):
            with QSignalBlocker(edit):
                edit.setDate(ANY_DATE)
        with QSignalBlocker(self.memorised_filter):
            self.memorised_filter.setChecked(False)
        with QSignalBlocker(self.search_edit):
            self.search_edit.clear()
        self._searched = ""
        self._show_collection(None)
        self._drop_similar()

    def _search_typed(self) -> None:
        """Enter, leaving the box, or its clear button: a search the grid does not show yet applies."""
        text = self.search_edit.text().strip()
        if text != self._searched:
            self._searched = text
            self.changed.emit()

    def set_collection(self, name: str | None) -> None:
        """Show only the items of collection `name` (None: of any), and say the filters changed."""
        if name != self.collection:
            self._show_collection(name)
            self.changed.emit()

    def _show_collection(self, name: str | None) -> None:
        self.collection = name
        self.collection_chip.setText(f"In {name} {CLOSE_MARK}" if name else "")
        self.collection_chip.setVisible(name is not None)

    def set_filters(self, filters: GalleryFilter, sort: str | None = None) -> None:
        """Show a (saved) filter in the bar, every field it does not set back to "any"; no `changed` signal:
        the caller reloads once."""
        self.clear()
        for combo, value in (
            (self.model_filter, filters.model),
            (self.family_filter, filters.family),
            (self.class_filter, filters.class_name),
            (self.rating_filter, filters.min_rating),
            (self.flag_filter, filters.flag),
        ):
            if value is None:
                continue
            with QSignalBlocker(combo):
                if combo.findData(value) < 0:
                    combo.addItem(str(value), value)  # a model or class no item has now: offered as it was saved
                combo.setCurrentIndex(combo.findData(value))
        with QSignalBlocker(self.tag_filter):
            self.tag_filter.setEditText(filters.tag or "")
        for edit, moment, back in ((self.since_filter, filters.since, 0), (self.until_filter, filters.until, 1)):
            if moment is not None:
                local = moment.replace(tzinfo=UTC).astimezone()
                day = (local - timedelta(microseconds=1)).date() if back else local.date()
                with QSignalBlocker(edit):
                    edit.setDate(QDate(day.year, day.month, day.day))
        with QSignalBlocker(self.memorised_filter):
            self.memorised_filter.setChecked(filters.memorised)
        with QSignalBlocker(self.search_edit):
            self.search_edit.setText(filters.search or "")
        self._searched = (filters.search or "").strip()
        self._show_collection(filters.collection)
        if sort is not None and self.sort_combo.findData(sort) >= 0:
            with QSignalBlocker(self.sort_combo):
                self.sort_combo.setCurrentIndex(self.sort_combo.findData(sort))

    def read_facets(self, repository: GalleryRepository, trash: bool, pool: QThreadPool) -> None:
        """Count the items per model, family and tag (~0.3 s at 100,000 items: off the GUI thread), then offer
        them; a newer count overtakes an older one."""
        filters = GalleryFilter(trash=trash)
        self._facets = (
            QueryOp(self, lambda: repository.facets(filters), pool=pool)
            .latest_only("facets")
            .success(self._facets_counted)
            .failure(self.facetsFailed.emit)
            .run_in_background()
        )

    def stop_reading(self) -> None:
        """Drop a count on its way (the page closes)."""
        if self._facets is not None:
            self._facets.cancel()

    def _facets_counted(self, facets: dict[str, dict[str, int]]) -> None:
        self.set_facets(facets)
        self.facetsRead.emit(facets)

    def set_facets(self, facets: dict[str, dict[str, int]]) -> None:
        """Offer the models, families, classes and tags that occur, with their counts; the current choices stay."""
        self._fill_combo(self.model_filter, facets.get("model", {}))
        self._fill_combo(self.family_filter, facets.get("family", {}))
        self._fill_combo(self.class_filter, facets.get("class", {}), natural_key, "class {}")
        self.class_filter.setVisible(self.class_filter.count() > 1)
        tags = facets.get("tag", {})
        current = self.tag_filter.currentText()
        with QSignalBlocker(self.tag_filter):
            self.tag_filter.clear()
            self.tag_filter.addItem("")
            for name in sorted(tags, key=str.casefold):
                self.tag_filter.addItem(name)
            self.tag_filter.setEditText(current)

    @staticmethod
    def _fill_combo(
        combo: QComboBox, counts: dict[str, int], key: Callable[[str], Any] = str.casefold, title: str = "{}"
    ) -> None:
        """Options (`title` formatted with the name) with their counts, ordered by `key`; the current choice stays,
        even if no item has it any more."""
        chosen = combo.currentData()
        with QSignalBlocker(combo):
            while combo.count() > 1:
                combo.removeItem(1)
            names = sorted(set(counts) | ({chosen} if chosen else set()), key=key)
            for name in names:
                combo.addItem(f"{title.format(name)} ({counts.get(name, 0):,})", name)
            combo.setCurrentIndex(max(0, combo.findData(chosen)) if chosen else 0)
        combo.view().setMinimumWidth(combo.view().sizeHintForColumn(0) + 24)  # the list shows names whole
