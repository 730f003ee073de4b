"""The diffusion family's declaration: what it is, what it can do and refuses, what it exports, its settings."""

from __future__ import annotations

from studio.engine.families.declaration import FamilyDeclaration, NetworkSignature
from studio.engine.families.schema import Hyperparameter

GUIDANCE = "guidance"  # the sampling setting of classifier-free guidance
DEFAULT_GUIDANCE = 1.5  # measured on the digits: the best hit rate and class FD (2 and more oversaturate)
MAX_GUIDANCE = 20.0
# DPM-Solver++(2M) at 20 steps matched 50 within noise and beat DDIM at 50 (bench/quality.py sweep).
DEFAULT_STEPS = 20

DECLARATION = FamilyDeclaration(
    name="diffusion",
    title="Diffusion (DDPM/DDIM)",
    description=(
        "A forward process adds Gaussian noise to an image over many small steps; a U-Net learns to predict "
        "that noise, and sampling starts from pure noise and removes it step by step. "
        "It gives the highest quality and diversity of the families, inpaints by resampling, and deterministic "
        "DDIM sampling makes smooth interpolations. "
        "The price is compute: every image costs one network call per step, so steps trade speed for quality "
        "(DDIM with fewer steps is faster), and training takes long before samples look like the data."
    ),
    capabilities=frozenset({"sample", "interpolate", "inpaint"}),
    schema=(
        Hyperparameter(
            "network",
            str,
            "unet2d",
            "the noise-predicting U-Net: diffusers' UNet2DModel (the field's standard, loads published models) "
            "or Studio's first U-Net (models made before 0.2)",
            group="model",
            choices=("unet2d", "studio"),
        ),
        Hyperparameter(
            "width",
            int,
            32,
            "channels of the U-Net's first level (doubled further down)",
            group="model",
            minimum=8,
            maximum=256,
        ),
        Hyperparameter("attention", bool, True, "self-attention at the lowest resolution", group="model"),
        Hyperparameter(
            "timesteps", int, 1000, "noise levels of the forward process (T)", group="model", minimum=50, maximum=4000
        ),
        Hyperparameter(
            "schedule",
            str,
            "cosine",
            "how noise grows with t: cosine (Improved DDPM), linear (DDPM) or scaled_linear (latent diffusion)",
            group="model",
            choices=("linear", "cosine", "scaled_linear"),
        ),
        Hyperparameter("learning_rate", float, 2e-4, "AdamW learning rate", minimum=1e-7, maximum=1.0),
        Hyperparameter(
            "ema_decay",
            float,
            0.999,
            "decay of the weight average used for sampling; 0 turns it off",
            minimum=0.0,
            maximum=0.99999,
        ),
        Hyperparameter(
            "class_dropout",
            float,
            0.1,
            "class-conditional models: share of training images shown with no class, so the same network also "
            "learns the unconditional noise that classifier-free guidance compares against",
            minimum=0.0,
            maximum=1.0,
        ),
        Hyperparameter(
            "sampler",
            str,
            "dpmpp2m",
            "dpmpp2m (DPM-Solver++(2M): deterministic, good images in 10-25 steps; ignores eta; inpainting "
            "takes DDIM steps instead, since RePaint repeats steps), ddim (deterministic when eta is 0) or "
            "ddpm (stochastic, needs many steps)",
            group="sampling",
            choices=("dpmpp2m", "ddim", "ddpm"),
        ),
        Hyperparameter(
            "steps",
            int,
            DEFAULT_STEPS,
            "network calls per image (at most timesteps): more is slower and finer",
            group="sampling",
            minimum=1,
            maximum=4000,
        ),
        Hyperparameter(
            "eta",
            float,
            0.0,
            "DDIM noise: 0 deterministic, 1 as random as DDPM (ddim only)",
            group="sampling",
            minimum=0.0,
            maximum=1.0,
        ),
        Hyperparameter(
            GUIDANCE,
            float,
            DEFAULT_GUIDANCE,
            "class-conditional models: classifier-free guidance scale w (noise = unconditional + w x (class - "
            "unconditional)); 1 is no guidance (one network call a step, not two), more gives the class more "
            "clearly and less varied images, and too much oversaturates them",
            group="sampling",
            minimum=0.0,
            maximum=MAX_GUIDANCE,
        ),
        Hyperparameter(
            "resample",
            int,
            3,
            "inpainting: times each step is re-noised and taken again (RePaint); "
            "more blends the filled part with the known pixels, at that many times the cost",
            group="sampling",
            minimum=1,
            maximum=20,
        ),
    ),
    networks=(NetworkSignature("denoiser", ("sample", "timestep"), ("noise",), conditional_inputs=("class_weights",)),),
    model_class="DiffusionFamily",
    refusals={"encode": "interpolate between seeds or items sampled from this model"},
    preview_count=16,
    interpolation_note="Diffusion interpolates with deterministic DDIM (eta 0): only it gives one image per "
    "starting noise.",
    sampling_limits={"steps": "timesteps"},
    interpolation_settings={"sampler": "ddim", "eta": 0.0},
    inpainting_settings=frozenset({"resample"}),
)
