"""Dataset import: good files of every kind, every bad input with its reason, all-or-nothing."""

from __future__ import annotations

import io
import json
import os
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.engine.datasets import decode
from studio.engine.datasets.decode import ImportLimits
from studio.engine.datasets.importer import ImportResult, import_dataset
from studio.engine.datasets.samples import add_sample
from studio.engine.datasets.storage import get_dataset, list_datasets, load_images, load_labels
from studio.engine.jobs import CancelToken, Finished, Progress, run_job
from studio.errors import AlreadyExistsError, CancelledError, StudioError
from studio.store.database import Store
from tests.images import make_folder, noise, save, solid


def run_import(store: Store, sources, name: str = "ds", **options) -> ImportResult:
    options.setdefault("workers", 1)
    return run_job(import_dataset(store, [str(s) for s in sources], name, **options))


def reasons(result: ImportResult) -> dict[str, str]:
    return {Path(s.path.split("!")[-1]).name: s.reason for s in result.skipped}


def assert_nothing_left(store: Store, name: str = "ds") -> None:
    assert name not in [d.name for d in list_datasets(store)]
    assert list(store.home.staging.iterdir()) == []
    assert not (store.home.datasets / name).exists()


# --- good input ---------------------------------------------------------------------------


def test_folder_import_labels_from_subfolders_and_stores_one_array(store: Store, tmp_path: Path) -> None:
    make_folder(tmp_path / "src", 12)
    result = run_import(store, [tmp_path / "src"], size=16, channels=3)
    assert (result.imported, result.duplicates, result.skipped) == (12, 0, [])
    assert result.dataset.class_counts == {"a": 6, "b": 6}
    images = load_images(store, "ds")
    assert images.shape == (12, 16, 16, 3) and images.dtype == np.uint8
    assert sorted(set(load_labels(store, "ds"))) == ["a", "b"]
    folder = store.home.datasets / "ds"
    manifest = json.loads((folder / "dataset.json").read_text())
    assert manifest["count"] == 12 and manifest["classes"] == {"a": 6, "b": 6}
    assert Image.open(folder / "preview.png").size == (8 * 16, 2 * 16)
    assert list(store.home.staging.iterdir()) == []


def test_labels_can_be_turned_off(store: Store, tmp_path: Path) -> None:
    make_folder(tmp_path / "src", 4)
    result = run_import(store, [tmp_path / "src"], labels=False)
    assert result.dataset.class_counts == {} and load_labels(store, "ds") == [None] * 4


def test_duplicates_by_content_are_dropped(store: Store, tmp_path: Path) -> None:
    image = noise(40, 40, seed=1)
    save(image, tmp_path / "one.png")
    save(image, tmp_path / "copy.png")
    save(image, tmp_path / "same-pixels.bmp")  # another format, same pixels
    save(noise(40, 40, seed=2), tmp_path / "other.png")
    result = run_import(store, [tmp_path])
    assert (result.imported, result.duplicates) == (2, 2)


def test_mix_of_folders_zips_and_single_files(store: Store, tmp_path: Path) -> None:
    make_folder(tmp_path / "folder", 4)
    single = save(noise(30, 30, seed=100), tmp_path / "single.webp", lossless=True)
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(3):
            buffer = io.BytesIO()
            noise(30, 30, seed=200 + i).save(buffer, "PNG")
            zf.writestr(f"zipped/cls{i % 2}/{i}.png", buffer.getvalue())
    result = run_import(store, [tmp_path / "folder", archive, single])
    assert result.imported == 8 and result.skipped == []
    assert result.dataset.class_counts == {"a": 2, "b": 2, "cls0": 2, "cls1": 1}


def test_every_allowed_format_imports(store: Store, tmp_path: Path) -> None:
    tmp_path = tmp_path / "src"
    save(noise(24, 24, seed=5), tmp_path / "a.png")
    save(noise(24, 24, seed=6), tmp_path / "b.jpg", quality=95)
    save(noise(24, 24, seed=7), tmp_path / "c.bmp")
    save(noise(24, 24, seed=8), tmp_path / "d.gif")
    save(noise(24, 24, seed=9), tmp_path / "e.webp", lossless=True)
    save(noise(24, 24, seed=10), tmp_path / "f.tiff")
    result = run_import(store, [tmp_path], size=8)
    assert (result.imported, result.skipped) == (6, [])


def _one(store: Store, path: Path, size: int = 16, channels: int = 3, name: str = "ds") -> np.ndarray:
    result = run_import(store, [path], name=name, size=size, channels=channels)
    assert result.skipped == [], result.skipped
    return np.asarray(load_images(store, name)[0])


def test_center_crop_keeps_the_middle(store: Store, tmp_path: Path) -> None:
    image = Image.new("RGB", (48, 16))
    image.paste((255, 0, 0), (0, 0, 16, 16))
    image.paste((0, 255, 0), (16, 0, 32, 16))
    image.paste((0, 0, 255), (32, 0, 48, 16))
    out = _one(store, save(image, tmp_path / "wide.png"))
    assert (out == [0, 255, 0]).all()


def test_exif_orientation_is_applied(store: Store, tmp_path: Path) -> None:
    image = Image.new("RGB", (32, 16))
    image.paste((255, 0, 0), (0, 0, 16, 16))
    image.paste((0, 0, 255), (16, 0, 32, 16))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display rotated 90 degrees clockwise
    out = _one(store, save(image, tmp_path / "rotated.jpg", exif=exif.tobytes(), quality=95)).astype(int)
    # Rotated upright, the red half is on top and the blue half below.
    assert out[2, 2, 0] > 200 and out[2, 2, 2] < 60
    assert out[13, 2, 2] > 200 and out[13, 2, 0] < 60


def test_gif_first_frame(store: Store, tmp_path: Path) -> None:
    frames = [solid(16, 16, (255, 0, 0)), solid(16, 16, (0, 255, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    out = _one(store, path)
    assert (out == [255, 0, 0]).all()


def test_palette_with_transparency_goes_over_white(store: Store, tmp_path: Path) -> None:
    image = Image.new("P", (16, 16), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (0, 0, 8, 16))
    out = _one(store, save(image, tmp_path / "p.png", transparency=0))
    assert (out[:, :8] == [255, 0, 0]).all() and (out[:, 8:] == 255).all()


def test_alpha_modes_composite_over_white(store: Store, tmp_path: Path) -> None:
    la = _one(store, save(Image.new("LA", (16, 16), (0, 0)), tmp_path / "la.png"), channels=1, name="la")
    assert (la == 255).all()
    rgba = _one(store, save(Image.new("RGBA", (16, 16), (0, 0, 0, 128)), tmp_path / "rgba.png"), name="rgba")
    assert np.abs(rgba.astype(int) - 127).max() <= 1


def test_cmyk_sixteen_bit_and_bilevel_modes(store: Store, tmp_path: Path) -> None:
    cmyk = _one(
        store, save(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), tmp_path / "c.jpg", quality=95), name="cmyk"
    ).astype(int)
    assert cmyk[..., 0].min() > 220 and cmyk[..., 1].max() < 40 and cmyk[..., 2].max() < 40
    grey16 = np.full((16, 16), 32896, dtype=np.uint16)  # 128 * 257
    grey16[:, 8:] = 65535
    out16 = _one(store, save(Image.fromarray(grey16), tmp_path / "g16.png"), channels=1, name="g16")
    assert (out16[:, :8] == 128).all() and (out16[:, 8:] == 255).all()  # scaled, not clipped
    bilevel = Image.new("1", (16, 16), 0)
    bilevel.paste(1, (0, 0, 16, 8))
    out1 = _one(store, save(bilevel, tmp_path / "b.png"), channels=1, name="bilevel")
    assert (out1[:8] == 255).all() and (out1[8:] == 0).all()


def test_grey_and_colour_conversions(store: Store, tmp_path: Path) -> None:
    grey = _one(store, save(solid(16, 16, (0, 0, 255)), tmp_path / "blue.png"), channels=1, name="grey")
    assert grey.shape == (16, 16, 1) and (grey == 29).all()  # ITU-R 601 luma of pure blue
    colour = _one(store, save(solid(16, 16, 77, mode="L"), tmp_path / "l.png"), channels=3, name="colour")
    assert (colour == 77).all()


def test_upscaling_small_images_works(store: Store, tmp_path: Path) -> None:
    out = _one(store, save(noise(8, 8, 3), tmp_path / "tiny.png"), size=64)
    assert out.shape == (64, 64, 3)


def test_large_datasets_keep_thumbnails(store: Store, tmp_path: Path) -> None:
    save(noise(200, 200, 1), tmp_path / "big.png")
    run_import(store, [tmp_path], size=128)
    thumbnails = load_images(store, "ds", thumbnails=True)
    assert thumbnails.shape == (1, 64, 64, 3)


def test_non_utf8_file_names_import_and_print(store: Store, tmp_path: Path) -> None:
    if os.name == "nt" or os.uname().sysname == "Darwin":
        pytest.skip("only Linux file systems store arbitrary bytes in names")
    name = os.fsdecode(b"caf\xe9-\xff.png")
    save(noise(20, 20, 1), tmp_path / "src" / name)
    archive = tmp_path / "src" / "legacy.zip"
    buffer = io.BytesIO()
    noise(20, 20, 2).save(buffer, "PNG")
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(zipfile.ZipInfo("na\u00efve.png"), buffer.getvalue())
    result = run_import(store, [tmp_path / "src"])
    assert (result.imported, result.skipped) == (2, [])
    with store.sessions() as session:
        from sqlalchemy import select

        from studio.store.tables import DatasetItem

        sources = sorted(session.scalars(select(DatasetItem.source)))
    assert any("caf\\xe9-\\xff.png" in s for s in sources)
    json.dumps(result.as_dict(), ensure_ascii=False).encode("utf-8")  # printable as UTF-8


# --- bad input: each gets its reason, the good files still import -------------------------


def _png(width: int, height: int, bit_depth: int, colour_type: int, raw: bytes) -> bytes:
    """A PNG written by hand, to say things Pillow would not (huge sizes, 16-bit colour)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _png_header_claiming(width: int, height: int) -> bytes:
    return _png(width, height, bit_depth=1, colour_type=0, raw=b"\0" * 64)


def test_bad_files_are_skipped_with_reasons_and_good_ones_kept(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "src"
    save(noise(32, 32, 1), src / "good.png")
    save(noise(32, 32, 2), src / "good.jpg")
    (src / "zero.png").write_bytes(b"")
    (src / "text.png").write_text("I am not a picture")
    png = io.BytesIO()
    noise(64, 64, 3).save(png, "PNG")
    (src / "truncated.png").write_bytes(png.getvalue()[: len(png.getvalue()) // 2])
    jpg = io.BytesIO()
    noise(64, 64, 4).save(jpg, "JPEG")
    (src / "truncated.jpg").write_bytes(jpg.getvalue()[: len(jpg.getvalue()) // 2])
    (src / "bomb.png").write_bytes(_png_header_claiming(100_000, 100_000))
    ppm = io.BytesIO()
    noise(8, 8, 5).save(ppm, "PPM")
    (src / "disguised.png").write_bytes(ppm.getvalue())
    (src / "notes.txt").write_text("hello")
    (src / "broken.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    (src / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # OS litter: ignored silently

    result = run_import(store, [src])
    got = reasons(result)
    assert result.imported == 2
    assert got["zero.png"] == "empty file (0 bytes)"
    assert got["text.png"] == "not an image (content is not a known image format)"
    assert got["truncated.png"].startswith("truncated or corrupt image")
    assert got["truncated.jpg"].startswith("truncated or corrupt image")
    assert got["bomb.png"].startswith("decompression bomb refused")
    assert got["disguised.png"].startswith("unsupported format PPM")
    assert got["notes.txt"] == "not an image file ('.txt')"
    assert got["broken.zip"].startswith("broken zip archive")
    assert ".DS_Store" not in got
    assert len(result.skipped) == 8
    assert all(s.path.startswith(str(src)) for s in result.skipped)


def test_the_data_home_is_never_imported(store: Store, tmp_path: Path) -> None:
    run_job(add_sample(store, "digits", name="digits", size=8))
    save(noise(16, 16, 1), tmp_path / "ok.png")
    result = run_import(store, [tmp_path])  # tmp_path holds the home too
    assert result.imported == 1
    assert reasons(result) == {"home": "Studio's own data folder (not imported)"}


def test_size_caps_on_pixels_and_bytes(store: Store, tmp_path: Path) -> None:
    save(solid(120, 100, (9, 9, 9)), tmp_path / "many-pixels.png")
    save(noise(8, 8, 2), tmp_path / "small.png")
    (tmp_path / "heavy.png").write_bytes(b"\x89PNG" + os.urandom(5000))
    result = run_import(store, [tmp_path], limits=ImportLimits(max_pixels=10_000, max_file_bytes=4096))
    got = reasons(result)
    assert result.imported == 1
    assert got["many-pixels.png"] == "image too large: 120x100 pixels (limit 0.01 megapixels)"
    assert got["heavy.png"].startswith("file too large: 4.9 KiB (limit 4.0 KiB)")


def test_symlinks_are_never_followed(store: Store, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    secret = save(noise(16, 16, 9), outside / "secret.png")
    src = tmp_path / "src"
    save(noise(16, 16, 1), src / "real.png")
    os.symlink(secret, src / "link.png")
    os.symlink(outside, src / "linked-folder")
    top_level_link = tmp_path / "top.png"
    os.symlink(secret, top_level_link)
    result = run_import(store, [src, top_level_link])
    got = reasons(result)
    assert result.imported == 1
    assert got["link.png"] == "symbolic link (not followed)"
    assert got["linked-folder"] == "symbolic link (not followed)"
    assert got["top.png"] == "symbolic link (not followed)"


def _zip(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return path


def _png_bytes(seed: int, size: int = 16) -> bytes:
    buffer = io.BytesIO()
    noise(size, size, seed).save(buffer, "PNG")
    return buffer.getvalue()


def _encrypted_zip(path: Path, name: str, data: bytes) -> Path:
    """zipfile cannot write encrypted entries: set the 'encrypted' flag bit in both headers by hand."""
    _zip(path, [(name, data)])
    raw = bytearray(path.read_bytes())
    local, central = raw.find(b"PK\x03\x04"), raw.find(b"PK\x01\x02")
    raw[local + 6] |= 0x1
    raw[central + 8] |= 0x1
    path.write_bytes(bytes(raw))
    return path


def test_hostile_zip_entries_are_reported_and_never_written(store: Store, tmp_path: Path) -> None:
    link = zipfile.ZipInfo("link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    archive = _zip(
        incoming / "hostile.zip",
        [
            ("fine/ok.png", _png_bytes(1)),
            ("../escape.png", _png_bytes(2)),
            ("/etc/absolute.png", _png_bytes(3)),
            ("a/../../deep.png", _png_bytes(4)),
            (link, b"/etc/passwd"),
            ("inner.zip", b"PK\x05\x06" + b"\0" * 18),
            ("readme.md", b"# hi"),
            ("__MACOSX/._ok.png", b"junk"),
        ],
    )
    locked = _encrypted_zip(incoming / "locked.zip", "locked.png", _png_bytes(5))
    before = sorted(incoming.rglob("*"))
    result = run_import(store, [archive, locked])
    got = {s.path.split("!", 1)[1]: s.reason for s in result.skipped}
    assert result.imported == 1
    assert got["../escape.png"].startswith("unsafe path in archive")
    assert got["/etc/absolute.png"].startswith("unsafe path in archive")
    assert got["a/../../deep.png"].startswith("unsafe path in archive")
    assert got["link.png"] == "symbolic link in archive (not followed)"
    assert got["locked.png"] == "encrypted archive entry (password protected)"
    assert got["inner.zip"] == "archive inside an archive (extract it first)"
    assert got["readme.md"] == "not an image file ('.md')"
    assert len(got) == 7
    assert sorted(incoming.rglob("*")) == before  # nothing written beside the archives
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "incoming"]
    assert not any(p.name in ("escape.png", "deep.png") for p in tmp_path.parent.rglob("*.png"))
    assert not Path("/etc/absolute.png").exists()


def test_zip_bombs_are_refused(store: Store, tmp_path: Path) -> None:
    many = _zip(tmp_path / "many.zip", [(f"{i}.png", _png_bytes(i, 8)) for i in range(12)])
    huge = _zip(tmp_path / "huge.zip", [("zeros.png", b"\0" * (20 * 1024 * 1024))])
    save(noise(8, 8, 99), tmp_path / "fine.png")
    limits = ImportLimits(max_archive_entries=10, max_archive_bytes=10 * 1024 * 1024)
    result = run_import(store, [many, huge, tmp_path / "fine.png"], limits=limits)
    got = reasons(result)
    assert result.imported == 1
    assert got["many.zip"] == "zip bomb refused: 12 entries (limit 10)"
    assert got["huge.zip"] == "zip bomb refused: 20.0 MiB uncompressed (limit 10.0 MiB)"
    assert huge.stat().st_size < 100_000  # it really was a bomb: tiny on disk


def test_oversized_zip_entry_is_refused(store: Store, tmp_path: Path) -> None:
    archive = _zip(tmp_path / "a.zip", [("big.png", b"\0" * 50_000), ("ok.png", _png_bytes(1))])
    result = run_import(store, [archive], limits=ImportLimits(max_file_bytes=10_000))
    assert result.imported == 1
    assert reasons(result)["big.png"].startswith("file too large: 48.8 KiB (limit 9.8 KiB)")


def test_unreadable_files_are_reported(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save(noise(16, 16, 1), tmp_path / "ok.png")
    locked = save(noise(16, 16, 2), tmp_path / "locked.png")
    real_open = os.open

    def refusing_open(path, flags, *args):  # what the kernel answers for a file we may not read
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(decode.os, "open", refusing_open)
    result = run_import(store, [tmp_path])
    assert result.imported == 1
    assert reasons(result)["locked.png"] == "cannot read: Permission denied"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads every file")
def test_unreadable_file_permissions(store: Store, tmp_path: Path) -> None:  # pragma: no cover - non-root only
    save(noise(16, 16, 1), tmp_path / "ok.png")
    locked = save(noise(16, 16, 2), tmp_path / "locked.png")
    locked.chmod(0)
    result = run_import(store, [tmp_path])
    assert reasons(result)["locked.png"] == "cannot read: Permission denied"


def test_special_files_are_not_read(store: Store, tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    save(noise(16, 16, 1), tmp_path / "ok.png")
    os.mkfifo(tmp_path / "pipe.png")  # reading it would block forever
    result = run_import(store, [tmp_path])
    assert reasons(result)["pipe.png"] == "not a regular file"


# --- refusals before any work -------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "bad name"}, "invalid name"),
        ({"name": "../escape"}, "invalid name"),
        ({"size": 4}, "invalid size 4"),
        ({"size": 1024}, "invalid size 1024"),
        ({"channels": 4}, "invalid channels 4"),
    ],
)
def test_invalid_options_are_refused(store: Store, tmp_path: Path, options: dict, message: str) -> None:
    save(noise(16, 16, 1), tmp_path / "ok.png")
    with pytest.raises(StudioError, match=message):
        run_import(store, [tmp_path], **{"name": "ds", **options})
    assert list_datasets(store) == []


def test_nothing_importable_is_an_error_and_leaves_nothing(store: Store, tmp_path: Path) -> None:
    (tmp_path / "a.png").write_text("not an image")
    (tmp_path / "b.png").write_bytes(b"")
    with pytest.raises(StudioError, match=r"nothing to import: all 2 files were skipped"):
        run_import(store, [tmp_path])
    assert_nothing_left(store)
    with pytest.raises(StudioError, match="nothing to import: no image files found"):
        run_import(store, [tmp_path / "missing"])


def test_an_existing_name_is_refused_and_untouched(store: Store, tmp_path: Path) -> None:
    run_job(add_sample(store, "digits", name="ds", size=8))
    before = np.array(load_images(store, "ds"))
    save(noise(16, 16, 1), tmp_path / "ok.png")
    with pytest.raises(AlreadyExistsError, match="already exists"):
        run_import(store, [tmp_path])
    assert np.array_equal(np.array(load_images(store, "ds")), before)


# --- all or nothing -----------------------------------------------------------------------


def test_cancel_mid_import_leaves_nothing(store: Store, tmp_path: Path) -> None:
    make_folder(tmp_path / "src", 40)
    token = CancelToken()
    job = import_dataset(store, [str(tmp_path / "src")], "ds", workers=1, cancel=token)
    with pytest.raises(CancelledError):
        for event in job:
            if isinstance(event, Progress) and event.stage == "decoding" and event.done >= 5:
                token.cancel()
    assert_nothing_left(store)


def test_abandoning_the_job_generator_cleans_up(store: Store, tmp_path: Path) -> None:
    make_folder(tmp_path / "src", 20)
    job = import_dataset(store, [str(tmp_path / "src")], "ds", workers=1)
    for event in job:
        if isinstance(event, Progress) and event.stage == "decoding" and event.done > 3:
            break
    job.close()
    assert_nothing_left(store)


def test_failure_at_commit_rolls_back_files_and_rows(store: Store, tmp_path: Path) -> None:
    make_folder(tmp_path / "src", 10)
    job = import_dataset(store, [str(tmp_path / "src")], "ds", workers=1)
    for event in job:
        if isinstance(event, Progress) and event.stage == "writing":
            # Another window took the name while we decoded: the commit must fail cleanly.
            run_job(add_sample(store, "shapes", name="ds", count=5, size=8))
            break
    with pytest.raises(AlreadyExistsError):
        list(job)
    assert [d.name for d in list_datasets(store)] == ["ds"]
    assert get_dataset(store, "ds").origin == "sample:shapes"
    assert sorted(p.name for p in store.home.datasets.iterdir()) == ["ds"]
    assert list(store.home.staging.iterdir()) == []


def test_parallel_decoding_matches_serial(store: Store, tmp_path: Path) -> None:
    make_folder(tmp_path / "src", 110, size=40)
    serial = run_import(store, [tmp_path / "src"], name="serial", workers=1)
    parallel = run_import(store, [tmp_path / "src"], name="parallel", workers=2)
    assert serial.imported == parallel.imported == 110
    assert np.array_equal(np.asarray(load_images(store, "serial")), np.asarray(load_images(store, "parallel")))
    assert load_labels(store, "serial") == load_labels(store, "parallel")


def test_job_events_end_with_finished(store: Store, tmp_path: Path) -> None:
    make_folder(tmp_path / "src", 6)
    events = list(import_dataset(store, [str(tmp_path / "src")], "ds", workers=1))
    assert isinstance(events[-1], Finished) and isinstance(events[-1].result, ImportResult)
    stages = [e.stage for e in events if isinstance(e, Progress)]
    assert stages[0] == "scanning" and "decoding" in stages and stages[-1] == "writing"
    decoding = [e for e in events if isinstance(e, Progress) and e.stage == "decoding"]
    assert decoding[-1].done == decoding[-1].total == 6


def test_fast_png_path_matches_pillow(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """libspng and Pillow decode the same 8-bit PNGs to the same pixels (grey, RGB, RGBA, interlaced)."""
    save(noise(37, 29, 1), tmp_path / "src" / "rgb.png")
    save(noise(30, 30, 2, mode="L"), tmp_path / "src" / "grey.png")
    save(noise(30, 30, 3, mode="RGBA"), tmp_path / "src" / "rgba.png")
    assert decode._spng is not None
    fast = run_import(store, [tmp_path / "src"], name="fast")
    monkeypatch.setattr(decode, "_spng", None)
    slow = run_import(store, [tmp_path / "src"], name="slow")
    assert fast.imported == slow.imported == 3
    assert np.array_equal(np.asarray(load_images(store, "fast")), np.asarray(load_images(store, "slow")))


def test_sixteen_bit_colour_png_through_the_fast_path(store: Store, tmp_path: Path) -> None:
    array = np.zeros((16, 16, 3), dtype=">u2")
    array[..., 0] = 65535
    array[..., 1] = 32896  # 128 * 257
    rows = b"".join(b"\0" + row.tobytes() for row in array)  # filter type 0 on every row
    (tmp_path / "rgb16.png").write_bytes(_png(16, 16, bit_depth=16, colour_type=2, raw=rows))
    out = _one(store, tmp_path / "rgb16.png")
    assert (out[..., 0] == 255).all() and (out[..., 1] == 128).all() and (out[..., 2] == 0).all()


def test_spawned_workers_with_warm_up_help_match_serial(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows (and any process that cannot fork) spawns workers; this process helps while they start."""
    import multiprocessing

    from studio.engine.datasets import importer

    make_folder(tmp_path / "src", 130, size=40)
    serial = run_import(store, [tmp_path / "src"], name="serial", workers=1)
    monkeypatch.setattr(importer, "_process_context", lambda: multiprocessing.get_context("spawn"))
    spawned = run_import(store, [tmp_path / "src"], name="spawned", workers=2)
    assert serial.imported == spawned.imported == 130
    assert np.array_equal(np.asarray(load_images(store, "serial")), np.asarray(load_images(store, "spawned")))


def test_import_from_a_worker_thread_with_cancel_from_another(store: Store, tmp_path: Path) -> None:
    """How the app runs it: the job in an engine thread (so workers come from a fork server)."""
    import threading

    make_folder(tmp_path / "src", 120, size=40)
    outcome: dict[str, object] = {}

    def work(name: str, token: CancelToken | None) -> None:
        try:
            outcome[name] = run_job(import_dataset(store, [str(tmp_path / "src")], name, workers=2, cancel=token))
        except BaseException as error:  # noqa: BLE001 - handed back to the test thread
            outcome[name] = error

    thread = threading.Thread(target=work, args=("threaded", None))
    thread.start()
    thread.join(120)
    assert isinstance(outcome["threaded"], ImportResult) and outcome["threaded"].imported == 120

    token = CancelToken()
    token.cancel()  # cancelled from this thread before the engine thread gets going
    thread = threading.Thread(target=work, args=("cancelled", token))
    thread.start()
    thread.join(120)
    assert isinstance(outcome["cancelled"], CancelledError)
    assert_nothing_left(store, "cancelled")


def test_a_name_taken_at_the_last_moment_by_another_process_is_a_clear_error(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studio.engine.datasets import storage

    make_folder(tmp_path / "src", 4)
    job = import_dataset(store, [str(tmp_path / "src")], "ds", workers=1)
    for event in job:
        if isinstance(event, Progress) and event.stage == "writing":
            run_job(add_sample(store, "shapes", name="ds", count=5, size=8))
            monkeypatch.setattr(storage, "ensure_name_free", lambda *args, **kwargs: None)  # the race window
            break
    with pytest.raises(AlreadyExistsError, match="created meanwhile"):
        list(job)
    assert sorted(p.name for p in store.home.datasets.iterdir()) == ["ds"]
    assert list(store.home.staging.iterdir()) == []
