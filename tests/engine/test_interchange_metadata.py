"""Metadata other tools read: A1111's `parameters` in every Studio PNG, and XMP curation in exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from studio.engine.curation import export_selection
from studio.engine.generation import generate
from studio.engine.interchange import xmp
from studio.engine.interchange.a1111 import format_parameters, parse_parameters
from studio.engine.jobs import run_job
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.errors import StudioError
from studio.store.database import Store
from studio.store.gallery import GalleryRepository
from studio.store.tables import Model
from tests.engine.conftest import TINY

# A1111's own parser (modules/infotext_utils.py: re_param, re_imagesize, unquote and the last-line rule),
# written out here so the test checks Studio's text against A1111's reading, not against Studio's parser.
A1111_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
A1111_SIZE = re.compile(r"^(\d+)x(\d+)$")


def a1111_parse(text: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    *lines, last = text.strip().split("\n")
    if len(A1111_PARAM.findall(last)) < 3:
        lines.append(last)
        last = ""
    result["Prompt"] = "\n".join(line.strip() for line in lines if not line.startswith("Negative prompt:"))
    for key, value in A1111_PARAM.findall(last):
        if value[:1] == '"' and value[-1:] == '"':
            value = json.loads(value)
        size = A1111_SIZE.match(value)
        if size:
            result[f"{key}-1"], result[f"{key}-2"] = size.group(1), size.group(2)
        else:
            result[key] = value
    return result


@pytest.fixture
def made(digits8: Store) -> tuple[Store, list[dict[str, Any]]]:
    """A tiny GAN and three of its images, curated."""
    options = TrainOptions("g", family="gan", dataset="digits", steps=2, settings=TINY["gan"], preview_every=0)
    run_job(train(digits8, options))
    items = run_job(generate(digits8, "g", count=3, seed=40)).items
    repository = GalleryRepository(digits8)
    ids = [item["id"] for item in items]
    repository.rate(ids[:1], 4)
    repository.set_flag(ids[:1], "pick")
    repository.tag(ids[:2], "keepers")
    repository.tag(ids[:1], "best, ever")
    repository.collect(ids[:1], "Album one")
    repository.rate(ids[2:], 2)
    repository.set_flag(ids[2:], "reject")
    return digits8, items


def test_every_studio_png_carries_a1111_parameters(made: tuple[Store, list[dict[str, Any]]]) -> None:
    store, items = made
    with store.sessions() as session:
        weights = session.query(Model).filter_by(name="g").one().weights_hash
    with Image.open(items[0]["path"]) as image:
        texts = dict(image.text)
    assert texts["Software"].startswith("Studio ")
    studio = json.loads(texts["studio"])  # the source of truth is unchanged
    assert studio["seed"] == 40 and studio["model"] == "g"
    parsed = a1111_parse(texts["parameters"])
    assert parsed["Seed"] == "40" and parsed["Size-1"] == "8" and parsed["Size-2"] == "8"
    assert parsed["Model"] == "g" and parsed["Family"] == "gan" and parsed["Operation"] == "sample"
    assert parsed["Model hash"] == weights[:10]
    assert parsed["Prompt"] and "\n" not in parsed["Prompt"]
    assert parse_parameters(texts["parameters"]).settings["Seed"] == "40"  # Studio's parser agrees


def test_parameters_quote_what_a1111_would() -> None:
    text = format_parameters(
        {"model": "m", "family": "diffusion", "seed": 3, "operation": "sample", "backend": "onnx",
         "params": {"steps": 20, "sampler": "dpmpp2m", "note": "a, b: c", "guidance": 1.5}},
        16, 16,
    )  # fmt: skip
    parsed = a1111_parse(text)
    assert parsed["Steps"] == "20" and parsed["Sampler"] == "dpmpp2m" and parsed["Note"] == "a, b: c"
    assert parsed["Guidance"] == "1.5" and parsed["Backend"] == "onnx"
    assert text.splitlines()[1].startswith("Steps: 20, Sampler: dpmpp2m, Seed: 3, Size: 16x16")


def _expected(store: Store, item_ids: list[int]) -> dict[int, xmp.XmpCuration]:
    entries = GalleryRepository(store).entries(item_ids)
    return {
        e.id: xmp.XmpCuration(0 if e.flag == "reject" else e.rating, e.flag, e.tags, e.collections) for e in entries
    }


def _id_of(name: str) -> int:
    return int(Path(name).stem.rsplit("-", 1)[1])


def test_exported_xmp_reads_back_embedded_sidecar_and_zipped(
    made: tuple[Store, list[dict[str, Any]]], tmp_path: Path
) -> None:
    store, items = made
    ids = [item["id"] for item in items]
    expected = _expected(store, ids)
    assert set(expected[ids[0]].tags) == {"keepers", "best, ever"} and expected[ids[2]].flag == "reject"

    run_job(export_selection(store, tmp_path / "embedded", ids=ids))
    images = sorted((tmp_path / "embedded").glob("*.png"))
    for image in images:
        assert xmp.read_file(image) == expected[_id_of(image.name)]
        with Image.open(image) as opened:
            assert "XML:com.adobe.xmp" in opened.info and "studio" in opened.text  # iTXt; Studio's chunk kept
    assert not list((tmp_path / "embedded").glob("*.xmp"))

    run_job(export_selection(store, tmp_path / "sidecars", ids=ids, xmp_mode="sidecar"))
    for image in sorted((tmp_path / "sidecars").glob("*.png")):
        assert xmp.read_sidecar(image) == expected[_id_of(image.name)]
        assert xmp.read_file(image) is None  # the image itself is a plain copy
        assert (
            image.read_bytes()
            == Path(store.home.absolute(GalleryRepository(store).get(_id_of(image.name)).path)).read_bytes()
        )

    run_job(export_selection(store, tmp_path / "set.zip", ids=ids, as_zip=True))
    with zipfile.ZipFile(tmp_path / "set.zip") as archive:
        for name in (n for n in archive.namelist() if n.endswith(".png")):
            assert xmp.read_packet(archive.read(name)) == expected[_id_of(name)]

    run_job(export_selection(store, tmp_path / "plain", ids=ids, xmp_mode="none"))
    assert all(xmp.read_file(image) is None for image in (tmp_path / "plain").glob("*.png"))
    with pytest.raises(StudioError, match="invalid --xmp"):
        run_job(export_selection(store, tmp_path / "x", ids=ids, xmp_mode="inside"))


def test_a_reject_is_lightrooms_minus_one_and_digikams_pick_label(
    made: tuple[Store, list[dict[str, Any]]], tmp_path: Path
) -> None:
    store, items = made
    run_job(export_selection(store, tmp_path / "out", ids=[items[2]["id"], items[0]["id"]], xmp_mode="sidecar"))
    rejected = (tmp_path / "out" / f"00001-g-{items[2]['id']}.xmp").read_text(encoding="utf-8")
    picked = (tmp_path / "out" / f"00002-g-{items[0]['id']}.xmp").read_text(encoding="utf-8")
    assert 'xmp:Rating="-1"' in rejected and 'digiKam:PickLabel="1"' in rejected
    assert 'xmp:Rating="4"' in picked and 'digiKam:PickLabel="3"' in picked
    assert "<rdf:Bag>" in picked and "Collections|Album one" in picked and "Collections/Album one" in picked


@pytest.mark.skipif(
    shutil.which("exiftool") is None, reason="exiftool is not installed (apt install libimage-exiftool-perl)"
)
def test_exiftool_reads_the_exported_xmp(made: tuple[Store, list[dict[str, Any]]], tmp_path: Path) -> None:
    store, items = made
    ids = [item["id"] for item in items]
    run_job(export_selection(store, tmp_path / "embedded", ids=ids))
    run_job(export_selection(store, tmp_path / "sidecars", ids=ids, xmp_mode="sidecar"))
    files = sorted((tmp_path / "embedded").glob("*.png")) + sorted((tmp_path / "sidecars").glob("*.xmp"))
    output = subprocess.run(
        ["exiftool", "-json", "-struct", "-XMP:Rating", "-XMP:PickLabel", "-XMP:Subject", "-XMP:HierarchicalSubject",
         *map(str, files)],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    expected = _expected(store, ids)
    for record in json.loads(output):
        want = expected[_id_of(record["SourceFile"])]
        assert record["Rating"] == (-1 if want.flag == "reject" else want.rating)
        assert record.get("PickLabel") == {"pick": 3, "reject": 1}.get(want.flag)
        subject = record.get("Subject", [])
        assert sorted(subject if isinstance(subject, list) else [subject]) == sorted(want.tags)
        hierarchy = record.get("HierarchicalSubject", [])
        hierarchy = hierarchy if isinstance(hierarchy, list) else [hierarchy]
        assert sorted(h for h in hierarchy if h.startswith("Collections|")) == [
            f"Collections|{c}" for c in want.collections
        ]
