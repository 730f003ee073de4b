"""An interpolation's frames as an animated GIF or APNG (engine and CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from studio.cli import main
from studio.engine.animation import animate, interpolation_frames
from studio.engine.datasets.samples import add_sample
from studio.engine.generation import EndpointRef, generate, interpolate
from studio.engine.jobs import run_job
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.errors import StudioError
from studio.store.database import Store
from studio.store.gallery import GalleryRepository
from tests.engine.conftest import TINY


@pytest.fixture
def frames(store: Store) -> list[int]:
    """The ids of a 5-frame interpolation by a tiny GAN, first to last (and a sample made after it)."""
    run_job(add_sample(store, "digits", size=8))
    options = TrainOptions("gan", family="gan", dataset="digits", steps=2, settings=TINY["gan"], preview_every=0)
    run_job(train(store, options))
    result = run_job(interpolate(store, "gan", EndpointRef(seed=3), EndpointRef(seed=9), frames=5))
    run_job(generate(store, "gan", seed=1))  # an item right after the frames: not one of them
    return [item["id"] for item in result.items]


def _played(path: Path) -> list[bytes]:
    with Image.open(path) as image:
        shown = []
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            shown.append(image.convert("L").tobytes())
        return shown


def test_one_frame_stands_for_its_whole_interpolation(store: Store, frames: list[int]) -> None:
    assert [entry.id for entry in interpolation_frames(store, frames[2])] == frames
    sample = GalleryRepository(store).ids()[0]
    with pytest.raises(StudioError, match="not an interpolation frame"):
        interpolation_frames(store, sample)


def test_a_gif_plays_the_frames_in_order_at_the_frame_rate(store: Store, frames: list[int], tmp_path: Path) -> None:
    destination = tmp_path / "walk.gif"
    result = run_job(animate(store, [frames[0]], destination, fps=10, scale=2))
    assert result.frames == 5 and result.ids == frames and result.format == "GIF"
    with Image.open(destination) as image:
        assert image.format == "GIF" and image.n_frames == 5 and image.size == (16, 16)
        assert image.info["duration"] == 100 and image.info["loop"] == 0
    expected = []
    for entry in GalleryRepository(store).entries(frames):
        with Image.open(store.home.absolute(entry.path)) as frame:
            expected.append(frame.convert("L").resize((16, 16), Image.Resampling.NEAREST).tobytes())
    assert _played(destination) == expected
    assert not list(tmp_path.glob(".*partial"))  # written atomically: no partial file left


def test_an_apng_bounces_back_and_takes_ids_in_the_order_given(store: Store, frames: list[int], tmp_path: Path) -> None:
    destination = tmp_path / "walk.png"
    result = run_job(animate(store, [frames[4], frames[0], frames[2]], destination, fps=4, bounce=True))
    assert result.ids == [frames[4], frames[0], frames[2]] and result.frames == 4  # 4, 0, 2, then 0 again
    assert (result.width, result.height) == (128, 128)  # 8-pixel frames enlarged as far as allowed: 16 times
    with Image.open(destination) as image:
        assert image.format == "PNG" and getattr(image, "is_animated", False) and image.n_frames == 4
    played = _played(destination)
    assert played[1] == played[3] and played[0] != played[1]


def test_bad_destinations_and_values_are_refused(store: Store, frames: list[int], tmp_path: Path) -> None:
    inside = store.home.root / "walk.gif"
    with pytest.raises(StudioError, match="inside the data home"):
        run_job(animate(store, frames, inside))
    assert not inside.exists()
    with pytest.raises(StudioError, match=r"\.gif or \.png"):
        run_job(animate(store, frames, tmp_path / "walk.mp4"))
    taken = tmp_path / "taken.gif"
    taken.write_bytes(b"keep")
    with pytest.raises(StudioError, match="already exists"):
        run_job(animate(store, frames, taken))
    assert taken.read_bytes() == b"keep"
    run_job(animate(store, frames, taken, overwrite=True))
    assert taken.read_bytes() != b"keep"
    with pytest.raises(StudioError, match="frame rate"):
        run_job(animate(store, frames, tmp_path / "a.gif", fps=0))
    with pytest.raises(StudioError, match="no gallery item 99999"):
        run_job(animate(store, [frames[0], 99_999], tmp_path / "c.gif"))
    with pytest.raises(StudioError, match="not a folder"):
        run_job(animate(store, frames, tmp_path / "nowhere" / "d.gif"))
    GalleryRepository(store).delete(frames[1:])  # frames in the trash are left out: one is not an animation
    with pytest.raises(StudioError, match="two frames"):
        run_job(animate(store, [frames[0]], tmp_path / "b.gif"))
    with pytest.raises(StudioError, match="in the trash"):
        run_job(animate(store, frames[:2], tmp_path / "b.gif"))


def test_the_cli_animates_an_interpolation(
    store: Store, frames: list[int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    destination = tmp_path / "cli.gif"
    assert main(["gallery", "animate", str(frames[1]), "--to", str(destination), "--fps", "5", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["frames"] == 5 and payload["fps"] == 5 and Path(payload["destination"]) == destination
    assert main(["gallery", "animate", str(frames[1]), "--to", str(store.home.root / "x.gif")]) != 0
    assert "inside the data home" in capsys.readouterr().err
