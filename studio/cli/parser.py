"""The whole command tree, built from each command group's `register(commands, common)`."""

from __future__ import annotations

import argparse
from typing import NoReturn

from studio import __version__
from studio.cli.backup import register as register_backup
from studio.cli.datasets import register as register_datasets
from studio.cli.embed import register as register_embed
from studio.cli.export import register as register_export
from studio.cli.gallery import register as register_gallery
from studio.cli.generate import register as register_generate
from studio.cli.info import register as register_info
from studio.cli.models import register as register_models
from studio.cli.runs import register as register_runs
from studio.cli.train import register as register_train
from studio.errors import StudioError

# In the order the commands appear in `studio --help` and in "invalid choice" messages.
COMMAND_GROUPS = (
    register_datasets,
    register_gallery,
    register_backup,
    register_train,
    register_runs,
    register_models,
    register_embed,
    register_generate,
    register_export,
    register_info,
)


class UsageError(StudioError):
    """The command line itself is wrong."""


class StudioParser(argparse.ArgumentParser):
    """argparse that reports mistakes in one line instead of usage text plus a line."""

    def error(self, message: str) -> NoReturn:
        """Raise the mistake as a UsageError; `main` prints it in one line."""
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def common_options() -> argparse.ArgumentParser:
    """--json, --home, --database and --quiet: accepted before or after any command."""
    # SUPPRESS defaults: a subcommand's parser must not reset a value given before the command;
    # `main` fills in the real defaults after parsing.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object on stdout"
    )
    common.add_argument(
        "--home", default=argparse.SUPPRESS, help="data home (default: $STUDIO_HOME or the user data folder)"
    )
    common.add_argument(
        "--database",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="a team gallery's PostgreSQL database, postgresql://USER:PASSWORD@HOST:PORT/NAME "
        "(default: $STUDIO_DATABASE_URL, else SQLite in the data home)",
    )
    common.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        default=argparse.SUPPRESS,
        help="only errors and the result: no progress, no notes",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    common = common_options()
    parser = StudioParser(
        prog="studio",
        description="Studio: train, export and curate image generators. Run without arguments to open the desktop app.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"studio {__version__}")
    # Every nested subparser inherits this class, so usage mistakes are one line at any depth.
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=StudioParser)
    for register in COMMAND_GROUPS:
        register(commands, common)
    return parser
