"""`studio datasets ...`: import, add a sample, list, show and delete datasets."""

from __future__ import annotations

import argparse
from typing import Any

from studio.cli.arguments import BoundedInt
from studio.cli.context import Context
from studio.cli.printing import print_table, say
from studio.engine.families.declaration import CPU_TRAINING_LIMIT, describe_resolutions
from studio.limits import IMAGE_SIZE, SAMPLE_COUNT, SEED, WORKERS

SHOWN_PAIRS = 10  # near-duplicate pairs `datasets show` prints; --json has the report's whole list


def cmd_datasets_import(ctx: Context) -> dict[str, Any]:
    """studio datasets import PATH... --name NAME"""
    from studio.engine.datasets.importer import import_dataset

    args = ctx.args
    result = ctx.run(
        import_dataset(
            ctx.store,
            args.paths,
            args.name,
            size=args.size,
            channels=args.channels,
            labels=not args.no_labels,
            workers=args.workers,
        )
    )
    payload = result.as_dict()
    if not args.json:
        say(
            f"imported {result.imported} images into '{result.dataset.name}' "
            f"({result.dataset.size}x{result.dataset.size}, {result.dataset.channels} channel(s)); "
            f"{result.duplicates} duplicates dropped, {len(result.skipped)} skipped"
        )
        for skip in result.skipped:
            say(f"  skipped {skip.path}: {skip.reason}")
        if result.dataset.class_counts:
            say("  classes: " + ", ".join(f"{k} {v}" for k, v in result.dataset.class_counts.items()))
        near = near_duplicate_line(result.dataset.name, result.near_duplicate_count, result.near_duplicate_check)
        if near:
            say(f"  {near}")
    return payload


def near_duplicate_line(name: str, count: int | None, check: dict[str, Any]) -> str:
    """One line on the import's near-duplicate pairs (nothing when there are none)."""
    if count is None:
        return f"near-duplicates {check.get('note') or 'not checked'}"
    if count == 0:
        return ""
    pairs = "1 near-duplicate pair" if count == 1 else f"{count} near-duplicate pairs"
    return f"{pairs}; see `studio datasets show {name} --json` (none dropped: you decide)"


def cmd_datasets_add_sample(ctx: Context) -> dict[str, Any]:
    """studio datasets add-sample digits|shapes"""
    from studio.engine.datasets.samples import add_sample

    args = ctx.args
    summary = ctx.run(
        add_sample(
            ctx.store,
            args.sample,
            name=args.name,
            size=args.size,
            channels=args.channels,
            count=args.count,
            seed=args.seed,
        )
    )
    if not args.json:
        say(f"added sample '{args.sample}' as dataset '{summary.name}' with {summary.count} images")
    return {"dataset": summary.name, "imported": summary.count, **summary.as_dict()}


def cmd_datasets_list(ctx: Context) -> dict[str, Any]:
    """studio datasets list"""
    from studio.engine.datasets.storage import list_datasets

    datasets = list_datasets(ctx.store)
    if not ctx.args.json:
        if not datasets:
            say("no datasets yet: try `studio datasets add-sample digits`")
        else:
            print_table(
                [
                    [
                        d.name,
                        str(d.count),
                        f"{d.size}x{d.size}x{d.channels}",
                        str(len(d.class_counts)),
                        d.origin,
                        d.created_at,
                    ]
                    for d in datasets
                ],
                ["NAME", "IMAGES", "SHAPE", "CLASSES", "ORIGIN", "CREATED"],
            )
    return {"datasets": [d.as_dict() for d in datasets]}


def cmd_datasets_show(ctx: Context) -> dict[str, Any]:
    """studio datasets show NAME"""
    from studio.engine.datasets.storage import get_dataset

    dataset = get_dataset(ctx.store, ctx.args.name)
    payload = {**dataset.as_dict(), "path": str(ctx.home.absolute(dataset.folder)), "import": dataset.report}
    if not ctx.args.json:
        for key in ("name", "count", "size", "channels", "origin", "created_at", "path"):
            say(f"{key:>10}: {payload[key]}")
        if dataset.class_counts:
            say(f"{'classes':>10}: " + ", ".join(f"{k} {v}" for k, v in dataset.class_counts.items()))
        report = dataset.report
        if "near_duplicate_count" in report:  # imports from before the check have no such entry
            count = report["near_duplicate_count"]
            check = report.get("near_duplicate_check", {})
            if count is None:
                say(f"{'near-dups':>10}: {check.get('note') or 'not checked'}")
            else:
                say(f"{'near-dups':>10}: {count} pairs closer than {check.get('threshold')} (none dropped)")
            for pair in report.get("near_duplicates", [])[:SHOWN_PAIRS]:
                say(f"{'':>12}{pair['first']}  ~  {pair['second']}  ({pair['distance']:.3f})")
            if (count or 0) > SHOWN_PAIRS:
                say(f"{'':>12}the closest {SHOWN_PAIRS} shown; `--json` lists up to {len(report['near_duplicates'])}")
    return payload


def cmd_datasets_delete(ctx: Context) -> dict[str, Any]:
    """studio datasets delete NAME"""
    from studio.engine.datasets.storage import delete_dataset

    dataset = delete_dataset(ctx.store, ctx.args.name)
    if not ctx.args.json:
        say(f"deleted dataset '{dataset.name}' ({dataset.count} images)")
    return {"deleted": dataset.name, "count": dataset.count}


SIZE_HELP = (
    f"square size in pixels, {IMAGE_SIZE.describe()} (default 32); models train on "
    f"{describe_resolutions()} px (above {CPU_TRAINING_LIMIT} px only on a GPU)"
)


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `datasets` and its actions to the top-level subparsers."""
    datasets = commands.add_parser("datasets", help="import, list, show and delete datasets", parents=[common])
    # Nested subparsers inherit the top-level parser class, so usage mistakes stay one line.
    dsub = datasets.add_subparsers(dest="action", metavar="ACTION", required=True)

    imp = dsub.add_parser("import", parents=[common], help="import folders, zips and image files as a dataset")
    imp.add_argument("paths", nargs="+", metavar="PATH", help="folders (recursive), .zip archives or images")
    imp.add_argument("--name", required=True, help="name of the new dataset")
    imp.add_argument(
        "--size",
        type=BoundedInt(IMAGE_SIZE),
        default=32,
        help=SIZE_HELP,
    )
    imp.add_argument("--channels", type=int, choices=(1, 3), default=3, help="1 grey or 3 colour (default 3)")
    imp.add_argument("--no-labels", action="store_true", help="do not take class labels from folder names")
    imp.add_argument(
        "--workers",
        type=BoundedInt(WORKERS),
        default=None,
        help=f"decoding processes, {WORKERS.describe()} (default: one per core, at most 8)",
    )
    imp.set_defaults(handler=cmd_datasets_import)

    sample = dsub.add_parser("add-sample", parents=[common], help="add a built-in sample dataset (no download)")
    sample.add_argument("sample", choices=("digits", "shapes"))
    sample.add_argument("--name", default=None, help="dataset name (default: the sample's name)")
    sample.add_argument(
        "--size",
        type=BoundedInt(IMAGE_SIZE),
        default=32,
        help=SIZE_HELP,
    )
    sample.add_argument(
        "--channels", type=int, choices=(1, 3), default=None, help="1 or 3 (default: 1 for digits, 3 for shapes)"
    )
    sample.add_argument(
        "--count",
        type=BoundedInt(SAMPLE_COUNT),
        default=2000,
        help=f"images to draw, {SAMPLE_COUNT.describe()} (shapes only, default 2000)",
    )
    sample.add_argument(
        "--seed", type=BoundedInt(SEED), default=0, help=f"random seed, {SEED.describe()} (shapes only, default 0)"
    )
    sample.set_defaults(handler=cmd_datasets_add_sample)

    dsub.add_parser("list", parents=[common], help="list datasets").set_defaults(handler=cmd_datasets_list)
    show = dsub.add_parser("show", parents=[common], help="show one dataset")
    show.add_argument("name")
    show.set_defaults(handler=cmd_datasets_show)
    delete = dsub.add_parser("delete", parents=[common], help="delete a dataset and its files")
    delete.add_argument("name")
    delete.set_defaults(handler=cmd_datasets_delete)
