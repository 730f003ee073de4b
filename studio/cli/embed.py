"""`studio embed ...`: train a dataset's contrastive encoder, show it, catch up on embeddings, export
them, and map them; plus the similarity commands of `studio gallery` and `studio models score`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from studio.cli.arguments import BoundedInt
from studio.cli.context import Context, Interrupted
from studio.cli.printing import TrainingPrinter, say
from studio.engine.families.schema import split_settings
from studio.errors import StudioError
from studio.limits import SEED, STEPS


def cmd_embed_train(ctx: Context) -> dict[str, Any]:
    """studio embed train DATASET [--minutes M | --steps N] [--set KEY=VALUE] [--resume]"""
    # Imported here: the trainer brings torch, which no other command's start-up should pay for.
    from studio.engine.embedding.training import EncoderOptions, train_encoder
    from studio.engine.jobs import run_job

    args = ctx.args
    if args.steps is not None and args.minutes is not None:
        raise StudioError("give --steps or --minutes, not both")
    options = EncoderOptions(
        args.dataset,
        steps=args.steps,
        minutes=args.minutes,
        settings=split_settings(args.set),
        seed=args.seed,
        device=args.device,
        resume=args.resume,
    )
    printer = TrainingPrinter(sys.stderr, quiet=args.quiet)
    try:
        result = run_job(train_encoder(ctx.store, options), printer)
    except KeyboardInterrupt:
        raise Interrupted(
            f"encoder training of '{args.dataset}' stopped; its state is saved: continue with "
            f"`studio embed train {args.dataset} --resume`"
        ) from None
    finally:
        printer.close()
    payload = result.as_dict()
    if not args.json:
        if result.encoder is None:
            say(f"{result.status} at step {result.steps}: continue with `{payload['resume']}`")
        else:
            say(_describe(payload))
    return payload


def _describe(encoder: dict[str, Any]) -> str:
    probe = (
        f"; linear probe {encoder['probe_accuracy']:.3f} (majority class {encoder['probe_chance']:.3f})"
        if encoder.get("probe_accuracy") is not None
        else ""
    )
    return (
        f"encoder {encoder['weights_hash'][:12]} of '{encoder.get('dataset', '?')}': {encoder['steps']} steps, "
        f"{encoder['dims']}-d at {encoder['input_size']} px{probe}; near-duplicate within "
        f"{encoder['duplicate_threshold']:.4g}, memorised within {encoder['memorised_threshold']:.4g}"
    )


def cmd_embed_show(ctx: Context) -> dict[str, Any]:
    """studio embed show DATASET: the current encoder, older versions, items still to embed."""
    from studio.engine.embedding.queries import encoder_summary, no_encoder_hint
    from studio.store.embeddings import EmbeddingRepository

    repository = EmbeddingRepository(ctx.store)
    encoders = repository.encoders(repository.dataset_id(ctx.args.dataset))
    if not encoders:
        raise StudioError(no_encoder_hint(ctx.args.dataset))
    current = {"dataset": ctx.args.dataset, **encoder_summary(encoders[0]), "metrics": encoders[0].metrics}
    payload = {
        **current,
        "pending": repository.missing_count(encoders[0]),
        "versions": [encoder_summary(e) for e in encoders],
    }
    if not ctx.args.json:
        say(_describe(current))
        say(f"gallery items still to embed: {payload['pending']}; versions: {len(encoders)}")
    return payload


def cmd_embed_pending(ctx: Context) -> dict[str, Any]:
    """studio embed pending [DATASET]: embed gallery items that have no vector yet."""
    from studio.engine.embedding.queries import datasets_with_encoders, embed_job

    names = [ctx.args.dataset] if ctx.args.dataset else datasets_with_encoders(ctx.store)
    counts = {name: int(ctx.run(embed_job(ctx.store, name))) for name in names}
    if not ctx.args.json:
        say(", ".join(f"{name}: {count} embedded" for name, count in counts.items()) or "no dataset has an encoder")
    return {"embedded": counts}


def cmd_embed_export(ctx: Context) -> dict[str, Any]:
    """studio embed export DATASET|MODEL --to FILE.npy"""
    from studio.engine.embedding.queries import export_embeddings
    from studio.store.embeddings import EmbeddingRepository

    args = ctx.args
    repository = EmbeddingRepository(ctx.store)
    dataset = model = None
    is_model = _model_exists(ctx, args.name)
    try:
        repository.dataset_id(args.name)
        is_dataset = True
    except StudioError:
        is_dataset = False
    if args.model or (is_model and not is_dataset):
        model = args.name
    elif is_dataset:
        dataset = args.name
    else:
        raise StudioError(f"no dataset or model named '{args.name}'")
    if is_model and is_dataset and not args.model:
        say(f"'{args.name}' names a dataset and a model: exporting the dataset (add --model for the model's items)")
    payload = export_embeddings(ctx.store, dataset, model, Path(args.to))
    if not args.json:
        say(f"wrote {payload['rows']} embeddings ({payload['dims']}-d) to {payload['file']}, index {payload['index']}")
    return payload


def _model_exists(ctx: Context, name: str) -> bool:
    from studio.engine.library import model_exists

    return bool(model_exists(ctx.store, name))


def cmd_embed_map(ctx: Context) -> dict[str, Any]:
    """studio embed map DATASET [--no-gallery]: 2-D PCA coordinates of the dataset and gallery."""
    from studio.engine.embedding.queries import map_points

    payload = map_points(ctx.store, ctx.args.dataset, gallery=not ctx.args.no_gallery)
    if not ctx.args.json:
        kinds: dict[str, int] = {}
        for point in payload["points"]:
            kinds[point["kind"]] = kinds.get(point["kind"], 0) + 1
        say(
            f"map of '{payload['dataset']}': "
            + ", ".join(f"{count} {kind} points" for kind, count in kinds.items())
            + " (use --json for the coordinates, or the app's Map page)"
        )
    return payload


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `embed` and its actions to the top-level subparsers."""
    embed = commands.add_parser(
        "embed", parents=[common], help="a dataset's contrastive encoder: train, show, export, map"
    )
    sub = embed.add_subparsers(dest="action", metavar="ACTION", required=True)
    train = sub.add_parser("train", parents=[common], help="train (or resume) the dataset's encoder (SimCLR)")
    train.add_argument("dataset")
    budget = train.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, help="training budget in minutes (default 3)")
    budget.add_argument("--steps", type=BoundedInt(STEPS), help=f"training steps, {STEPS.describe()}")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an encoder setting")
    train.add_argument("--seed", type=BoundedInt(SEED), default=0, help=f"random seed, {SEED.describe()} (default 0)")
    train.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    train.add_argument("--resume", action="store_true", help="continue a stopped training")
    train.set_defaults(handler=cmd_embed_train)
    show = sub.add_parser("show", parents=[common], help="the dataset's encoder and its figures")
    show.add_argument("dataset")
    show.set_defaults(handler=cmd_embed_show)
    pending = sub.add_parser("pending", parents=[common], help="embed gallery items that have no vector yet")
    pending.add_argument("dataset", nargs="?")
    pending.set_defaults(handler=cmd_embed_pending)
    export = sub.add_parser("export", parents=[common], help="embeddings to FILE.npy with a JSON index beside it")
    export.add_argument("name", metavar="DATASET|MODEL")
    export.add_argument("--to", required=True, metavar="FILE.npy")
    export.add_argument("--model", action="store_true", help="NAME is a model: export its gallery items")
    export.set_defaults(handler=cmd_embed_export)
    mapping = sub.add_parser("map", parents=[common], help="2-D map (PCA) of the dataset and its gallery")
    mapping.add_argument("dataset")
    mapping.add_argument("--no-gallery", action="store_true", help="the dataset's images only")
    mapping.set_defaults(handler=cmd_embed_map)
