"""Importing generators made elsewhere as ONNX files, and from the local Hugging Face cache (never the network).

Small generators are built here with torch (exported by the TorchScript exporter: fast and offline) or written
directly with onnx.helper for the shapes torch would not export; each refusal leaves no row and no folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from PIL import Image
from torch import nn

from studio.cli import main
from studio.engine.families import registry
from studio.engine.generation import EndpointRef, generate, interpolate
from studio.engine.importers import ImportOptions, import_any, onnx_generator
from studio.engine.importers.onnx_generator import infer_value_range
from studio.engine.jobs import run_job
from studio.engine.library import list_models
from studio.engine.numerics import gaussian_noise, to_uint8
from studio.store.database import Store

# --- generators -----------------------------------------------------------------------------


class LinearTanh(nn.Module):
    """z (8) -> 3 x 16 x 16 in [-1, 1]."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(8, 3 * 16 * 16)
        self.scale = scale

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (torch.tanh(self.linear(z)) * self.scale).reshape(-1, 3, 16, 16)


class TinyDcgan(nn.Module):
    """z (8 x 1 x 1) -> 1 x 8 x 8 in [0, 1] (sigmoid), or [0, 255] when `levels`."""

    def __init__(self, levels: bool = False) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.net = nn.Sequential(
            nn.ConvTranspose2d(8, 4, 4, 1, 0), nn.ReLU(), nn.ConvTranspose2d(4, 1, 4, 2, 1), nn.Sigmoid()
        )
        self.levels = levels

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        images = self.net(z)
        return images * 255.0 if self.levels else images


def export(module: nn.Module, example: torch.Tensor, path: Path, dynamic: bool = True) -> Path:
    """torch -> ONNX with the TorchScript exporter (quietly): input 'z', output 'image'."""
    module.eval()
    axes = {"z": {0: "batch"}, "image": {0: "batch"}} if dynamic else None
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            str(path),
            dynamo=False,
            input_names=["z"],
            output_names=["image"],
            dynamic_axes=axes,
            opset_version=17,
        )
    return path


def torch_images(module: nn.Module, seeds: list[int], shape: tuple[int, ...]) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(gaussian_noise(seeds, shape))).numpy()


def helper_model(
    path: Path,
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    nodes: list[onnx.NodeProto],
    initializers: Sequence[onnx.TensorProto] = (),
) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def reshaping(path: Path, input_shape: list, output_shape: list[int], dtype: int = TensorProto.FLOAT) -> Path:
    """A generator that reshapes (and tanh's) its noise: input `input_shape`, output N x output_shape."""
    target = helper.make_tensor("shape", TensorProto.INT64, [len(output_shape) + 1], [-1, *output_shape])
    nodes = [helper.make_node("Reshape", ["z", "shape"], ["r"]), helper.make_node("Tanh", ["r"], ["image"])]
    if dtype != TensorProto.FLOAT:
        nodes.insert(0, helper.make_node("Cast", ["zin"], ["z"], to=TensorProto.FLOAT))
    return helper_model(
        path,
        [helper.make_tensor_value_info("zin" if dtype != TensorProto.FLOAT else "z", dtype, input_shape)],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", *output_shape])],
        nodes,
        [target],
    )


@pytest.fixture(scope="module")
def generators(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("generators")
    return {
        "tanh": export(LinearTanh(), torch.randn(2, 8), folder / "tanh gan.onnx"),
        "dcgan": export(TinyDcgan(), torch.randn(2, 8, 1, 1), folder / "dcgan.onnx"),
        "levels": export(TinyDcgan(levels=True), torch.randn(2, 8, 1, 1), folder / "levels.onnx"),
        "wide": export(LinearTanh(scale=3.0), torch.randn(2, 8), folder / "wide.onnx"),
        "batch1": export(LinearTanh(), torch.randn(1, 8), folder / "batch1.onnx", dynamic=False),
    }


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict, str]:
    code = main([*argv, "--json", "--quiet"])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def png(path: str) -> np.ndarray:
    return np.asarray(Image.open(path))


def assert_nothing_imported(store: Store) -> None:
    assert list_models(store) == []
    assert list(store.home.models.iterdir()) == []
    assert [p for p in store.home.staging.iterdir()] == []


# --- importing and generating ---------------------------------------------------------------


def test_a_tanh_generator_imports_generates_and_interpolates_like_a_gan(
    capsys: pytest.CaptureFixture[str], store: Store, generators: dict[str, Path]
) -> None:
    code, model, err = cli(capsys, "models", "import", str(generators["tanh"]))
    assert code == 0, err
    assert (model["name"], model["family"], model["resolution"], model["channels"]) == (
        "tanh-gan",
        "onnx_generator",
        16,
        3,
    )
    assert model["architecture"]["latent_shape"] == [8] and model["architecture"]["value_range"] == [-1.0, 1.0]
    assert model["architecture"]["value_range_source"] == "inferred" and model["architecture"]["fixed_batch"] is None
    assert model["origin"]["kind"] == "onnx" and model["origin"]["source"] == str(generators["tanh"])
    assert model["weights_hash"] == hashlib.sha256(generators["tanh"].read_bytes()).hexdigest()
    assert model["parameter_count"] == 8 * 768 + 768 and model["export"]["imported"] is True
    assert model["export"]["current"] is True

    first = run_job(generate(store, "tanh-gan", count=3, seed=5, backend="onnx"))
    again = run_job(generate(store, "tanh-gan", count=1, seed=6, backend="onnx"))
    images = [png(item["path"]) for item in first.items]
    assert images[0].shape == (16, 16, 3) and first.backend == "onnx"
    assert np.array_equal(images[1], png(again.items[0]["path"]))  # same seed, same image, any batch
    expected = to_uint8(torch_images(LinearTanh(), [5, 6, 7], (8,)))
    assert max(int(np.abs(e.astype(int) - i.astype(int)).max()) for e, i in zip(expected, images, strict=True)) <= 1

    frames = run_job(interpolate(store, "tanh-gan", EndpointRef(seed=5), EndpointRef(seed=7), frames=4, backend="onnx"))
    pictures = [png(item["path"]) for item in frames.items]
    assert len(pictures) == 4 and np.array_equal(pictures[0], images[0]) and np.array_equal(pictures[-1], images[2])
    assert not np.array_equal(pictures[1], pictures[0])

    code, shown, _ = cli(capsys, "models", "show", "tanh-gan")
    assert code == 0 and shown["architecture"]["input"] == "z" and shown["architecture"]["output"] == "image"
    main(["models", "show", "tanh-gan"])
    text = capsys.readouterr().out
    assert "latent shape: 8" in text and "value range: -1..1 (inferred from its outputs)" in text
    assert "imported" in text and "origin: onnx from" in text


def test_a_sigmoid_dcgan_maps_0_1_and_runs_on_onnx_when_torch_is_the_default(
    capsys: pytest.CaptureFixture[str], store: Store, generators: dict[str, Path]
) -> None:
    model = import_any(store, generators["dcgan"], "dc")
    assert model.architecture is not None and model.architecture["latent_shape"] == [8, 1, 1]
    assert model.architecture["value_range"] == [0.0, 1.0] and (model.resolution, model.channels) == (8, 1)
    made = run_job(generate(store, "dc", count=2, seed=3))  # backend torch, as every face defaults to
    assert made.backend == "onnx" and "imported ONNX generator" in made.note
    expected = np.rint(torch_images(TinyDcgan(), [3, 4], (8, 1, 1)) * 255).astype(int)[:, 0]
    for item, want in zip(made.items, expected, strict=True):
        assert np.abs(png(item["path"]).astype(int) - want).max() <= 1
    code, error, _ = cli(capsys, "generate", "dc", "--device", "cpu")
    assert (
        code == 1
        and error["error"] == "'dc' is an imported ONNX generator: it runs with --backend onnx, not on --device"
    )
    code, made_cli, _ = cli(capsys, "generate", "dc", "--seed", "3", "--set", "truncation=0.5")
    assert code == 0 and made_cli["backend"] == "onnx" and made_cli["options"] == {"truncation": 0.5}


def test_value_ranges_are_inferred_or_given(
    capsys: pytest.CaptureFixture[str], store: Store, generators: dict[str, Path]
) -> None:
    assert import_any(store, generators["levels"]).architecture["value_range"] == [0.0, 255.0]  # type: ignore[index]
    code, error, _ = cli(capsys, "models", "import", str(generators["wide"]))
    assert code == 1 and "span [-2.97, 2.98]" in error["error"] and "--value-range=-1,1" in error["error"]
    code, model, _ = cli(capsys, "models", "import", str(generators["wide"]), "--value-range=-1,1", "--name", "w")
    assert code == 0 and model["architecture"]["value_range_source"] == "given"
    code, error, _ = cli(capsys, "models", "import", str(generators["wide"]), "--value-range=0,2")
    assert code == 1 and error["error"].startswith("--value-range takes -1,1, 0,1 or 0,255")
    assert infer_value_range(-0.9, 0.8) == (-1.0, 1.0) and infer_value_range(0.01, 0.99) == (0.0, 1.0)
    assert infer_value_range(0.0, 254.0) == (0.0, 255.0) and infer_value_range(-0.5, 30.0) is None


def test_a_fixed_batch_file_runs_in_batches_of_its_size(store: Store, generators: dict[str, Path]) -> None:
    model = import_any(store, generators["batch1"], "one")
    assert model.architecture is not None and model.architecture["fixed_batch"] == 1
    made = run_job(generate(store, "one", count=3, seed=5, backend="onnx"))
    expected = to_uint8(torch_images(LinearTanh(), [5, 6, 7], (8,)))
    for item, want in zip(made.items, expected, strict=True):
        assert np.abs(png(item["path"]).astype(int) - want.astype(int)).max() <= 1


def test_sizes_fixed_only_at_run_time_need_latent_shape(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = reshaping(tmp_path / "free.onnx", ["N", "Z"], [1, 8, 8])
    code, error, _ = cli(capsys, "models", "import", str(path))
    assert code == 1 and "give them with --latent-shape (e.g. --latent-shape 100)" in error["error"]
    code, error, _ = cli(capsys, "models", "import", str(path), "--latent-shape", "8,1")
    assert code == 1 and "does not fit" in error["error"]
    code, model, _ = cli(capsys, "models", "import", str(path), "--latent-shape", "64")
    assert code == 0 and model["architecture"]["latent_shape"] == [64] and model["resolution"] == 8
    code, made, _ = cli(capsys, "generate", "free", "--backend", "onnx", "--count", "2")
    assert code == 0 and len(made["items"]) == 2


def test_imported_generators_cannot_be_trained_or_exported(
    capsys: pytest.CaptureFixture[str], store: Store, generators: dict[str, Path]
) -> None:
    assert "onnx_generator" in registry.family_names()
    assert "onnx_generator" not in registry.trainable_family_names()
    code, _, err = cli(capsys, "train", "--name", "x", "--family", "onnx_generator", "--dataset", "d")
    assert code == 2 and "invalid choice" in err  # argparse: not among the trainable families
    code, families, _ = cli(capsys, "families")
    described = {f["name"]: f for f in families["families"]}
    assert described["onnx_generator"]["trainable"] is False and described["gan"]["trainable"] is True
    assert [h["name"] for h in described["onnx_generator"]["schema"]] == ["truncation"]
    import_any(store, generators["tanh"], "t")
    code, error, _ = cli(capsys, "export", "t")
    assert code == 1 and "with no torch side" in error["error"] and "\n" not in error["error"]
    code, error, _ = cli(capsys, "train", "--name", "t", "--resume", "--steps", "5")
    assert code == 1 and "with no torch side" in error["error"]
    code, frames, _ = cli(capsys, "interpolate", "t", "--from", "1", "--to", "2", "--backend", "onnx")
    assert code == 0 and len(frames["items"]) == 8  # seeds 1 and 2: a slerp between their noise
    code, error, _ = cli(capsys, "inpaint", "t", "--image", "#1", "--mask", "x.png", "--backend", "onnx")
    assert code == 1 and error["error"].startswith("onnx_generator models cannot inpaint")


def test_the_runtime_checks_an_imported_export_by_its_manifest(
    capsys: pytest.CaptureFixture[str], store: Store, generators: dict[str, Path]
) -> None:
    import_any(store, generators["tanh"], "t")
    manifest_path = store.home.models / "t" / "onnx" / "manifest.json"
    original = manifest_path.read_text()
    manifest = json.loads(original)
    manifest["imported"] = False
    manifest_path.write_text(json.dumps(manifest))
    code, error, _ = cli(capsys, "generate", "t", "--backend", "onnx")
    assert code == 1 and "lacks its imported mark" in error["error"]
    manifest = json.loads(original)
    manifest["networks"]["generator"]["inputs"] = ["latent"]
    manifest_path.write_text(json.dumps(manifest))
    code, error, _ = cli(capsys, "generate", "t", "--backend", "onnx")
    assert code == 1 and "not those recorded when it was imported" in error["error"]
    manifest_path.write_text(original)
    with open(store.home.models / "t" / "onnx" / "generator.onnx", "ab") as handle:
        handle.write(b"\0")
    code, error, _ = cli(capsys, "generate", "t", "--backend", "onnx")
    assert code == 1 and "does not match its manifest" in error["error"]


def test_a_studio_folder_of_an_imported_generator_imports_again(
    store: Store, generators: dict[str, Path], tmp_path: Path
) -> None:
    first = import_any(store, generators["dcgan"], "dc", ImportOptions(value_range=(0.0, 1.0)))
    copy = tmp_path / "copied"
    shutil.copytree(store.home.models / "dc", copy)
    again = import_any(store, copy, "dc2")
    assert again.family == "onnx_generator" and again.weights_hash == first.weights_hash
    assert again.architecture is not None and again.architecture["value_range"] == [0.0, 1.0]


# --- refusals -------------------------------------------------------------------------------


def _two_inputs(path: Path) -> Path:
    return helper_model(
        path,
        [
            helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 64]),
            helper.make_tensor_value_info("label", TensorProto.FLOAT, ["N", 64]),
        ],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 64])],
        [helper.make_node("Add", ["z", "label"], ["image"])],
    )


def _two_outputs(path: Path) -> Path:
    return helper_model(
        path,
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 64])],
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 64]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 64]),
        ],
        [helper.make_node("Tanh", ["z"], ["a"]), helper.make_node("Sigmoid", ["z"], ["b"])],
    )


def _nan(path: Path) -> Path:
    """log(-|z|) is NaN everywhere."""
    target = helper.make_tensor("shape", TensorProto.INT64, [4], [-1, 1, 8, 8])
    return helper_model(
        path,
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [
            helper.make_node("Abs", ["z"], ["a"]),
            helper.make_node("Neg", ["a"], ["n"]),
            helper.make_node("Log", ["n"], ["l"]),
            helper.make_node("Reshape", ["l", "shape"], ["image"]),
        ],
        [target],
    )


def _batch_dependent(path: Path) -> Path:
    """Subtracting the batch's mean: a seed's image depends on the rest of its batch."""
    target = helper.make_tensor("shape", TensorProto.INT64, [4], [-1, 1, 8, 8])
    return helper_model(
        path,
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [
            helper.make_node("ReduceMean", ["z"], ["m"], axes=[0], keepdims=1),
            helper.make_node("Sub", ["z", "m"], ["c"]),
            helper.make_node("Tanh", ["c"], ["t"]),
            helper.make_node("Reshape", ["t", "shape"], ["image"]),
        ],
        [target],
    )


def _external(path: Path, generators: dict[str, Path]) -> Path:
    model = onnx.load(str(generators["tanh"]))
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, size_threshold=0)
    return path


REFUSALS: dict[str, tuple[Callable[[Path, dict[str, Path]], Path], str]] = {
    "two inputs": (lambda p, g: _two_inputs(p), "takes 2 inputs ('z', 'label'): Studio imports generators with one"),
    "two outputs": (lambda p, g: _two_outputs(p), "has 2 outputs ('a', 'b')"),
    "int input": (
        lambda p, g: reshaping(p, ["N", 64], [1, 8, 8], TensorProto.INT64),
        "input 'zin' is tensor(int64): Studio feeds float32 noise",
    ),
    "not square": (lambda p, g: reshaping(p, ["N", 128], [1, 8, 16]), "returns 8x16 images: Studio takes square"),
    "five channels": (lambda p, g: reshaping(p, ["N", 320], [5, 8, 8]), "returns 5-channel images"),
    "channels last": (lambda p, g: reshaping(p, ["N", 192], [8, 8, 3]), "looks channels-last"),
    "odd size": (lambda p, g: reshaping(p, ["N", 144], [1, 12, 12]), "returns 12 px images: Studio takes 8, 16"),
    "flat output": (lambda p, g: reshaping(p, ["N", 64], [64]), "Studio needs N x C x H x W images"),
    "no batch axis": (lambda p, g: reshaping(p, [64], [1, 8, 8]), "needs a batch axis followed by the noise"),
    "nan": (lambda p, g: _nan(p), "returned NaN or infinite values on seeded noise: not imported"),
    "batch statistics": (lambda p, g: _batch_dependent(p), "a different image of the same noise in a batch than alone"),
    "not onnx": (lambda p, g: (p.write_text("hello, I am not a model\n"), p)[1], "is not an ONNX model"),
    "external data": (_external, "keeps its weights in separate files (ONNX external data)"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_bad_generators_are_refused_in_one_line_and_leave_nothing(
    case: str, capsys: pytest.CaptureFixture[str], store: Store, generators: dict[str, Path], tmp_path: Path
) -> None:
    make, message = REFUSALS[case]
    path = make(tmp_path / "bad.onnx", generators)
    code, error, err = cli(capsys, "models", "import", str(path))
    assert code == 1 and message in error["error"], error
    assert "\n" not in error["error"] and "Traceback" not in err
    assert_nothing_imported(store)


def test_symlinks_huge_files_and_unknown_sources_are_refused(
    capsys: pytest.CaptureFixture[str],
    store: Store,
    generators: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    link = tmp_path / "link.onnx"
    link.symlink_to(generators["tanh"])
    code, error, _ = cli(capsys, "models", "import", str(link))
    assert code == 1 and error["error"] == f"{link} is a symbolic link: not imported (give the file it points to)"
    monkeypatch.setattr(onnx_generator, "MAX_ONNX_BYTES", 1000)
    code, error, _ = cli(capsys, "models", "import", str(generators["tanh"]))
    assert code == 1 and "larger than the 1000 B an imported generator may be" in error["error"]
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("hi")
    code, error, _ = cli(capsys, "models", "import", str(tmp_path / "stuff"))
    assert code == 1 and error["error"] == (
        f"{tmp_path / 'stuff'} is not a Studio model folder, diffusers pipeline folder, UNet2DModel folder or "
        ".onnx file (no model_index.json, UNet2DModel config.json or .onnx file)"
    )
    code, error, _ = cli(capsys, "models", "import", str(generators["tanh"]), "--revision", "main")
    assert code == 1 and error["error"].startswith("--revision chooses a revision of a Hugging Face repository")
    code, error, _ = cli(capsys, "models", "import")
    assert code == 1 and error["error"].startswith("give a model folder, an .onnx file")
    assert_nothing_imported(store)


def test_an_existing_name_is_refused_before_the_file_is_read(
    capsys: pytest.CaptureFixture[str], store: Store, generators: dict[str, Path]
) -> None:
    import_any(store, generators["tanh"], "t")
    code, error, _ = cli(capsys, "models", "import", str(generators["dcgan"]), "--name", "t")
    assert code == 1 and error["error"] == "a model named 't' already exists: give another with --name"
    assert [m.name for m in list_models(store)] == ["t"]


# --- the Hugging Face cache -----------------------------------------------------------------

COMMIT = "a" * 40
OTHER = "b" * 40


def _cached(cache: Path, repo_id: str, files: dict[str, bytes], commit: str = COMMIT, ref: str = "main") -> Path:
    """A repository in huggingface_hub's layout: blobs named by hash, snapshot files linking to them."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
    (repo / "refs" / ref).write_text(commit)
    snapshot = repo / "snapshots" / commit
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        target = snapshot / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(os.path.relpath(blob, target.parent))
    return snapshot


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, generators: dict[str, Path]) -> Path:
    cache = tmp_path / "hub"
    card = b"---\nlicense: mit\ntags: [gan]\n---\n# Tiny GAN\nA generator.\n"
    _cached(cache, "org/tiny-gan", {"onnx/generator.onnx": generators["tanh"].read_bytes(), "README.md": card})
    _cached(cache, "org/tiny-gan", {"onnx/generator.onnx": generators["dcgan"].read_bytes()}, OTHER, "v2")
    _cached(cache, "org/ddpm", {"model_index.json": json.dumps({"_class_name": "DDPMPipeline"}).encode()})
    _cached(cache, "org/unet", {"config.json": json.dumps({"_class_name": "UNet2DModel"}).encode()})
    _cached(cache, "org/sd", {"model_index.json": json.dumps({"_class_name": "StableDiffusionPipeline"}).encode()})
    _cached(cache, "org/bert", {"config.json": json.dumps({"architectures": ["BertModel"]}).encode()})
    (cache / "datasets--org--data" / "snapshots").mkdir(parents=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # the listing sets it: put it back afterwards
    return cache


def test_the_cache_listing_says_what_studio_can_load(capsys: pytest.CaptureFixture[str], hf_cache: Path) -> None:
    code, listing, err = cli(capsys, "models", "import", "--hf-cache")
    assert code == 0, err
    assert listing["hf_cache"] == str(hf_cache) and os.environ["HF_HUB_OFFLINE"] == "1"
    found = {(e["repo_id"], tuple(e["refs"])): e for e in listing["entries"]}
    assert set(found) == {
        ("org/tiny-gan", ("main",)),
        ("org/tiny-gan", ("v2",)),
        ("org/ddpm", ("main",)),
        ("org/unet", ("main",)),
        ("org/sd", ("main",)),
        ("org/bert", ("main",)),
    }
    gan = found["org/tiny-gan", ("main",)]
    assert (gan["kind"], gan["loadable"], gan["command"]) == ("onnx", True, "studio models import org/tiny-gan")
    assert found["org/tiny-gan", ("v2",)]["command"] == "studio models import org/tiny-gan --revision v2"
    assert (
        found["org/ddpm", ("main",)]["what"] == "a diffusers DDPMPipeline" and found["org/ddpm", ("main",)]["loadable"]
    )
    assert found["org/unet", ("main",)]["kind"] == "unet2d"
    assert (
        not found["org/sd", ("main",)]["loadable"] and "StableDiffusionPipeline" in found["org/sd", ("main",)]["what"]
    )
    assert not found["org/bert", ("main",)]["loadable"]
    assert [e["loadable"] for e in listing["entries"]] == sorted(
        (e["loadable"] for e in listing["entries"]), reverse=True
    )
    code, error, _ = cli(capsys, "models", "import", "--hf-cache", "org/ddpm")
    assert code == 1 and error["error"] == "--hf-cache lists the local Hugging Face cache: give it alone"
    main(["models", "import", "--hf-cache"])
    assert "studio models import org/tiny-gan" in capsys.readouterr().out


def test_an_empty_or_missing_cache_lists_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "nowhere"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    code, listing, _ = cli(capsys, "models", "import", "--hf-cache")
    assert code == 0 and listing["entries"] == []


def test_a_cached_repository_imports_by_its_id(
    capsys: pytest.CaptureFixture[str], store: Store, hf_cache: Path
) -> None:
    code, model, err = cli(capsys, "models", "import", "org/tiny-gan")
    assert code == 0, err
    assert model["name"] == "tiny-gan" and model["resolution"] == 16
    assert model["origin"]["repo_id"] == "org/tiny-gan" and model["origin"]["revision"] == COMMIT
    assert model["origin"]["license"] == "mit" and model["origin"]["source"] == f"hf-cache:org/tiny-gan@{COMMIT}"
    assert (store.home.models / "tiny-gan" / "README.md").read_text().startswith("---\nlicense: mit")
    assert not (store.home.models / "tiny-gan" / "onnx" / "generator.onnx").is_symlink()
    code, model, _ = cli(capsys, "models", "import", "org/tiny-gan", "--revision", "v2", "--name", "v2")
    assert code == 0 and model["resolution"] == 8 and model["origin"]["revision"] == OTHER
    code, made, _ = cli(capsys, "generate", "v2", "--backend", "onnx", "--count", "2")
    assert code == 0 and len(made["items"]) == 2
    # A path inside the cache follows the snapshot's link into its repository's blobs too.
    inside = hf_cache / "models--org--tiny-gan" / "snapshots" / COMMIT / "onnx" / "generator.onnx"
    code, model, _ = cli(capsys, "models", "import", str(inside), "--name", "by-path")
    assert code == 0 and model["origin"]["source"] == str(inside) and model["origin"]["repo_id"] is None
    code, error, _ = cli(capsys, "models", "import", "org/missing")
    assert code == 1 and error["error"] == (
        f"org/missing is not in the local Hugging Face cache (HF_HUB_CACHE={hf_cache}): Studio never downloads; "
        "run `huggingface-cli download org/missing` first"
    )
    code, error, _ = cli(capsys, "models", "import", "org/tiny-gan", "--revision", "v3")
    assert code == 1 and error["error"].startswith("org/tiny-gan at revision v3 is not in the local Hugging Face cache")
    code, error, _ = cli(capsys, "models", "import", "org/sd")
    assert code == 1 and "StableDiffusionPipeline, which Studio does not load" in error["error"]


def test_a_cache_link_pointing_outside_its_repository_is_refused(
    capsys: pytest.CaptureFixture[str], store: Store, hf_cache: Path, generators: dict[str, Path]
) -> None:
    snapshot = hf_cache / "models--org--evil" / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (hf_cache / "models--org--evil" / "refs").mkdir()
    (hf_cache / "models--org--evil" / "refs" / "main").write_text(COMMIT)
    (snapshot / "generator.onnx").symlink_to(generators["tanh"])  # outside the repository's blobs
    code, error, _ = cli(capsys, "models", "import", "org/evil")
    assert code == 1 and "is a symbolic link: not imported" in error["error"]
    assert_nothing_imported(store)
