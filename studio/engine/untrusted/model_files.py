"""A model folder's two files as they come from outside: config.json, and checkpoint.safetensors'
header with its `__metadata__`.

The checkpoint is never read whole here. The file's size is checked against a limit, then the
8-byte header length against a limit and the file, then every tensor the header declares: a known
dtype, a shape whose bytes match its offsets, offsets that tile the data exactly. Only then may
the torch side (`checkpoints.py`) map the file and copy tensors out one at a time.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from studio import limits
from studio.engine.families import registry
from studio.engine.families.conditioning import MAX_CLASSES
from studio.engine.untrusted.values import (
    NAME_PATTERN,
    SHA256_PATTERN,
    Fields,
    JsonLimits,
    MalformedError,
    NotJsonError,
    as_int,
    as_list,
    as_number,
    as_object,
    as_text,
    is_scalar,
    member,
    open_regular,
    parse_json,
    read_limited,
    shown,
    size_text,
)
from studio.errors import StudioError
from studio.limits import INT64_MAX

FORMAT = 1  # of config.json and of the checkpoint's metadata
META_KEY = "studio"  # the checkpoint's `__metadata__` entry that holds Studio's JSON
# The largest model the families can describe (a VAE at width 256, latent 512, 64 px) is about
# 1 GiB of weights, 3 GiB with its Adam state: 4 GiB refuses only what Studio cannot have made.
MAX_CHECKPOINT_BYTES = 4 << 30
MAX_HEADER_BYTES = 16 << 20  # ~40 KiB for the largest model; safetensors itself stops at 100 MB
MAX_TENSORS = 100_000
MAX_RANK = 8
# A model's card (what it is, its licence), kept beside its weights as on the Hugging Face Hub.
CARD_FILE = "README.md"
MAX_CARD_BYTES = 1 << 20
CONFIG_LIMITS = JsonLimits(max_bytes=1 << 20, max_depth=8, max_members=10_000, max_string=4096)
HEADER_LIMITS = JsonLimits(max_bytes=MAX_HEADER_BYTES, max_depth=4, max_members=8 * MAX_TENSORS, max_string=1 << 20)
META_LIMITS = JsonLimits(max_bytes=1 << 20, max_depth=8, max_members=100_000, max_string=4096)
CHANNELS = (1, 3)
# Bytes per element of each safetensors dtype.
DTYPE_SIZES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}
FLOAT_DTYPES = frozenset({"F8_E4M3", "F8_E5M2", "F16", "BF16", "F32", "F64"})


# --- config.json ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelConfig:
    """config.json, checked: the facts Studio builds a model from, and every member as read."""

    family: str
    resolution: int
    channels: int
    hyperparameters: dict[str, Any]
    steps: int
    seed: int | None
    weights_hash: str | None
    name: str | None
    values: dict[str, Any]


def read_classes(fields: Fields) -> tuple[str, ...]:
    """A conditional model's class names (`classes`, absent for an unconditional model), typed and bounded."""
    names = fields.optional_array("classes", MAX_CLASSES) or []
    if len(names) == 1:
        raise MalformedError(f"{fields.name('classes')} lists one class: a conditional model has 2 or more")
    checked = tuple(as_text(name, member(fields.name("classes"), index), 255) for index, name in enumerate(names))
    if len(set(checked)) != len(checked):
        raise MalformedError(f"{fields.name('classes')} repeats a class name")
    return checked


def read_model_config(path: Path) -> ModelConfig:
    """A model folder's config.json, bounded and typed, or a one-line StudioError."""
    try:
        document = parse_json(read_limited(path, CONFIG_LIMITS.max_bytes), CONFIG_LIMITS)
        fields = Fields(document)
    except NotJsonError as why:
        raise StudioError(f"{path} is not valid JSON ({why})") from None
    except MalformedError as why:
        raise StudioError(f"{path} does not describe a model ({why})") from None
    missing = fields.missing("family", "resolution", "channels", "hyperparameters")
    if missing:
        raise StudioError(f"{path} lacks {', '.join(missing)}")
    try:
        written = fields.integer("format", 0, INT64_MAX) if "format" in fields.data else FORMAT
        if written > FORMAT:
            raise StudioError(f"{path} was written by a newer Studio (format {written})")
        family = read_family(fields)
        hyperparameters = fields.scalars("hyperparameters")
        check_settings(family, hyperparameters, "hyperparameters")
        config = ModelConfig(
            family=family,
            resolution=fields.integer("resolution", limits.IMAGE_SIZE.low, limits.IMAGE_SIZE.high),
            channels=read_channels(fields),
            hyperparameters=hyperparameters,
            steps=fields.optional_integer("steps", 0, limits.STEPS.high) or 0,
            seed=fields.optional_integer("seed", 0, limits.SEED.high),
            weights_hash=fields.optional_text("weights_hash", 64, SHA256_PATTERN, "a sha256 digest"),
            name=fields.optional_text("name", 64),
            values=fields.data,
        )
        fields.optional_integer("target_steps", 0, limits.STEPS.high)
        fields.optional_text("dataset", 64, NAME_PATTERN, "a valid dataset name")
        fields.optional_text("init_from", 64, NAME_PATTERN, "a valid model name")
        read_classes(fields)
        losses = fields.optional_section("losses")
        if losses is not None:
            for name, value in losses.data.items():
                as_number(value, losses.name(name))
    except MalformedError as why:
        raise StudioError(f"{path}: {why}") from None
    return config


def read_family(fields: Fields) -> str:
    """The `family` member: a family this Studio knows."""
    family = fields.text("family", 64)
    if family not in registry.family_names():
        raise MalformedError(f"unknown family {shown(family)}: choose one of {', '.join(registry.family_names())}")
    return family


def read_channels(fields: Fields) -> int:
    """The `channels` member: 1 (grey) or 3 (colour)."""
    channels = fields.integer("channels", 1, 3)
    if channels not in CHANNELS:
        raise MalformedError(f"channels {channels} is not 1 (grey) or 3 (colour)")
    return channels


def check_settings(family: str, settings: dict[str, Any], where: str) -> None:
    """Every setting the family declares must fit its schema (type and range), e.g. width <= 256."""
    schema = {setting.name: setting for setting in registry.full_schema(family)}
    for name, value in settings.items():
        if name in schema:
            try:
                schema[name].validate(value)
            except StudioError as error:
                raise MalformedError(f"{where}: {error}") from None


# --- checkpoint.safetensors -----------------------------------------------------------------


@dataclass(frozen=True)
class TensorEntry:
    """One tensor the header declares: dtype, shape and where its bytes lie in the file."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int  # absolute offsets in the file
    end: int

    @property
    def is_float(self) -> bool:
        """Whether the tensor holds floating-point values (the ones that can be NaN or infinite)."""
        return self.dtype in FLOAT_DTYPES


@dataclass(frozen=True)
class CheckpointMeta:
    """Studio's JSON in the checkpoint's `__metadata__`, checked (empty for another tool's file)."""

    family: str | None = None
    step: int = 0
    seed: int = 0
    weights_hash: str | None = None
    optimizers: dict[str, Any] | None = None
    values: dict[str, Any] | None = None


@dataclass(frozen=True)
class CheckpointHeader:
    """A safetensors file's header, checked against the file it heads."""

    size: int
    tensors: dict[str, TensorEntry]
    meta: CheckpointMeta


def read_checkpoint_header(path: Path, max_bytes: int = MAX_CHECKPOINT_BYTES) -> CheckpointHeader:
    """The header of a safetensors file, without reading its tensors, or a one-line StudioError.

    Refused: a file over `max_bytes`, a header over MAX_HEADER_BYTES or past the end of the file,
    a tensor of unknown dtype, whose shape does not match its bytes, or whose bytes lie outside,
    overlap or leave gaps in the data; a `__metadata__` that is not an object of strings.
    """
    damaged = f"{path} is damaged or not a safetensors file"
    try:
        with open_regular(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                raise StudioError(
                    f"{path} is {size_text(size)}, larger than the {size_text(max_bytes)} a Studio model can be"
                )
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise StudioError(f"{damaged} (only {size} bytes)")
            length = int.from_bytes(prefix, "little")
            if length > MAX_HEADER_BYTES:
                raise StudioError(
                    f"{damaged} (it declares a header of {size_text(length)}, more than the "
                    f"{size_text(MAX_HEADER_BYTES)} a checkpoint's header can be)"
                )
            if 8 + length > size:
                raise StudioError(f"{damaged} (a header of {size_text(length)} in a file of {size_text(size)})")
            text = handle.read(length)
    except OSError as error:
        raise StudioError(f"{path} cannot be read ({error.strerror or error})") from None
    try:
        header = Fields(parse_json(text, HEADER_LIMITS))
        tensors = _tensors(header, 8 + length, size)
        meta = _meta(header)
    except NotJsonError as why:
        raise StudioError(f"{damaged} (its header is not JSON: {why})") from None
    except MalformedError as why:
        raise StudioError(f"{damaged} ({why})") from None
    return CheckpointHeader(size, tensors, meta)


def _tensors(header: Fields, data_start: int, size: int) -> dict[str, TensorEntry]:
    names = [name for name in header.data if name != "__metadata__"]
    if len(names) > MAX_TENSORS:
        raise MalformedError(f"{len(names)} tensors, more than {MAX_TENSORS}")
    entries: dict[str, TensorEntry] = {}
    for name in names:
        where = f"tensor {shown(name, 80)}"
        entry = Fields(header.data[name], where)
        dtype = entry.text("dtype", 16)
        if dtype not in DTYPE_SIZES:
            raise MalformedError(f"{where} has an unknown dtype {shown(dtype)}")
        shape = tuple(as_int(dim, f"{where} shape", 0, INT64_MAX) for dim in entry.array("shape", MAX_RANK))
        offsets = entry.array("data_offsets", 2)
        if len(offsets) != 2:
            raise MalformedError(f"{where} data_offsets is not [begin, end]")
        begin, end = (as_int(offset, f"{where} data_offsets", 0, size) for offset in offsets)
        if data_start + end > size or begin > end:
            raise MalformedError(f"{where} lies at bytes {begin}..{end} of {size - data_start} bytes of data")
        needed = math.prod(shape) * DTYPE_SIZES[dtype]
        if needed != end - begin:
            raise MalformedError(f"{where} of shape {list(shape)[:MAX_RANK]} needs {needed} bytes, not {end - begin}")
        entries[name] = TensorEntry(name, dtype, shape, data_start + begin, data_start + end)
    position = data_start
    for placed in sorted(entries.values(), key=lambda e: (e.start, e.end)):
        if placed.start != position:  # safetensors tiles the data exactly: a gap or an overlap is damage
            raise MalformedError(f"tensor {shown(placed.name, 80)} starts at byte {placed.start}, not {position}")
        position = placed.end
    if position != size:
        raise MalformedError(f"the tensors end at byte {position} of {size}")
    return entries


def _meta(header: Fields) -> CheckpointMeta:
    if "__metadata__" not in header.data:
        return CheckpointMeta()
    metadata = as_object(header.data["__metadata__"], "__metadata__")
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise MalformedError(f"{member('__metadata__', key)} is not text (safetensors metadata maps text to text)")
    if META_KEY not in metadata:
        return CheckpointMeta()  # another tool's file: the family check says what is wrong with it
    try:
        return _studio_meta(Fields(parse_json(metadata[META_KEY], META_LIMITS)))
    except NotJsonError as why:
        raise MalformedError(f"its Studio metadata is not JSON ({why})") from None
    except MalformedError as why:
        raise MalformedError(f"its Studio metadata: {why}") from None


def _studio_meta(fields: Fields) -> CheckpointMeta:
    written = fields.optional_integer("format", 0, INT64_MAX) or FORMAT
    if written > FORMAT:
        raise MalformedError(f"written by a newer Studio (format {written})")
    optimizers = fields.optional_section("optimizers")
    if optimizers is not None:
        for name in optimizers.data:
            _check_optimizer(optimizers.section(name))
    return CheckpointMeta(
        family=fields.optional_text("family", 64),
        step=fields.optional_integer("step", 0, limits.STEPS.high) or 0,
        seed=fields.optional_integer("seed", 0, limits.SEED.high) or 0,
        weights_hash=fields.optional_text("weights_hash", 64, SHA256_PATTERN, "a sha256 digest"),
        optimizers=optimizers.data if optimizers is not None else None,
        values=fields.data,
    )


def _check_optimizer(state: Fields) -> None:
    """An optimiser's JSON half: parameter groups (lists of parameter indices) and per-parameter scalars."""
    for index, group in enumerate(state.array("param_groups", 64)):
        where = member(state.name("param_groups"), index)
        for param in as_list(as_object(group, where).get("params", []), f"{where}.params", 1 << 20):
            as_int(param, f"{where}.params", 0, 1 << 31)
    scalars = state.optional_section("scalars")
    for param_id, entries in (scalars.data if scalars is not None else {}).items():
        where = member(state.name("scalars"), param_id)
        if not param_id.isdigit() or len(param_id) > 9:
            raise MalformedError(f"{where} is not a parameter index")
        for key, value in as_object(entries, where).items():
            if not is_scalar(value):
                raise MalformedError(f"{member(where, key)} is {shown(value)}, not a number")


# --- finiteness, streamed -------------------------------------------------------------------

# NaN and infinity as bit patterns, for the dtypes numpy cannot read as floats (all exponent bits set).
_EXPONENT_MASKS: dict[str, tuple[type[np.unsignedinteger[Any]], int]] = {
    "BF16": (np.uint16, 0x7F80),
    "F8_E5M2": (np.uint8, 0x7C),
    "F8_E4M3": (np.uint8, 0x7F),  # float8_e4m3fn has no infinity: only S.1111.111 is NaN
}
_NUMPY_FLOATS = {"F16": "<f2", "F32": "<f4", "F64": "<f8"}
_BLOCK = 16 << 20  # bytes read at a time: memory stays flat whatever the tensor's size


def first_non_finite(path: Path, header: CheckpointHeader) -> str | None:
    """The name of the first float tensor holding NaN or infinity (None when all are finite).

    Read in blocks of 16 MiB straight from the file, so a tensor of any size costs no more memory.
    """
    try:
        with open(path, "rb") as handle:
            for entry in sorted(header.tensors.values(), key=lambda e: e.start):
                if not entry.is_float:
                    continue
                handle.seek(entry.start)
                for start in range(entry.start, entry.end, _BLOCK):
                    block = handle.read(min(_BLOCK, entry.end - start))
                    if len(block) < min(_BLOCK, entry.end - start):
                        raise StudioError(
                            f"{path} is damaged or not a safetensors file (it ends inside {shown(entry.name, 80)})"
                        )
                    if not _finite(block, entry.dtype):
                        return entry.name
    except OSError as error:
        raise StudioError(f"{path} cannot be read ({error.strerror or error})") from None
    return None


def _finite(block: bytes, dtype: str) -> bool:
    if dtype in _NUMPY_FLOATS:
        return bool(np.isfinite(np.frombuffer(block, _NUMPY_FLOATS[dtype])).all())
    bits, mask = _EXPONENT_MASKS[dtype]
    return not bool(((np.frombuffer(block, bits) & mask) == mask).any())
