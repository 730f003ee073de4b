"""The headless command line: thin subcommands over engine and store calls.

Every command accepts --json and then prints exactly one JSON object on stdout. Progress goes
to stderr. A user error prints one line and exits 1; it never shows a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TextIO

from studio import __version__
from studio.engine.jobs import Event, Job, Progress, run_job
from studio.errors import StudioError
from studio.home import DataHome

EXIT_USER_ERROR = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130


class UsageError(StudioError):
    """The command line itself is wrong."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports mistakes in one line instead of usage text plus a line."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


class ProgressPrinter:
    """Shows job progress on stderr: one rewritten line on a terminal, occasional lines otherwise."""

    def __init__(self, stream: TextIO, quiet: bool = False) -> None:
        self.stream = stream
        self.quiet = quiet
        self.tty = stream.isatty()
        self._last_stage = ""
        self._last_tenth = -1
        self._last_time = 0.0

    def __call__(self, event: Event) -> None:
        if self.quiet or not isinstance(event, Progress):
            return
        fraction = event.fraction
        percent = f"{fraction * 100:5.1f}%" if fraction is not None else "     "
        line = f"{event.stage:<10} {percent} {event.message}"
        if self.tty:
            now = time.monotonic()
            if now - self._last_time > 0.05 or fraction == 1.0:
                self.stream.write("\r\033[K" + line)
                self.stream.flush()
                self._last_time = now
            return
        tenth = int(fraction * 10) if fraction is not None else -1
        if event.stage != self._last_stage or tenth != self._last_tenth:
            self.stream.write(line + "\n")
            self.stream.flush()
        self._last_stage, self._last_tenth = event.stage, tenth

    def close(self) -> None:
        """End the rewritten line."""
        if self.tty and not self.quiet and self._last_time:
            self.stream.write("\n")
            self.stream.flush()


class Context:
    """What every command gets: the data home, the output mode and a lazily opened store."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.home = DataHome.resolve(args.home)
        self._store: Any = None

    @property
    def store(self) -> Any:
        """The store, opened (and migrated) on first use."""
        if self._store is None:
            from studio.store.database import open_store

            self._store = open_store(self.home)
        return self._store

    def run(self, job: Job) -> Any:
        """Drive a job with progress on stderr."""
        printer = ProgressPrinter(sys.stderr, quiet=self.args.quiet)
        try:
            return run_job(job, printer)
        finally:
            printer.close()

    def close(self) -> None:
        """Release the store."""
        if self._store is not None:
            self._store.close()


def _print_table(rows: list[list[str]], headers: list[str]) -> None:
    widths = [max(len(str(v)) for v in column) for column in zip(headers, *rows, strict=False)]
    for row in [headers, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=False)).rstrip())


# --- datasets -----------------------------------------------------------------------------


def cmd_datasets_import(ctx: Context) -> dict[str, Any]:
    """studio datasets import PATH... --name NAME"""
    from studio.engine.datasets.importer import import_dataset

    args = ctx.args
    result = ctx.run(import_dataset(
        ctx.store, args.paths, args.name, size=args.size, channels=args.channels,
        labels=not args.no_labels, workers=args.workers,
    ))
    payload = result.as_dict()
    if not args.json:
        print(f"imported {result.imported} images into '{result.dataset.name}' "
              f"({result.dataset.size}x{result.dataset.size}, {result.dataset.channels} channel(s)); "
              f"{result.duplicates} duplicates dropped, {len(result.skipped)} skipped")
        for skip in result.skipped:
            print(f"  skipped {skip.path}: {skip.reason}")
        if result.dataset.class_counts:
            print("  classes: " + ", ".join(f"{k} {v}" for k, v in result.dataset.class_counts.items()))
    return payload


def cmd_datasets_add_sample(ctx: Context) -> dict[str, Any]:
    """studio datasets add-sample digits|shapes"""
    from studio.engine.datasets.samples import add_sample

    args = ctx.args
    summary = ctx.run(add_sample(ctx.store, args.sample, name=args.name, size=args.size,
                                 channels=args.channels, count=args.count, seed=args.seed))
    if not args.json:
        print(f"added sample '{args.sample}' as dataset '{summary.name}' with {summary.count} images")
    return {"dataset": summary.name, "imported": summary.count, **summary.as_dict()}


def cmd_datasets_list(ctx: Context) -> dict[str, Any]:
    """studio datasets list"""
    from studio.engine.datasets.storage import list_datasets

    datasets = list_datasets(ctx.store)
    if not ctx.args.json:
        if not datasets:
            print("no datasets yet: try `studio datasets add-sample digits`")
        _print_table(
            [[d.name, str(d.count), f"{d.size}x{d.size}x{d.channels}", str(len(d.class_counts)), d.origin,
              d.created_at] for d in datasets],
            ["NAME", "IMAGES", "SHAPE", "CLASSES", "ORIGIN", "CREATED"],
        ) if datasets else None
    return {"datasets": [d.as_dict() for d in datasets]}


def cmd_datasets_show(ctx: Context) -> dict[str, Any]:
    """studio datasets show NAME"""
    from studio.engine.datasets.storage import get_dataset

    dataset = get_dataset(ctx.store, ctx.args.name)
    payload = {**dataset.as_dict(), "path": str(ctx.home.absolute(dataset.folder)), "import": dataset.report}
    if not ctx.args.json:
        for key in ("name", "count", "size", "channels", "origin", "created_at", "path"):
            print(f"{key:>10}: {payload[key]}")
        if dataset.class_counts:
            print(f"{'classes':>10}: " + ", ".join(f"{k} {v}" for k, v in dataset.class_counts.items()))
    return payload


def cmd_datasets_delete(ctx: Context) -> dict[str, Any]:
    """studio datasets delete NAME"""
    from studio.engine.datasets.storage import delete_dataset

    dataset = delete_dataset(ctx.store, ctx.args.name)
    if not ctx.args.json:
        print(f"deleted dataset '{dataset.name}' ({dataset.count} images)")
    return {"deleted": dataset.name, "count": dataset.count}


# --- models, training, generation ---------------------------------------------------------


class Interrupted(Exception):  # noqa: N818 - it is what happened, not an error
    """Ctrl-C after the work was safely stopped: the message says what was kept."""


class TrainingPrinter(ProgressPrinter):
    """Training progress: step, losses, throughput and ETA; warnings on their own line."""

    def __call__(self, event: Event) -> None:
        from studio.engine.training import CheckpointSaved, TrainingProgress, TrainingWarning

        if self.quiet:
            return
        if isinstance(event, TrainingWarning):
            self.stream.write(("\n" if self.tty else "") + f"warning at step {event.step}: {event.message}\n")
        elif isinstance(event, CheckpointSaved) and not self.tty:
            self.stream.write(f"checkpoint saved at step {event.step}\n")
        elif isinstance(event, TrainingProgress):
            target = f"/{event.target_steps}" if event.target_steps else ""
            losses = "  ".join(f"{k} {v:.4g}" for k, v in event.losses.items())
            eta = f"  ETA {_clock(event.eta_seconds)}" if event.eta_seconds is not None else ""
            line = f"step {event.step}{target}  {losses}  {event.samples_per_second:.0f} img/s{eta}"
            if self.tty:
                self.stream.write("\r\033[K" + line)
                self._last_time = time.monotonic()
            else:
                now = time.monotonic()
                if now - self._last_time >= 5 or event.step == event.target_steps:
                    self.stream.write(line + "\n")
                    self._last_time = now
        else:
            return
        self.stream.flush()


def _clock(seconds: float | None) -> str:
    total = int(seconds or 0)
    if total >= 3600:
        return f"{total // 3600}:{total // 60 % 60:02d}:{total % 60:02d}"
    return f"{total // 60}:{total % 60:02d}"


def cmd_train(ctx: Context) -> dict[str, Any]:
    """studio train --family F --dataset D --name M [--steps N | --minutes M] ..."""
    from studio.engine.checkpoints import read_config
    from studio.engine.library import model_exists, model_folder
    from studio.engine.models.registry import family_class, parse_overrides
    from studio.engine.training import train
    from studio.engine.training_options import TrainOptions

    args = ctx.args
    family_name = args.family
    if args.resume and family_name is None and model_exists(ctx.store, args.name):
        family_name = str(read_config(model_folder(ctx.store, args.name))["family"])
    settings = parse_overrides(family_class(family_name), args.set) if family_name else {}
    if args.set and not family_name:
        raise StudioError("--set needs --family (or --resume of an existing model)")
    options = TrainOptions(
        args.name, family=args.family, dataset=args.dataset, steps=args.steps, minutes=args.minutes,
        seed=args.seed, init_from=args.init_from, resume=args.resume, settings=settings, device=args.device,
        checkpoint_every=args.checkpoint_every, preview_every=args.diagnostics_every, preview_count=0,
        threads=args.threads,
    )
    job = train(ctx.store, options)
    printer = TrainingPrinter(sys.stderr, quiet=args.quiet)
    try:
        result = run_job(job, printer)
    except KeyboardInterrupt:
        raise Interrupted(
            f"training of '{args.name}' stopped; the checkpoint is saved: continue with "
            f"`studio train --name {args.name} --resume --steps N`"
        ) from None
    finally:
        printer.close()
    if not args.json:
        losses = ", ".join(f"{k} {v:.4g}" for k, v in result.final_losses.items())
        print(f"{result.status}: '{result.model}' ({result.family}) at step {result.steps} on {result.device} "
              f"in {result.seconds:.1f}s; {losses}")
        for warning in result.warnings:
            print(f"  warning: {warning}")
    return result.as_dict()


def cmd_models_list(ctx: Context) -> dict[str, Any]:
    """studio models list"""
    from studio.engine.library import list_models

    models = list_models(ctx.store)
    if not ctx.args.json:
        if not models:
            print("no models yet: try `studio train --family vae --dataset digits --name first --steps 500`")
        else:
            _print_table(
                [[m.name, m.family, f"{m.resolution}x{m.resolution}x{m.channels}", m.dataset or "-", str(m.steps),
                  f"{m.parameter_count / 1e6:.2f}M", f"{m.size_bytes / 1e6:.1f} MB", m.updated_at] for m in models],
                ["NAME", "FAMILY", "SHAPE", "DATASET", "STEPS", "PARAMS", "SIZE", "UPDATED"],
            )
    return {"models": [m.as_dict() for m in models]}


def cmd_models_show(ctx: Context) -> dict[str, Any]:
    """studio models show NAME"""
    from studio.engine.library import get_model

    model = get_model(ctx.store, ctx.args.name)
    payload = {**model.as_dict(), "path": str(ctx.home.absolute(model.folder))}
    if not ctx.args.json:
        for key in ("name", "family", "resolution", "channels", "dataset", "steps", "parameter_count",
                    "size_bytes", "parent", "weights_hash", "created_at", "updated_at", "path"):
            print(f"{key:>16}: {payload[key]}")
        export = model.export
        state = "not exported" if export is None else (
            "damaged: export again" if export.get("damaged") else
            f"exported {export['exported_at']}{' (fp16 too)' if export['fp16'] else ''}"
            f"{'' if export['current'] else ', out of date: export again'}")
        print(f"{'onnx':>16}: {state}")
        for key, value in model.hyperparameters.items():
            print(f"{key:>16}= {value}")
    return payload


def cmd_models_delete(ctx: Context) -> dict[str, Any]:
    """studio models delete NAME"""
    from studio.engine.library import delete_model

    model = delete_model(ctx.store, ctx.args.name)
    if not ctx.args.json:
        print(f"deleted model '{model.name}' ({model.family}, {model.steps} steps)")
    return {"deleted": model.name}


def cmd_models_import(ctx: Context) -> dict[str, Any]:
    """studio models import FOLDER [--name NAME]"""
    from pathlib import Path

    from studio.engine.library import import_model

    model = import_model(ctx.store, Path(ctx.args.folder), ctx.args.name)
    if not ctx.args.json:
        print(f"imported model '{model.name}' ({model.family}, {model.resolution}px x {model.channels}, "
              f"{model.steps} steps)")
    return model.as_dict()


def cmd_families(ctx: Context) -> dict[str, Any]:
    """studio families: what each family is and the settings it takes."""
    from studio.engine.models.registry import describe_families

    families = describe_families()
    if not ctx.args.json:
        for family in families:
            print(f"{family['name']}: {family['title']}  [{', '.join(family['capabilities'])}]")
            print(f"  {family['description']}")
            for h in family["schema"]:
                bounds = f" {h['choices']}" if h["choices"] else (
                    f" [{h['minimum']:g}..{h['maximum']:g}]" if h["minimum"] is not None else "")
                print(f"    {h['name']:<14} {h['group']:<9} default {h['default']!s:<8}{bounds}  {h['help']}")
    return {"families": families}


def _sampling_overrides(ctx: Context) -> dict[str, Any]:
    """--set pairs as text; the opened model's sampling schema parses and validates them."""
    values: dict[str, Any] = {}
    for pair in ctx.args.set:
        key, separator, text = pair.partition("=")
        if not separator or not key.strip():
            raise StudioError(f"--set takes key=value, not '{pair}'")
        values[key.strip()] = text
    return values


def _print_generated(ctx: Context, result: Any, what: str) -> dict[str, Any]:
    if result.note:
        print(f"studio: {result.note}", file=sys.stderr)
    if not ctx.args.json:
        print(f"{len(result.items)} {what} in {result.seconds:.2f}s "
              f"({result.seconds / max(1, len(result.items)):.3f}s each, {result.backend} on {result.device})")
        for item in result.items:
            label = f"seed {item['seed']}" if item["seed"] is not None else result.operation
            print(f"  #{item['id']} {label}: {item['path']}")
    return result.as_dict()


def cmd_generate(ctx: Context) -> dict[str, Any]:
    """studio generate MODEL --count N [--seed S] [--backend torch|onnx] [--set k=v ...]"""
    from studio.engine.generation import generate

    args = ctx.args
    result = ctx.run(generate(ctx.store, args.model, args.count, args.seed, _sampling_overrides(ctx),
                              backend=args.backend, device=args.device, provider=args.provider))
    return _print_generated(ctx, result, "image(s)")


def cmd_interpolate(ctx: Context) -> dict[str, Any]:
    """studio interpolate MODEL --from A --to B --frames K"""
    from studio.engine.generation import EndpointRef, interpolate

    args = ctx.args
    start, end = EndpointRef.parse(args.start), EndpointRef.parse(args.end)
    result = ctx.run(interpolate(ctx.store, args.model, start, end, args.frames, _sampling_overrides(ctx),
                                 backend=args.backend, device=args.device, provider=args.provider))
    return _print_generated(ctx, result, "frame(s)")


def cmd_inpaint(ctx: Context) -> dict[str, Any]:
    """studio inpaint MODEL --image PATH --mask PATH [--count N]"""
    from studio.engine.generation import inpaint

    args = ctx.args
    result = ctx.run(inpaint(ctx.store, args.model, args.image, args.mask, args.count, args.seed,
                             _sampling_overrides(ctx), backend=args.backend, device=args.device,
                             provider=args.provider))
    return _print_generated(ctx, result, "completion(s)")


def cmd_export(ctx: Context) -> dict[str, Any]:
    """studio export MODEL [--fp16]"""
    from studio.engine.export import export_model

    result = ctx.run(export_model(ctx.store, ctx.args.model, fp16=ctx.args.fp16))
    if not ctx.args.json:
        print(f"exported '{result.model}' to {result.folder} in {result.seconds:.1f}s")
        for role, entry in result.networks.items():
            difference, tolerance = entry["max_abs_difference"], entry["tolerance"]
            line = f"  {role:<10} {entry['file']:<18} parity {difference:.2g} (<= {tolerance:g})"
            if "fp16" in entry:
                line += f"; fp16 {entry['fp16']['max_abs_difference']:.2g}"
            print(line)
    return result.as_dict()


# --- info ---------------------------------------------------------------------------------


def cmd_info(ctx: Context) -> dict[str, Any]:
    """studio info: versions, the data home and what it holds."""
    from importlib import metadata

    from studio.engine.devices import provider_report, torch_devices

    versions = {}
    for package in ("torch", "onnxruntime-gpu", "onnxruntime", "onnx", "PySide6-Essentials", "pillow",
                    "sqlalchemy", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    payload = {
        "studio": __version__, "python": sys.version.split()[0], "home": str(ctx.home.root),
        "database": str(ctx.home.database), "read_only": ctx.store.read_only_reason, "versions": versions,
        "devices": torch_devices(), "providers": provider_report(),
    }
    if not ctx.args.json:
        for key, value in payload.items():
            if key not in ("versions", "devices", "providers"):
                print(f"{key:>9}: {value}")
        print(f"{'devices':>9}: {', '.join(d['name'] for d in payload['devices'])}")
        providers = payload["providers"]
        print(f"{'onnx':>9}: available {', '.join(providers['available'])}; usable {', '.join(providers['usable'])}")
        for package, version in versions.items():
            print(f"{package:>20} {version}")
    return payload


# --- parser -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print one JSON object on stdout")
    common.add_argument("--home", default=argparse.SUPPRESS,
                        help="data home (default: $STUDIO_HOME or the user data folder)")
    common.add_argument("--quiet", "-q", action="store_true", default=argparse.SUPPRESS, help="no progress on stderr")

    parser = _Parser(prog="studio", description="Studio: train, export and curate image generators. "
                     "Run without arguments to open the desktop app.", parents=[common])
    parser.add_argument("--version", action="version", version=f"studio {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    datasets = commands.add_parser("datasets", help="import, list, show and delete datasets", parents=[common])
    dsub = datasets.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=_Parser)

    imp = dsub.add_parser("import", parents=[common], help="import folders, zips and image files as a dataset")
    imp.add_argument("paths", nargs="+", metavar="PATH", help="folders (recursive), .zip archives or images")
    imp.add_argument("--name", required=True, help="name of the new dataset")
    imp.add_argument("--size", type=int, default=32, help="square size in pixels, 8-512 (default 32)")
    imp.add_argument("--channels", type=int, choices=(1, 3), default=3, help="1 grey or 3 colour (default 3)")
    imp.add_argument("--no-labels", action="store_true", help="do not take class labels from folder names")
    imp.add_argument("--workers", type=int, default=None, help="decoding processes (default: one per core)")
    imp.set_defaults(handler=cmd_datasets_import)

    sample = dsub.add_parser("add-sample", parents=[common], help="add a built-in sample dataset (no download)")
    sample.add_argument("sample", choices=("digits", "shapes"))
    sample.add_argument("--name", default=None, help="dataset name (default: the sample's name)")
    sample.add_argument("--size", type=int, default=32, help="square size in pixels (default 32)")
    sample.add_argument("--channels", type=int, choices=(1, 3), default=None,
                        help="1 or 3 (default: 1 for digits, 3 for shapes)")
    sample.add_argument("--count", type=int, default=2000, help="images to draw (shapes only, default 2000)")
    sample.add_argument("--seed", type=int, default=0, help="random seed (shapes only)")
    sample.set_defaults(handler=cmd_datasets_add_sample)

    dsub.add_parser("list", parents=[common], help="list datasets").set_defaults(handler=cmd_datasets_list)
    show = dsub.add_parser("show", parents=[common], help="show one dataset")
    show.add_argument("name")
    show.set_defaults(handler=cmd_datasets_show)
    delete = dsub.add_parser("delete", parents=[common], help="delete a dataset and its files")
    delete.add_argument("name")
    delete.set_defaults(handler=cmd_datasets_delete)

    from studio import gallery_cli

    gallery_cli.add_commands(commands, common, _Parser)

    trainer = commands.add_parser("train", parents=[common], help="train, resume or fine-tune a model")
    trainer.add_argument("--name", required=True, help="the model's name")
    trainer.add_argument("--family", choices=("gan", "vae", "pixelcnn", "diffusion"), help="generator family")
    trainer.add_argument("--dataset", help="dataset to train on")
    trainer.add_argument("--steps", type=int, help="stop at this total step count")
    trainer.add_argument("--minutes", type=float, help="stop after this much training time")
    trainer.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    trainer.add_argument("--init-from", metavar="MODEL", help="fine-tune: start from this model's weights")
    trainer.add_argument("--resume", action="store_true", help="continue the model from its last checkpoint")
    trainer.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="a hyperparameter (see `studio families`); repeatable")
    trainer.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    trainer.add_argument("--checkpoint-every", type=int, default=500, metavar="N", help="steps between checkpoints")
    trainer.add_argument("--diagnostics-every", type=int, default=250, metavar="N",
                         help="steps between diagnostics such as the GAN diversity check (0: off)")
    trainer.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: all)")
    trainer.set_defaults(handler=cmd_train)

    models = commands.add_parser("models", help="list, show, import and delete models", parents=[common])
    msub = models.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=_Parser)
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

    gen = commands.add_parser("generate", parents=[common], help="sample images from a model into the gallery")
    gen.add_argument("model")
    _backend_arguments(gen)
    gen.set_defaults(handler=cmd_generate)

    interp = commands.add_parser("interpolate", parents=[common], help="frames between two seeds, items or images")
    interp.add_argument("model")
    interp.add_argument("--from", dest="start", required=True, metavar="SEED|#ITEM|FILE",
                        help="a seed (123), a gallery item (#45) or, for a VAE, an image file")
    interp.add_argument("--to", dest="end", required=True, metavar="SEED|#ITEM|FILE", help="the other end")
    interp.add_argument("--frames", type=int, default=8, help="frames, both ends included (default 8)")
    _backend_arguments(interp)
    interp.set_defaults(handler=cmd_interpolate)

    paint = commands.add_parser("inpaint", parents=[common], help="regenerate the masked part of an image")
    paint.add_argument("model")
    paint.add_argument("--image", required=True, metavar="PATH|#ITEM", help="an image file or a gallery item (#45)")
    paint.add_argument("--mask", required=True, metavar="PATH",
                       help="an image of the same size: white where new pixels are wanted, black where kept")
    paint.add_argument("--count", type=int, default=4, help="completions to make (default 4)")
    paint.add_argument("--seed", type=int, default=None, help="first seed (default: random)")
    _backend_arguments(paint)
    paint.set_defaults(handler=cmd_inpaint)

    export = commands.add_parser("export", parents=[common], help="export a model to ONNX (checked against torch)")
    export.add_argument("model")
    export.add_argument("--fp16", action="store_true", help="also write half-precision files for GPUs")
    export.set_defaults(handler=cmd_export)

    info = commands.add_parser("info", parents=[common], help="versions, data home and database state")
    info.set_defaults(handler=cmd_info)
    return parser


def _backend_arguments(parser: argparse.ArgumentParser) -> None:
    """--backend, --device, --provider and --set, shared by generate, interpolate and inpaint."""
    from studio.engine.runtime.providers import PROVIDER_CHOICES

    if parser.prog.endswith("generate"):
        parser.add_argument("--count", type=int, default=8, help="images to make (default 8)")
        parser.add_argument("--seed", type=int, default=None, help="first seed (default: random); image i uses seed+i")
    parser.add_argument("--backend", default="torch", choices=("torch", "onnx"),
                        help="torch (the checkpoint) or onnx (the export, through ONNX Runtime)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"), help="torch device")
    parser.add_argument("--provider", default="auto", choices=PROVIDER_CHOICES,
                        help="ONNX Runtime provider (auto: the GPU when usable, else the CPU)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a sampling setting such as steps, eta or temperature; repeatable")


def _emit_error(message: str, as_json: bool) -> None:
    print(f"studio: error: {message}", file=sys.stderr)
    if as_json:
        print(json.dumps({"error": message}))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    wants_json = "--json" in argv
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as error:
        _emit_error(str(error), wants_json)
        return EXIT_USAGE
    for name, default in (("json", False), ("home", None), ("quiet", False)):
        if not hasattr(args, name):
            setattr(args, name, default)
    handler: Callable[[Context], dict[str, Any]] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE
    ctx = Context(args)
    try:
        payload = handler(ctx)
    except StudioError as error:
        _emit_error(str(error), args.json)
        return EXIT_USER_ERROR
    except Interrupted as stopped:
        _emit_error(str(stopped), args.json)
        return EXIT_CANCELLED
    except KeyboardInterrupt:
        _emit_error("cancelled: nothing was changed", args.json)
        return EXIT_CANCELLED
    finally:
        ctx.close()
    if args.json:
        print(json.dumps(payload, ensure_ascii=False, default=str))
    return 0


