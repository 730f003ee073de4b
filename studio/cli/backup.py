"""`studio backup` and `studio restore`: a consistent copy of the database, and putting one back."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from studio.cli.context import Context
from studio.cli.printing import say


def cmd_backup(ctx: Context) -> dict[str, Any]:
    """studio backup DEST"""
    from studio.store.database import backup_to

    destination = backup_to(ctx.home, Path(ctx.args.destination), ctx.database)
    if not ctx.args.json:
        say(f"database copied to {destination}")
    return {"backup": str(destination)}


def cmd_restore(ctx: Context) -> dict[str, Any]:
    """studio restore SRC"""
    from studio.store.database import restore_database

    result = restore_database(ctx.home, Path(ctx.args.source), ctx.database)
    if not ctx.args.json:
        say(
            f"restored {result['restored']}; the previous database is at {result['previous_saved_as'] or '-'}; "
            "run `studio gallery check` to compare it with the files"
        )
    return result


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `backup` and `restore` to the top-level subparsers."""
    backup = commands.add_parser(
        "backup", parents=[common], help="copy the SQLite database consistently (PostgreSQL: use pg_dump)"
    )
    backup.add_argument("destination", metavar="DEST")
    backup.set_defaults(handler=cmd_backup)
    restore = commands.add_parser("restore", parents=[common], help="put a database backup back")
    restore.add_argument("source", metavar="SRC")
    restore.set_defaults(handler=cmd_restore)
