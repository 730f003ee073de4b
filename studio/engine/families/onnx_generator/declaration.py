"""The onnx_generator family's declaration: a generator trained elsewhere, brought in as one ONNX file."""

from __future__ import annotations

from studio.engine.families.declaration import FamilyDeclaration, NetworkSignature
from studio.engine.families.schema import Hyperparameter

# The role of the one network; its input and output keep the names the file gives them (the manifest
# records them), so the signature's names are placeholders the runtime does not compare for imports.
GENERATOR_ROLE = "generator"

DECLARATION = FamilyDeclaration(
    name="onnx_generator",
    title="ONNX generator (imported from another tool)",
    description=(
        "A generator trained with another tool and imported as an ONNX file: one noise input, one image "
        "output. Studio feeds it Gaussian noise from each seed (the same seed gives the same image) and "
        "walks the noise sphere to interpolate, as it does for its own GANs. It runs only on the ONNX "
        "backend; Studio cannot train, fine-tune or export it, and knows only what the file and the "
        "import's checks revealed (its latent shape and output value range)."
    ),
    capabilities=frozenset({"sample", "interpolate"}),
    schema=(
        Hyperparameter(
            "truncation",
            float,
            1.0,
            "scale of the noise at sampling: lower is safer, less varied",
            "sampling",
            0.05,
            2.0,
        ),
    ),
    networks=(NetworkSignature(GENERATOR_ROLE, ("latent",), ("image",)),),
    model_class="",  # no torch class: `trainable` is False
    refusals={
        "inpaint": "an imported generator has no way to condition on known pixels",
        "encode": "an imported generator has no encoder: interpolate between seeds or items it made",
    },
    interpolation_note="Interpolation walks the great circle between the two seeds' noise vectors.",
    trainable=False,
)
