"""`studio gallery collections|filters|animate`: collections as things of their own, saved filters, and an
interpolation's frames as an animated GIF or PNG.

Registered by `studio.cli.gallery`, which hands over its filter flags and their reader (this module does not
import it back: no import circles).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from studio.cli.arguments import item_id
from studio.cli.context import Context
from studio.cli.printing import print_table, say

if TYPE_CHECKING:
    from studio.store.gallery import GalleryFilter

FilterArguments = Callable[..., None]  # adds the filter flags to a parser (sort=False: without --sort)
FiltersFrom = Callable[[argparse.Namespace], "GalleryFilter"]


# --- collections ---------------------------------------------------------------------------------


def _collections(ctx: Context) -> Any:
    from studio.store.collections import CollectionRepository

    return CollectionRepository(ctx.store)


def cmd_collections_list(ctx: Context) -> dict[str, Any]:
    """studio gallery collections list"""
    found = _collections(ctx).list()
    if not ctx.args.json:
        if not found:
            say("no collections: `studio gallery collections create NAME` or `studio gallery collect ID... NAME`")
        else:
            print_table(
                [[c.name, str(c.count), c.created_at.strftime("%Y-%m-%d %H:%M")] for c in found],
                ["COLLECTION", "ITEMS", "CREATED"],
            )
    return {"collections": [c.as_dict() for c in found]}


def cmd_collections_create(ctx: Context) -> dict[str, Any]:
    """studio gallery collections create NAME"""
    made = _collections(ctx).create(ctx.args.name)
    if not ctx.args.json:
        say(f"collection '{made.name}' created (empty): `studio gallery collect ID... '{made.name}'` adds items")
    return made.as_dict()


def cmd_collections_rename(ctx: Context) -> dict[str, Any]:
    """studio gallery collections rename OLD NEW"""
    renamed = _collections(ctx).rename(ctx.args.old, ctx.args.new)
    if not ctx.args.json:
        say(f"collection '{ctx.args.old}' is now '{renamed.name}' ({renamed.count} item(s))")
    return {"old": ctx.args.old, **renamed.as_dict()}


def cmd_collections_delete(ctx: Context) -> dict[str, Any]:
    """studio gallery collections delete NAME"""
    held = _collections(ctx).delete(ctx.args.name)
    if not ctx.args.json:
        say(f"collection '{ctx.args.name}' deleted; its {held} item(s) stay in the gallery")
    return {"name": ctx.args.name, "items": held}


# --- saved filters -------------------------------------------------------------------------------


def _saved(ctx: Context) -> Any:
    from studio.store.saved_filters import SavedFilterRepository

    return SavedFilterRepository(ctx.store)


def cmd_filters_list(ctx: Context) -> dict[str, Any]:
    """studio gallery filters list"""
    found = _saved(ctx).list()
    if not ctx.args.json:
        if not found:
            say("no saved filters: `studio gallery filters save NAME [filters]` keeps one")
        for entry in found:
            shown = ", ".join(f"{key}={value}" for key, value in entry.filters.describe().items())
            say(f"{entry.name}: {shown} (sort {entry.sort})")
    return {"filters": [entry.as_dict() for entry in found]}


def cmd_filters_delete(ctx: Context) -> dict[str, Any]:
    """studio gallery filters delete NAME"""
    _saved(ctx).delete(ctx.args.name)
    if not ctx.args.json:
        say(f"saved filter '{ctx.args.name}' deleted")
    return {"name": ctx.args.name, "deleted": True}


def _save_handler(filters_from: FiltersFrom) -> Callable[[Context], dict[str, Any]]:
    def cmd_filters_save(ctx: Context) -> dict[str, Any]:
        """studio gallery filters save NAME [filters] [--sort] [--replace]"""
        entry = _saved(ctx).save(ctx.args.name, filters_from(ctx.args), ctx.args.sort, replace=ctx.args.replace)
        if not ctx.args.json:
            say(f"filter '{entry.name}' saved (the app's filter bar offers it)")
        return dict(entry.as_dict())

    return cmd_filters_save


# --- animate -------------------------------------------------------------------------------------


def cmd_animate(ctx: Context) -> dict[str, Any]:
    """studio gallery animate ID... --to FILE.gif|.png [--fps N] [--bounce] [--scale N] [--overwrite]"""
    from studio.engine.animation import animate

    args = ctx.args
    result = ctx.run(animate(ctx.store, args.ids, args.to, args.fps, args.bounce, args.scale, args.overwrite))
    if not args.json:
        say(f"{result.frames} frames of {result.width}x{result.height} at {result.fps} fps -> {result.destination}")
    return dict(result.as_dict())


def _bounded(low: int, high: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {what} '{text[:20]}': a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"invalid {what} {value}: choose {low} to {high}")
        return value

    return parse


def register_curation(
    sub: Any, common: argparse.ArgumentParser, filter_arguments: FilterArguments, filters_from: FiltersFrom
) -> None:
    """Add `gallery collections ...`, `gallery filters ...` and `gallery animate` to the gallery's subparsers."""
    from studio.limits import ANIMATION_FPS, ANIMATION_SCALE

    collections = sub.add_parser("collections", parents=[common], help="list, create, rename or delete collections")
    actions = collections.add_subparsers(dest="collections_action", metavar="ACTION", required=True)
    actions.add_parser("list", parents=[common], help="every collection with its item count").set_defaults(
        handler=cmd_collections_list
    )
    create = actions.add_parser("create", parents=[common], help="a new, empty collection")
    create.add_argument("name")
    create.set_defaults(handler=cmd_collections_create)
    rename = actions.add_parser("rename", parents=[common], help="give a collection another name")
    rename.add_argument("old")
    rename.add_argument("new")
    rename.set_defaults(handler=cmd_collections_rename)
    delete = actions.add_parser("delete", parents=[common], help="delete a collection (its items stay)")
    delete.add_argument("name")
    delete.set_defaults(handler=cmd_collections_delete)

    saved = sub.add_parser("filters", parents=[common], help="save, list or delete named gallery filters")
    filter_actions = saved.add_subparsers(dest="filters_action", metavar="ACTION", required=True)
    filter_actions.add_parser("list", parents=[common], help="every saved filter").set_defaults(
        handler=cmd_filters_list
    )
    save = filter_actions.add_parser("save", parents=[common], help="keep the filter flags given under a name")
    save.add_argument("name")
    save.add_argument("--replace", action="store_true", help="replace a saved filter of that name")
    filter_arguments(save)
    save.set_defaults(handler=_save_handler(filters_from))
    forget = filter_actions.add_parser("delete", parents=[common], help="forget a saved filter")
    forget.add_argument("name")
    forget.set_defaults(handler=cmd_filters_delete)

    animate = sub.add_parser(
        "animate", parents=[common], help="an interpolation's frames as an animated GIF or PNG (APNG)"
    )
    animate.add_argument(
        "ids", nargs="+", type=item_id, metavar="ID", help="one frame (its whole interpolation), or frames in order"
    )
    animate.add_argument("--to", required=True, metavar="FILE", help="a .gif or .png file outside the data home")
    animate.add_argument(
        "--fps",
        type=_bounded(ANIMATION_FPS.low, ANIMATION_FPS.high, "frame rate"),
        default=8,
        help="frames per second (default 8)",
    )
    animate.add_argument("--bounce", action="store_true", help="play forwards, then backwards")
    animate.add_argument(
        "--scale",
        type=_bounded(ANIMATION_SCALE.low, ANIMATION_SCALE.high, "scale"),
        default=None,
        help="enlarge each frame N times (default: small frames to about 256 pixels)",
    )
    animate.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")
    animate.set_defaults(handler=cmd_animate)
