"""ONNX export and the torch-free runtime: parity, same seed same image, interpolation, inpainting, bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image
from sqlalchemy import func, select, update

from studio.engine import export as export_module
from studio.engine.checkpoints import load_model
from studio.engine.datasets.samples import add_sample
from studio.engine.export import export_model
from studio.engine.generation import EndpointRef, generate, inpaint, interpolate, open_model
from studio.engine.jobs import run_job
from studio.engine.runtime import Endpoint, ExportError, load_exported
from studio.engine.runtime.providers import open_session
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.errors import StudioError
from studio.home import DataHome
from studio.store.database import Store, open_store
from studio.store.tables import GalleryItem, GalleryLineage, Model

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = ("gan", "vae", "pixelcnn", "diffusion", "latent_diffusion")
SETTINGS = {
    "gan": {"width": 8, "latent_dim": 8, "batch_size": 8},
    "vae": {"width": 8, "latent_dim": 4, "batch_size": 8, "inpaint_iterations": 4},
    # Two layers reach 4 px: the runtime's windows are narrower than the 8 px image.
    "pixelcnn": {"layers": 2, "width": 6, "batch_size": 8},
    # A high learning rate moves the zero-initialised output layer, so parity compares real numbers.
    "diffusion": {
        "width": 8,
        "timesteps": 50,
        "attention": True,
        "batch_size": 8,
        "steps": 4,
        "resample": 2,
        "learning_rate": 0.02,
    },
    # Three autoencoder steps, then three U-Net steps: both stages run and the latent scale is fixed.
    "latent_diffusion": {
        "width": 8,
        "autoencoder_width": 8,
        "latent_channels": 2,
        "autoencoder_steps": 3,
        "timesteps": 50,
        "batch_size": 8,
        "steps": 4,
        "resample": 2,
        "learning_rate": 0.02,
    },
}
SEEDS = [3, 11, 12]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A home with a tiny trained model of every family, each exported (the GAN with --fp16 too)."""
    home = DataHome(tmp_path_factory.mktemp("exports") / "home").ensure()
    store = open_store(home)
    run_job(add_sample(store, "digits", size=8))
    for family in FAMILIES:
        run_job(
            train(
                store,
                TrainOptions(
                    family, family=family, dataset="digits", steps=6, settings=SETTINGS[family], preview_every=0
                ),
            )
        )
        run_job(export_model(store, family, fp16=family == "gan"))
    yield store
    store.close()


def onnx_folder(store: Store, model: str) -> Path:
    return store.home.models / model / "onnx"


def torch_pipeline(store: Store, model: str):
    family = load_model(store.home.models / model, torch.device("cpu"), with_optimizers=False).family
    family.train_mode(False)
    return family.pipeline()


def largest_difference(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    return int(np.abs(a.astype(int) - b.astype(int)).max())


def gallery_count(store: Store) -> int:
    with store.sessions() as session:
        return session.scalar(select(func.count(GalleryItem.id)))


@pytest.mark.parametrize("family", FAMILIES)
def test_export_is_checked_self_describing_and_dynamic(exported: Store, family: str) -> None:
    folder = onnx_folder(exported, family)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["family"] == family and manifest["resolution"] == 8 and manifest["channels"] == 1
    assert manifest["value_range"] == [-1.0, 1.0] and manifest["opset"] >= 17
    with exported.sessions() as session:
        row = session.scalar(select(Model).where(Model.name == family))
        assert manifest["weights_hash"] == row.weights_hash
    expected_roles = {
        "gan": {"generator"},
        "vae": {"decoder", "encoder"},
        "pixelcnn": {"pixelcnn"},
        "diffusion": {"denoiser"},
        "latent_diffusion": {"denoiser", "decoder", "encoder"},
    }[family]
    assert set(manifest["networks"]) == expected_roles
    if family in ("diffusion", "latent_diffusion"):
        assert manifest["scheduler"]["num_train_timesteps"] == 50
    if family == "latent_diffusion":
        assert manifest["extras"]["latent_shape"] == [2, 4, 4] and manifest["extras"]["scaling_factor"] > 0
    if family in ("gan", "vae"):
        assert manifest["latent_shape"] == [SETTINGS[family]["latent_dim"]]
    for role, entry in manifest["networks"].items():
        assert 0 <= entry["max_abs_difference"] <= entry["tolerance"] and entry["tolerance"] >= 1e-4
        model = onnx.load(folder / entry["file"])
        onnx.checker.check_model(model, full_check=True)
        props = {p.key: p.value for p in model.metadata_props}
        assert props["studio.family"] == family and props["studio.role"] == role
        assert json.loads(props["studio.resolution"]) == 8 and props["studio.weights_hash"] == manifest["weights_hash"]
        assert json.loads(props["studio.scheduler"]) == manifest["scheduler"]
        batch_axis = model.graph.input[0].type.tensor_type.shape.dim[0]
        assert batch_axis.dim_param and not batch_axis.dim_value  # dynamic batch
    # Nothing half-written is left beside the export.
    assert not list((exported.home.models / family).glob(".onnx.*"))


@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_same_image_on_both_backends(exported: Store, family: str) -> None:
    options = {"sampler": "ddpm"} if family == "diffusion" else {}
    onnx_images = load_exported(onnx_folder(exported, family), "cpu").pipeline.sample(SEEDS, options)
    torch_images = torch_pipeline(exported, family).sample(SEEDS, options)
    assert largest_difference(onnx_images, torch_images) <= 2
    assert onnx_images.std() > 0  # real images, not a constant


@pytest.mark.parametrize("family", ["gan", "vae", "diffusion"])
def test_interpolation_matches_across_backends(exported: Store, family: str) -> None:
    runtime = load_exported(onnx_folder(exported, family), "cpu").pipeline
    reference = torch_pipeline(exported, family)
    frames = runtime.interpolate(Endpoint(seed=1), Endpoint(seed=2), 5, {})
    assert frames.shape == (5, 8, 8, 1)
    assert largest_difference(frames, reference.interpolate(Endpoint(seed=1), Endpoint(seed=2), 5, {})) <= 2
    # The ends are the seeds' own samples (diffusion through deterministic DDIM).
    options = {"sampler": "ddim", "eta": 0.0} if family == "diffusion" else {}
    ends = runtime.sample([1, 2], options)
    assert largest_difference(frames[[0, -1]], ends) <= 2


def test_vae_interpolates_between_real_images_through_the_encoder(exported: Store) -> None:
    runtime = load_exported(onnx_folder(exported, "vae"), "cpu").pipeline
    rng = np.random.default_rng(0)
    first, second = (rng.integers(0, 256, (8, 8, 1), dtype=np.uint8) for _ in range(2))
    # The digits make a conditional VAE: an image end is encoded as the class it is given.
    ends = Endpoint(image=first, class_name="1"), Endpoint(image=second, class_name="7")
    frames = runtime.interpolate(*ends, 3, {})
    reference = torch_pipeline(exported, "vae").interpolate(*ends, 3, {})
    assert largest_difference(frames, reference) <= 2
    weights = runtime.class_weights(np.array([1]))
    np.testing.assert_allclose(
        runtime.encode(first[None], weights), torch_pipeline(exported, "vae").encode(first[None], weights), atol=1e-4
    )


@pytest.mark.parametrize("family", ["vae", "pixelcnn", "diffusion"])
def test_inpainting_keeps_known_pixels_and_matches_across_backends(exported: Store, family: str) -> None:
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (2, 8, 8, 1), dtype=np.uint8)
    known = np.zeros((2, 8, 8), bool)
    known[:, :, :4] = True  # left half known
    runtime = load_exported(onnx_folder(exported, family), "cpu").pipeline
    filled = runtime.inpaint(images, known, [7, 8], {})
    assert np.array_equal(filled[:, :, :4], images[:, :, :4])
    assert not np.array_equal(filled[:, :, 4:], images[:, :, 4:])
    assert largest_difference(filled, torch_pipeline(exported, family).inpaint(images, known, [7, 8], {})) <= 2


def test_gan_declares_inpainting_unsupported_and_pixelcnn_interpolation(exported: Store) -> None:
    gan = load_exported(onnx_folder(exported, "gan"), "cpu").pipeline
    assert "inpaint" not in gan.capabilities
    with pytest.raises(StudioError, match="gan models cannot inpaint"):
        gan.inpaint(np.zeros((1, 8, 8, 1), np.uint8), np.zeros((1, 8, 8), bool), [1], {})
    pixelcnn = load_exported(onnx_folder(exported, "pixelcnn"), "cpu").pipeline
    with pytest.raises(StudioError, match="pixelcnn models cannot interpolate"):
        pixelcnn.interpolate(Endpoint(seed=1), Endpoint(seed=2), 3, {})


def test_fp16_variant_runs_close_to_fp32(exported: Store) -> None:
    folder = onnx_folder(exported, "gan")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["networks"]["generator"]["fp16"]["file"] == "generator.fp16.onnx"
    half = load_exported(folder, "cpu", precision="fp16")
    full = load_exported(folder, "cpu")
    assert half.precision == "fp16"
    assert largest_difference(half.pipeline.sample(SEEDS, {}), full.pipeline.sample(SEEDS, {})) <= 8
    with pytest.raises(ExportError, match="no fp16 variant"):
        load_exported(onnx_folder(exported, "vae"), "cpu", precision="fp16")


_WITHOUT_TORCH = """
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, NoTorch())
from pathlib import Path
import numpy as np
from studio.engine.runtime import Endpoint, load_exported
out = {}
for family in ("gan", "vae", "pixelcnn", "diffusion", "latent_diffusion"):
    model = load_exported(Path(sys.argv[1]) / family / "onnx", "auto")
    pipeline = model.pipeline
    images = pipeline.sample([3, 11, 12], {"sampler": "ddpm"} if "diffusion" in family else {})
    if "interpolate" in pipeline.capabilities:
        pipeline.interpolate(Endpoint(seed=1), Endpoint(seed=2), 3, {})
    if "inpaint" in pipeline.capabilities:
        known = np.zeros((1, 8, 8), bool); known[:, :, :4] = True
        pipeline.inpaint(images[:1], known, [7], {})
    np.save(Path(sys.argv[2]) / f"{family}.npy", images)
    out[family] = model.provider
assert "torch" not in sys.modules, "the runtime imported torch"
print(out)
"""


def test_runtime_generates_with_torch_absent(exported: Store, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_TORCH, str(exported.home.models), str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    for family in FAMILIES:
        options = {"sampler": "ddpm"} if "diffusion" in family else {}
        expected = torch_pipeline(exported, family).sample(SEEDS, options)
        assert largest_difference(np.load(tmp_path / f"{family}.npy"), expected) <= 2
    # auto fell back to the CPU without ONNX Runtime's error banners.
    assert "EP Error" not in done.stdout + done.stderr and "[E:onnxruntime" not in done.stderr


def test_generate_through_onnx_records_backend_and_provider(exported: Store) -> None:
    result = run_job(generate(exported, "diffusion", 2, seed=40, backend="onnx", provider="auto"))
    reference = run_job(generate(exported, "diffusion", 2, seed=40, backend="torch"))
    assert result.backend == "onnx" and result.device == "cpu"
    with exported.sessions() as session:
        rows = {row.id: row for row in session.scalars(select(GalleryItem))}
    for made, ref in zip(result.items, reference.items, strict=True):
        assert rows[made["id"]].backend == "onnx" and rows[made["id"]].provider == "cpu"
        png = Image.open(made["path"])
        assert json.loads(png.text["studio"])["backend"] == "onnx"
        assert largest_difference(np.asarray(png), np.asarray(Image.open(ref["path"]))) <= 2


def test_interpolate_and_inpaint_jobs_store_frames_with_lineage(exported: Store, tmp_path: Path) -> None:
    source = run_job(generate(exported, "vae", 2, seed=1, backend="onnx")).items
    frames = run_job(
        interpolate(
            exported,
            "vae",
            EndpointRef.parse(f"#{source[0]['id']}"),
            EndpointRef.parse(f"item:{source[1]['id']}"),
            frames=4,
            backend="onnx",
        )
    )
    assert len(frames.items) == 4 and frames.operation == "interpolate"
    with exported.sessions() as session:
        lineage = session.scalars(select(GalleryLineage).where(GalleryLineage.child_id == frames.items[1]["id"]))
        assert {(link.parent_id, link.role) for link in lineage} == {(source[0]["id"], "from"), (source[1]["id"], "to")}
    metadata = json.loads(Image.open(frames.items[2]["path"]).text["studio"])
    assert metadata["operation"] == "interpolate" and metadata["method"] == "slerp" and metadata["frame"] == 2
    mask = np.zeros((8, 8), np.uint8)
    mask[4:] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    made = run_job(
        inpaint(exported, "diffusion", f"#{source[0]['id']}", tmp_path / "mask.png", count=2, seed=9, backend="onnx")
    )
    assert len(made.items) == 2
    metadata = json.loads(Image.open(made.items[0]["path"]).text["studio"])
    assert metadata["operation"] == "inpaint" and metadata["source_item"] == source[0]["id"]
    assert exported.home.absolute(metadata["mask"]).is_file() and exported.home.absolute(metadata["source"]).is_file()
    kept = np.asarray(Image.open(made.items[0]["path"]))[:4]
    assert np.array_equal(kept, np.asarray(Image.open(source[0]["path"]))[:4])


def copy_model(store: Store, name: str, copy: str) -> Path:
    """A second model row and folder with the same files, to damage without touching the shared fixture."""
    shutil.copytree(store.home.models / name, store.home.models / copy)
    with store.session() as session:
        row = session.scalar(select(Model).where(Model.name == name))
        session.add(
            Model(
                name=copy,
                folder=store.home.relative(store.home.models / copy),
                family=row.family,
                resolution=row.resolution,
                channels=row.channels,
                dataset_id=row.dataset_id,
                steps=row.steps,
                hyperparameters=row.hyperparameters,
                weights_hash=row.weights_hash,
                parameter_count=row.parameter_count,
            )
        )
    return store.home.models / copy


def test_damaged_or_mismatched_exports_are_refused_with_one_line(exported: Store) -> None:
    before = gallery_count(exported)
    folder = copy_model(exported, "gan", "gan-damaged")
    onnx_files = folder / "onnx"

    def refused(match: str) -> None:
        with pytest.raises(StudioError, match=match) as caught:
            run_job(generate(exported, "gan-damaged", 2, seed=1, backend="onnx"))
        assert "\n" not in str(caught.value)

    original = (onnx_files / "generator.onnx").read_bytes()
    (onnx_files / "generator.onnx").write_bytes(original[: len(original) // 2])  # truncated
    refused("does not match its manifest")
    (onnx_files / "generator.onnx").unlink()  # missing
    refused("generator.onnx is missing")
    (onnx_files / "generator.onnx").write_bytes(original)
    manifest = json.loads((onnx_files / "manifest.json").read_text())
    # A file of another family with a manifest patched to accept its checksum: the metadata gives it away.
    vae_decoder = onnx_folder(exported, "vae") / "decoder.onnx"
    shutil.copy(vae_decoder, onnx_files / "generator.onnx")
    manifest["networks"]["generator"]["sha256"] = export_module.file_sha256(vae_decoder)
    (onnx_files / "manifest.json").write_text(json.dumps(manifest))
    refused("disagrees with its manifest")
    # Another model's whole export: the model row says otherwise.
    shutil.rmtree(onnx_files)
    shutil.copytree(onnx_folder(exported, "vae"), onnx_files)
    refused("export is a 8px vae model, not this 8px gan one")
    (onnx_files / "manifest.json").write_text("{not json")
    refused("not valid JSON")
    shutil.rmtree(onnx_files)
    shutil.copytree(onnx_folder(exported, "gan"), onnx_files)
    run_job(generate(exported, "gan-damaged", 1, seed=1, backend="onnx"))  # whole again
    with exported.session() as session:
        session.execute(update(Model).where(Model.name == "gan-damaged").values(weights_hash="0" * 64))
    refused("out of date")
    shutil.rmtree(onnx_files)
    refused("has not been exported to ONNX: run `studio export gan-damaged`")
    assert gallery_count(exported) == before + 1  # only the one successful image


def test_bad_requests_are_refused_before_anything_is_stored(exported: Store, tmp_path: Path) -> None:
    before = gallery_count(exported)
    with pytest.raises(StudioError, match="invalid frame count 0"):
        run_job(interpolate(exported, "gan", EndpointRef(seed=1), EndpointRef(seed=2), frames=0))
    with pytest.raises(StudioError, match="unknown provider 'warp'"):
        run_job(generate(exported, "gan", 1, backend="onnx", provider="warp"))
    with pytest.raises(StudioError, match="pixelcnn models cannot interpolate"):
        run_job(interpolate(exported, "pixelcnn", EndpointRef(seed=1), EndpointRef(seed=2), frames=3))
    with pytest.raises(StudioError, match="gan models cannot inpaint"):
        run_job(inpaint(exported, "gan", "x.png", "y.png", backend="onnx"))
    image = np.random.default_rng(0).integers(0, 256, (20, 20), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "image.png")
    for name, mask, reason in [
        ("small.png", np.zeros((10, 20), np.uint8), "the mask is 20x10 but the image is 20x20"),
        ("empty.png", np.zeros((20, 20), np.uint8), "the mask is empty"),
        ("full.png", np.full((20, 20), 255, np.uint8), "covers the whole image"),
    ]:
        Image.fromarray(mask).save(tmp_path / name)
        with pytest.raises(StudioError, match=reason):
            run_job(inpaint(exported, "vae", tmp_path / "image.png", tmp_path / name, backend="onnx"))
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(StudioError, match=r"mask .*not a readable image|not an image"):
        run_job(inpaint(exported, "vae", tmp_path / "image.png", tmp_path / "text.png"))
    with pytest.raises(StudioError, match="neither a seed, a gallery item"):
        EndpointRef.parse("no-such-file.png")
    assert gallery_count(exported) == before


def test_a_failed_export_keeps_the_previous_one(exported: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = copy_model(exported, "vae", "vae-again")
    before = {path.name: path.read_bytes() for path in (folder / "onnx").iterdir()}
    monkeypatch.setattr(export_module, "PARITY_TOLERANCE", -1.0)
    with pytest.raises(StudioError, match=r"differs from torch by .* the export was not kept"):
        run_job(export_model(exported, "vae-again"))
    assert {path.name: path.read_bytes() for path in (folder / "onnx").iterdir()} == before
    assert not list(folder.glob(".onnx.*"))


def test_a_swap_cut_short_is_recovered(exported: Store) -> None:
    folder = copy_model(exported, "gan", "gan-swap")
    os.replace(folder / "onnx", folder / ".onnx.old-deadbeef")  # a crash between the two renames
    opened = open_model(exported, "gan-swap", backend="onnx")
    assert opened.backend == "onnx" and (folder / "onnx" / "manifest.json").is_file()


def test_auto_provider_falls_back_quietly_and_explicit_gpu_is_a_clear_error(
    exported: Store, capfd: pytest.CaptureFixture[str]
) -> None:
    path = onnx_folder(exported, "gan") / "generator.onnx"
    session, choice = open_session(path, "auto")
    assert choice.provider == session.get_providers()[0].removesuffix("ExecutionProvider").lower()
    out, err = capfd.readouterr()
    assert "EP Error" not in out + err and "[E:onnxruntime" not in err
    if choice.provider == "cpu":
        with pytest.raises(StudioError, match=r"could not start here|not in this ONNX Runtime build"):
            open_session(path, "cuda")
        out, err = capfd.readouterr()
        assert "EP Error" not in out + err and "[E:onnxruntime" not in err
