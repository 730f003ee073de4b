"""`studio gallery collections|filters ...` and `gallery list --search` from the command line."""

from __future__ import annotations

import json
from typing import Any

import pytest
from PIL import Image

from studio.cli import main
from studio.store.database import Store
from studio.store.gallery import GalleryRepository


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main([*argv, "--json", "--quiet"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


def _items(store: Store) -> list[int]:
    gallery = GalleryRepository(store)
    ids = []
    for index, model in enumerate(("sunset-gan", "city-vae", "city-vae")):
        path = store.home.gallery / f"{index}.png"
        Image.new("L", (8, 8)).save(path)
        ids.append(gallery.add(store.home.relative(path), model, "gan", 8, 8, seed=index).id)
    gallery.set_note(ids[2], "rainy evening")
    return ids


def test_collections_from_the_command_line(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    ids = _items(store)
    assert cli(capsys, "gallery", "collections", "create", "Album")[0] == 0
    assert cli(capsys, "gallery", "collect", str(ids[0]), str(ids[1]), "album")[0] == 0
    code, payload, _ = cli(capsys, "gallery", "collections", "list")
    assert code == 0 and [(c["name"], c["count"]) for c in payload["collections"]] == [("Album", 2)]
    code, payload, _ = cli(capsys, "gallery", "collections", "rename", "album", "Best of")
    assert code == 0 and payload["name"] == "Best of" and payload["count"] == 2
    code, payload, _ = cli(capsys, "gallery", "list", "--collection", "best of")
    assert {item["id"] for item in payload["items"]} == {ids[0], ids[1]}
    code, payload, _ = cli(capsys, "gallery", "collections", "delete", "Best of")
    assert code == 0 and payload["items"] == 2
    assert GalleryRepository(store).count() == 3
    code, payload, err = cli(capsys, "gallery", "collections", "delete", "Best of")
    assert code != 0 and "no collection 'Best of'" in err


def test_search_and_saved_filters_from_the_command_line(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    ids = _items(store)
    code, payload, _ = cli(capsys, "gallery", "list", "--search", "RAINY")
    assert code == 0 and [item["id"] for item in payload["items"]] == [ids[2]]
    code, payload, _ = cli(capsys, "gallery", "list", "--search", "city", "--sort", "oldest")
    assert [item["id"] for item in payload["items"]] == [ids[1], ids[2]]
    assert cli(capsys, "gallery", "filters", "save", "cities", "--search", "city", "--sort", "oldest")[0] == 0
    code, payload, _ = cli(capsys, "gallery", "filters", "list")
    assert payload["filters"][0]["name"] == "cities" and payload["filters"][0]["filters"] == {"search": "city"}
    assert payload["filters"][0]["sort"] == "oldest"
    code, _, err = cli(capsys, "gallery", "filters", "save", "cities", "--flag", "pick")
    assert code != 0 and "exists already" in err
    assert cli(capsys, "gallery", "filters", "delete", "Cities")[0] == 0
    assert cli(capsys, "gallery", "filters", "list")[1]["filters"] == []
    code, _, err = cli(capsys, "gallery", "list", "--search", "x" * 300)
    assert code != 0 and "at most 200" in err
