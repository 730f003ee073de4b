"""`studio gallery import PATH...`: images made by other tools (or another Studio) into the gallery."""

from __future__ import annotations

import argparse
from typing import Any

from studio.cli.context import Context
from studio.cli.printing import say


def cmd_import(ctx: Context) -> dict[str, Any]:
    """studio gallery import PATH... [--json]"""
    from studio.engine.interchange.foreign import tool_title
    from studio.engine.interchange.importer import import_gallery_images

    result = ctx.run(import_gallery_images(ctx.store, ctx.args.paths))
    if not ctx.args.json:
        say(
            f"imported {len(result.imported)} image(s), {len(result.duplicates)} already in the gallery, "
            f"{len(result.skipped)} skipped"
        )
        for item in result.imported:
            say(f"  #{item['id']} {item['path']}: {tool_title(item['tool']) or 'unknown tool'}, model {item['model']}")
        for duplicate in result.duplicates:
            say(f"  {duplicate['path']}: already in the gallery as #{duplicate['item']}")
        for skipped in result.skipped:
            say(f"  {skipped['path']}: skipped: {skipped['reason']}")
        for note in result.notes:
            say(f"  {note['path']}: note: {note['note']}")
    return result.as_dict()


def register_import(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add `gallery import`."""
    command = sub.add_parser(
        "import", parents=[common], help="bring images made elsewhere (A1111, ComfyUI, InvokeAI...) into the gallery"
    )
    command.add_argument("paths", nargs="+", metavar="PATH", help="PNG, JPEG or WebP files, or folders of them")
    command.set_defaults(handler=cmd_import)
