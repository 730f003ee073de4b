"""A1111's `parameters` text: the one-paragraph form image browsers (and A1111's own paste) read.

The form (modules/infotext_utils.py in AUTOMATIC1111/stable-diffusion-webui): the prompt, an optional
line `Negative prompt: ...`, then one line of `Key: value` pairs joined by ", ", where a value holding
a comma, colon or line break is written as a JSON string. A1111 takes the last line as settings only
when it holds at least three pairs; Studio always writes more than three.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from studio import __version__

PARAMETERS_KEY = "parameters"  # the tEXt keyword A1111 writes (and Studio writes for others to read)
SOFTWARE_KEY = "Software"  # the PNG specification's registered keyword
SOFTWARE = f"Studio {__version__}"
NEGATIVE_PREFIX = "Negative prompt:"
# A1111's own pattern for one pair: a key of word characters, spaces, '-' and '/', then a value that is a
# JSON string or runs to the next comma.
PAIR = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_MAX_PAIRS = 256  # a hostile text of thousands of pairs is cut, not walked forever
# Members of Studio's metadata that have their own place in the line (or none): the rest are settings.
_PLACED = {"studio_version", "operation", "model", "family", "weights_hash", "seed", "params", "backend"}
_PLACED |= {"provider", "steps_trained", "class", "from", "to"}


@dataclass
class Infotext:
    """A parsed `parameters` text: the prompt, the negative prompt and the settings in their order."""

    prompt: str = ""
    negative_prompt: str = ""
    settings: dict[str, str] = field(default_factory=dict)


def quote(value: object) -> str:
    """A value as A1111 writes it: as is, or as a JSON string when it holds ',', ':' or a line break."""
    text = str(value)
    if "," not in text and ":" not in text and "\n" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def _unquote(text: str) -> str:
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, str) else text


def _label(name: str) -> str:
    """A settings key as A1111 spells its labels: `guidance_scale` -> `Guidance scale`."""
    words = re.sub(r"[^\w \-/]+", " ", name.replace("_", " ")).split()
    text = " ".join(words) or "Setting"
    text = text[0].upper() + text[1:]
    return text if len(text) >= 2 else f"{text} value"  # A1111's key pattern needs two characters


def _describe(metadata: Mapping[str, Any]) -> str:
    """The prompt line: Studio has no prompt, so it says what was made."""
    made_as = metadata.get("class")
    subject = f"{made_as}" if isinstance(made_as, str) and made_as else str(metadata.get("model", "image"))
    operation = metadata.get("operation", "sample")
    if operation == "interpolate" and metadata.get("frame") is not None:
        return f"{subject}, interpolation frame {metadata.get('frame')} of {metadata.get('frames')}"
    return subject if operation == "sample" else f"{subject}, {operation}"


def format_parameters(metadata: Mapping[str, Any], width: int, height: int) -> str:
    """Studio's metadata in A1111's form: a description line, then `Steps: .., Sampler: .., Seed: ..`."""
    params = metadata.get("params")
    settings: dict[str, Any] = dict(params) if isinstance(params, Mapping) else {}
    pairs: list[tuple[str, Any]] = []
    if "steps" in settings:
        pairs.append(("Steps", settings.pop("steps")))
    if "sampler" in settings:
        pairs.append(("Sampler", settings.pop("sampler")))
    if metadata.get("seed") is not None:
        pairs.append(("Seed", metadata["seed"]))
    pairs.append(("Size", f"{width}x{height}"))
    weights = metadata.get("weights_hash")
    if isinstance(weights, str) and weights:
        pairs.append(("Model hash", weights[:10]))
    pairs.append(("Model", metadata.get("model", "")))
    pairs.append(("Family", metadata.get("family", "")))
    pairs.append(("Operation", metadata.get("operation", "sample")))
    if metadata.get("class") is not None:
        pairs.append(("Class", metadata["class"]))
    pairs += [(_label(key), value) for key, value in sorted(settings.items()) if value is not None]
    pairs += [
        (_label(key), value)
        for key, value in sorted(metadata.items())
        if key not in _PLACED and isinstance(value, str | int | float) and not isinstance(value, bool)
    ]
    pairs.append(("Backend", metadata.get("backend", "")))
    if metadata.get("steps_trained") is not None:
        pairs.append(("Steps trained", metadata["steps_trained"]))
    line = ", ".join(f"{key}: {quote(value)}" for key, value in pairs)
    return f"{_describe(metadata)}\n{line}"


def parse_parameters(text: str) -> Infotext:
    """Parse a `parameters` text the way A1111 does (its own pattern); never raises on odd text."""
    *lines, last = text.strip().replace("\r\n", "\n").split("\n")
    if len(PAIR.findall(last[:65536])) < 3:
        lines.append(last)
        last = ""
    found = Infotext()
    prompt: list[str] = []
    negative: list[str] = []
    for line in lines:
        line = line.strip()
        if line.startswith(NEGATIVE_PREFIX):
            negative.append(line[len(NEGATIVE_PREFIX) :].strip())
        elif negative:
            negative.append(line)
        else:
            prompt.append(line)
    found.prompt = "\n".join(prompt)
    found.negative_prompt = "\n".join(negative)
    for key, value in PAIR.findall(last)[:_MAX_PAIRS]:
        found.settings[key.strip()] = _unquote(value.strip())
    return found
