"""`studio generate`, `studio interpolate` and `studio inpaint`: new gallery images from a model."""

from __future__ import annotations

import argparse
from typing import Any

from studio.cli.arguments import BACKEND_CHOICES, DEVICE_CHOICES, PROVIDER_CHOICES, BoundedInt
from studio.cli.context import Context
from studio.cli.printing import print_note, say
from studio.engine.families.schema import split_settings
from studio.errors import StudioError
from studio.limits import COUNT, FRAMES, SEED


def _sampling_overrides(ctx: Context, with_class: bool = True) -> dict[str, Any]:
    """--set pairs as text (the opened model's sampling schema parses and validates them), and --class."""
    values: dict[str, Any] = dict(split_settings(ctx.args.set))
    if "class" in values:
        raise StudioError("the class is chosen with --class NAME, not --set")
    if with_class and ctx.args.class_name is not None:
        values["class"] = ctx.args.class_name
    return values


def _print_generated(ctx: Context, result: Any, what: str) -> dict[str, Any]:
    if result.note:
        print_note(result.note)
    if not ctx.args.json:
        say(
            f"{len(result.items)} {what} in {result.seconds:.2f}s "
            f"({result.seconds / max(1, len(result.items)):.3f}s each, {result.backend} on {result.device})"
        )
        for item in result.items:
            label = f"seed {item['seed']}" if item["seed"] is not None else result.operation
            if item.get("class") is not None:
                label += f", class {item['class']}"
            say(f"  #{item['id']} {label}: {item['path']}")
    return result.as_dict()


def _backend_choice(args: argparse.Namespace) -> dict[str, Any]:
    """The backend, torch device and ONNX Runtime provider the command asked for, as the engine takes them."""
    return {"backend": args.backend, "device": args.device, "provider": args.provider}


def cmd_generate(ctx: Context) -> dict[str, Any]:
    """studio generate MODEL --count N [--seed S] [--backend torch|onnx] [--set k=v ...]"""
    from studio.engine.generation import generate

    args = ctx.args
    result = ctx.run(
        generate(
            ctx.store,
            args.model,
            args.count,
            args.seed,
            _sampling_overrides(ctx),
            **_backend_choice(args),
        )
    )
    return _print_generated(ctx, result, "image(s)")


def cmd_interpolate(ctx: Context) -> dict[str, Any]:
    """studio interpolate MODEL --from A --to B --frames K"""
    from studio.engine.generation import EndpointRef, interpolate

    args = ctx.args
    start = EndpointRef.parse(args.start, args.class_name)
    end = EndpointRef.parse(args.end, args.to_class if args.to_class is not None else args.class_name)
    result = ctx.run(
        interpolate(
            ctx.store,
            args.model,
            start,
            end,
            args.frames,
            _sampling_overrides(ctx, with_class=False),
            **_backend_choice(args),
        )
    )
    return _print_generated(ctx, result, "frame(s)")


def cmd_inpaint(ctx: Context) -> dict[str, Any]:
    """studio inpaint MODEL --image PATH --mask PATH [--count N]"""
    from studio.engine.generation import inpaint

    args = ctx.args
    result = ctx.run(
        inpaint(
            ctx.store,
            args.model,
            args.image,
            args.mask,
            args.count,
            args.seed,
            _sampling_overrides(ctx),
            **_backend_choice(args),
        )
    )
    return _print_generated(ctx, result, "completion(s)")


def _backend_arguments(parser: argparse.ArgumentParser) -> None:
    """--backend, --device, --provider and --set, shared by generate, interpolate and inpaint."""
    parser.add_argument(
        "--backend",
        default="torch",
        choices=BACKEND_CHOICES,
        help="torch (the checkpoint) or onnx (the export, through ONNX Runtime)",
    )
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="torch device")
    parser.add_argument(
        "--provider",
        default="auto",
        choices=PROVIDER_CHOICES,
        help="ONNX Runtime provider (auto: the GPU when usable, else the CPU)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a sampling setting such as steps, eta, temperature or guidance; repeatable",
    )
    parser.add_argument(
        "--class",
        dest="class_name",
        default=None,
        metavar="NAME",
        help="a class-conditional model's class (a label of its dataset, e.g. 7); default: any, drawn per seed",
    )


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `generate`, `interpolate` and `inpaint` to the top-level subparsers."""
    gen = commands.add_parser("generate", parents=[common], help="sample images from a model into the gallery")
    gen.add_argument("model")
    gen.add_argument(
        "--count", type=BoundedInt(COUNT), default=8, help=f"images to make, {COUNT.describe()} (default 8)"
    )
    gen.add_argument(
        "--seed",
        type=BoundedInt(SEED),
        default=None,
        help=f"first seed, {SEED.describe()} (default: random); image i uses seed+i",
    )
    _backend_arguments(gen)
    gen.set_defaults(handler=cmd_generate)

    interp = commands.add_parser("interpolate", parents=[common], help="frames between two seeds, items or images")
    interp.add_argument("model")
    interp.add_argument(
        "--from",
        dest="start",
        required=True,
        metavar="SEED|#ITEM|FILE",
        help="a seed (123), a gallery item (#45) or, for a VAE, an image file",
    )
    interp.add_argument("--to", dest="end", required=True, metavar="SEED|#ITEM|FILE", help="the other end")
    interp.add_argument(
        "--to-class",
        default=None,
        metavar="NAME",
        help="the class at the --to end (default: --class, or the end's own): frames walk between the two",
    )
    interp.add_argument(
        "--frames",
        type=BoundedInt(FRAMES),
        default=8,
        help=f"frames, both ends included, {FRAMES.describe()} (default 8)",
    )
    _backend_arguments(interp)
    interp.set_defaults(handler=cmd_interpolate)

    paint = commands.add_parser("inpaint", parents=[common], help="regenerate the masked part of an image")
    paint.add_argument("model")
    paint.add_argument("--image", required=True, metavar="PATH|#ITEM", help="an image file or a gallery item (#45)")
    paint.add_argument(
        "--mask",
        required=True,
        metavar="PATH",
        help="an image of the same size: white where new pixels are wanted, black where kept",
    )
    paint.add_argument(
        "--count", type=BoundedInt(COUNT), default=4, help=f"completions to make, {COUNT.describe()} (default 4)"
    )
    paint.add_argument(
        "--seed", type=BoundedInt(SEED), default=None, help=f"first seed, {SEED.describe()} (default: random)"
    )
    _backend_arguments(paint)
    paint.set_defaults(handler=cmd_inpaint)
