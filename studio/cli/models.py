"""`studio models ...` and `studio families`: the model library and the families models come from."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from studio.cli.context import Context
from studio.cli.printing import print_table, say


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
                else f"exported {export['exported_at']}{' (fp16 too)' if export['fp16'] else ''}"
                f"{'' if export['current'] else ', out of date: export again'}"
            )
        )
        say(f"{'onnx':>16}: {state}")
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


def cmd_models_import(ctx: Context) -> dict[str, Any]:
    """studio models import FOLDER [--name NAME]"""
    from studio.engine.library import import_model

    model = import_model(ctx.store, Path(ctx.args.folder), ctx.args.name)
    if not ctx.args.json:
        say(
            f"imported model '{model.name}' ({model.family}, {model.resolution}px x {model.channels}, "
            f"{model.steps} steps)"
        )
    return model.as_dict()


def cmd_families(ctx: Context) -> dict[str, Any]:
    """studio families: what each family is and the settings it takes."""
    from studio.engine.families.registry import describe_families

    families = describe_families()
    if not ctx.args.json:
        for family in families:
            say(f"{family['name']}: {family['title']}  [{', '.join(family['capabilities'])}]")
            say(f"  {family['description']}")
            for h in family["schema"]:
                bounds = (
                    f" {h['choices']}"
                    if h["choices"]
                    else (f" [{h['minimum']:g}..{h['maximum']:g}]" if h["minimum"] is not None else "")
                )
                say(f"    {h['name']:<14} {h['group']:<9} default {h['default']!s:<8}{bounds}  {h['help']}")
    return {"families": families}


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `models` (list, show, delete, import) and `families` to the top-level subparsers."""
    models = commands.add_parser("models", help="list, show, import and delete models", parents=[common])
    msub = models.add_subparsers(dest="action", metavar="ACTION", required=True)
    msub.add_parser("list", parents=[common], help="list models").set_defaults(handler=cmd_models_list)
    mshow = msub.add_parser("show", parents=[common], help="show one model")
    mshow.add_argument("name")
    mshow.set_defaults(handler=cmd_models_show)
    mdelete = msub.add_parser("delete", parents=[common], help="delete a model and its files")
    mdelete.add_argument("name")
    mdelete.set_defaults(handler=cmd_models_delete)
    mimport = msub.add_parser("import", parents=[common], help="add a model folder made elsewhere")
    mimport.add_argument("folder", help="a folder with config.json and checkpoint.safetensors")
    mimport.add_argument("--name", default=None, help="name in this library (default: the model's own)")
    mimport.set_defaults(handler=cmd_models_import)

    families = commands.add_parser("families", parents=[common], help="the generator families and their settings")
    families.set_defaults(handler=cmd_families)
