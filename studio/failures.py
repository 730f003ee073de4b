"""What the user's environment did, in one line: a full or read-only disk, permissions, memory, a damaged database.

`explain(error, home)` turns such an error (an OSError, a sqlite3 error, the same wrapped by
SQLAlchemy, a MemoryError) into a StudioError whose message says what happened and what to do, or
returns None for anything else: that is a bug, and deserves its traceback. The CLI's error boundary
and the UI's job runner both call it, so a full disk reads the same in both. Only SQLite's CORRUPT
and NOTADB are called damage: a full disk or a read-only file never is.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from studio.errors import StudioError

# Said after every environment failure: files are written to a temporary name and renamed, and rows
# are committed in one transaction after their files exist, so a failed write leaves no part behind
# (earlier, completed batches of a long job are kept).
NOTHING_KEPT = "nothing half-written was kept"
# Below this much free space, an I/O error from SQLite is put down to a full disk (SQLite reports a
# failed -shm resize or a short write as a generic I/O error, not as SQLITE_FULL).
NEARLY_FULL = 1024 * 1024

# SQLite's primary result codes (https://sqlite.org/rescode.html), of the errors a user can cause.
SQLITE_PERM, SQLITE_BUSY, SQLITE_LOCKED, SQLITE_NOMEM, SQLITE_READONLY = 3, 5, 6, 7, 8
SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_AUTH, SQLITE_NOTADB = 10, 11, 13, 14, 23, 26
DAMAGE_CODES = frozenset({SQLITE_CORRUPT, SQLITE_NOTADB})
# PostgreSQL's SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html): a transaction
# the server rolled back because of another one (serialization failure, deadlock) is safe to run again.
PG_TRANSIENT = frozenset({"40001", "40P01"})
PG_DISK_FULL, PG_OUT_OF_MEMORY, PG_PERMISSION, PG_TOO_MANY = "53100", "53200", "42501", "53300"
# When an error carries no code (raised by hand, or by an older Python), its standard message says it.
_SQLITE_MESSAGES = {
    "database or disk is full": SQLITE_FULL,
    "attempt to write a readonly database": SQLITE_READONLY,
    "unable to open database file": SQLITE_CANTOPEN,
    "database is locked": SQLITE_BUSY,
    "database is busy": SQLITE_BUSY,
    "database table is locked": SQLITE_LOCKED,
    "database disk image is malformed": SQLITE_CORRUPT,
    "file is not a database": SQLITE_NOTADB,
    "disk i/o error": SQLITE_IOERR,
    "out of memory": SQLITE_NOMEM,
}


def explain(error: BaseException, home: Path | None = None, database: Path | None = None) -> StudioError | None:
    """A one-line StudioError for an error the environment caused, or None for a bug.

    `home` is the data home, named in the message when the failing file is inside it; `database`
    the SQLite file a sqlite3 error is about when it is not the home's own (a backup's copy).
    """
    if isinstance(error, StudioError):
        return error
    for cause in _causes(error):
        message = _explain_one(cause, home, database)
        if message is not None:
            return StudioError(message)
    return None


def sqlite_code(error: BaseException) -> int | None:
    """SQLite's primary result code of a sqlite3 error (read from its message when it carries none)."""
    if not isinstance(error, sqlite3.Error):
        return None
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF  # extended codes (SQLITE_IOERR_SHMSIZE...) keep the primary one in the low byte
    text = str(error).lower()
    return next((value for key, value in _SQLITE_MESSAGES.items() if key in text), None)


def is_busy(error: BaseException) -> bool:
    """Whether an error (or the DBAPI error SQLAlchemy wraps) is another connection in the way: SQLite's
    lock, or PostgreSQL's serialization failure or deadlock (the server rolled the transaction back)."""
    original = error if isinstance(error, sqlite3.Error) else getattr(error, "orig", None)
    if getattr(original, "pgcode", None) in PG_TRANSIENT:
        return True
    return isinstance(original, sqlite3.OperationalError) and sqlite_code(original) in (SQLITE_BUSY, SQLITE_LOCKED)


def is_damage(error: BaseException) -> bool:
    """True only for SQLite's own verdict that a file is corrupt or not a database at all."""
    return sqlite_code(error) in DAMAGE_CODES


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error, then what it wraps: SQLAlchemy's `.orig` (the DBAPI error) and explicit `raise ... from`.

    Implicit context (an error raised while handling another) is not followed: a bug in a handler
    must not be passed off as the environment error it was handling.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen and len(seen) < 16:
        seen.add(id(current))
        yield current
        original = getattr(current, "orig", None)
        current = original if isinstance(original, BaseException) else current.__cause__


def _explain_one(error: BaseException, home: Path | None, database: Path | None) -> str | None:
    if isinstance(error, MemoryError):
        return _out_of_memory()
    if type(error).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError, without importing torch
        return (
            "the GPU ran out of memory: ask for less (a smaller --count or batch size) or use --device cpu; "
            f"{NOTHING_KEPT}"
        )
    if isinstance(error, sqlite3.Error):
        return _explain_sqlite(error, home, database)
    if type(error).__module__.partition(".")[0] == "psycopg2":  # without importing it: it is optional
        return explain_postgres(error, "the PostgreSQL database")
    if isinstance(error, OSError) and error.errno is not None:
        return _explain_os(error, home)
    return None


def _out_of_memory() -> str:
    return (
        "out of memory: close other programs or ask for less (a smaller --count, --size or batch) and retry; "
        f"{NOTHING_KEPT}"
    )


def _place(path: Path | None, home: Path | None) -> str:
    """How a message names where a file lives: the data home when it is inside it, else the path.

    An error that names no file says nothing of where it was written: the home is not blamed for it,
    only named as the likeliest place to look.
    """
    if path is None:  # named only as where to look: it may be a destination outside the home
        return "the folder being written" + (f" (the data home is {home})" if home is not None else "")
    if home is not None and _inside(path, home):
        return f"the data home ({home})"
    return str(path)


def _inside(path: Path, folder: Path) -> bool:
    try:
        return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(folder))
    except (OSError, ValueError):
        return False


_EDQUOT = getattr(errno, "EDQUOT", -1)  # disk quotas: not on every platform
# Errors of writing: for a copy or rename (two file names) they are about the second, the target.
_WRITING = frozenset({errno.ENOSPC, _EDQUOT, errno.EFBIG, errno.EROFS})


def _filename(error: OSError) -> Path | None:
    name = error.filename2 if error.errno in _WRITING and error.filename2 else error.filename
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    return Path(name) if isinstance(name, str) and name else None


# Other errors a user's machine causes (a busy or vanished device, a stale network mount, a lock
# table full), told with their own words; any errno not named here or above is a bug.
_ENVIRONMENT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("EBUSY", "ETXTBSY", "ENODEV", "ENXIO", "ESTALE", "ENOLCK", "EREMOTEIO", "EXDEV")
    if hasattr(errno, name)
)


def _explain_os(error: OSError, home: Path | None) -> str | None:
    code, path = error.errno, _filename(error)
    place = _place(path, home)
    if code == errno.ENOSPC:
        return f"the disk holding {place} is full: free space and retry; {NOTHING_KEPT}"
    if code == _EDQUOT:
        return f"your disk quota for {place} is used up: free space (or get a larger quota) and retry; {NOTHING_KEPT}"
    if code == errno.EFBIG:
        return (
            f"a file in {place} grew too large: the file system or the process's file size limit (`ulimit -f`) "
            f"refuses it; raise the limit and retry; {NOTHING_KEPT}"
        )
    if code == errno.EROFS:
        return f"{place} is on a read-only file system: remount it read-write or use another folder; {NOTHING_KEPT}"
    if code in (errno.EACCES, errno.EPERM):
        return (
            f"permission denied: {path or place}: give your user access to it (or use another folder) and retry; "
            f"{NOTHING_KEPT}"
        )
    if code == errno.ENOTDIR:
        blocking = _blocking_file(path)
        what = f"{blocking} is a file, not a folder" if blocking else f"part of {path} is not a folder"
        about_home = home is not None and path is not None and (_inside(path, home) or _inside(home, path))
        return f"{what}: {'point --home or $STUDIO_HOME at a folder' if about_home else 'fix the path and retry'}"
    if code == errno.ENAMETOOLONG:
        return f"a file name is too long for this file system: {str(path)[:80]}...: use a shorter name or folder"
    if code == errno.EIO:
        return f"input/output error on {path or place}: the disk may be failing or was removed; check it and retry"
    if code == errno.ENOMEM:
        return _out_of_memory()
    if code in (errno.EMFILE, errno.ENFILE):
        return "too many open files: raise the limit (`ulimit -n`) or close other programs and retry"
    if code == errno.ENOENT:
        return f"no such file or folder: {path or error.strerror}"
    if code == errno.EISDIR:
        return f"{path} is a folder, not a file"
    if code == errno.EEXIST:
        return f"{path} already exists: choose another name"
    if code == errno.ELOOP:
        return f"too many symbolic links (a loop?) in {path}"
    if code in _ENVIRONMENT_ERRNOS:
        reason = error.strerror or os.strerror(code or 0)
        return f"{reason.lower()}: {path or place}; {NOTHING_KEPT}"
    return None  # EBADF, EINVAL, ECONNREFUSED...: Studio's own doing, a bug that deserves its traceback


def _blocking_file(path: Path | None) -> Path | None:
    """The first part of `path` that exists and is a file (why ENOTDIR was raised), if any."""
    if path is None:
        return None
    for candidate in reversed([path, *path.parents]):
        if candidate.is_file():
            return candidate
        if not candidate.exists():
            return None
    return None


def _explain_sqlite(error: sqlite3.Error, home: Path | None, database: Path | None) -> str | None:
    code = sqlite_code(error)
    path = database or (home / "studio.db" if home is not None else None)
    where = _place(path, home) if path is not None else "the disk"
    name = f"the database of {where}" if database is None and home is not None else f"the database {path or ''}".strip()
    if code in (SQLITE_BUSY, SQLITE_LOCKED):
        return f"{name} is busy: another Studio process is writing to it; retry when it has finished"
    if code in DAMAGE_CODES:
        backups = f" from {home / 'backups'}" if home is not None else ""
        return f"{name} is damaged ({error}): restore a backup{backups} with `studio restore`"
    if code == SQLITE_NOMEM:
        return _out_of_memory()
    if code not in (SQLITE_FULL, SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_IOERR, SQLITE_PERM, SQLITE_AUTH):
        return None  # SQL errors, constraints, misuse: bugs (or races), not the environment
    # SQLite names no file and no errno: the file system says what happened (read-only, full).
    if path is not None and read_only_file_system(path):
        return f"{where} is on a read-only file system: remount it read-write to change anything; {NOTHING_KEPT}"
    if code == SQLITE_FULL or (code in (SQLITE_IOERR, SQLITE_CANTOPEN) and path is not None and nearly_full(path)):
        return f"the disk holding {where} is full: free space and retry; {NOTHING_KEPT}"
    if code in (SQLITE_READONLY, SQLITE_PERM, SQLITE_AUTH):
        return (
            f"{name} cannot be written (a read-only file, or folder permissions): give your user write access; "
            f"{NOTHING_KEPT}"
        )
    if code == SQLITE_CANTOPEN:
        return f"{name} cannot be opened: check that its folder exists and your user may read and write it"
    return f"a disk input/output error on {name} ({error}): check the disk and retry; {NOTHING_KEPT}"


def explain_postgres(error: BaseException, where: str) -> str | None:
    """One line for what a PostgreSQL server or the way to it did (`where` names the database, password
    masked), or None for an SQL error (a bug). libpq's connection errors carry no SQLSTATE: read the text."""
    original = getattr(error, "orig", None) or error
    code = getattr(original, "pgcode", None)
    text = str(original).lower()
    if "password authentication failed" in text or "no password supplied" in text:
        return f"PostgreSQL refused the user name or password in {where}: check them (nothing was changed)"
    if "role" in text and "does not exist" in text:
        return f"PostgreSQL has no such user ({where}): check the user name (nothing was changed)"
    if "database" in text and "does not exist" in text:
        return f"the database in {where} does not exist: create it first (createdb NAME), nothing was changed"
    if "could not translate host name" in text:
        return f"the PostgreSQL server's host name in {where} is unknown: check it (nothing was changed)"
    if "timeout expired" in text:
        return f"no answer from the PostgreSQL server of {where} in time: check the host, port and firewall"
    unreachable = ("connection refused", "no such file or directory", "could not connect", "is the server running")
    if any(words in text for words in unreachable):
        return f"cannot reach the PostgreSQL server of {where}: is it running, and are the host and port right?"
    if code is None and ("server closed the connection" in text or "terminating connection" in text):
        return f"the PostgreSQL server of {where} closed the connection: retry when it is back; {NOTHING_KEPT}"
    if code == PG_DISK_FULL:
        return f"the PostgreSQL server's disk is full ({where}): its administrator must free space; {NOTHING_KEPT}"
    if code == PG_OUT_OF_MEMORY:
        return f"the PostgreSQL server ran out of memory ({where}): retry later; {NOTHING_KEPT}"
    if code == PG_PERMISSION:
        first = str(original).strip().splitlines()[0]
        return f"the PostgreSQL user may not do this in {where} ({first}): grant it the rights; {NOTHING_KEPT}"
    if code == PG_TOO_MANY or "too many clients" in text:
        return f"the PostgreSQL server of {where} has too many connections: retry later, or raise max_connections"
    if code in PG_TRANSIENT:
        return f"{where} is busy: another Studio process is writing to it; retry when it has finished"
    return None


def _existing(path: Path) -> Path | None:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return None


def read_only_file_system(path: Path) -> bool:
    """True when `path` (or the nearest folder above it that exists) is on a file system mounted read-only."""
    found = _existing(path)
    try:
        return found is not None and bool(os.statvfs(found).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # no statvfs (Windows) or a path that vanished
        return False


def nearly_full(path: Path) -> bool:
    """True when the file system holding `path` has less than NEARLY_FULL bytes free."""
    found = _existing(path)
    try:
        stat = os.statvfs(found) if found is not None else None
    except (OSError, AttributeError):
        return False
    return stat is not None and stat.f_bavail * stat.f_frsize < NEARLY_FULL
