"""Bounded JSON, and typed reads of its fields: the base of every reader of untrusted files.

`parse_json` refuses, before building anything large or slow: text over a size, nesting past a
depth, more members than a count, strings past a length, integers outside 64 bits (judged from
their digit count, so a 10,000-digit number costs nothing), NaN, Infinity and floats that
overflow (`1e999`), and keys given twice. `Fields` then reads one object's members with their
types and ranges, naming the member in every refusal.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from studio.errors import StudioError
from studio.limits import INT64_MAX

INT64_MIN = -(2**63)
_INT64_DIGITS = 19  # 2**63 - 1 has 19 digits: anything longer is refused before int() runs
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
# Dataset and model names (`datasets.storage.validate_name` applies it to what users type).
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.-]{1,96}")  # shown as is in a path; anything else is escaped


class MalformedError(StudioError):
    """Why an untrusted document is refused; the reader that caught it says which file."""


class NotJsonError(MalformedError):
    """The text is not JSON at all (rather than JSON holding refused values)."""


@dataclass(frozen=True)
class JsonLimits:
    """How much of a document a reader accepts (every member of every object or list counts)."""

    max_bytes: int
    max_depth: int
    max_members: int
    max_string: int
    # Python's `Infinity` / `-Infinity` (not JSON) as floats: diffusers writes them (DPM-Solver's
    # lambda_min_clipped); whoever reads the value still bounds it. NaN is refused either way.
    infinity: bool = False


@dataclass(frozen=True)
class _Refused:
    """A number the parser would not build, kept as a note until the walk names its member."""

    description: str


def size_text(count: int) -> str:
    """A byte count for messages: 512 B, 3.2 MiB, 1.0 TiB."""
    if count < 1024:
        return f"{count} B"
    value = float(count)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def bound_text(value: int | float) -> str:
    """A range end as people read it: 2^63-1, 10^9, 512."""
    if value == INT64_MAX:
        return "2^63-1"
    if isinstance(value, int) and value >= 10**6 and str(value).rstrip("0") == "1":
        return f"10^{len(str(value)) - 1}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def shown(value: Any, limit: int = 40) -> str:
    """A value for a one-line message: repr (control characters escaped), cut to `limit` characters."""
    if isinstance(value, str):
        return repr(value[:limit]) + ("..." if len(value) > limit else "")
    if isinstance(value, bool | int | float) or value is None:
        text = repr(value)
        return text if len(text) <= limit else text[:limit] + "..."
    return kind(value)


def kind(value: Any) -> str:
    """What a JSON value is, in words."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "true/false"
    if value is None:
        return "null"
    return "a number"


def member(where: str, key: str | int) -> str:
    """The dotted path of a member, with odd keys escaped (they may be anything)."""
    if isinstance(key, int):
        return f"{where}[{key}]"
    text = key if _PLAIN_KEY.fullmatch(key) else shown(key, 24)
    return f"{where}.{text}" if where else text


def open_regular(path: Path) -> BinaryIO:
    """`path` opened for reading, refused unless it is a regular file: StudioError, or IsADirectoryError.

    Opened without blocking and checked before a byte is read, so a FIFO or device named like a
    model or image file is refused at once instead of blocking forever (as `open()` would).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    descriptor = os.open(path, flags)
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(mode):
            raise StudioError(f"{path} is not a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def read_limited(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (MalformedError when larger)."""
    try:
        with open_regular(path) as handle:
            status = os.fstat(handle.fileno())
            if status.st_size > limit:
                raise MalformedError(
                    f"a file of {size_text(status.st_size)}, larger than the {size_text(limit)} accepted"
                )
            return handle.read(limit + 1)  # one more than allowed: a file that grew meanwhile is still caught
    except OSError as error:
        raise StudioError(f"{path} cannot be read ({error.strerror or error})") from None


# --- parsing --------------------------------------------------------------------------------


def _parse_int(text: str) -> int | _Refused:
    digits = len(text) - text.startswith("-")
    if digits > _INT64_DIGITS:
        return _Refused(f"an integer of {digits} digits, past the 64-bit range")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        return _Refused(f"{text}, past the 64-bit range")
    return value


def _parse_float(text: str) -> float | _Refused:
    value = float(text)
    if not math.isfinite(value):
        return _Refused(f"{text[:24]}, not a finite number")
    return value


def _parse_constant(text: str) -> _Refused:
    return _Refused(f"{text}, not a finite number")  # NaN, Infinity, -Infinity: not JSON, but Python writes them


def _parse_infinity(text: str) -> float | _Refused:
    return float(text) if text in ("Infinity", "-Infinity") else _parse_constant(text)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    made = dict(pairs)
    if len(made) != len(pairs):  # a second value under a key would silently win: refuse the ambiguity
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise MalformedError(f"the key {shown(key, 24)} appears twice")
            seen.add(key)
    return made


def parse_json(data: bytes | str, limits: JsonLimits) -> Any:
    """The JSON value of `data` within `limits`, or MalformedError with the reason (NotJsonError when not JSON)."""
    if len(data) > limits.max_bytes:
        raise MalformedError(f"{size_text(len(data))} of text, larger than the {size_text(limits.max_bytes)} accepted")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise NotJsonError("not UTF-8 text") from None
    try:
        value = json.loads(
            data,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_infinity if limits.infinity else _parse_constant,
            object_pairs_hook=_object,
        )
    except json.JSONDecodeError as error:
        raise NotJsonError(f"{error.msg} at line {error.lineno} column {error.colno}") from None
    except RecursionError:
        # The C scanner guards its recursion: deep nesting ends here, long before the limit below.
        raise MalformedError(f"nested deeper than {limits.max_depth} levels") from None
    _check_tree(value, limits)
    return value


def _check_tree(root: Any, limits: JsonLimits) -> None:
    """Depth, member count, string lengths and refused numbers, walked without recursion."""
    stack: list[tuple[Any, str, int]] = [(root, "", 1)]
    members = 0
    while stack:
        value, where, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limits.max_depth:
                raise MalformedError(f"nested deeper than {limits.max_depth} levels")
            members += len(value)
            if members > limits.max_members:
                raise MalformedError(f"more than {limits.max_members} values")
            items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
            for key, item in reversed(items):  # popped in document order: the first fault is reported
                if isinstance(key, str) and len(key) > limits.max_string:
                    within = where or "the document"
                    raise MalformedError(f"a key in {within} is longer than {limits.max_string} characters")
                stack.append((item, member(where, key), depth + 1))
        elif isinstance(value, str):
            if len(value) > limits.max_string:
                raise MalformedError(f"{where or 'the document'} is text longer than {limits.max_string} characters")
        elif isinstance(value, _Refused):
            raise MalformedError(f"{where or 'the document'} is {value.description}")


# --- typed reads ----------------------------------------------------------------------------


def as_int(value: Any, name: str, low: int, high: int) -> int:
    """`value` if it is a whole number in low..high (booleans and floats are not)."""
    if isinstance(value, bool) or not isinstance(value, int):
        wanted = f"a whole number from {bound_text(low)} to {bound_text(high)}"
        raise MalformedError(f"{name} is {shown(value)}, not {wanted}")
    if not low <= value <= high:
        raise MalformedError(f"{name} {value} is outside {bound_text(low)} to {bound_text(high)}")
    return value


def as_number(value: Any, name: str, low: float = -math.inf, high: float = math.inf) -> float:
    """`value` as a float if it is a finite number in low..high (parse_json already refused NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedError(f"{name} is {shown(value)}, not a number")
    if not low <= value <= high:
        raise MalformedError(f"{name} {value:g} is outside {bound_text(low)} to {bound_text(high)}")
    return float(value)


def as_text(
    value: Any,
    name: str,
    max_length: int = 256,
    pattern: re.Pattern[str] | None = None,
    meaning: str = "",
    choices: Sequence[str] | None = None,
) -> str:
    """`value` if it is a string of at most `max_length` characters matching `pattern` or in `choices`."""
    if not isinstance(value, str):
        raise MalformedError(f"{name} is {shown(value)}, not text")
    if len(value) > max_length:
        raise MalformedError(f"{name} is longer than {max_length} characters")
    if pattern is not None and not pattern.fullmatch(value):
        raise MalformedError(f"{name} {shown(value)} is not {meaning or 'valid'}")
    if choices is not None and value not in choices:
        raise MalformedError(f"{name} {shown(value)} is not one of {', '.join(choices)}")
    return value


def as_object(value: Any, name: str) -> dict[str, Any]:
    """`value` if it is a JSON object."""
    if not isinstance(value, dict):
        raise MalformedError(f"{name or 'the document'} is {kind(value)}, not an object")
    return value


def as_list(value: Any, name: str, max_items: int) -> list[Any]:
    """`value` if it is a JSON list of at most `max_items` items."""
    if not isinstance(value, list):
        raise MalformedError(f"{name} is {kind(value)}, not a list")
    if len(value) > max_items:
        raise MalformedError(f"{name} has {len(value)} items, more than {max_items}")
    return value


def is_scalar(value: Any) -> bool:
    """A JSON number, string, boolean or null (what a setting may hold)."""
    return value is None or isinstance(value, str | int | float | bool)


class Fields:
    """Typed, bounded reads of one JSON object's members; every refusal names the member."""

    def __init__(self, value: Any, where: str = "") -> None:
        self.data: dict[str, Any] = as_object(value, where)
        self.where = where

    def name(self, key: str) -> str:
        """The member's path, for messages."""
        return member(self.where, key)

    def missing(self, *keys: str) -> list[str]:
        """Which of `keys` are absent."""
        return [key for key in keys if key not in self.data]

    def present(self, key: str) -> bool:
        """Whether the member is there and not null."""
        return self.data.get(key) is not None

    def _required(self, key: str) -> Any:
        if key not in self.data:
            raise MalformedError(f"{self.name(key)} is missing")
        return self.data[key]

    def integer(self, key: str, low: int, high: int) -> int:
        """A required whole number in low..high."""
        return as_int(self._required(key), self.name(key), low, high)

    def optional_integer(self, key: str, low: int, high: int) -> int | None:
        """A whole number in low..high, or None when absent or null."""
        return as_int(self.data[key], self.name(key), low, high) if self.present(key) else None

    def number(self, key: str, low: float = -math.inf, high: float = math.inf) -> float:
        """A required finite number in low..high."""
        return as_number(self._required(key), self.name(key), low, high)

    def optional_number(self, key: str, low: float = -math.inf, high: float = math.inf) -> float | None:
        """A finite number in low..high, or None when absent or null."""
        return as_number(self.data[key], self.name(key), low, high) if self.present(key) else None

    def text(self, key: str, max_length: int = 256, pattern: re.Pattern[str] | None = None, meaning: str = "") -> str:
        """A required string (see `as_text`)."""
        return as_text(self._required(key), self.name(key), max_length, pattern, meaning)

    def optional_text(
        self, key: str, max_length: int = 256, pattern: re.Pattern[str] | None = None, meaning: str = ""
    ) -> str | None:
        """A string, or None when absent or null."""
        return as_text(self.data[key], self.name(key), max_length, pattern, meaning) if self.present(key) else None

    def choice(self, key: str, choices: Sequence[str]) -> str:
        """A required string among `choices`."""
        return as_text(self._required(key), self.name(key), choices=choices)

    def boolean(self, key: str, default: bool) -> bool:
        """true/false, or `default` when absent."""
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise MalformedError(f"{self.name(key)} is {shown(value)}, not true or false")
        return value

    def section(self, key: str) -> Fields:
        """A required member that is an object."""
        return Fields(self._required(key), self.name(key))

    def optional_section(self, key: str) -> Fields | None:
        """An object member, or None when absent or null."""
        return Fields(self.data[key], self.name(key)) if self.present(key) else None

    def array(self, key: str, max_items: int) -> list[Any]:
        """A required member that is a list of at most `max_items` items."""
        return as_list(self._required(key), self.name(key), max_items)

    def optional_array(self, key: str, max_items: int) -> list[Any] | None:
        """A list member, or None when absent or null."""
        return as_list(self.data[key], self.name(key), max_items) if self.present(key) else None

    def scalars(self, key: str, max_items: int = 64) -> dict[str, Any]:
        """An object of settings: names to numbers, strings, booleans or null (no nesting)."""
        settings = self.section(key)
        if len(settings.data) > max_items:
            raise MalformedError(f"{self.name(key)} has {len(settings.data)} members, more than {max_items}")
        for name, value in settings.data.items():
            if not is_scalar(value):
                raise MalformedError(f"{settings.name(name)} is {kind(value)}, not a number, text or true/false")
        return settings.data
