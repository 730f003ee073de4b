"""The pixelcnn family's declaration: what it is, what it can do and refuses, what it exports, its settings."""

from __future__ import annotations

from studio.engine.families.declaration import FamilyDeclaration, NetworkSignature
from studio.engine.families.schema import Hyperparameter

DECLARATION = FamilyDeclaration(
    name="pixelcnn",
    title="PixelCNN (autoregressive)",
    description=(
        "Generates an image one sub-pixel at a time, each value drawn from a distribution over its 256 "
        "values (a mixture of discretised logistics, as in PixelCNN++, or a 256-way softmax) conditioned "
        "on every sub-pixel before it, using masked convolutions (a Gated PixelCNN); on a labelled "
        "dataset, also on the class asked for. "
        "It gives an exact likelihood (bits per dimension), coherent local structure and a natural way "
        "to complete a partly known image. Its known challenge is slow, sequential generation: one "
        "network call per sub-pixel, so a 32x32 colour image needs 3072 calls."
    ),
    capabilities=frozenset({"sample", "inpaint"}),
    schema=(
        Hyperparameter(
            "layers", int, 6, "gated layers (depth; more layers see further)", group="model", minimum=1, maximum=32
        ),
        Hyperparameter(
            "width",
            int,
            32,
            "feature maps per layer (split into one group per colour channel)",
            group="model",
            minimum=6,
            maximum=512,
        ),
        Hyperparameter(
            "output",
            str,
            "softmax",
            "each sub-pixel's distribution over its 256 values: a free 256-way softmax, or a mixture of "
            "discretised logistics (PixelCNN++: a few numbers per sub-pixel, nearby values share probability)",
            group="model",
            choices=("softmax", "logistic_mixture"),
        ),
        Hyperparameter(
            "mixtures",
            int,
            5,
            "logistic components per sub-pixel (output=logistic_mixture)",
            group="model",
            minimum=1,
            maximum=32,
        ),
        Hyperparameter(
            "learning_rate",
            float,
            8e-3,
            "Adam learning rate (reached after a linear warm-up over the first 100 steps)",
            group="training",
            minimum=1e-6,
            maximum=1.0,
        ),
        Hyperparameter(
            "ema_decay",
            float,
            0.995,
            "averaging of the network's weights used for sampling: the share of the average each step keeps "
            "(ramped up as (1 + step) / (10 + step), so early on it spans the last tenth of the steps); "
            "0: sample the last step's weights",
            group="training",
            minimum=0.0,
            maximum=0.9999,
        ),
        Hyperparameter(
            "temperature",
            float,
            1.0,
            "divides the logits: below 1 gives safer, smoother images; above 1 more varied, noisier",
            group="sampling",
            minimum=0.05,
            maximum=2.0,
        ),
    ),
    networks=(NetworkSignature("pixelcnn", ("image",), ("logits",), conditional_inputs=("class_weights",)),),
    model_class="PixelCnnFamily",
    refusals={
        "interpolate": "a PixelCNN has no latent space to walk through",
        "encode": "a PixelCNN has no latent space",
    },
    preview_count=8,
)
