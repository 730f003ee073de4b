"""`studio info`: versions, the data home, the database state and the devices."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from studio import __version__
from studio.cli.context import Context
from studio.cli.printing import say


def cmd_info(ctx: Context) -> dict[str, Any]:
    """studio info: versions, the data home and what it holds."""
    from importlib import metadata

    from studio.engine.devices import provider_report, torch_devices

    versions = {}
    for package in (
        "torch",
        "onnxruntime-gpu",
        "onnxruntime",
        "onnx",
        "PySide6-Essentials",
        "pillow",
        "sqlalchemy",
        "numpy",
    ):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    payload = {
        "studio": __version__,
        "python": sys.version.split()[0],
        "home": str(ctx.home.root),
        "database": ctx.store.location,  # a PostgreSQL URL with its password masked
        "database_kind": "postgresql" if ctx.store.on_postgres else "sqlite",
        "read_only": ctx.store.read_only_reason,
        "versions": versions,
        "devices": torch_devices(),
        "providers": provider_report(),
    }
    if not ctx.args.json:
        for key, value in payload.items():
            if key not in ("versions", "devices", "providers", "database_kind"):
                say(f"{key:>9}: {value}")
        say(f"{'devices':>9}: {', '.join(d['name'] for d in payload['devices'])}")
        providers = payload["providers"]
        say(f"{'onnx':>9}: available {', '.join(providers['available'])}; usable {', '.join(providers['usable'])}")
        for package, version in versions.items():
            say(f"{package:>20} {version}")
    return payload


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `info` to the top-level subparsers."""
    info = commands.add_parser("info", parents=[common], help="versions, data home and database state")
    info.set_defaults(handler=cmd_info)
