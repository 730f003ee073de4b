"""The manifest.json of an ONNX export, checked before the runtime acts on a word of it.

An export may be copied in from anywhere with its model folder. The manifest names the files to
open (plain names inside the export folder only), their checksums, the model's facts and the
sampling settings with their ranges: each is typed here, and a range may not be wider than the
family declares, so a manifest cannot talk the runtime into a billion sampling steps.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from studio import limits
from studio.engine.families import registry
from studio.engine.untrusted.model_files import check_settings, read_channels, read_classes
from studio.engine.untrusted.values import (
    SHA256_PATTERN,
    Fields,
    JsonLimits,
    MalformedError,
    NotJsonError,
    as_int,
    as_number,
    as_text,
    is_scalar,
    kind,
    member,
    parse_json,
    read_limited,
    shown,
)
from studio.errors import StudioError
from studio.limits import INT64_MAX

MANIFEST_LIMITS = JsonLimits(max_bytes=1 << 20, max_depth=8, max_members=10_000, max_string=4096)
SETTING_KINDS = ("int", "float", "bool", "str")
MAX_NETWORKS = 16
MAX_TIMESTEPS = 100_000  # a scheduler's training timesteps (the diffusion family declares at most 4,000)
_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")  # a plain name: no folder, no "..", no hidden file
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
REQUIRED = ("family", "resolution", "channels", "networks", "hyperparameters", "sampling_schema", "weights_hash")


def read_export_manifest(path: Path, newest_format: int) -> dict[str, Any]:
    """manifest.json, bounded and typed (returned as read), or a one-line StudioError."""
    again = "export the model again"
    try:
        fields = Fields(parse_json(read_limited(path, MANIFEST_LIMITS.max_bytes), MANIFEST_LIMITS))
    except NotJsonError as why:
        raise StudioError(f"{path} is not valid JSON ({why}): {again}") from None
    except MalformedError as why:
        raise StudioError(f"{path} does not describe an export ({why}): {again}") from None
    try:
        written = fields.optional_integer("format", 0, INT64_MAX) or 0
        if written > newest_format:
            raise StudioError(f"{path} was written by a newer Studio (format {written})")
        missing = fields.missing(*REQUIRED)
        if missing:
            raise StudioError(f"{path} lacks {', '.join(missing)}: {again}")
        family = fields.text("family", 64)
        if family not in registry.family_names():
            raise StudioError(f"{path} names an unknown family {shown(family)}")
        _check(fields, family)
    except MalformedError as why:
        raise StudioError(f"{path} is malformed ({why}): {again}") from None
    return fields.data


def _check(fields: Fields, family: str) -> None:
    fields.integer("resolution", limits.IMAGE_SIZE.low, limits.IMAGE_SIZE.high)
    read_channels(fields)
    fields.text("weights_hash", 64, SHA256_PATTERN, "a sha256 digest")
    check_settings(family, fields.scalars("hyperparameters"), "hyperparameters")
    networks = fields.section("networks")
    if not 1 <= len(networks.data) <= MAX_NETWORKS:
        raise MalformedError(f"networks lists {len(networks.data)} networks, not 1 to {MAX_NETWORKS}")
    for role in networks.data:
        as_text(role, "a network role", 64, _IDENTIFIER, "a network role")
        _network(networks.section(role), half_allowed=True)
    _sampling_schema(fields.array("sampling_schema", 64), family)
    fields.optional_integer("steps_trained", 0, limits.STEPS.high)
    read_classes(fields)
    fields.optional_integer("opset", 1, 1000)
    fields.optional_integer("reach", 0, 4096)
    for key in ("model", "exported_at", "studio_version"):
        fields.optional_text(key, 64)
    shape = fields.optional_array("latent_shape", 8)
    for index, size in enumerate(shape or []):
        as_int(size, member("latent_shape", index), 1, 1 << 20)
    value_range = fields.optional_array("value_range", 2)
    for index, end in enumerate(value_range or []):
        as_number(end, member("value_range", index))
    fields.boolean("imported", False)  # a generator made elsewhere (onnx_generator): no Studio metadata_props
    fields.optional_integer("fixed_batch", 1, 4096)  # an imported file without a dynamic batch axis
    for index, capability in enumerate(fields.optional_array("capabilities", 16) or []):
        as_text(capability, member("capabilities", index), 32, _IDENTIFIER, "a capability")
    scheduler = fields.optional_section("scheduler")
    if scheduler is not None:
        _scheduler(scheduler)
    extras = fields.optional_section("extras")
    if extras is not None:
        _extras(extras)


def _extras(extras: Fields) -> None:
    """A family's further facts (latent diffusion: the latent grid's shape and its scale)."""
    if len(extras.data) > 16:
        raise MalformedError(f"extras has {len(extras.data)} entries, more than 16")
    extras.optional_number("scaling_factor", 1e-6, 1e6)
    for index, size in enumerate(extras.optional_array("latent_shape", 8) or []):
        as_int(size, member("extras.latent_shape", index), 1, 1 << 20)


def _network(entry: Fields, half_allowed: bool) -> None:
    """One exported file: its name inside the folder, checksum, size, parity and input/output names."""
    entry.text("file", 128, _FILE, "a plain file name inside the export folder")
    entry.text("sha256", 64, SHA256_PATTERN, "a sha256 digest")
    entry.optional_integer("bytes", 0, INT64_MAX)
    entry.optional_number("max_abs_difference", 0.0)
    entry.optional_number("tolerance", 0.0)
    for key in ("inputs", "outputs"):
        for index, name in enumerate(entry.optional_array(key, 16) or []):
            as_text(name, member(entry.name(key), index), 64)
    half = entry.optional_section("fp16")
    if half is not None:
        if not half_allowed:
            raise MalformedError(f"{half.where} is nested in another fp16 variant")
        _network(half, half_allowed=False)


def _sampling_schema(settings: list[Any], family: str) -> None:
    """Each setting typed; one the family declares may not be of another type or range wider than declared."""
    declared = {setting.name: setting for setting in registry.full_schema(family)}
    for index, described in enumerate(settings):
        setting = Fields(described, member("sampling_schema", index))
        name = setting.text("name", 64, _IDENTIFIER, "a setting name")
        kind = setting.choice("type", SETTING_KINDS)
        if not is_scalar(setting.data.get("default")):
            raise MalformedError(f"{setting.name('default')} is not a number, text or true/false")
        low, high = setting.optional_number("minimum"), setting.optional_number("maximum")
        for choice in setting.optional_array("choices", 64) or []:
            if not is_scalar(choice):
                raise MalformedError(f"{setting.name('choices')} holds {shown(choice)}, not a plain value")
        setting.optional_text("help", 4096)
        setting.optional_text("group", 32)
        own = declared.get(name)
        if own is None:
            continue
        if kind != own.kind.__name__:
            raise MalformedError(f"{name} is declared {own.kind.__name__}, not {kind}")
        if own.minimum is not None and (low is None or low < own.minimum):
            raise MalformedError(f"{name}'s minimum {_text(low)} is below the declared {own.minimum:g}")
        if own.maximum is not None and (high is None or high > own.maximum):
            raise MalformedError(f"{name}'s maximum {_text(high)} is above the declared {own.maximum:g}")


def _scheduler(scheduler: Fields) -> None:
    """The noise schedule a diffusion export was trained with: plain settings, bounded timesteps."""
    if len(scheduler.data) > 32:
        raise MalformedError(f"scheduler has {len(scheduler.data)} settings, more than 32")
    for key, value in scheduler.data.items():
        if not is_scalar(value):
            raise MalformedError(f"{scheduler.name(key)} is {kind(value)}, not a plain value")
    scheduler.optional_integer("num_train_timesteps", 1, MAX_TIMESTEPS)


def _text(value: float | None) -> str:
    return "none" if value is None else f"{value:g}"
