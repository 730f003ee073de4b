"""Adding a family is one package plus one registry line: a toy family, written here as files, gets the CLI's
choices, training, checkpoints, ONNX export, both backends and the refusals without touching anything else.

The toy learns one Gaussian per sub-pixel (a mean and a spread); sampling is mean + spread * noise.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import studio.engine.families as families_package
from studio.cli import main
from studio.engine.families import registry
from studio.errors import StudioError

TOY_PACKAGE = {
    "__init__.py": '''
        """Toy family: one Gaussian per sub-pixel."""

        from studio.engine.families.toy.declaration import DECLARATION
        from studio.engine.families.toy.pipeline import ToyPipeline

        PIPELINE = ToyPipeline
    ''',
    "declaration.py": """
        from studio.engine.families.declaration import FamilyDeclaration, NetworkSignature
        from studio.engine.families.schema import Hyperparameter

        DECLARATION = FamilyDeclaration(
            name="toy",
            title="Toy (one Gaussian per sub-pixel)",
            description="Learns the mean and spread of every sub-pixel independently; samples are noise around "
            "the mean image. It shows how a family is added, and nothing about structure.",
            capabilities=frozenset({"sample"}),
            schema=(
                Hyperparameter("learning_rate", float, 0.05, "Adam learning rate", "training", 1e-5, 1.0),
                Hyperparameter("temperature", float, 1.0, "scale of the noise at sampling", "sampling", 0.0, 2.0),
            ),
            networks=(NetworkSignature("generator", ("noise",), ("image",)),),
            model_class="ToyFamily",
            refusals={"interpolate": "a toy has no latent space", "inpaint": "its sub-pixels are independent"},
            preview_count=4,
        )
    """,
    "pipeline.py": """
        from collections.abc import Mapping, Sequence
        from typing import Any

        import numpy as np

        from studio.engine.families.pipeline import ArrayFunction, ModelSpec, NetworkRunner, Pipeline
        from studio.engine.families.toy.declaration import DECLARATION
        from studio.engine.numerics import gaussian_noise, to_uint8


        class ToyPipeline(Pipeline):
            declaration = DECLARATION

            def __init__(self, spec: ModelSpec, generator: ArrayFunction) -> None:
                super().__init__(spec)
                self.generator = generator

            @classmethod
            def from_networks(cls, spec: ModelSpec, network: NetworkRunner) -> "ToyPipeline":
                return cls(spec, network("generator"))

            def sample(self, seeds: Sequence[int], options: Mapping[str, Any]) -> np.ndarray:
                options = self.sampling_options(options)
                if len(seeds) == 0:
                    return np.zeros((0, *self.spec.shape), np.uint8)
                noise = gaussian_noise(seeds, (self.channels, self.resolution, self.resolution))
                return to_uint8(np.asarray(self.generator(noise * np.float32(options["temperature"]))))
    """,
    "model.py": """
        import numpy as np
        import torch
        from torch import nn

        from studio.engine.families.base import GeneratorFamily, NetworkExport, Precision
        from studio.engine.families.toy.declaration import DECLARATION
        from studio.engine.families.toy.pipeline import ToyPipeline


        class PixelGaussian(nn.Module):
            def __init__(self, channels: int, resolution: int) -> None:
                super().__init__()
                self.mean = nn.Parameter(torch.zeros(1, channels, resolution, resolution))
                self.log_spread = nn.Parameter(torch.zeros(1, channels, resolution, resolution))

            def forward(self, noise: torch.Tensor) -> torch.Tensor:
                return (self.mean + noise * self.log_spread.exp()).clamp(-1, 1)

            def nll(self, batch: torch.Tensor) -> torch.Tensor:
                z = (batch - self.mean) / self.log_spread.exp()
                return (0.5 * z.pow(2) + self.log_spread).mean()


        class ToyFamily(GeneratorFamily):
            declaration = DECLARATION

            def __init__(self, resolution, channels, hparams, architecture=None, classes=()):
                super().__init__(resolution, channels, hparams, architecture, classes)
                self.network = PixelGaussian(channels, resolution)
                self.optimizer = torch.optim.Adam(self.network.parameters(), lr=self.hparams["learning_rate"])

            def networks(self):
                return {"generator": self.network}

            def optimizers(self):
                return {"generator": self.optimizer}

            def training_step(
                self, batch: torch.Tensor, step: int, precision: Precision, labels=None
            ) -> dict[str, float]:
                loss = self.network.nll(batch)
                precision.step(loss, self.optimizer)
                return {"nll": loss.item()}

            def network_exports(self, rng: np.random.Generator) -> list[NetworkExport]:
                shape = (self.channels, self.resolution, self.resolution)
                parity = [(rng.standard_normal((3, *shape)).astype(np.float32),)]
                return [NetworkExport("generator", self.network, (torch.zeros(2, *shape),), ("noise",), ("image",),
                                      {"noise": {0: "batch"}}, parity)]

            def pipeline(self) -> ToyPipeline:
                return ToyPipeline(self.spec(), self.numpy_function(self.network, [self.network]))
    """,
}


@pytest.fixture
def toy_family(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The toy package in a folder of its own, plus its one registry line."""
    folder = tmp_path_factory.mktemp("families") / "toy"
    folder.mkdir()
    for name, source in TOY_PACKAGE.items():
        (folder / name).write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    # Where the toy's folder lies, for the test only: in Studio it is studio/engine/families/toy/.
    monkeypatch.setattr(families_package, "__path__", [*families_package.__path__, str(folder.parent)])
    # The one registry line.
    monkeypatch.setattr(registry, "FAMILY_NAMES", (*registry.FAMILY_NAMES, "toy"))
    yield
    for module in [m for m in sys.modules if m.startswith("studio.engine.families.toy")]:
        del sys.modules[module]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--json", "--quiet"])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.usefixtures("toy_family")
def test_a_family_added_as_one_package_works_everywhere(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, listed = cli(capsys, "families")
    assert code == 0 and [f["name"] for f in listed["families"]][-1] == "toy"
    assert cli(capsys, "datasets", "add-sample", "digits", "--size", "8")[0] == 0
    code, trained = cli(
        capsys,
        "train",
        "--family",
        "toy",
        "--dataset",
        "digits",
        "--name",
        "t",
        "--steps",
        "40",
        "--set",
        "learning_rate=0.1",
    )
    assert code == 0 and trained["family"] == "toy" and trained["final_losses"]["nll"] < 0.5
    code, made = cli(capsys, "generate", "t", "--count", "3", "--seed", "7")
    assert code == 0 and len(made["items"]) == 3
    code, exported = cli(capsys, "export", "t")
    assert code == 0 and set(exported["networks"]) == {"generator"}
    code, onnx_made = cli(capsys, "generate", "t", "--count", "3", "--seed", "7", "--backend", "onnx")
    assert code == 0
    for torch_item, onnx_item in zip(made["items"], onnx_made["items"], strict=True):
        torch_image = np.asarray(Image.open(torch_item["path"]), np.int16)
        onnx_image = np.asarray(Image.open(onnx_item["path"]), np.int16)
        assert np.abs(torch_image - onnx_image).max() <= 2  # same seed, same image on both backends
    code, refused = cli(capsys, "interpolate", "t", "--from", "1", "--to", "2")
    assert code == 1 and refused["error"].startswith("toy models cannot interpolate: a toy has no latent space")
    code, refused = cli(capsys, "train", "--family", "toyy", "--dataset", "digits", "--name", "u", "--steps", "1")
    assert code == 2  # argparse's own choices come from the registry


def test_the_registry_is_the_only_list_of_families() -> None:
    """Every package under studio/engine/families that declares a family is registered, and nothing else."""
    root = Path(families_package.__file__).parent
    packages = sorted(p.name for p in root.iterdir() if (p / "declaration.py").is_file())
    assert packages == sorted(registry.family_names())
    for name in registry.family_names():
        declared = registry.declaration(name)
        assert declared.name == name
        assert registry.pipeline_class(name).declaration is declared
        if not declared.trainable:  # imported only (ONNX generators): no torch side, no model module
            assert not (root / name / "model.py").exists()
            with pytest.raises(StudioError, match="with no torch side"):
                registry.family_class(name)
            continue
        assert registry.family_class(name).declaration is declared
        # What export writes is what the runtime will look for.
        exports = registry.family_class(name)(8, 1, {}).network_exports(np.random.default_rng(0))
        assert [(e.role, e.input_names, e.output_names) for e in exports] == [
            (n.role, n.inputs, n.outputs) for n in declared.networks
        ]
