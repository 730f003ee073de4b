"""`studio export`: a model to ONNX, checked against its torch checkpoint; or to a diffusers pipeline folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from studio.cli.context import Context
from studio.cli.printing import say
from studio.errors import StudioError

FORMATS = ("onnx", "diffusers")


def cmd_export(ctx: Context) -> dict[str, Any]:
    """studio export MODEL [--fp16] | studio export MODEL --format diffusers --to DEST"""
    if ctx.args.format == "diffusers":
        return _export_diffusers(ctx)
    if ctx.args.to is not None:
        raise StudioError("--to is for --format diffusers: an ONNX export is kept in the model's folder")
    # Imported here: export brings torch and onnx.
    from studio.engine.export import export_model

    result = ctx.run(export_model(ctx.store, ctx.args.model, fp16=ctx.args.fp16))
    if not ctx.args.json:
        say(f"exported '{result.model}' to {result.folder} in {result.seconds:.1f}s")
        for role, entry in result.networks.items():
            difference, tolerance = entry["max_abs_difference"], entry["tolerance"]
            line = f"  {role:<10} {entry['file']:<18} parity {difference:.2g} (<= {tolerance:g})"
            if "fp16" in entry:
                line += f"; fp16 {entry['fp16']['max_abs_difference']:.2g}"
            say(line)
    return result.as_dict()


def _export_diffusers(ctx: Context) -> dict[str, Any]:
    if ctx.args.to is None:
        raise StudioError("--format diffusers needs --to DEST: a new or empty folder outside the data home")
    if ctx.args.fp16:
        raise StudioError("--fp16 is for ONNX exports: a diffusers export holds the float32 weights")
    from studio.engine.diffusers_export import export_diffusers  # brings torch and diffusers

    result = ctx.run(export_diffusers(ctx.store, ctx.args.model, Path(ctx.args.to)))
    if not ctx.args.json:
        say(f"exported '{result.model}' as a diffusers {result.pipeline} to {result.folder} in {result.seconds:.1f}s")
        say(f"  load it with: {result.pipeline}.from_pretrained({str(result.folder)!r})")
    return result.as_dict()


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `export` to the top-level subparsers."""
    export = commands.add_parser(
        "export", parents=[common], help="export a model to ONNX (checked against torch) or to a diffusers folder"
    )
    export.add_argument("model")
    export.add_argument(
        "--format",
        choices=FORMATS,
        default="onnx",
        help="onnx (default: into the model's folder, for --backend onnx) or diffusers (a pipeline folder, with --to)",
    )
    export.add_argument("--to", metavar="DEST", help="--format diffusers: the folder to write (new or empty)")
    export.add_argument("--fp16", action="store_true", help="also write half-precision files for GPUs (onnx)")
    export.set_defaults(handler=cmd_export)
