"""Every `studio gallery` command, `backup` and `restore` from the command line, with --json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.cli import main
from studio.store import Store

TINY_VAE = ["--set", "width=8", "--set", "latent_dim=4", "--set", "batch_size=8"]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict, str]:
    code = main([*argv, "--json", "--quiet"])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def test_gallery_commands_end_to_end(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli(capsys, "datasets", "add-sample", "digits", "--size", "8")[0] == 0
    assert (
        cli(capsys, "train", "--family", "vae", "--dataset", "digits", "--name", "v", "--steps", "2", *TINY_VAE)[0] == 0
    )
    ids = [item["id"] for item in cli(capsys, "generate", "v", "--count", "6", "--seed", "0")[1]["items"]]
    assert cli(capsys, "gallery", "rate", *map(str, ids[:3]), "4")[1]["count"] == 3
    assert cli(capsys, "gallery", "flag", str(ids[0]), "pick")[1]["flag"] == "pick"
    assert cli(capsys, "gallery", "tag", f"#{ids[0]}", str(ids[1]), "keepers")[1]["tag"] == "keepers"
    assert cli(capsys, "gallery", "collect", str(ids[0]), "Album")[1]["collection"] == "Album"
    assert cli(capsys, "gallery", "note", str(ids[0]), "the best")[0] == 0
    code, page, _ = cli(capsys, "gallery", "list", "--min-rating", "4", "--tag", "keepers", "--sort", "oldest")
    assert [i["id"] for i in page["items"]] == ids[:2] and page["items"][0]["note"] == "the best"
    code, page, _ = cli(capsys, "gallery", "list", "--limit", "4")
    assert len(page["items"]) == 4 and page["next_cursor"]
    code, rest, _ = cli(capsys, "gallery", "list", "--limit", "4", "--after", page["next_cursor"])
    assert [i["id"] for i in page["items"] + rest["items"]] == ids[::-1] and rest["next_cursor"] is None
    code, page, _ = cli(
        capsys,
        "gallery",
        "list",
        "--since",
        "2000-01-01",
        "--until",
        "2999-12-31",
        "--model",
        "v",
        "--family",
        "vae",
        "--flag",
        "pick",
        "--collection",
        "album",
        "--backend",
        "torch",
        "--seed",
        "0",
    )
    assert [i["id"] for i in page["items"]] == [ids[0]]
    code, facets, _ = cli(capsys, "gallery", "facets")
    assert facets["count"] == 6 and facets["facets"]["rating"] == {"0": 3, "4": 3}
    code, shown, _ = cli(capsys, "gallery", "show", str(ids[0]))
    assert shown["tags"] == ["keepers"] and Path(shown["thumbnail"]).is_file() and shown["parents"] == []
    code, reproduced, _ = cli(capsys, "gallery", "reproduce", shown["file"])
    assert code == 0 and reproduced["match"] is True
    code, exported, _ = cli(capsys, "gallery", "export", str(tmp_path / "best"), "--min-rating", "4")
    assert exported["count"] == 3 and (tmp_path / "best" / "manifest.json").is_file()
    code, zipped, _ = cli(capsys, "gallery", "export", str(tmp_path / "best.zip"), "--zip", "--flag", "pick")
    assert zipped["count"] == 1 and zipped["zip"] is True
    code, dataset, _ = cli(capsys, "gallery", "to-dataset", "curated", "--min-rating", "4")
    assert dataset["name"] == "curated" and dataset["count"] >= 1
    assert cli(capsys, "gallery", "delete", str(ids[5]))[1]["count"] == 1
    assert [i["id"] for i in cli(capsys, "gallery", "list", "--trash")[1]["items"]] == [ids[5]]
    assert cli(capsys, "gallery", "undelete", str(ids[5]))[0] == 0
    assert cli(capsys, "gallery", "delete", str(ids[4]))[0] == 0
    assert cli(capsys, "gallery", "empty-trash")[1]["ids"] == [ids[4]]
    code, tags, _ = cli(capsys, "gallery", "tags")
    assert tags["tags"] == [{"name": "keepers", "count": 2}] and tags["collections"][0]["name"] == "Album"
    assert cli(capsys, "gallery", "untag", str(ids[1]), "keepers")[0] == 0
    assert cli(capsys, "gallery", "uncollect", str(ids[0]), "album")[0] == 0
    code, checked, _ = cli(capsys, "gallery", "check")
    assert checked["clean"] is True and checked["checked"] == 5, checked
    Path(shown["file"]).unlink()
    code, checked, _ = cli(capsys, "gallery", "check", "--repair")
    assert checked["rows_without_files"] == [ids[0]] and checked["repaired"]["rows_removed"] == 1
    code, backup, _ = cli(capsys, "backup", str(tmp_path / "copy.db"))
    assert Path(backup["backup"]).is_file()
    assert cli(capsys, "gallery", "rate", str(ids[1]), "1")[0] == 0
    code, restored, _ = cli(capsys, "restore", str(tmp_path / "copy.db"))
    assert code == 0 and Path(restored["previous_saved_as"]).is_file()
    assert cli(capsys, "gallery", "show", str(ids[1]))[1]["rating"] == 4


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (("gallery", "rate", "1", "6"), "invalid rating 6"),
        (("gallery", "rate", "1", "-1"), "invalid rating '-1'"),
        (("gallery", "rate", "999", "3"), "no gallery item 999"),
        (("gallery", "tag", "1", "bad\x01tag"), "control characters"),
        (("gallery", "tag", "1", "x" * 10_000), "at most 64"),
        (("gallery", "flag", "1", "maybe"), "invalid flag 'maybe'"),
        (("gallery", "list", "--after", "nonsense"), "invalid cursor"),
        (("gallery", "list", "--since", "yesterday"), "invalid date 'yesterday'"),
        (("gallery", "reproduce", "/nowhere.png"), "no file at /nowhere.png"),
        (("gallery", "show", "abc"), "'abc' is not a gallery item id"),
        (("restore", "/nowhere.db"), "no backup file at /nowhere.db"),
    ],
)
def test_bad_gallery_input_gets_one_line(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], reason: str
) -> None:
    assert cli(capsys, "datasets", "list")[0] == 0  # a store exists
    Image.fromarray(np.zeros((8, 8), np.uint8))
    code, error, err = cli(capsys, *argv)
    assert code == 1 and reason in error["error"] and "Traceback" not in err
    assert err.count("\n") == 1


def test_export_destination_that_exists_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    code, error, _ = cli(capsys, "gallery", "export", str(tmp_path / "taken"))
    assert code == 1 and "already exists" in error["error"]
    code, error, _ = cli(capsys, "backup", str(tmp_path / "taken"))
    assert code == 1 and "already exists" in error["error"]


def test_check_hints_at_repair_only_when_it_did_not_repair(capsys: pytest.CaptureFixture[str], store: Store) -> None:
    gallery = store.home.gallery
    gallery.mkdir(parents=True, exist_ok=True)
    (gallery / ".left.png.partial").write_bytes(b"half")
    assert main(["gallery", "check"]) == 0
    out = capsys.readouterr().out
    assert "1 leftover file(s)" in out and "run with --repair" in out, out
    assert main(["gallery", "check", "--repair"]) == 0
    out = capsys.readouterr().out
    assert "repaired:" in out and "run with --repair" not in out and "skipped" not in out, out
    (gallery / "junk.png").write_bytes(b"not a png")
    assert main(["gallery", "check"]) == 0
    assert "run with --repair" in capsys.readouterr().out
    assert main(["gallery", "check", "--repair"]) == 0
    out = capsys.readouterr().out
    assert "skipped 1 file(s)" in out and "junk.png" in out and "run with --repair" not in out, out
