"""`studio models ...` and `studio families`: the model library and the families models come from."""

from __future__ import annotations

import argparse
from typing import Any

from studio.cli.arguments import BACKEND_CHOICES, BoundedInt
from studio.cli.context import Context
from studio.cli.history import register as register_history
from studio.cli.milestones import register as register_milestones
from studio.cli.printing import print_table, say
from studio.errors import StudioError
from studio.limits import SCORE_SAMPLES


def cmd_models_list(ctx: Context) -> dict[str, Any]:
    """studio models list"""
    from studio.engine.library import list_models

    models = list_models(ctx.store)
    if not ctx.args.json:
        if not models:
            say("no models yet: try `studio train --family vae --dataset digits --name first --steps 500`")
        else:
            print_table(
                [
                    [
                        m.name,
                        m.family,
                        f"{m.resolution}x{m.resolution}x{m.channels}",
                        m.dataset or "-",
                        str(m.steps),
                        f"{m.parameter_count / 1e6:.2f}M",
                        f"{m.size_bytes / 1e6:.1f} MB",
                        m.updated_at,
                    ]
                    for m in models
                ],
                ["NAME", "FAMILY", "SHAPE", "DATASET", "STEPS", "PARAMS", "SIZE", "UPDATED"],
            )
    return {"models": [m.as_dict() for m in models]}


def cmd_models_show(ctx: Context) -> dict[str, Any]:
    """studio models show NAME"""
    from studio.engine.library import get_model

    model = get_model(ctx.store, ctx.args.name)
    payload = {**model.as_dict(), "path": str(ctx.home.absolute(model.folder))}
    if not ctx.args.json:
        for key in (
            "name",
            "family",
            "resolution",
            "channels",
            "dataset",
            "steps",
            "parameter_count",
            "size_bytes",
            "parent",
            "weights_hash",
            "created_at",
            "updated_at",
            "path",
        ):
            say(f"{key:>16}: {payload[key]}")
        export = model.export
        state = (
            "not exported"
            if export is None
            else (
                "damaged: export again"
                if export.get("damaged")
                else (
                    f"imported {export['exported_at']} (runs with --backend onnx; cannot be trained or exported)"
                    if export.get("imported")
                    else f"exported {export['exported_at']}{' (fp16 too)' if export['fp16'] else ''}"
                    f"{'' if export['current'] else ', out of date: export again'}"
                )
            )
        )
        say(f"{'onnx':>16}: {state}")
        if model.classes:
            say(f"{'classes':>16}: {', '.join(model.classes)} (generate one with --class NAME)")
        for line in _described(model.architecture, model.origin):
            say(line)
        for key, value in model.hyperparameters.items():
            say(f"{key:>16}= {value}")
    return payload


def cmd_models_delete(ctx: Context) -> dict[str, Any]:
    """studio models delete NAME"""
    from studio.engine.library import delete_model

    model = delete_model(ctx.store, ctx.args.name)
    if not ctx.args.json:
        say(f"deleted model '{model.name}' ({model.family}, {model.steps} steps)")
    return {"deleted": model.name}


def _described(architecture: dict[str, Any] | None, origin: dict[str, Any] | None) -> list[str]:
    """`models show` lines for how an imported model's file was read and where it came from."""
    lines = []
    if architecture and "latent_shape" in architecture:
        shape = "x".join(str(size) for size in architecture.get("latent_shape") or [])
        low, high = (f"{end:g}" for end in architecture.get("value_range") or [0, 0])
        inferred = " (inferred from its outputs)" if architecture.get("value_range_source") == "inferred" else ""
        lines.append(f"{'latent shape':>16}: {shape}")
        lines.append(f"{'value range':>16}: {low}..{high}{inferred}")
    if origin:
        lines.append(f"{'origin':>16}: {origin.get('kind') or '-'} from {origin.get('source') or '-'}")
        if origin.get("repo_id"):
            lines.append(f"{'repository':>16}: {origin['repo_id']} at {origin.get('revision') or '-'}")
        if origin.get("license"):
            lines.append(f"{'license':>16}: {origin['license']}")
    return lines


def cmd_models_import(ctx: Context) -> dict[str, Any]:
    """studio models import SOURCE [--name NAME] [--value-range=-1,1] [--latent-shape 100,1,1] [--revision R],
    or --hf-cache to list what the local Hugging Face cache holds"""
    args = ctx.args
    if args.hf_cache:
        if args.source or args.name or args.value_range or args.latent_shape or args.revision:
            raise StudioError("--hf-cache lists the local Hugging Face cache: give it alone")
        return _list_hf_cache(ctx)
    if not args.source:
        raise StudioError(
            "give a model folder, an .onnx file or a Hugging Face repository id (org/name); "
            "--hf-cache lists the repositories the local cache holds"
        )
    from studio.engine.importers import ImportOptions, import_any, parse_latent_shape, parse_value_range

    options = ImportOptions(
        value_range=parse_value_range(args.value_range) if args.value_range else None,
        latent_shape=parse_latent_shape(args.latent_shape) if args.latent_shape else None,
        revision=args.revision,
    )
    model = import_any(ctx.store, args.source, args.name, options)
    if not args.json:
        say(
            f"imported model '{model.name}' ({model.family}, {model.resolution}px x {model.channels}, "
            f"{model.steps} steps)"
        )
        for line in _described(model.architecture, None):
            say(line)
    return model.as_dict()


def _list_hf_cache(ctx: Context) -> dict[str, Any]:
    """studio models import --hf-cache: the cached model repositories, and which Studio can import."""
    from studio.engine.importers.hf_cache import list_cache

    listing = list_cache()
    if not ctx.args.json:
        if not listing.entries:
            say(f"no model repositories in the Hugging Face cache at {listing.cache}")
        else:
            print_table(
                [
                    [
                        entry.repo_id,
                        ",".join(entry.refs) or entry.commit[:12],
                        entry.what,
                        f"{entry.size_bytes / 1e6:.1f} MB",
                        entry.command if entry.loadable else "-",
                    ]
                    for entry in listing.entries
                ],
                ["REPOSITORY", "REVISION", "WHAT", "SIZE", "IMPORT WITH"],
            )
        for warning in listing.warnings:
            say(f"  warning: {warning}")
    return listing.as_dict()


def cmd_families(ctx: Context) -> dict[str, Any]:
    """studio families: what each family is and the settings it takes."""
    from studio.engine.families.registry import describe_families

    families = describe_families()
    if not ctx.args.json:
        for family in families:
            imported = "" if family["trainable"] else "  (imported only: `studio models import FILE.onnx`)"
            say(f"{family['name']}: {family['title']}  [{', '.join(family['capabilities'])}]{imported}")
            say(f"  {family['description']}")
            for h in family["schema"]:
                bounds = (
                    f" {h['choices']}"
                    if h["choices"]
                    else (f" [{h['minimum']:g}..{h['maximum']:g}]" if h["minimum"] is not None else "")
                )
                say(f"    {h['name']:<14} {h['group']:<9} default {h['default']!s:<8}{bounds}  {h['help']}")
    return {"families": families}


def cmd_models_score(ctx: Context) -> dict[str, Any]:
    """studio models score MODEL [--samples N]"""
    from studio.engine.embedding.scoring import describe, score_model, score_summary

    record = ctx.run(score_model(ctx.store, ctx.args.name, ctx.args.samples, ctx.args.backend, ctx.args.device))
    if not ctx.args.json:
        say(f"'{ctx.args.name}': {describe(record)}")
    return {"model": ctx.args.name, **score_summary(record)}


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `models` (list, show, delete, import, milestones, promote) and `families` to the top-level subparsers."""
    models = commands.add_parser("models", help="list, show, import and delete models", parents=[common])
    msub = models.add_subparsers(dest="action", metavar="ACTION", required=True)
    msub.add_parser("list", parents=[common], help="list models").set_defaults(handler=cmd_models_list)
    mshow = msub.add_parser("show", parents=[common], help="show one model")
    mshow.add_argument("name")
    mshow.set_defaults(handler=cmd_models_show)
    register_score(msub, common, BACKEND_CHOICES)
    register_history(msub, common)
    register_milestones(msub, common)
    mdelete = msub.add_parser("delete", parents=[common], help="delete a model and its files")
    mdelete.add_argument("name")
    mdelete.set_defaults(handler=cmd_models_delete)
    mimport = msub.add_parser(
        "import", parents=[common], help="add a model made elsewhere (Studio folder, .onnx file, cached repo)"
    )
    mimport.add_argument(
        "source",
        nargs="?",
        help="a Studio model folder, a diffusers pipeline or UNet2DModel folder, an .onnx generator file, "
        "or a Hugging Face repository id (org/name) already in the local cache",
    )
    mimport.add_argument("--name", default=None, help="name in this library (default: the model's own)")
    mimport.add_argument(
        "--value-range",
        metavar="LOW,HIGH",
        help="an ONNX generator's output range: -1,1, 0,1 or 0,255, written --value-range=-1,1 "
        "(default: inferred from its outputs on seeded noise)",
    )
    mimport.add_argument(
        "--latent-shape",
        metavar="SIZES",
        help="an ONNX generator's noise shape without the batch, e.g. 100,1,1 (default: read from the file)",
    )
    mimport.add_argument("--revision", help="a cached repository's branch, tag or commit (default: main)")
    mimport.add_argument(
        "--hf-cache",
        action="store_true",
        help="list the model repositories in the local Hugging Face cache and which Studio can import",
    )
    mimport.set_defaults(handler=cmd_models_import)

    families = commands.add_parser("families", parents=[common], help="the generator families and their settings")
    families.set_defaults(handler=cmd_families)


def register_score(sub: Any, common: argparse.ArgumentParser, backend_choices: Any) -> None:
    """Add `models score`."""
    score = sub.add_parser("score", parents=[common], help="quality in the dataset's encoder space")
    score.add_argument("name")
    score.add_argument(
        "--samples",
        type=BoundedInt(SCORE_SAMPLES),
        default=256,
        help=f"images to sample, {SCORE_SAMPLES.describe()} (default 256)",
    )
    score.add_argument("--backend", choices=backend_choices, default="torch")
    score.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    score.set_defaults(handler=cmd_models_score)
