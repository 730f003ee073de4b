"""Curation as XMP, through libexiv2 (the `exiv2` package): what Lightroom, digiKam and exiftool read.

Where each value goes (and comes back from):
- stars: `xmp:Rating` 0-5; a reject is `xmp:Rating` -1, as Lightroom writes it (its stars are not kept);
- pick/reject: digiKam's `digiKam:PickLabel` (3 accepted, 1 rejected; Lightroom keeps picks in its
  catalogue only, so digiKam's field is the documented place a file can carry one);
- tags: `dc:subject` (a Bag, every keyword reader knows it);
- collections: `lr:hierarchicalSubject` "Collections|NAME" and digiKam's `digiKam:TagsList`
  "Collections/NAME", next to the plain tags (digiKam reads these lists before `dc:subject`).
The library is imported on first use: only an export or import that touches XMP pays for it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from studio.engine.untrusted.values import MalformedError, read_limited, shown
from studio.errors import StudioError
from studio.files import atomic_file

XMP_MODES = ("embed", "sidecar", "none")
SIDECAR_SUFFIX = ".xmp"
MAX_SIDECAR = 1 << 20  # a sidecar Studio writes is under 4 KiB; Lightroom's with a develop history ~100 KiB
COLLECTIONS_ROOT = "Collections"
PICK_LABELS = {"pick": "3", "reject": "1"}  # digiKam's PickLabel: 0 none, 1 rejected, 2 pending, 3 accepted
_MAX_VALUES = 256  # tags or collections taken from one file
_READ = frozenset(
    ("Xmp.xmp.Rating", "Xmp.digiKam.PickLabel", "Xmp.dc.subject", "Xmp.lr.hierarchicalSubject", "Xmp.digiKam.TagsList")
)

_lock = threading.Lock()
_library: ModuleType | None = None
_heard = threading.local()  # what libexiv2 logged during this thread's current read


class _Collector(logging.Handler):
    """Keeps libexiv2's complaints (it reports a broken packet only by logging) for the read that caused them."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR and isinstance(getattr(_heard, "messages", None), list):
            _heard.messages.append(record.getMessage())


@dataclass(frozen=True)
class XmpCuration:
    """How a user judged an image: stars, pick/reject, tags and collections."""

    rating: int = 0
    flag: str = "none"
    tags: tuple[str, ...] = ()
    collections: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=(), compare=False)  # what was found but could not be taken

    @property
    def empty(self) -> bool:
        """Nothing to take over."""
        return not (self.rating or self.flag != "none" or self.tags or self.collections)


def library() -> ModuleType:
    """The `exiv2` module, loaded once (its XMP toolkit initialised before any thread uses it)."""
    global _library
    with _lock:
        if _library is None:
            try:
                import exiv2  # type: ignore[import-untyped]  # SWIG bindings without stubs
            except ImportError:
                raise StudioError(
                    "XMP needs the exiv2 package (pip install exiv2), or export with --xmp none"
                ) from None
            logger = logging.getLogger("exiv2")  # python-exiv2 routes the library's log here
            logger.addHandler(_Collector())
            logger.propagate = False  # never to the terminal
            exiv2.XmpParser.initialize()
            _library = exiv2
        return _library


def _properties(curation: XmpCuration) -> list[tuple[str, str | list[str], str]]:
    """(key, value, XMP type) of every property written."""
    rating = "-1" if curation.flag == "reject" else str(curation.rating)
    found: list[tuple[str, str | list[str], str]] = [("Xmp.xmp.Rating", rating, "text")]
    if curation.flag in PICK_LABELS:
        found.append(("Xmp.digiKam.PickLabel", PICK_LABELS[curation.flag], "text"))
    if curation.tags:
        found.append(("Xmp.dc.subject", list(curation.tags), "bag"))
    hierarchy = list(curation.tags) + [f"{COLLECTIONS_ROOT}|{name}" for name in curation.collections]
    if hierarchy:
        found.append(("Xmp.lr.hierarchicalSubject", hierarchy, "bag"))
        digikam = list(curation.tags) + [f"{COLLECTIONS_ROOT}/{name}" for name in curation.collections]
        found.append(("Xmp.digiKam.TagsList", digikam, "seq"))
    return found


def _apply(exiv2: ModuleType, xmp: Any, curation: XmpCuration) -> None:
    for key, value, kind in _properties(curation):
        existing = xmp.findKey(exiv2.XmpKey(key))
        while existing != xmp.end():
            xmp.erase(existing)
            existing = xmp.findKey(exiv2.XmpKey(key))
        if kind == "text":
            xmp[key] = value
            continue
        array = exiv2.Value.create(exiv2.TypeId.xmpBag if kind == "bag" else exiv2.TypeId.xmpSeq)
        for item in value:
            array.read(item)
        xmp.add(exiv2.XmpKey(key), array)


def embedded(data: bytes, curation: XmpCuration) -> bytes:
    """An image file's bytes with the curation written into its XMP (PNG: an iTXt `XML:com.adobe.xmp`)."""
    exiv2 = library()
    try:
        image = exiv2.ImageFactory.open(data)
        image.readMetadata()
        xmp = image.xmpData()
        _apply(exiv2, xmp, curation)
        image.setXmpData(xmp)
        image.writeMetadata()
        with image.io().data() as view:
            return bytes(view)
    except exiv2.Exiv2Error as error:
        raise StudioError(f"XMP could not be written ({_reason(error)})") from None


def sidecar(curation: XmpCuration) -> bytes:
    """An XMP sidecar's text (`IMAGE.xmp`), serialised by the library."""
    exiv2 = library()
    xmp = exiv2.XmpData()
    _apply(exiv2, xmp, curation)
    packet = exiv2.XmpParser.encode(xmp)  # [status, text]: 0 is success
    text = packet[1] if isinstance(packet, list | tuple) and len(packet) == 2 and packet[0] == 0 else None
    if not isinstance(text, str) or not text:
        raise StudioError("XMP could not be written (the library returned no packet)")
    return text.encode("utf-8")


def sidecar_path(image: Path) -> Path:
    """Where an image's sidecar lives: `photo.png` -> `photo.xmp` (Lightroom's and digiKam's naming)."""
    return image.with_suffix(SIDECAR_SUFFIX)


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` through a temporary file in the same folder, fsync, then rename."""
    with atomic_file(path) as handle:
        handle.write(data)


# --- reading ------------------------------------------------------------------------------


def read_file(path: Path) -> XmpCuration | None:
    """The curation in an image file's own XMP, or None when it has none (MalformedError when unreadable)."""
    exiv2 = library()
    _heard.messages = []
    try:
        image = exiv2.ImageFactory.open(str(path))
        image.readMetadata()
        found = _curation(image.xmpData())
    except exiv2.Exiv2Error as error:
        raise MalformedError(f"unreadable XMP ({_reason(error)})") from None
    finally:
        heard, _heard.messages = _heard.messages, None
    if found is None and heard:
        raise MalformedError(f"invalid XMP ({shown(heard[0], 120)[1:-1]})")
    return found


def read_packet(data: bytes) -> XmpCuration | None:
    """The curation in an XMP packet (a sidecar's bytes, or a PNG's iTXt text), or None when it has none."""
    exiv2 = library()
    if not data.strip():
        return None
    _heard.messages = []
    try:
        image = exiv2.ImageFactory.open(data)
        image.readMetadata()
        found = _curation(image.xmpData())
    except exiv2.Exiv2Error as error:
        raise MalformedError(f"invalid XMP ({_reason(error)})") from None
    finally:
        heard, _heard.messages = _heard.messages, None
    if found is None and heard:
        raise MalformedError(f"invalid XMP ({shown(heard[0], 120)[1:-1]})")
    return found


def read_sidecar(image: Path) -> XmpCuration | None:
    """The curation in the sidecar next to an image (`photo.xmp` or `photo.png.xmp`), or None."""
    for candidate in (sidecar_path(image), image.with_name(image.name + SIDECAR_SUFFIX)):
        if candidate.is_file():
            return read_packet(read_limited(candidate, MAX_SIDECAR))
    return None


def _reason(error: BaseException) -> str:
    arguments = getattr(error, "args", ())
    text = arguments[-1] if arguments and isinstance(arguments[-1], str) else str(error)
    return shown(text.splitlines()[0] if text else type(error).__name__, 120).strip("'\"")


def _texts(datum: Any) -> list[str]:
    if datum.typeName() in ("XmpBag", "XmpSeq", "XmpAlt"):
        return [str(datum.toString(index)) for index in range(min(int(datum.count()), _MAX_VALUES))]
    return [str(datum.toString())]


def _curation(xmp: Any) -> XmpCuration | None:
    values: dict[str, list[str]] = {}
    for datum in xmp:
        key = str(datum.key())
        if key in _READ:
            values[key] = _texts(datum)
    if not values:
        return None
    notes: list[str] = []
    rating, flag = _rating(values.get("Xmp.xmp.Rating", []), notes)
    pick = (values.get("Xmp.digiKam.PickLabel") or [""])[0].strip()
    if pick == PICK_LABELS["pick"]:
        flag = "pick"
    elif pick == PICK_LABELS["reject"]:
        flag = "reject"
    tags = _unique(values.get("Xmp.dc.subject", []))
    collections: list[str] = []
    for entry in values.get("Xmp.lr.hierarchicalSubject", []):
        _collection(entry, "|", collections, tags)
    for entry in values.get("Xmp.digiKam.TagsList", []):
        _collection(entry, "/", collections, tags)
    return XmpCuration(rating, flag, tuple(_unique(tags)), tuple(_unique(collections)), tuple(notes))


def _rating(texts: list[str], notes: list[str]) -> tuple[int, str]:
    if not texts:
        return 0, "none"
    text = texts[0].strip()
    try:
        value = float(text[:32])
    except ValueError:
        notes.append(f"xmp:Rating {shown(text)} is not a number: ignored")
        return 0, "none"
    if value < 0:
        return 0, "reject"  # Lightroom's reject
    if value > 5:
        notes.append(f"xmp:Rating {shown(text)} is over 5: ignored")
        return 0, "none"
    return round(value), "none"


def _collection(entry: str, separator: str, collections: list[str], tags: list[str]) -> None:
    """A hierarchical keyword: `Collections|NAME` is a collection; a plain one is a tag."""
    parts = [part for part in entry.split(separator) if part.strip()]
    if len(parts) == 2 and parts[0].strip() == COLLECTIONS_ROOT:
        collections.append(parts[1])
    elif len(parts) == 1:
        tags.append(parts[0])
    elif parts:
        tags.append(parts[-1])  # a deeper keyword path: its leaf is the keyword people typed


def _unique(names: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    kept: list[str] = []
    for name in names:
        key = name.strip().casefold()
        if key and key not in seen:
            seen.add(key)
            kept.append(name.strip())
    return kept[:_MAX_VALUES]
