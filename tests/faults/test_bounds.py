"""Every integer the CLI accepts is bounded, the bounds are in `--help`, and the engine checks the same ones.

Absurd numbers (`--seed 2**70`, `--steps 10**15`, `--workers 1000000`, `#99999999999999999999`) end
in one line and exit 2 (a malformed option) or 1 (a malformed id among the arguments), never a
traceback, an OverflowError from SQLite or a process pool of a million workers.
"""

from __future__ import annotations

import argparse
import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio import limits
from studio.cli import main
from studio.cli.arguments import BoundedInt
from studio.cli.parser import build_parser
from studio.engine import generation
from studio.engine.datasets import storage
from studio.engine.training_options import TrainOptions
from studio.errors import StudioError
from studio.store.gallery_values import MAX_PAGE, decode_cursor

HUGE = str(2**70)
HUGE_ID = "#99999999999999999999"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--quiet"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (("train", "--name", "m", "--family", "vae", "--dataset", "d", "--seed", HUGE), "--seed"),
        (("train", "--name", "m", "--family", "vae", "--dataset", "d", "--seed", "-1"), "--seed"),
        (("train", "--name", "m", "--family", "vae", "--dataset", "d", "--steps", str(10**15)), "--steps"),
        (("train", "--name", "m", "--family", "vae", "--dataset", "d", "--steps", "0"), "--steps"),
        (("train", "--name", "m", "--steps", "5", "--checkpoint-every", HUGE), "--checkpoint-every"),
        (("train", "--name", "m", "--steps", "5", "--diagnostics-every", "-1"), "--diagnostics-every"),
        (("train", "--name", "m", "--steps", "5", "--threads", "1000000"), "--threads"),
        (("datasets", "import", "x", "--name", "d", "--workers", "1000000"), "--workers"),
        (("datasets", "import", "x", "--name", "d", "--workers", "0"), "--workers"),
        (("datasets", "import", "x", "--name", "d", "--size", str(10**12)), "--size"),
        (("datasets", "add-sample", "shapes", "--count", str(10**9)), "--count"),
        (("datasets", "add-sample", "shapes", "--seed", "-5"), "--seed"),
        (("datasets", "add-sample", "shapes", "--size", "4"), "--size"),
        (("generate", "m", "--count", str(10**12)), "--count"),
        (("generate", "m", "--seed", HUGE), "--seed"),
        (("interpolate", "m", "--from", "1", "--to", "2", "--frames", str(10**9)), "--frames"),
        (("inpaint", "m", "--image", "a.png", "--mask", "b.png", "--count", "0"), "--count"),
        (("inpaint", "m", "--image", "a.png", "--mask", "b.png", "--seed", HUGE), "--seed"),
        (("gallery", "list", "--limit", str(10**9)), "--limit"),
        (("gallery", "list", "--seed", HUGE), "--seed"),
        (("gallery", "export", "out", "--min-rating", "99"), "--min-rating"),
        (("gallery", "facets", "--seed", "-1"), "--seed"),
    ],
)
def test_an_integer_option_out_of_bounds_is_a_one_line_usage_error(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], option: str
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"argument {option}" in err and "choose" in err


def test_a_number_with_thousands_of_digits_is_a_usage_error_too(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "generate", "m", "--seed", "9" * 5000)
    assert code == 2 and err.count("\n") == 1 and len(err) < 300


@pytest.mark.parametrize(
    "argv",
    [
        ("gallery", "show", HUGE_ID),
        ("gallery", "rate", HUGE_ID, "3"),
        ("gallery", "rate", "1", "99999999999999999999"),
        ("gallery", "rate", "1", "²"),
        ("gallery", "tag", "1", HUGE, "keep"),
        ("gallery", "note", str(2**64), "text"),
        ("gallery", "delete", "#0"),
        ("gallery", "undelete", HUGE_ID),
        ("gallery", "show", "#²"),
        ("interpolate", "m", "--from", HUGE_ID, "--to", "1"),
        ("interpolate", "m", "--from", "1", "--to", "seed:" + HUGE),
        ("inpaint", "m", "--image", HUGE_ID, "--mask", "mask.png"),
    ],
)
def test_an_out_of_range_id_or_value_among_the_arguments_is_one_line(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    assert main(["datasets", "list", "--json"]) == 0  # a store exists
    capsys.readouterr()
    code, _, err = run(capsys, *argv)
    assert code == 1, err
    assert err.count("\n") == 1 and "Traceback" not in err and "choose" in err


def test_a_cursor_carrying_a_huge_id_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    cursor = base64.urlsafe_b64encode(json.dumps(["2024-01-01T00:00:00", 2**70]).encode()).decode()
    with pytest.raises(StudioError, match="invalid cursor"):
        decode_cursor(cursor.rstrip("="), "newest")
    assert main(["datasets", "list", "--json"]) == 0
    capsys.readouterr()
    code, _, err = run(capsys, "gallery", "list", "--after", cursor.rstrip("="))
    assert code == 1 and "invalid cursor" in err and "Traceback" not in err


def _integer_actions(parser: argparse.ArgumentParser, path: str = "studio") -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _integer_actions(child, f"{path} {name}")
        elif action.type is not None:
            yield path, action


def test_every_integer_option_is_bounded_and_says_so_in_its_help() -> None:
    parser = build_parser()
    seen = 0
    for path, action in _integer_actions(parser):
        where = f"{path} {'/'.join(action.option_strings) or action.dest}"
        assert action.type is not int or action.choices, f"{where} takes an unbounded int"
        if isinstance(action.type, BoundedInt):
            seen += 1
            assert action.help and action.type.bounds.describe() in action.help, f"{where}: bounds not in --help"
            assert action.type.bounds.high < 2**63, f"{where}: past SQLite's INTEGER"
    assert seen >= 20
    help_text = parser._subparsers._group_actions[0].choices["train"].format_help()  # type: ignore[union-attr]
    assert "0..2^63-1" in help_text and "1..10^9" in help_text


def test_the_engine_checks_the_same_bounds_as_the_cli(store: object) -> None:
    assert limits.SEED.high == generation.MAX_SEED == 2**63 - 1
    assert limits.COUNT.high == generation.MAX_COUNT and limits.FRAMES.high == generation.MAX_FRAMES
    assert (limits.IMAGE_SIZE.low, limits.IMAGE_SIZE.high) == (storage.MIN_SIZE, storage.MAX_SIZE)
    assert limits.PAGE.high == MAX_PAGE
    base = TrainOptions("m", family="vae", dataset="d", steps=10)
    base.check()
    for changes, match in (
        ({"seed": 2**70}, "invalid seed"),
        ({"seed": -1}, "invalid seed"),
        ({"steps": 10**15}, "invalid --steps"),
        ({"checkpoint_every": 2**70}, "invalid checkpoint interval"),
        ({"preview_every": -1}, "invalid diagnostics interval"),
        ({"threads": 10**6}, "invalid thread count"),
    ):
        with pytest.raises(StudioError, match=match):
            base.with_changes(**changes).check()
    with pytest.raises(StudioError, match="invalid seed"):
        next(generation.generate(store, "m", 1, 2**70))  # type: ignore[arg-type]
    with pytest.raises(StudioError, match="invalid gallery item id"):
        generation.EndpointRef.parse(HUGE_ID)


def test_limits_describe_themselves_for_people() -> None:
    assert limits.SEED.describe() == "0..2^63-1"
    assert limits.STEPS.describe() == "1..10^9"
    assert limits.WORKERS.describe() == "1..64"
    with pytest.raises(StudioError, match=r"invalid seed 1180591620717411303424: choose 0 to 2\^63-1"):
        limits.SEED.check(2**70)
    with pytest.raises(StudioError) as caught:
        limits.SEED.check(10**400)
    assert len(str(caught.value)) < 120  # a huge number is shortened, not echoed in full


def test_a_path_is_not_mistaken_for_a_number(tmp_path: Path) -> None:
    # Sanity: the bounded type parses plain integers like int() (sign, spaces) and nothing else.
    parse = BoundedInt(limits.STEPS)
    assert parse("12") == 12 and parse(" 7 ") == 7
    for text in ("1e3", "12abc", str(tmp_path), ""):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)
