"""Turning what the user dropped (folders, zips, files) into a list of candidates to decode.

Archives are read in place, member by member: nothing is ever extracted to disk, so paths
inside an archive cannot write anywhere. Unsafe members are reported, not trusted.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from studio.engine.datasets.decode import IMAGE_SUFFIXES, ImportLimits, human_bytes

ARCHIVE_SUFFIXES = frozenset({".zip"})
# Operating-system litter that nobody means to import; ignored without a report.
IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini", "__macosx"})


@dataclass(frozen=True)
class Candidate:
    """One image to decode: a file, or a member of an archive, with its optional class label."""

    path: str
    member: str | None
    display: str
    label: str | None


@dataclass(frozen=True)
class Skipped:
    """One input that was not imported, and why."""

    path: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        """The JSON form the CLI prints."""
        return {"path": self.path, "reason": self.reason}


def printable(path: str | os.PathLike[str]) -> str:
    """A path as text that is always valid UTF-8 (undecodable bytes become \\xNN escapes)."""
    raw = os.fsencode(path)
    return raw.decode("utf-8", errors="backslashreplace")


def _ignored(name: str) -> bool:
    return name.startswith(".") or name.lower() in IGNORED_NAMES


def _suffix(name: str) -> str:
    return os.path.splitext(name)[1].lower()


def _label_for(parts: tuple[str, ...]) -> str | None:
    """The class label of a file: the name of its folder below the dropped root, if any."""
    return parts[-2] if len(parts) >= 2 else None


class SourceScanner:
    """Walks folders recursively and lists archives, collecting candidates and skips in order."""

    def __init__(self, limits: ImportLimits, labels: bool = True, exclude: Path | None = None) -> None:
        self.limits = limits
        self.labels = labels
        # The data home itself is never imported (a dataset of its own thumbnails helps nobody).
        self.exclude = os.path.realpath(exclude) if exclude is not None else None
        self.candidates: list[Candidate] = []
        self.skipped: list[Skipped] = []

    def scan(self, sources: Iterable[str | os.PathLike[str]]) -> Iterator[int]:
        """Scan every source; yields the number of candidates found so far, now and then."""
        for source in sources:
            path = os.fspath(source)
            try:
                info = os.lstat(path)
            except OSError as error:
                self.skipped.append(Skipped(printable(path), f"cannot read: {error.strerror or error}"))
                continue
            if stat.S_ISLNK(info.st_mode):
                self.skipped.append(Skipped(printable(path), "symbolic link (not followed)"))
            elif stat.S_ISDIR(info.st_mode):
                if self._excluded(path):
                    self.skipped.append(Skipped(printable(path), "Studio's own data folder (not imported)"))
                    continue
                yield from self._scan_folder(path)
            else:
                self._add_file(path, (os.path.basename(path),), label_parts=None)
            yield len(self.candidates)

    def _excluded(self, folder: str) -> bool:
        return self.exclude is not None and os.path.realpath(folder) == self.exclude

    def _scan_folder(self, root: str) -> Iterator[int]:
        def on_error(error: OSError) -> None:
            where = error.filename or root
            self.skipped.append(Skipped(printable(where), f"cannot read folder: {error.strerror or error}"))

        for folder, dirs, files in os.walk(root, onerror=on_error, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not _ignored(d))
            for name in list(dirs):
                full = os.path.join(folder, name)
                if os.path.islink(full):
                    self.skipped.append(Skipped(printable(full), "symbolic link (not followed)"))
                elif self._excluded(full):
                    self.skipped.append(Skipped(printable(full), "Studio's own data folder (not imported)"))
                    dirs.remove(name)
            relative = Path(os.path.relpath(folder, root)).parts
            relative = () if relative == (".",) else relative
            for name in sorted(files):
                if _ignored(name):
                    continue
                parts = (*relative, name)
                self._add_file(os.path.join(folder, name), parts, label_parts=parts)
            yield len(self.candidates)

    def _add_file(self, path: str, parts: tuple[str, ...], label_parts: tuple[str, ...] | None) -> None:
        suffix = _suffix(path)
        label = _label_for(label_parts) if (self.labels and label_parts) else None
        if os.path.islink(path):
            self.skipped.append(Skipped(printable(path), "symbolic link (not followed)"))
        elif suffix in ARCHIVE_SUFFIXES:
            self._scan_archive(path)
        elif suffix in IMAGE_SUFFIXES:
            self.candidates.append(Candidate(path, None, printable(path), label))
        else:
            what = f"'{suffix}'" if suffix else "no extension"
            self.skipped.append(Skipped(printable(path), f"not an image file ({what})"))

    def _scan_archive(self, path: str) -> None:
        shown = printable(path)
        try:
            with zipfile.ZipFile(path) as archive:
                members = archive.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as error:
            self.skipped.append(Skipped(shown, f"broken zip archive: {error}"))
            return
        except OSError as error:
            self.skipped.append(Skipped(shown, f"cannot read: {error.strerror or error}"))
            return
        if len(members) > self.limits.max_archive_entries:
            self.skipped.append(
                Skipped(shown, f"zip bomb refused: {len(members)} entries (limit {self.limits.max_archive_entries})")
            )
            return
        declared = sum(member.file_size for member in members)
        if declared > self.limits.max_archive_bytes:
            self.skipped.append(
                Skipped(
                    shown,
                    f"zip bomb refused: {human_bytes(declared)} uncompressed "
                    f"(limit {human_bytes(self.limits.max_archive_bytes)})",
                )
            )
            return
        for member in members:
            self._add_member(path, shown, member)

    def _add_member(self, path: str, shown: str, member: zipfile.ZipInfo) -> None:
        name = member.filename
        display = f"{shown}!{name}"
        if member.is_dir():
            return
        posix = PurePosixPath(name.replace("\\", "/"))
        if posix.is_absolute() or ".." in posix.parts or (posix.parts and ":" in posix.parts[0]):
            self.skipped.append(Skipped(display, "unsafe path in archive (absolute or '..'): not imported"))
            return
        if any(_ignored(part) for part in posix.parts):
            return
        unix_mode = member.external_attr >> 16
        if stat.S_ISLNK(unix_mode):
            self.skipped.append(Skipped(display, "symbolic link in archive (not followed)"))
            return
        if member.flag_bits & 0x1:
            self.skipped.append(Skipped(display, "encrypted archive entry (password protected)"))
            return
        suffix = _suffix(name)
        if suffix in ARCHIVE_SUFFIXES:
            self.skipped.append(Skipped(display, "archive inside an archive (extract it first)"))
        elif suffix in IMAGE_SUFFIXES:
            label = _label_for(posix.parts) if self.labels else None
            self.candidates.append(Candidate(path, name, display, label))
        else:
            what = f"'{suffix}'" if suffix else "no extension"
            self.skipped.append(Skipped(display, f"not an image file ({what})"))
