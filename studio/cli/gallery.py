"""`studio gallery ...`: browse, rate, tag, collect, export, check and reproduce generated images."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from studio.cli.arguments import BACKEND_CHOICES, BoundedInt, family_choices, item_id
from studio.cli.collections import register_curation
from studio.cli.context import Context
from studio.cli.gallery_import import register_import
from studio.cli.printing import print_note, print_table, say
from studio.errors import StudioError
from studio.failures import explain
from studio.limits import LABEL_SOURCES, MIN_RATING, NEIGHBOURS, PAGE, SEED

if TYPE_CHECKING:
    from studio.store.gallery import GalleryFilter


def parse_when(text: str, end: bool) -> datetime:
    """A date (YYYY-MM-DD) or ISO date-time in local time, as naive UTC (how rows store it).

    A bare date as --until means the end of that day, so --since D --until D is the whole day D.
    """
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day) + (timedelta(days=1) if end else timedelta())
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        raise StudioError(f"invalid date '{text}': use YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # the user's local time
    return moment.astimezone(UTC).replace(tzinfo=None)


def filters_from(args: argparse.Namespace) -> GalleryFilter:
    """The filter flags shared by list, export and to-dataset."""
    from studio.store.gallery import GalleryFilter

    return GalleryFilter(
        model=args.model,
        family=args.family,
        min_rating=args.min_rating,
        flag=args.flag,
        tag=args.tag,
        collection=args.collection,
        since=parse_when(args.since, False) if args.since else None,
        until=parse_when(args.until, True) if args.until else None,
        backend=args.backend,
        provider=args.provider,
        seed=args.seed,
        operation=args.operation,
        class_name=args.class_name,
        trash=getattr(args, "trash", False),
        memorised=getattr(args, "memorised", False),
        search=getattr(args, "search", None),
    )


def _ids(values: list[str]) -> list[int]:
    return [item_id(value) for value in values]


def _split(values: list[str], what: str) -> tuple[list[int], str]:
    """`ID... VALUE` -> ids and the value."""
    if len(values) < 2:
        raise StudioError(f"give one or more item ids, then the {what}")
    return _ids(values[:-1]), values[-1]


def _repository(ctx: Context) -> Any:
    from studio.store.gallery import GalleryRepository

    return GalleryRepository(ctx.store)


def _bulk(ctx: Context, result: Any, line: str) -> dict[str, Any]:
    if not ctx.args.json:
        say(line)
    return result.as_dict()


def _embed_pending(ctx: Context) -> None:
    """Bring every encoder's gallery vectors up to date, so a memorised filter misses nothing."""
    from studio.engine.embedding.queries import datasets_with_encoders, embed_job

    for name in datasets_with_encoders(ctx.store):
        ctx.run(embed_job(ctx.store, name))


def cmd_list(ctx: Context) -> dict[str, Any]:
    """studio gallery list [filters] [--sort] [--limit N] [--after CURSOR]"""
    args = ctx.args
    if args.memorised:
        _embed_pending(ctx)
    page = _repository(ctx).query(filters_from(args), args.sort, args.limit, args.after)
    if not args.json:
        if not page.items:
            say(
                "no gallery items match"
                if args.after or filters_from(args).describe()
                else "the gallery is empty: generated images will appear here"
            )
        else:
            print_table(
                [
                    [
                        str(i.id),
                        i.model,
                        i.family,
                        i.operation,
                        "-" if i.seed is None else str(i.seed),
                        i.class_name or "-",
                        "*" * i.rating or "-",
                        i.flag,
                        ",".join(i.tags),
                        i.created_at.strftime("%Y-%m-%d %H:%M"),
                    ]
                    for i in page.items
                ],
                ["ID", "MODEL", "FAMILY", "OPERATION", "SEED", "CLASS", "RATING", "FLAG", "TAGS", "CREATED"],
            )
            if page.next_cursor:
                say(f"more: --after {page.next_cursor}")
    return page.as_dict()


def cmd_facets(ctx: Context) -> dict[str, Any]:
    """studio gallery facets [filters]: counts per model, family, rating, flag, tag, collection..."""
    filters = filters_from(ctx.args)
    repository = _repository(ctx)
    payload = {"count": repository.count(filters), "facets": repository.facets(filters)}
    if not ctx.args.json:
        say(f"{payload['count']} item(s)")
        for facet, counts in payload["facets"].items():
            shown = ", ".join(f"{value} {count}" for value, count in sorted(counts.items()))
            say(f"{facet:>10}: {shown or '-'}")
    return payload


def cmd_rate(ctx: Context) -> dict[str, Any]:
    """studio gallery rate ID... STARS"""
    ids, stars = _split(ctx.args.values, "rating (0-5)")
    if not (stars.isascii() and stars.isdigit()) or len(stars) > 2:
        raise StudioError(f"invalid rating {stars[:20]!r}: choose 0 to 5 stars")
    result = _repository(ctx).rate(ids, int(stars))
    return _bulk(ctx, result, f"rated {len(ids)} item(s) {'*' * int(stars) or '0 stars'}")


def cmd_flag(ctx: Context) -> dict[str, Any]:
    """studio gallery flag ID... pick|reject|none"""
    ids, flag = _split(ctx.args.values, "flag (pick, reject or none)")
    result = _repository(ctx).set_flag(ids, flag)
    return _bulk(ctx, result, f"flagged {len(ids)} item(s) {flag}")


def cmd_tag(ctx: Context) -> dict[str, Any]:
    """studio gallery tag ID... TAG"""
    ids, name = _split(ctx.args.values, "tag")
    result = _repository(ctx).tag(ids, name)
    return _bulk(ctx, result, f"tagged {len(ids)} item(s) '{result.details['tag']}'")


def cmd_untag(ctx: Context) -> dict[str, Any]:
    """studio gallery untag ID... TAG"""
    ids, name = _split(ctx.args.values, "tag")
    result = _repository(ctx).untag(ids, name)
    return _bulk(ctx, result, f"removed '{result.details['tag']}' from {len(ids)} item(s)")


def cmd_collect(ctx: Context) -> dict[str, Any]:
    """studio gallery collect ID... COLLECTION [--move]"""
    ids, name = _split(ctx.args.values, "collection")
    result = _repository(ctx).collect(ids, name, move=ctx.args.move)
    return _bulk(
        ctx, result, f"{'moved' if ctx.args.move else 'added'} {len(ids)} item(s) to '{result.details['collection']}'"
    )


def cmd_uncollect(ctx: Context) -> dict[str, Any]:
    """studio gallery uncollect ID... COLLECTION"""
    ids, name = _split(ctx.args.values, "collection")
    result = _repository(ctx).uncollect(ids, name)
    return _bulk(ctx, result, f"took {len(ids)} item(s) out of '{result.details['collection']}'")


def cmd_note(ctx: Context) -> dict[str, Any]:
    """studio gallery note ID TEXT"""
    result = _repository(ctx).set_note(_ids([ctx.args.id])[0], ctx.args.text)
    return _bulk(ctx, result, "note saved")


def cmd_delete(ctx: Context) -> dict[str, Any]:
    """studio gallery delete ID..."""
    result = _repository(ctx).delete(_ids(ctx.args.ids))
    return _bulk(
        ctx,
        result,
        f"moved {len(result.ids)} item(s) to the trash (`studio gallery undelete` brings "
        "them back until `studio gallery empty-trash`)",
    )


def cmd_undelete(ctx: Context) -> dict[str, Any]:
    """studio gallery undelete ID..."""
    result = _repository(ctx).undelete(_ids(ctx.args.ids))
    return _bulk(ctx, result, f"restored {len(result.ids)} item(s) from the trash")


def cmd_empty_trash(ctx: Context) -> dict[str, Any]:
    """studio gallery empty-trash"""
    result = _repository(ctx).empty_trash()
    return _bulk(ctx, result, f"deleted {len(result.ids)} item(s) for good")


def cmd_show(ctx: Context) -> dict[str, Any]:
    """studio gallery show ID"""
    repository = _repository(ctx)
    item_id = _ids([ctx.args.id])[0]
    entry = repository.get(item_id)
    payload = {
        **entry.as_dict(),
        "file": str(ctx.store.home.absolute(entry.path)),
        "parents": [{"id": i, "role": r} for i, r in repository.parents(item_id)],
        "children": [{"id": i, "role": r} for i, r in repository.children(item_id)],
    }
    if not entry.deleted:
        from studio.engine.thumbnails import ensure_thumbnail

        try:
            payload["thumbnail"] = str(ensure_thumbnail(ctx.store, entry))
        except (StudioError, OSError) as error:
            # A thumbnail is a cache: a read-only or full home must not keep the item from showing.
            payload["thumbnail_error"] = str(explain(error, ctx.home.root) or error)
    if not ctx.args.json:
        for key in (
            "id",
            "file",
            "model",
            "family",
            "operation",
            "seed",
            "rating",
            "flag",
            "tags",
            "collections",
            "note",
            "backend",
            "provider",
            "width",
            "height",
            "created_at",
            "deleted",
        ):
            say(f"{key:>12}: {payload[key]}")
        for key, value in entry.params.items():
            say(f"{key:>12}= {value}")
        for link in payload["parents"]:
            say(f"{'parent':>12}: #{link['id']} ({link['role']})")
        for link in payload["children"]:
            say(f"{'child':>12}: #{link['id']} ({link['role']})")
    return payload


def cmd_reproduce(ctx: Context) -> dict[str, Any]:
    """studio gallery reproduce FILE [--backend torch|onnx]"""
    from studio.engine.curation import reproduce

    result = reproduce(ctx.store, ctx.args.file, ctx.args.backend)
    if not ctx.args.json:
        verdict = "reproduced: the pixels match" if result.match else "NOT reproduced: the pixels differ"
        say(
            f"{verdict} (largest difference {result.max_difference}/255, {result.operation} by "
            f"'{result.model}' on {result.backend})"
        )
    return result.as_dict()


def cmd_export(ctx: Context) -> dict[str, Any]:
    """studio gallery export DEST [filters] [--zip]"""
    from studio.engine.curation import export_selection

    args = ctx.args
    result = ctx.run(
        export_selection(ctx.store, args.destination, filters_from(args), args.sort, as_zip=args.zip, xmp_mode=args.xmp)
    )
    if not args.json:
        say(f"exported {result.count} image(s) and manifest.json to {result.destination}")
    return result.as_dict()


def cmd_to_dataset(ctx: Context) -> dict[str, Any]:
    """studio gallery to-dataset NAME [filters] [--label model|tag|none]"""
    from studio.engine.curation import gallery_to_dataset

    args = ctx.args
    summary = ctx.run(gallery_to_dataset(ctx.store, args.name, filters_from(args), label_by=args.label))
    if not args.json:
        say(f"dataset '{summary.name}': {summary.count} images of {summary.size}x{summary.size}x{summary.channels}")
    return summary.as_dict()


def cmd_check(ctx: Context) -> dict[str, Any]:
    """studio gallery check [--repair]"""
    from studio.engine.curation import check_gallery

    report = ctx.run(check_gallery(ctx.store, repair=ctx.args.repair))
    if not ctx.args.json:
        say(
            f"checked {report.checked} item(s): {len(report.rows_without_files)} without a file, "
            f"{len(report.files_without_rows)} file(s) without a row, {len(report.stale_thumbnails)} "
            f"stale thumbnail(s), {len(report.stray_files)} leftover file(s)"
        )
        if report.repaired:
            done = ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in report.repaired.items())
            say(f"repaired: {done}")
        elif not report.clean:
            say("run with --repair to fix what can be fixed")
        if report.skipped:
            say(f"skipped {len(report.skipped)} file(s) it cannot read (left as they are):")
            for skipped in report.skipped:
                say(f"  {skipped['path']}: {skipped['reason']}")
    return report.as_dict()


def cmd_tags(ctx: Context) -> dict[str, Any]:
    """studio gallery tags: every tag and collection with its item count."""
    repository = _repository(ctx)
    payload = {"tags": repository.tags(), "collections": repository.collections()}
    if not ctx.args.json:
        for kind in ("tags", "collections"):
            say(f"{kind}: " + (", ".join(f"{t['name']} ({t['count']})" for t in payload[kind]) or "none"))
    return payload


def cmd_gallery_similar(ctx: Context) -> dict[str, Any]:
    """studio gallery similar ID [--k K]"""
    from studio.engine.embedding.queries import similar

    found = similar(ctx.store, ctx.args.id, ctx.args.k)
    if not ctx.args.json:
        if not found:
            say(f"no other items of the same dataset's models to compare item {ctx.args.id} with")
        else:
            print_table([[str(i["id"]), f"{i['distance']:.4f}"] for i in found], ["ID", "DISTANCE"])
    return {"id": ctx.args.id, "similar": found}


def cmd_gallery_duplicates(ctx: Context) -> dict[str, Any]:
    """studio gallery duplicates [filters] [--threshold T] [--reject]"""
    from studio.engine.embedding.queries import reject_duplicates, search_duplicates

    search = search_duplicates(ctx.store, filters_from(ctx.args), ctx.args.threshold)
    groups = search.groups
    rejected = reject_duplicates(ctx.store, groups) if ctx.args.reject else []
    if not ctx.args.json:
        if search.left_out:
            print_note(f"{search.left_out} item(s) not compared: {search.left_out_reason}")
        if not groups:
            say("no near-duplicates")
        for group in groups:
            others = ", ".join(str(i) for i in group.ids if i != group.keep)
            say(f"keep {group.keep}; near-identical: {others} (max distance {group.distance:.4f})")
        if ctx.args.reject:
            say(f"rejected {len(rejected)} item(s), kept the best of each group")
        elif groups:
            say("add --reject to keep the best rated of each group and reject the rest")
    return {
        "groups": [group.as_dict() for group in groups],
        "rejected": rejected,
        "left_out": search.left_out,
        "left_out_reason": search.left_out_reason,
    }


def cmd_gallery_nearest(ctx: Context) -> dict[str, Any]:
    """studio gallery nearest ID: the nearest training image and whether the item counts as memorised."""
    from studio.engine.embedding.queries import nearest_training

    found = nearest_training(ctx.store, ctx.args.id)
    if not ctx.args.json:
        verdict = "MEMORISED" if found["memorised"] else "not memorised"
        label = f" ({found['label']})" if found["label"] else ""
        say(
            f"item {found['id']}: nearest training image #{found['position']} {found['source']}{label} of "
            f"'{found['dataset']}' at {found['distance']:.4f}: {verdict} "
            f"(rule: within {found['memorised_threshold']:.4f})"
        )
    return found


def _filter_arguments(parser: argparse.ArgumentParser, sort: bool = True) -> None:
    group = parser.add_argument_group("filters")
    group.add_argument("--model", help="made by this model")
    group.add_argument("--family", choices=[*family_choices(), "external"])  # external: made by another tool
    group.add_argument(
        "--min-rating",
        type=BoundedInt(MIN_RATING),
        metavar="N",
        help=f"rated at least N stars, {MIN_RATING.describe()}",
    )
    group.add_argument("--flag", choices=("pick", "reject", "none"))
    group.add_argument("--tag", help="carrying this tag")
    group.add_argument("--collection", help="in this collection")
    group.add_argument("--since", metavar="DATE", help="made on or after DATE (YYYY-MM-DD or ISO time)")
    group.add_argument("--until", metavar="DATE", help="made up to DATE (a bare date includes that day)")
    group.add_argument("--seed", type=BoundedInt(SEED), help=f"made with this seed, {SEED.describe()}")
    group.add_argument("--backend", choices=BACKEND_CHOICES)
    group.add_argument("--provider", help="cpu, cuda, ...")
    group.add_argument("--operation", choices=("sample", "interpolate", "inpaint", "checkpoint", "import"))
    group.add_argument("--class", dest="class_name", metavar="NAME", help="made as this class (conditional models)")
    group.add_argument(
        "--memorised", action="store_true", help="closer to a training image than its encoder's memorised rule"
    )
    group.add_argument("--search", metavar="TEXT", help="words found in the note, tags, model or settings")
    if sort:
        group.add_argument("--sort", choices=("newest", "oldest", "rating"), default="newest")


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `gallery` and its actions to the top-level subparsers."""
    gallery = commands.add_parser(
        "gallery", help="browse, rate, tag, export and check generated images", parents=[common]
    )
    sub = gallery.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = sub.add_parser("list", parents=[common], help="list items (filtered, sorted, a page at a time)")
    _filter_arguments(listing)
    listing.add_argument("--trash", action="store_true", help="list the trash instead")
    listing.add_argument(
        "--limit", type=BoundedInt(PAGE), default=50, help=f"items per page, {PAGE.describe()} (default 50)"
    )
    listing.add_argument("--after", metavar="CURSOR", help="the next page: the cursor a page printed")
    listing.set_defaults(handler=cmd_list)
    facets = sub.add_parser("facets", parents=[common], help="counts per model, family, rating, flag, tag...")
    _filter_arguments(facets, sort=False)
    facets.set_defaults(handler=cmd_facets)

    for name, handler, what in (
        ("rate", cmd_rate, "ID... STARS (0-5)"),
        ("flag", cmd_flag, "ID... pick|reject|none"),
        ("tag", cmd_tag, "ID... TAG"),
        ("untag", cmd_untag, "ID... TAG"),
        ("collect", cmd_collect, "ID... COLLECTION"),
        ("uncollect", cmd_uncollect, "ID... COLLECTION"),
    ):
        command = sub.add_parser(name, parents=[common], help=what)
        command.add_argument("values", nargs="+", metavar="ARG", help=what)
        if name == "collect":
            command.add_argument("--move", action="store_true", help="take the items out of other collections")
        command.set_defaults(handler=handler)
    note = sub.add_parser("note", parents=[common], help="set an item's note")
    note.add_argument("id")
    note.add_argument("text")
    note.set_defaults(handler=cmd_note)
    for name, handler, what in (
        ("delete", cmd_delete, "move items to the trash"),
        ("undelete", cmd_undelete, "bring items back from the trash"),
    ):
        command = sub.add_parser(name, parents=[common], help=what)
        command.add_argument("ids", nargs="+", metavar="ID")
        command.set_defaults(handler=handler)
    sub.add_parser("empty-trash", parents=[common], help="delete the trash for good").set_defaults(
        handler=cmd_empty_trash
    )
    show = sub.add_parser("show", parents=[common], help="one item: parameters, tags, lineage")
    show.add_argument("id")
    show.set_defaults(handler=cmd_show)
    reproduce = sub.add_parser("reproduce", parents=[common], help="make a Studio PNG again from its metadata")
    reproduce.add_argument("file")
    reproduce.add_argument("--backend", choices=BACKEND_CHOICES, default=None, help="default: the backend that made it")
    reproduce.set_defaults(handler=cmd_reproduce)
    export = sub.add_parser("export", parents=[common], help="copy a curated selection with a manifest.json")
    export.add_argument("destination", metavar="DEST", help="a new folder (or .zip file with --zip)")
    export.add_argument("--zip", action="store_true", help="write one zip archive")
    export.add_argument(
        "--xmp",
        choices=("embed", "sidecar", "none"),
        default="embed",
        help="ratings, pick/reject, tags and collections as XMP: inside each image (default), as .xmp sidecars, "
        "or none",
    )
    _filter_arguments(export)
    export.set_defaults(handler=cmd_export)
    dataset = sub.add_parser("to-dataset", parents=[common], help="turn a curated selection into a dataset")
    dataset.add_argument("name")
    dataset.add_argument(
        "--label",
        choices=LABEL_SOURCES,
        default="auto",
        help="class labels: auto (the class a conditional model made it as, else the model name), "
        "class, model, the first tag, or none",
    )
    _filter_arguments(dataset, sort=False)
    dataset.set_defaults(handler=cmd_to_dataset)
    check = sub.add_parser(
        "check", parents=[common], help="find (and --repair) missing files, stray files, stale thumbnails"
    )
    check.add_argument("--repair", action="store_true")
    check.set_defaults(handler=cmd_check)
    sub.add_parser("tags", parents=[common], help="every tag and collection").set_defaults(handler=cmd_tags)
    register_similarity(sub, common)
    register_import(sub, common)
    register_curation(sub, common, _filter_arguments, filters_from)


def register_similarity(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add `gallery similar`, `duplicates` and `nearest`."""
    similar = sub.add_parser("similar", parents=[common], help="the items most like an item (its encoder)")
    similar.add_argument("id", type=item_id)
    similar.add_argument(
        "--k", type=BoundedInt(NEIGHBOURS), default=12, help=f"how many, {NEIGHBOURS.describe()} (default 12)"
    )
    similar.set_defaults(handler=cmd_gallery_similar)
    duplicates = sub.add_parser("duplicates", parents=[common], help="groups of near-identical items")
    _filter_arguments(duplicates, sort=False)
    duplicates.add_argument(
        "--threshold", type=float, help="cosine distance (default: each encoder's measured near-duplicate rule)"
    )
    duplicates.add_argument("--reject", action="store_true", help="keep the best rated of each group, reject the rest")
    duplicates.set_defaults(handler=cmd_gallery_duplicates)
    nearest = sub.add_parser("nearest", parents=[common], help="an item's nearest training image (memorisation)")
    nearest.add_argument("id", type=item_id)
    nearest.set_defaults(handler=cmd_gallery_nearest)
