"""What other tools write into an image, read with bounds: A1111, ComfyUI, InvokeAI and Studio itself.

A PNG's chunks are walked from the bytes Studio already holds: a text chunk over its limit, a
compressed one that inflates past it, or text past the file's total is left unread with a note,
never a refusal of the image. JSON goes through `values.parse_json` (depth, size, members); every
value taken is checked for its type. JPEG and WebP carry A1111's settings in EXIF UserComment.
"""

from __future__ import annotations

import io
import itertools
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from studio.engine.interchange import a1111
from studio.engine.untrusted.png import (
    MAX_CHUNKS,
    MAX_METADATA_BYTES,
    MAX_TEXT_CHUNK,
    MAX_TEXT_TOTAL,
    PNG_SIGNATURE,
    PngMetadata,
    read_png_metadata,
)
from studio.engine.untrusted.values import JsonLimits, MalformedError, parse_json, shown, size_text
from studio.errors import StudioError

XMP_KEYWORD = "XML:com.adobe.xmp"
STUDIO_KEYWORD = "studio"
EXTERNAL_FAMILY = "external"  # the family column of images no Studio model made
TOOL_TITLES = {"a1111": "A1111", "comfyui": "ComfyUI", "invokeai": "InvokeAI", "studio": "Studio", "unknown": ""}
FOREIGN_JSON = JsonLimits(max_bytes=MAX_TEXT_CHUNK, max_depth=32, max_members=50_000, max_string=65536)
MAX_KEPT = 256 << 10  # metadata text kept in the row, all chunks together
MAX_VALUE = 500  # characters of one setting shown
MAX_SETTINGS = 64
_MODEL_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_USER_COMMENT = 0x9286
_EXIF_IFD = 0x8769


@dataclass
class ForeignImage:
    """What a file says about how it was made, as far as it could be read."""

    format: str
    width: int
    height: int
    tool: str = "unknown"
    model_name: str | None = None
    seed: int | None = None
    prompt: str = ""
    negative_prompt: str = ""
    settings: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)  # the text chunks read (keyword -> text)
    xmp_packet: bytes | None = None
    notes: list[str] = field(default_factory=list)

    def origin(self, file_name: str) -> dict[str, Any]:
        """The row's `origin` column: the tool, what it wrote (bounded), and the notes."""
        kept: dict[str, Any] = {}
        budget = MAX_KEPT
        for keyword, text in self.texts.items():
            if keyword in (STUDIO_KEYWORD, XMP_KEYWORD):
                continue  # Studio's own goes to its columns; XMP to the curation
            if len(text) > budget:
                self.notes.append(f"{shown(keyword, 32)} ({size_text(len(text))}) too large to keep")
                continue
            budget -= len(text)
            kept[keyword] = text
        return {
            "tool": self.tool,
            "format": self.format,
            "file": shown(file_name, 200)[1:-1] if file_name else "",
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "settings": self.settings,
            "metadata": kept,
            "notes": list(self.notes),
        }


def tool_title(tool: str) -> str:
    """A tool as people name it: a1111 -> A1111."""
    return TOOL_TITLES.get(tool) or tool


def not_reproducible(origin: dict[str, Any] | None) -> str | None:
    """Why an imported item cannot be made again (None: Studio made it, or its PNG says how)."""
    if not origin:
        return None
    tool = str(origin.get("tool", "unknown"))
    if tool == "studio":
        return None
    if tool == "unknown":
        return "made by another tool, not by a Studio model: Studio cannot run it"
    return f"made by {tool_title(tool)}, not by a Studio model: Studio cannot run it"


def model_name_of(text: str | None, fallback: str) -> str:
    """A name fit for the gallery's model column: `SDXL/juggernaut_v9.safetensors` -> `juggernaut_v9`."""
    if not text:
        return fallback
    leaf = text.replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf"):
        if leaf.lower().endswith(suffix):
            leaf = leaf[: -len(suffix)]
    cleaned = _MODEL_NAME.sub("-", leaf).strip("-._")[:64]
    return cleaned or fallback


# --- reading -------------------------------------------------------------------------------


def read_foreign(data: bytes) -> ForeignImage:
    """The metadata of an image's bytes (PNG, JPEG or WebP); the caller has checked it decodes."""
    with Image.open(io.BytesIO(data)) as image:
        found = ForeignImage(str(image.format), image.size[0], image.size[1])
        if found.format != "PNG":
            _exif_comment(image, found)
    if found.format == "PNG":
        _png_texts(data, found)
    _interpret(found)
    return found


def _png_texts(data: bytes, found: ForeignImage) -> None:
    """Every text chunk within the limits, keyword -> text; the rest become notes."""
    position, total = len(PNG_SIGNATURE), 0
    for _ in range(MAX_CHUNKS):
        if position + 8 > len(data):
            return
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        start, position = position + 8, position + 12 + length
        if kind == b"IEND":
            return
        if kind not in (b"tEXt", b"zTXt", b"iTXt"):
            continue
        body = data[start : start + min(length, MAX_TEXT_CHUNK)]
        keyword = body[:80].split(b"\0", 1)[0].decode("latin-1")
        if length > MAX_TEXT_CHUNK:
            found.notes.append(f"a {size_text(length)} text chunk {shown(keyword, 32)} was not read (over 1 MiB)")
            continue
        if total + length > MAX_TEXT_TOTAL:
            found.notes.append(f"text past {size_text(MAX_TEXT_TOTAL)} in all was not read")
            return
        total += length
        try:
            text = _chunk_text(kind, body)
        except MalformedError as why:
            found.notes.append(f"text chunk {shown(keyword, 32)}: {why}")
            continue
        if keyword in found.texts:
            found.notes.append(f"text chunk {shown(keyword, 32)} given twice: the first is kept")
        else:
            found.texts[keyword] = text
    found.notes.append(f"more than {MAX_CHUNKS} chunks: the rest were not read")


def _inflate(compressed: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(compressed, MAX_TEXT_CHUNK)
    except zlib.error:
        raise MalformedError("broken compressed text") from None
    if inflater.unconsumed_tail:
        raise MalformedError(f"compressed text inflating past {size_text(MAX_TEXT_CHUNK)} (not read)")
    return text


def _chunk_text(kind: bytes, body: bytes) -> str:
    _keyword, separator, rest = body.partition(b"\0")
    if not separator:
        raise MalformedError("no keyword")
    if kind == b"tEXt":
        return rest.decode("latin-1")
    if kind == b"zTXt":
        return _inflate(rest[1:]).decode("latin-1")
    if len(rest) < 2:
        raise MalformedError("cut short")
    compressed, text = rest[0], rest[2:]
    _language, _, text = text.partition(b"\0")
    _translated, _, text = text.partition(b"\0")
    raw = _inflate(text) if compressed else text
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedError("text that is not UTF-8") from None


def _exif_comment(image: Image.Image, found: ForeignImage) -> None:
    """A1111 writes a JPEG's or WebP's settings into EXIF UserComment (piexif's UNICODE or ASCII form)."""
    try:
        comment = image.getexif().get_ifd(_EXIF_IFD).get(_USER_COMMENT)
    except Exception as error:  # noqa: BLE001 - Pillow raises anything on broken EXIF; the image still imports
        found.notes.append(f"unreadable EXIF ({shown(str(error), 80)})")
        return
    if isinstance(comment, str):
        comment = comment.encode("utf-8", "replace")
    if not isinstance(comment, bytes) or len(comment) <= 8 or len(comment) > MAX_TEXT_CHUNK:
        return
    prefix, body = comment[:8], comment[8:]
    if prefix == b"UNICODE\0":
        text = body.decode("utf-16-be" if body[:1] == b"\0" else "utf-16-le", "replace")
    else:
        text = body.decode("utf-8", "replace")
    found.texts[a1111.PARAMETERS_KEY] = text.strip("\0")


def _interpret(found: ForeignImage) -> None:
    texts = found.texts
    if STUDIO_KEYWORD in texts:
        found.tool = "studio"
        if len(texts[STUDIO_KEYWORD]) > MAX_METADATA_BYTES:
            found.notes.append("Studio metadata over 64 KiB: not read")
    elif "invokeai_metadata" in texts or "sd-metadata" in texts or "Dream" in texts:
        found.tool = "invokeai"
        _invokeai(found)
    elif "prompt" in texts or "workflow" in texts:
        found.tool = "comfyui"
        _comfyui(found)
    elif a1111.PARAMETERS_KEY in texts:
        found.tool = "a1111"
        _a1111(found)
    found.xmp_packet = texts[XMP_KEYWORD].encode("utf-8") if XMP_KEYWORD in texts else None
    software = texts.get("Software")
    if found.tool == "unknown" and software:
        found.settings.setdefault("Software", software[:MAX_VALUE])


def _set(found: ForeignImage, key: str, value: Any) -> None:
    """One setting row, if the value is a scalar (anything else is a note)."""
    if value is None or len(found.settings) >= MAX_SETTINGS:
        return
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        found.notes.append(f"{key}: {shown(value)} is not a plain value: not shown")
        return
    found.settings[key] = str(value)[:MAX_VALUE]


def _seed(found: ForeignImage, value: Any) -> None:
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 19:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
        found.seed = value
    elif isinstance(value, str | int | float) and not isinstance(value, bool):  # (other types: noted by _set)
        found.notes.append(f"seed {shown(value)} is not a seed Studio keeps: left out")


def _text(value: Any) -> str:
    return value[:65536] if isinstance(value, str) else ""


def _json(found: ForeignImage, keyword: str) -> Any:
    try:
        return parse_json(found.texts[keyword], FOREIGN_JSON)
    except MalformedError as why:
        found.notes.append(f"{keyword}: invalid JSON ({shown(str(why), 100)[1:-1]}): settings not read")
        return None


def _a1111(found: ForeignImage) -> None:
    parsed = a1111.parse_parameters(found.texts[a1111.PARAMETERS_KEY])
    found.prompt, found.negative_prompt = parsed.prompt[:65536], parsed.negative_prompt[:65536]
    for key, value in parsed.settings.items():
        _set(found, key, value)
    _seed(found, parsed.settings.get("Seed"))
    found.model_name = model_name_of(parsed.settings.get("Model"), "a1111")


def _comfyui(found: ForeignImage) -> None:
    """ComfyUI's API graph (`prompt`): {node id: {class_type, inputs}}; links are [node id, output]."""
    graph = _json(found, "prompt") if "prompt" in found.texts else None
    if "workflow" in found.texts and graph is None:
        _json(found, "workflow")  # its validity is worth a note; its layout is not shown
    found.model_name = "comfyui"
    if not isinstance(graph, dict):
        if graph is not None:
            found.notes.append(f"prompt: {shown(graph)} instead of a node graph: settings not read")
        return
    nodes = {key: node for key, node in graph.items() if isinstance(node, dict)}

    def inputs(node: Any) -> dict[str, Any]:
        values = node.get("inputs") if isinstance(node, dict) else None
        return values if isinstance(values, dict) else {}

    def linked_text(link: Any) -> str:
        if isinstance(link, list) and link and isinstance(link[0], str | int):
            return _text(inputs(nodes.get(str(link[0]))).get("text"))
        return ""

    for node in nodes.values():
        kind = node.get("class_type")
        values = inputs(node)
        if kind in ("CheckpointLoaderSimple", "CheckpointLoader", "UNETLoader"):
            name = values.get("ckpt_name", values.get("unet_name"))
            found.model_name = model_name_of(name if isinstance(name, str) else None, "comfyui")
            _set(found, "Model", name)
        elif kind in ("KSampler", "KSamplerAdvanced"):
            for key, label in (("steps", "Steps"), ("cfg", "CFG scale"), ("sampler_name", "Sampler")):
                _set(found, label, values.get(key))
            _set(found, "Scheduler", values.get("scheduler"))
            _set(found, "Denoise", values.get("denoise"))
            seed = values.get("seed", values.get("noise_seed"))
            _set(found, "Seed", seed)
            _seed(found, seed)
            found.prompt = found.prompt or linked_text(values.get("positive"))
            found.negative_prompt = found.negative_prompt or linked_text(values.get("negative"))
        elif kind == "EmptyLatentImage":
            width, height = values.get("width"), values.get("height")
            if isinstance(width, int) and isinstance(height, int):
                _set(found, "Size", f"{width}x{height}")


def _invokeai(found: ForeignImage) -> None:
    """InvokeAI 3+ (`invokeai_metadata`), 2.x (`sd-metadata`) and 1.x (`Dream`, a command line)."""
    found.model_name = "invokeai"
    if "invokeai_metadata" in found.texts:
        document = _json(found, "invokeai_metadata")
        if not isinstance(document, dict):
            return
        found.prompt = _text(document.get("positive_prompt"))
        found.negative_prompt = _text(document.get("negative_prompt"))
        model = document.get("model")
        name = model.get("name", model.get("model_name")) if isinstance(model, dict) else model
        found.model_name = model_name_of(name if isinstance(name, str) else None, "invokeai")
        _set(found, "Model", name)
        for key, label in (("steps", "Steps"), ("cfg_scale", "CFG scale"), ("scheduler", "Scheduler")):
            _set(found, label, document.get(key))
        _set(found, "Seed", document.get("seed"))
        _set(found, "Generation mode", document.get("generation_mode"))
        width, height = document.get("width"), document.get("height")
        if isinstance(width, int) and isinstance(height, int):
            _set(found, "Size", f"{width}x{height}")
        _seed(found, document.get("seed"))
    elif "sd-metadata" in found.texts:
        document = _json(found, "sd-metadata")
        if not isinstance(document, dict):
            return
        weights = document.get("model_weights")
        found.model_name = model_name_of(weights if isinstance(weights, str) else None, "invokeai")
        _set(found, "Model", weights)
        _set(found, "Version", document.get("app_version"))
        image = document.get("image")
        if not isinstance(image, dict):
            return
        prompts = image.get("prompt")
        if isinstance(prompts, list):
            found.prompt = " ".join(_text(p.get("prompt")) for p in prompts[:64] if isinstance(p, dict))
        else:
            found.prompt = _text(prompts)
        for key, label in (("steps", "Steps"), ("cfg_scale", "CFG scale"), ("sampler", "Sampler")):
            _set(found, label, image.get(key))
        _set(found, "Seed", image.get("seed"))
        _seed(found, image.get("seed"))
    else:
        _dream(found, found.texts["Dream"])


def _dream(found: ForeignImage, text: str) -> None:
    """`"a prompt" -s 50 -S 1234 -W 512 -H 512 -C 7.5 -A k_lms` (InvokeAI 1.x, the lstein fork)."""
    match = re.match(r'\s*"((?:[^"\\]|\\.)*)"(.*)', text[:65536], re.S)
    prompt, rest = (match.group(1), match.group(2)) if match else ("", text[:65536])
    found.prompt = prompt
    labels = {"-s": "Steps", "-S": "Seed", "-W": "Width", "-H": "Height", "-C": "CFG scale", "-A": "Sampler"}
    words = rest.split()
    for flag, value in itertools.pairwise(words):
        if flag in labels:
            _set(found, labels[flag], value)
    _seed(found, found.settings.get("Seed"))


def tool_of_file(path: Path, max_bytes: int = 256 << 20) -> str | None:
    """Which other tool made an image file, from its metadata (None: Studio, none known, or unreadable)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes)
        found = read_foreign(data)
    except Exception:  # noqa: BLE001 - only asked to word a refusal better; any failure keeps the first
        return None
    return None if found.tool in ("studio", "unknown") else found.tool


def read_studio_png(path: Path) -> PngMetadata:
    """A Studio PNG's checked metadata (`reproduce`); an image another tool made is refused saying so."""
    try:
        return read_png_metadata(path)
    except StudioError:
        tool = tool_of_file(path) if path.is_file() else None
        if tool is None:
            raise
        raise StudioError(f"{path.name} was {not_reproducible({'tool': tool})}") from None
