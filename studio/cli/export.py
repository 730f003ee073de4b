"""`studio export`: a model to ONNX, checked against its torch checkpoint."""

from __future__ import annotations

import argparse
from typing import Any

from studio.cli.context import Context
from studio.cli.printing import say


def cmd_export(ctx: Context) -> dict[str, Any]:
    """studio export MODEL [--fp16]"""
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


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `export` to the top-level subparsers."""
    export = commands.add_parser("export", parents=[common], help="export a model to ONNX (checked against torch)")
    export.add_argument("model")
    export.add_argument("--fp16", action="store_true", help="also write half-precision files for GPUs")
    export.set_defaults(handler=cmd_export)
