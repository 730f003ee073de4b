"""Hostile files: every untrusted structured input is refused in one line, and nothing is written.

PNG metadata (reproduce, `gallery check --repair`, the UI's drop-to-restore), a model folder's
config.json and checkpoint.safetensors (`models import`) and an export's manifest.json, each
crafted the way an attacker or a damaged disk would.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from studio.cli import main
from studio.engine.checkpoints import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    TrainingState,
    build_family,
    read_config,
    save_checkpoint,
)
from studio.engine.curation import check_gallery, read_metadata
from studio.engine.jobs import run_job
from studio.engine.library import import_model, list_models
from studio.engine.runtime.package import MANIFEST_FILE, read_manifest
from studio.errors import StudioError
from studio.store.database import Store
from studio.store.gallery import GalleryRepository
from tests.engine.conftest import TINY

DEEP = "[" * 100_000 + "]" * 100_000
SHALLOWER = "[" * 20_000 + "]" * 20_000  # still 20 times Python's recursion limit, and inside a PNG's 64 KiB
BIG_INT = "1" + "0" * 9_999  # 10,000 digits: past Python's own 4,300-digit guard, far past any bound
CONTROL = "\x1b[31m\x00\n"


def refused(call: Callable[[], Any], match: str) -> str:
    """The call raises a one-line StudioError matching `match`; returns the message."""
    with pytest.raises(StudioError, match=match) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and "\x1b" not in message and "\x00" not in message, repr(message)
    assert len(message) < 500, message
    return message


def cli_refuses(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """`studio ... --json` exits 1 with one line on stderr, {"error": ...} on stdout, no traceback."""
    code = main([*argv, "--json", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 1, (out, err)
    assert "Traceback" not in out + err
    assert len(err.strip().splitlines()) == 1, err
    return str(json.loads(out)["error"])


# --- PNG metadata ---------------------------------------------------------------------------

METADATA: dict[str, Any] = {
    "studio_version": "0.1.0",
    "operation": "sample",
    "model": "m",
    "family": "gan",
    "weights_hash": None,
    "seed": 1,
    "params": {"truncation": 1.0},
    "backend": "torch",
    "provider": "cpu",
    "steps_trained": 2,
}
INTERPOLATED = {
    **METADATA,
    "operation": "interpolate",
    "seed": None,
    "from": {"seed": 1},
    "to": {"seed": 2},
    "frame": 0,
    "frames": 3,
    "t": 0.0,
    "method": "slerp",
}


def text_of(base: dict[str, Any] | None = None, **changes: Any) -> str:
    """Metadata as generate writes it (sorted keys), with changes."""
    return json.dumps({**(base or METADATA), **changes}, sort_keys=True)


def studio_png(path: Path, text: str, size: tuple[int, int] = (8, 8)) -> Path:
    """A grey PNG carrying `text` as its `studio` chunk."""
    info = PngInfo()
    info.add_text("studio", text)
    Image.new("L", size).save(path, pnginfo=info)
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(width: int = 8, height: int = 8, before_idat: bytes = b"", truncate_after: bytes | None = None) -> bytes:
    """A grey PNG built by hand, with arbitrary chunks (or a cut-off chunk) before its pixels."""
    header = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    if truncate_after is not None:
        return header + before_idat + truncate_after
    packer = zlib.compressobj(9)
    row = b"\0" * (width + 1)  # filter byte 0, then black pixels
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return header + before_idat + png_chunk(b"IDAT", pixels) + png_chunk(b"IEND", b"")


HOSTILE_METADATA = [
    ("deep-nesting", text_of()[:-1] + f', "x": {SHALLOWER}}}', "nested deeper than"),
    ("10000-digit-seed", text_of(seed=0).replace('"seed": 0', f'"seed": {BIG_INT}'), "10000 digits"),
    ("10000-digit-param", text_of().replace('"truncation": 1.0', f'"truncation": {BIG_INT}'), "10000 digits"),
    ("oversized-text", text_of() + " " * (2 << 20), "larger than"),
    ("negative-seed", text_of(seed=-5), "seed -5"),
    ("seed-past-2**63", text_of(seed=2**64), "seed"),
    ("bool-seed", text_of(seed=True), "seed"),
    ("a-billion-frames", text_of(INTERPOLATED, frames=10**9), "frames"),
    ("frame-outside", text_of(INTERPOLATED, frame=7), "frame 7 of 3"),
    ("list-as-params", text_of(params=[1, 2]), "params"),
    ("list-as-an-end", text_of(INTERPOLATED, **{"from": [1, 2]}), "from"),
    ("top-level-list", json.dumps([METADATA]), "not an object"),
    ("nan", text_of().replace('"truncation": 1.0', '"truncation": NaN'), "NaN"),
    ("1e999", text_of().replace('"truncation": 1.0', '"truncation": 1e999'), "finite"),
    ("minus-infinity", text_of(t=0.0).replace('"t": 0.0', '"t": -Infinity'), "Infinity"),
    ("absurd-sampling-steps", text_of(family="diffusion", params={"steps": 10**9}), "steps"),
    ("unknown-family", text_of(family="flow"), "unknown family 'flow'"),
    ("escape-sequences-in-the-name", text_of(model=f"evil{CONTROL}"), "model"),
    ("long-string", text_of(provider="x" * 5000), "longer than"),
    ("too-many-keys", text_of(**{f"k{i}": 0 for i in range(3000)}), "more than"),
    ("duplicate-keys", text_of()[:-1] + ', "seed": 2}', "twice"),
    ("number-as-model", text_of(model=5), "model"),
]


@pytest.mark.parametrize(
    ("text", "match"), [case[1:] for case in HOSTILE_METADATA], ids=[c[0] for c in HOSTILE_METADATA]
)
def test_hostile_png_metadata_is_refused_in_one_line(tmp_path: Path, text: str, match: str) -> None:
    path = studio_png(tmp_path / "hostile.png", text)
    started = time.monotonic()
    refused(lambda: read_metadata(path), match)
    assert time.monotonic() - started < 2


def test_valid_png_metadata_reads_as_before(tmp_path: Path) -> None:
    for base in (METADATA, INTERPOLATED):
        read = read_metadata(studio_png(tmp_path / "valid.png", text_of(base)))
        pixels = read.pop("_pixels")
        assert read == base and pixels.shape == (8, 8, 1)


def test_a_text_chunk_is_measured_before_it_is_read(tmp_path: Path) -> None:
    # A tEXt chunk that claims 2 GiB: refused from its length field, not after reading to the end.
    claim = struct.pack(">I", 2**31 - 1) + b"tEXt" + b"studio\0{"
    path = tmp_path / "claims.png"
    path.write_bytes(raw_png(truncate_after=claim))
    refused(lambda: read_metadata(path), "text chunk of 2.0 GiB")
    # Many chunks of a reasonable size that add up past the total.
    chunks = b"".join(png_chunk(b"tEXt", b"note%d\0" % i + b"x" * 200_000) for i in range(40))
    path.write_bytes(raw_png(before_idat=chunks + png_chunk(b"tEXt", b"studio\0" + text_of().encode())))
    refused(lambda: read_metadata(path), "text chunks")


def test_a_huge_image_is_refused_before_its_pixels_are_decoded(tmp_path: Path) -> None:
    chunk = png_chunk(b"tEXt", b"studio\0" + text_of().encode())
    path = tmp_path / "huge.png"
    path.write_bytes(raw_png(5000, 5000, before_idat=chunk))  # 25 megapixels of zeros, ~25 KB on disk
    refused(lambda: read_metadata(path), "5000x5000")


def test_reproduce_of_a_hostile_png_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for name, text, match in HOSTILE_METADATA:
        if name in ("deep-nesting", "10000-digit-seed", "a-billion-frames", "negative-seed", "nan"):
            path = studio_png(tmp_path / f"{name}.png", text)
            assert match.split()[0] in cli_refuses(capsys, "gallery", "reproduce", str(path))


def test_gallery_repair_skips_and_reports_what_it_cannot_read(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    folder = store.home.gallery / "m" / "2024-01-01"
    folder.mkdir(parents=True)
    studio_png(folder / "good.png", text_of(seed=3))
    bad = {name: text for name, text, _ in HOSTILE_METADATA[:8]}
    for name, text in bad.items():
        studio_png(folder / f"{name}.png", text)
    (folder / "noise.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"junk" * 10)
    (folder / "plain.png").write_bytes((folder / "good.png").read_bytes()[:40])  # truncated
    report = run_job(check_gallery(store, repair=True))
    assert report.repaired["files_registered"] == 1
    skipped = {Path(entry["path"]).name: entry["reason"] for entry in report.skipped}
    assert set(skipped) == {f"{name}.png" for name in bad} | {"noise.png", "plain.png"}, skipped
    assert all(reason and "\n" not in reason for reason in skipped.values())
    assert [Path(item.path).name for item in GalleryRepository(store).list()] == ["good.png"]
    # The skipped files are left where they are, still reported; the command says so in one line each.
    assert main(["gallery", "check", "--repair", "--json", "--quiet"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert len(payload["skipped"]) == len(skipped) and payload["repaired"]["files_registered"] == 0
    assert main(["gallery", "check", "--repair"]) == 0
    out = capsys.readouterr().out
    assert "skipped 10 file(s) it cannot read" in out and "Traceback" not in out


# --- model folders: config.json and checkpoint.safetensors -----------------------------------


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A tiny GAN model folder made elsewhere (its weights are its initialisation: no training needed)."""
    folder = tmp_path / "made-elsewhere"
    folder.mkdir()
    torch.manual_seed(0)
    config = {"family": "gan", "resolution": 8, "channels": 1, "hyperparameters": TINY["gan"]}
    family = build_family(config)
    state = TrainingState(2, 0, torch.Generator().get_state(), torch.get_rng_state())
    save_checkpoint(folder, family, state, {**config, "format": 1, "name": "elsewhere", "seed": 0})
    return folder


def nothing_imported(store: Store) -> None:
    """No row, no model folder, nothing left in staging."""
    assert list_models(store) == []
    assert not any(store.home.models.iterdir())
    staging = store.home.staging
    assert not staging.exists() or not any(staging.iterdir()), list(staging.iterdir())


def edit_config(folder: Path, edit: Callable[[str], str]) -> None:
    path = folder / CONFIG_FILE
    path.write_text(edit(path.read_text()))


def set_key(key: str, value: Any) -> Callable[[str], str]:
    def edit(text: str) -> str:
        return json.dumps({**json.loads(text), key: value})

    return edit


def replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, (old, text)
        return text.replace(old, new, 1)

    return edit


HOSTILE_CONFIGS = [
    ("resolution-as-text", set_key("resolution", "8"), "resolution"),
    ("resolution-1e999", replace('"resolution": 8', '"resolution": 1e999'), "finite"),
    ("absurd-resolution", set_key("resolution", 10**6), "resolution 1000000"),
    ("resolution-as-list", set_key("resolution", [8]), "resolution"),
    ("two-channels", set_key("channels", 2), "channels 2"),
    ("family-as-list", set_key("family", ["gan"]), "family"),
    ("unknown-family", set_key("family", "flow"), "unknown family 'flow'"),
    ("hyperparameters-as-list", set_key("hyperparameters", [1, 2]), "hyperparameters"),
    ("infinite-width", replace('"width": 8', '"width": Infinity'), "Infinity"),
    ("absurd-width", set_key("hyperparameters", {**TINY["gan"], "width": 10**6}), "width"),
    ("negative-steps", set_key("steps", -1), "steps -1"),
    ("absurd-steps", set_key("steps", 10**15), "steps"),
    ("format-as-text", set_key("format", "1"), "format"),
    ("10000-digit-format", replace('"format": 1', f'"format": {BIG_INT}'), "10000 digits"),
    ("hash-as-number", set_key("weights_hash", 12), "weights_hash"),
    ("nan-loss", set_key("losses", {"d": 1.0}), ""),  # replaced below: json.dumps cannot write NaN as asked
    ("top-level-list", lambda text: f"[{text}]", "not an object"),
    ("deep-nesting", lambda text: text[: text.rindex("}")] + f', "x": {DEEP}}}', "nested deeper than"),
    ("duplicate-family", lambda text: text[: text.rindex("}")] + ', "family": "vae"}', "twice"),
    ("oversized", lambda text: text + " " * (3 << 20), "larger than"),
]
HOSTILE_CONFIGS[15] = ("nan-loss", replace('"family": "gan"', '"family": "gan", "losses": {"d": NaN}'), "NaN")


@pytest.mark.parametrize(("edit", "match"), [c[1:] for c in HOSTILE_CONFIGS], ids=[c[0] for c in HOSTILE_CONFIGS])
def test_hostile_config_json_is_refused_and_nothing_is_imported(
    store: Store, source: Path, edit: Callable[[str], str], match: str
) -> None:
    edit_config(source, edit)
    refused(lambda: read_config(source), match)
    refused(lambda: import_model(store, source, "imported"), match)
    nothing_imported(store)


def test_a_valid_model_folder_imports_with_its_weights_hash_computed(store: Store, source: Path) -> None:
    written = json.loads((source / CONFIG_FILE).read_text())["weights_hash"]
    imported = import_model(store, source, "imported")
    assert imported.weights_hash == written and imported.steps == 2 and imported.family == "gan"


def rewrite_checkpoint(folder: Path, change: Callable[[dict[str, torch.Tensor]], None]) -> None:
    """Load, change and save the checkpoint again with its original metadata."""
    path = folder / CHECKPOINT_FILE
    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path), metadata=metadata)


def rewrite_header(folder: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    """Change the JSON header of the checkpoint, keeping its tensor bytes."""
    path = folder / CHECKPOINT_FILE
    data = path.read_bytes()
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    changed = change(header)
    text = (changed if isinstance(changed, str) else json.dumps(header)).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + length :])


def set_studio_meta(key: str, value: str) -> Callable[[dict[str, Any]], str]:
    """A header change that sets `key` of the studio metadata to raw JSON text."""

    def change(header: dict[str, Any]) -> str:
        meta = json.loads(header["__metadata__"]["studio"])
        meta[key] = "@@"
        header["__metadata__"]["studio"] = json.dumps(meta).replace('"@@"', value)
        return json.dumps(header)

    return change


def first_weight(tensors: dict[str, Any]) -> str:
    return sorted(name for name in tensors if name.startswith("network.") and name.endswith(".weight"))[0]


def poison(prefix: str, value: float) -> Callable[[dict[str, torch.Tensor]], None]:
    def change(tensors: dict[str, torch.Tensor]) -> None:
        name = sorted(n for n in tensors if n.startswith(prefix) and tensors[n].is_floating_point())[0]
        tensors[name].view(-1)[0] = value

    return change


def infinite_state(tensors: dict[str, torch.Tensor]) -> None:
    """Optimiser state (never loaded by an import, but copied with it) holding an infinity."""
    tensors["optimizer.generator.0.exp_avg"] = torch.tensor([1.0, float("inf")])


def header_length(value: int) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        path = folder / CHECKPOINT_FILE
        data = path.read_bytes()
        path.write_bytes(value.to_bytes(8, "little") + data[8:])

    return change


def offsets(change_entry: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        def edit(header: dict[str, Any]) -> None:
            change_entry(header[first_weight(header)])

        rewrite_header(folder, edit)

    return change


HOSTILE_CHECKPOINTS: list[tuple[str, Callable[[Path], None], str]] = [
    ("header-of-1-TiB", header_length(2**40), "header of 1.0 TiB"),
    ("header-past-the-end", header_length(10**6), "header of 976.6 KiB"),
    ("tensor-past-the-end", offsets(lambda e: e.update(data_offsets=[0, 10**12])), "damaged"),
    ("shape-not-its-bytes", offsets(lambda e: e.update(shape=[10**9, 10**9])), "damaged"),
    ("unknown-dtype", offsets(lambda e: e.update(dtype="Q99")), "dtype"),
    ("metadata-as-list", lambda f: rewrite_header(f, lambda h: h.update(__metadata__=["studio"])), "metadata"),
    ("step-1e999", lambda f: rewrite_header(f, set_studio_meta("step", "1e999")), "finite"),
    ("negative-step", lambda f: rewrite_header(f, set_studio_meta("step", "-1")), "step -1"),
    ("10000-digit-seed", lambda f: rewrite_header(f, set_studio_meta("seed", BIG_INT)), "10000 digits"),
    ("optimizers-as-list", lambda f: rewrite_header(f, set_studio_meta("optimizers", "[]")), "optimizers"),
    ("deep-meta", lambda f: rewrite_header(f, set_studio_meta("x", DEEP[:4000] + DEEP[-4000:])), "nested"),
    ("nan-weight", lambda f: rewrite_checkpoint(f, poison("network.", float("nan"))), "NaN or infinite"),
    ("inf-optimiser-state", lambda f: rewrite_checkpoint(f, infinite_state), "NaN or infinite"),
    ("forged-weights-hash", lambda f: edit_config(f, set_key("weights_hash", "0" * 64)), "weights hash"),
    ("sparse-5-GiB", lambda f: os.truncate(f / CHECKPOINT_FILE, 5 << 30), "5.0 GiB"),
]


@pytest.mark.parametrize(
    ("change", "match"), [c[1:] for c in HOSTILE_CHECKPOINTS], ids=[c[0] for c in HOSTILE_CHECKPOINTS]
)
def test_hostile_checkpoint_is_refused_and_nothing_is_imported(
    store: Store, source: Path, change: Callable[[Path], None], match: str
) -> None:
    change(source)
    started = time.monotonic()
    message = refused(lambda: import_model(store, source, "imported"), match)
    assert time.monotonic() - started < 5
    nothing_imported(store)
    if "NaN" in match:
        assert "network." in message or "optimizer." in message  # the tensor is named


def test_models_import_of_a_hostile_folder_is_one_line_and_exit_1(
    store: Store, source: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    forged = tmp_path / "forged"
    shutil.copytree(source, forged)
    edit_config(forged, set_key("weights_hash", "0" * 64))
    assert "weights hash" in cli_refuses(capsys, "models", "import", str(forged))
    header_length(2**40)(source)
    assert "header" in cli_refuses(capsys, "models", "import", str(source))
    nothing_imported(store)


# --- export manifests -----------------------------------------------------------------------

MANIFEST: dict[str, Any] = {
    "capabilities": ["inpaint", "sample"],
    "channels": 1,
    "exported_at": "2026-12-01T23:28:53+00:00",
    "family": "pixelcnn",
    "format": 1,
    "hyperparameters": {"batch_size": 8, "hflip": False, "layers": 1, "learning_rate": 0.001, "width": 6},
    "latent_shape": None,
    "model": "old-pixelcnn",
    "networks": {
        "pixelcnn": {
            "bytes": 31252,
            "file": "pixelcnn.onnx",
            "inputs": ["image"],
            "max_abs_difference": 1.4901161193847656e-07,
            "outputs": ["logits"],
            "sha256": "31fef4e5838a68b46bbffe454c27d1774084cb10a8b04bcad75f5074c9b36a6b",
            "tolerance": 0.0001,
        }
    },
    "opset": 18,
    "reach": 3,
    "resolution": 8,
    "sampling_schema": [
        {
            "choices": None,
            "default": 1.0,
            "group": "sampling",
            "help": "divides the logits",
            "maximum": 2.0,
            "minimum": 0.05,
            "name": "temperature",
            "type": "float",
        }
    ],
    "scheduler": None,
    "steps_trained": 3,
    "studio_version": "0.1.0",
    "value_range": [-1.0, 1.0],
    "weights_hash": "835ca81629af4582337d19ac35aae676683020de0069f0cf33dabe035b6e0a82",
}


def network(**changes: Any) -> dict[str, Any]:
    return {"pixelcnn": {**MANIFEST["networks"]["pixelcnn"], **changes}}


HOSTILE_MANIFESTS: list[tuple[str, str, str]] = [
    ("networks-as-list", json.dumps({**MANIFEST, "networks": [1]}), "networks"),
    ("resolution-as-text", json.dumps({**MANIFEST, "resolution": "8"}), "resolution"),
    ("format-as-text", json.dumps({**MANIFEST, "format": "x"}), "format"),
    ("10000-digit-format", json.dumps(MANIFEST).replace('"format": 1', f'"format": {BIG_INT}'), "10000 digits"),
    ("family-as-number", json.dumps({**MANIFEST, "family": 5}), "family"),
    ("hash-as-number", json.dumps({**MANIFEST, "weights_hash": 12}), "weights_hash"),
    ("file-outside-the-folder", json.dumps({**MANIFEST, "networks": network(file="../../x.onnx")}), "file"),
    ("sha256-not-hex", json.dumps({**MANIFEST, "networks": network(sha256="xyz")}), "sha256"),
    ("difference-1e999", json.dumps(MANIFEST).replace("1.4901161193847656e-07", "1e999"), "finite"),
    ("schema-as-object", json.dumps({**MANIFEST, "sampling_schema": {}}), "sampling_schema"),
    ("schema-of-unknown-type", json.dumps(MANIFEST).replace('"type": "float"', '"type": "complex"'), "type"),
    ("negative-steps", json.dumps({**MANIFEST, "steps_trained": -3}), "steps_trained"),
    ("deep-nesting", json.dumps(MANIFEST)[:-1] + f', "x": {DEEP}}}', "nested deeper than"),
    ("top-level-list", json.dumps([MANIFEST]), "not an object"),
]


@pytest.mark.parametrize(("text", "match"), [c[1:] for c in HOSTILE_MANIFESTS], ids=[c[0] for c in HOSTILE_MANIFESTS])
def test_hostile_manifest_is_refused_in_one_line(tmp_path: Path, text: str, match: str) -> None:
    folder = tmp_path / "onnx"
    folder.mkdir()
    (folder / MANIFEST_FILE).write_text(text)
    refused(lambda: read_manifest(folder), match)


def test_a_valid_manifest_reads_as_before(tmp_path: Path) -> None:
    folder = tmp_path / "onnx"
    folder.mkdir()
    (folder / MANIFEST_FILE).write_text(json.dumps(MANIFEST, indent=2))
    assert read_manifest(folder) == MANIFEST


_FIFO_READERS = """
import os, sys
from pathlib import Path
from studio.engine.untrusted.manifest import read_export_manifest
from studio.engine.untrusted.model_files import read_checkpoint_header, read_model_config
from studio.engine.untrusted.png import read_png_metadata
from studio.errors import StudioError

folder = Path(sys.argv[1])
readers = {
    "config.json": read_model_config,
    "manifest.json": lambda p: read_export_manifest(p, 1),
    "checkpoint.safetensors": read_checkpoint_header,
    "image.png": read_png_metadata,
}
for name, read in readers.items():
    os.mkfifo(folder / name)
    try:
        read(folder / name)
    except StudioError as error:
        print(name, "refused:", error)
    else:
        print(name, "was read")
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_named_like_a_model_or_image_file_is_refused_at_once(tmp_path: Path) -> None:
    import subprocess
    import sys

    # In a child with a timeout: a reader that opened the FIFO before checking it would block forever.
    done = subprocess.run(
        [sys.executable, "-c", _FIFO_READERS, str(tmp_path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 4 and all("refused:" in line and "not a regular file" in line for line in lines), lines
