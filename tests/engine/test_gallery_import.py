"""`gallery import`: A1111, ComfyUI, InvokeAI and Studio images (built here from their documented
formats) join the gallery with their settings; XMP curation is taken over; hostile files never crash."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from studio.cli import main
from studio.engine.curation import gallery_to_dataset, reproduce
from studio.engine.generation import generate
from studio.engine.interchange import xmp
from studio.engine.interchange.importer import GalleryImportResult, import_gallery_images
from studio.engine.jobs import run_job
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.errors import StudioError
from studio.home import DataHome
from studio.store.database import Store, open_store
from studio.store.gallery import GalleryFilter, GalleryRepository
from tests.engine.conftest import TINY

A1111_TEXT = (
    "a cat in a hat, masterpiece\n"
    "Negative prompt: blurry, lowres\n"
    "Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 965400086, Size: 16x16, Model hash: 45dee52b, "
    'Model: v1-5-pruned-emaonly, Lora hashes: "cat: 1a2b, hat: 3c4d", Version: v1.6.0'
)
COMFY_PROMPT = {
    "3": {"class_type": "KSampler", "inputs": {"seed": 156680208700286, "steps": 20, "cfg": 8,
          "sampler_name": "euler", "scheduler": "normal", "denoise": 1, "model": ["4", 0],
          "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "SDXL/sd_xl_base_1.0.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "beautiful scenery", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark", "clip": ["4", 1]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
}  # fmt: skip
INVOKE_V3 = {
    "generation_mode": "txt2img", "positive_prompt": "a lighthouse", "negative_prompt": "fog",
    "width": 16, "height": 16, "seed": 123, "steps": 30, "cfg_scale": 7.5, "scheduler": "euler",
    "model": {"model_name": "stable-diffusion-v1-5", "base_model": "sd-1", "model_type": "main"},
}  # fmt: skip
INVOKE_V2 = {
    "model": "stable diffusion", "model_weights": "stable-diffusion-1.5", "app_id": "invoke-ai/InvokeAI",
    "app_version": "2.3.0", "image": {"prompt": [{"prompt": "an owl", "weight": 1.0}], "steps": 50,
    "cfg_scale": 7.5, "seed": 42, "sampler": "k_lms", "width": 16, "height": 16, "type": "txt2img"},
}  # fmt: skip


def png(path: Path, texts: dict[str, str], value: int = 0, size: int = 16) -> Path:
    info = PngInfo()
    for key, text in texts.items():
        info.add_text(key, text)
    pixels = np.full((size, size, 3), value, np.uint8)
    pixels[0, 0] = [value, 255 - value, 7]  # every test image differs from the others
    Image.fromarray(pixels).save(path, pnginfo=info)
    return path


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def with_chunks(path: Path, *chunks: bytes) -> Path:
    """A valid PNG with extra chunks placed before IEND."""
    data = path.read_bytes()
    end = data.rindex(b"IEND") - 4
    path.write_bytes(data[:end] + b"".join(chunks) + data[end:])
    return path


def imported(store: Store, *paths: Path | str) -> GalleryImportResult:
    return run_job(import_gallery_images(store, list(paths)))


def origin(store: Store, item_id: int) -> dict[str, Any]:
    found = GalleryRepository(store).get(item_id).origin
    assert found is not None
    return found


def test_other_tools_images_import_with_their_settings(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "from-elsewhere"
    (source / "nested").mkdir(parents=True)
    a1111 = png(source / "00001-965400086.png", {"parameters": A1111_TEXT}, 10)
    comfy = png(source / "ComfyUI_00001_.png", {"prompt": json.dumps(COMFY_PROMPT), "workflow": '{"nodes": []}'}, 20)
    invoke3 = png(source / "nested" / "invoke3.png", {"invokeai_metadata": json.dumps(INVOKE_V3)}, 30)
    invoke2 = png(source / "nested" / "invoke2.png", {"sd-metadata": json.dumps(INVOKE_V2)}, 40)
    dream = png(
        source / "nested" / "dream.png", {"Dream": '"a fox in snow" -s 25 -S 77 -W 16 -H 16 -C 7.5 -A k_euler'}, 50
    )
    plain = png(source / "plain.png", {}, 60)
    (source / "readme.txt").write_text("not an image")
    result = imported(store, source)
    by_path = {Path(item["path"]).name: item for item in result.imported}
    assert len(result.imported) == 6 and not result.notes and not result.duplicates
    assert result.skipped == [
        {"path": str(source / "readme.txt"), "reason": "not an image (content is not a known image format)"}
    ]

    item = by_path[a1111.name]
    entry = GalleryRepository(store).get(item["id"])
    assert (entry.model, entry.family, entry.operation, entry.seed) == (
        "v1-5-pruned-emaonly",
        "external",
        "import",
        965400086,
    )
    found = origin(store, item["id"])
    assert found["tool"] == "a1111" and found["prompt"] == "a cat in a hat, masterpiece"
    assert found["negative_prompt"] == "blurry, lowres"
    assert (
        found["settings"]["Sampler"] == "DPM++ 2M Karras" and found["settings"]["Lora hashes"] == "cat: 1a2b, hat: 3c4d"
    )
    assert found["metadata"]["parameters"] == A1111_TEXT
    # The gallery owns a copy, byte for byte, under gallery/imported/<date>/.
    assert store.home.absolute(entry.path).read_bytes() == a1111.read_bytes()
    assert entry.path.startswith("gallery/imported/")

    found = origin(store, by_path[comfy.name]["id"])
    assert (
        found["tool"] == "comfyui"
        and found["prompt"] == "beautiful scenery"
        and found["negative_prompt"] == "text, watermark"
    )
    assert found["settings"]["Steps"] == "20" and found["settings"]["Size"] == "1024x1024"
    assert by_path[comfy.name]["model"] == "sd_xl_base_1.0"
    assert GalleryRepository(store).get(by_path[comfy.name]["id"]).seed == 156680208700286

    found = origin(store, by_path[invoke3.name]["id"])
    assert (found["tool"], found["prompt"], found["negative_prompt"]) == ("invokeai", "a lighthouse", "fog")
    assert by_path[invoke3.name]["model"] == "stable-diffusion-v1-5" and found["settings"]["CFG scale"] == "7.5"
    found = origin(store, by_path[invoke2.name]["id"])
    assert found["prompt"] == "an owl" and found["settings"]["Sampler"] == "k_lms"
    found = origin(store, by_path[dream.name]["id"])
    assert found["prompt"] == "a fox in snow" and found["settings"]["Steps"] == "25"
    assert GalleryRepository(store).get(by_path[dream.name]["id"]).seed == 77
    assert origin(store, by_path[plain.name]["id"])["tool"] == "unknown"

    # The same files again: reported as already there, not added twice.
    again = imported(store, a1111, source / "nested")
    assert not again.imported and {d["item"] for d in again.duplicates} == {
        by_path[n]["id"] for n in (a1111.name, invoke3.name, invoke2.name, dream.name)
    }
    facets = GalleryRepository(store).facets(GalleryFilter(family="external"))
    assert facets["family"] == {"external": 6}

    # Curated, turned into a dataset like any other item; reproducing says why it cannot be.
    ids = [item["id"] for item in result.imported]
    GalleryRepository(store).tag(ids, "elsewhere")
    summary = run_job(gallery_to_dataset(store, "found", GalleryFilter(tag="elsewhere"), label_by="model"))
    assert summary.count == 6
    with pytest.raises(StudioError, match="made by A1111, not by a Studio model: Studio cannot run it"):
        reproduce(store, store.home.absolute(entry.path))


def test_jpeg_and_webp_with_a1111_exif_and_xmp(store: Store, tmp_path: Path) -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + A1111_TEXT.encode("utf-16-be")  # piexif's UserComment
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(tmp_path / "a.jpg", exif=exif)
    webp = tmp_path / "b.webp"
    Image.fromarray(np.full((16, 16, 3), 70, np.uint8)).save(webp, lossless=True)
    webp.write_bytes(xmp.embedded(webp.read_bytes(), xmp.XmpCuration(5, "pick", ("sunset",), ("Trip",))))
    result = imported(store, tmp_path / "a.jpg", webp)
    assert [item["tool"] for item in result.imported] == ["a1111", "unknown"] and not result.notes
    jpeg = GalleryRepository(store).get(result.imported[0]["id"])
    assert jpeg.path.endswith(".jpg") and origin(store, jpeg.id)["settings"]["Seed"] == "965400086"
    taken = GalleryRepository(store).get(result.imported[1]["id"])
    assert (taken.rating, taken.flag, taken.tags, taken.collections) == (5, "pick", ("sunset",), ("Trip",))


def test_xmp_in_the_file_and_in_a_sidecar_is_taken_over(store: Store, tmp_path: Path) -> None:
    inside = png(tmp_path / "inside.png", {}, 1)
    inside.write_bytes(xmp.embedded(inside.read_bytes(), xmp.XmpCuration(3, "none", ("red",), ())))
    beside = png(tmp_path / "beside.png", {"parameters": A1111_TEXT}, 2)
    (tmp_path / "beside.xmp").write_bytes(xmp.sidecar(xmp.XmpCuration(0, "reject", ("blue", "Blue"), ("Rejects",))))
    result = imported(store, inside, beside)
    first, second = (GalleryRepository(store).get(item["id"]) for item in result.imported)
    assert (first.rating, first.flag, first.tags) == (3, "none", ("red",))
    assert (second.rating, second.flag, second.tags, second.collections) == (0, "reject", ("blue",), ("Rejects",))
    assert not result.skipped  # the sidecar is read with its image, not imported as a file


def test_a_studio_png_from_another_home_keeps_its_model_seed_and_settings(digits8: Store, tmp_path: Path) -> None:
    options = TrainOptions("v", family="vae", dataset="digits", steps=2, settings=TINY["vae"], preview_every=0)
    run_job(train(digits8, options))
    made = run_job(generate(digits8, "v", count=1, seed=9)).items[0]
    other = open_store(DataHome(tmp_path / "other-home").ensure())
    try:
        result = imported(other, made["path"])
        entry = GalleryRepository(other).get(result.imported[0]["id"])
        assert (entry.model, entry.family, entry.seed, entry.operation) == ("v", "vae", 9, "import")
        assert (
            entry.params == GalleryRepository(digits8).get(made["id"]).params and result.imported[0]["tool"] == "studio"
        )
        with pytest.raises(StudioError, match="not in this library"):  # Studio's own reason, not "another tool"
            reproduce(other, other.home.absolute(entry.path))
    finally:
        other.close()
    # Its own home refuses to import from inside itself.
    inside = imported(digits8, made["path"])
    assert inside.skipped[0]["reason"] == "inside the data home: not imported"


def test_hostile_files_import_with_notes_or_are_skipped(store: Store, tmp_path: Path) -> None:
    with_chunks(
        png(tmp_path / "huge.png", {"parameters": A1111_TEXT}, 3), chunk(b"tEXt", b"prompt\0" + b"x" * (1 << 20 + 1))
    )
    with_chunks(png(tmp_path / "bomb.png", {}, 4), chunk(b"zTXt", b"workflow\0\0" + zlib.compress(b"{" * (16 << 20))))
    png(tmp_path / "bad-json.png", {"prompt": "{not json", "workflow": "[" * 5000}, 5)
    png(
        tmp_path / "wrong-types.png",
        {"invokeai_metadata": json.dumps({**INVOKE_V3, "seed": [1, 2], "steps": {"a": 1}})},
        6,
    )
    with_chunks(
        png(tmp_path / "bad-xmp.png", {}, 7),
        chunk(
            b"iTXt",
            b"XML:com.adobe.xmp\0\0\0\0\0"
            + b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><oops',
        ),
    )
    (tmp_path / "bad-sidecar.xmp").write_text("<x:xmpmeta>broken")
    png(tmp_path / "bad-sidecar.png", {}, 8)
    png(tmp_path / "comfy-list.png", {"prompt": "[1, 2, 3]"}, 9)
    # A header that claims 100000 x 100000 pixels: refused before a pixel is decoded.
    giant = tmp_path / "giant.png"
    header = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    giant.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )
    cut = tmp_path / "cut.png"
    cut.write_bytes(png(tmp_path / "whole.png", {}, 10).read_bytes()[:60])
    (tmp_path / "whole.png").unlink()
    (tmp_path / "empty.png").write_bytes(b"")
    gif = tmp_path / "anim.gif"
    Image.new("P", (4, 4)).save(gif)

    result = imported(store, tmp_path)
    notes: dict[str, list[str]] = {}
    for note in result.notes:
        notes.setdefault(Path(note["path"]).name, []).append(note["note"])
    skipped = {Path(s["path"]).name: s["reason"] for s in result.skipped}
    assert {Path(i["path"]).name for i in result.imported} == {
        "huge.png", "bad-json.png", "wrong-types.png", "bad-xmp.png", "bad-sidecar.png", "comfy-list.png"
    }  # fmt: skip
    assert "not read (over 1 MiB)" in notes["huge.png"][0]
    assert skipped["bomb.png"] == "decompression bomb refused: a compressed text chunk inflates past 1 MiB"
    assert any("prompt: invalid JSON" in n for n in notes["bad-json.png"])
    assert any("workflow: invalid JSON" in n for n in notes["bad-json.png"])  # 5,000 levels deep: refused
    assert any("Seed: a list is not a plain value" in n for n in notes["wrong-types.png"])
    assert any("Steps" in n for n in notes["wrong-types.png"])
    assert "embedded XMP not taken: invalid XMP" in notes["bad-xmp.png"][0]
    assert "XMP sidecar not taken" in notes["bad-sidecar.png"][0]
    assert "instead of a node graph" in notes["comfy-list.png"][0]
    assert "too large" in skipped["giant.png"] or "bomb" in skipped["giant.png"]
    assert skipped["cut.png"].startswith("corrupt image") and skipped["empty.png"] == "empty file (0 bytes)"
    assert "Studio imports PNG, JPEG and WebP" in skipped["anim.gif"]
    # What could be read was kept: the huge file's own A1111 settings, the wrong-typed file's prompt.
    by_name = {Path(i["path"]).name: i["id"] for i in result.imported}
    assert origin(store, by_name["huge.png"])["settings"]["Seed"] == "965400086"
    assert origin(store, by_name["wrong-types.png"])["prompt"] == "a lighthouse"
    assert all(len(line.splitlines()) == 1 for line in [*(n["note"] for n in result.notes), *skipped.values()])


def test_cli_import_json_and_one_line_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, isolated_home: Path
) -> None:
    image = png(tmp_path / "one.png", {"parameters": A1111_TEXT}, 11)
    assert main(["gallery", "import", str(image), str(tmp_path / "missing.png"), "--json", "--quiet"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["imported"][0]["tool"] == "a1111"
    assert payload["skipped"] == [{"path": str(tmp_path / "missing.png"), "reason": "no such file or folder"}]
    assert main(["gallery", "list", "--operation", "import", "--family", "external", "--json", "--quiet"]) == 0
    assert [i["model"] for i in json.loads(capsys.readouterr().out)["items"]] == ["v1-5-pruned-emaonly"]
    shown = main(["gallery", "show", str(payload["imported"][0]["id"]), "--json", "--quiet"])
    assert shown == 0 and json.loads(capsys.readouterr().out)["origin"]["tool"] == "a1111"
    code = main(["gallery", "reproduce", str(isolated_home / payload["imported"][0]["file"]), "--quiet"])
    error = capsys.readouterr().err
    assert code == 1 and error.strip().endswith("made by A1111, not by a Studio model: Studio cannot run it")
    assert len(error.strip().splitlines()) == 1
