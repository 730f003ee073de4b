"""The headless command line: thin subcommands over engine and store calls.

Every command accepts --json and then prints exactly one JSON object on stdout. Progress goes
to stderr. A user error prints one line and exits 1; it never shows a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from studio.cli.context import Context, Interrupted
from studio.cli.parser import UsageError, build_parser
from studio.cli.printing import EXIT_CANCELLED, EXIT_OK, EXIT_USAGE, EXIT_USER_ERROR, print_error, print_json
from studio.errors import StudioError

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Looked for before parsing, so that even a usage error is reported as JSON when asked.
    wants_json = "--json" in argv
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as error:
        print_error(str(error), wants_json)
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
        print_error(str(error), args.json)
        return EXIT_USER_ERROR
    except Interrupted as stopped:
        print_error(str(stopped), args.json)
        return EXIT_CANCELLED
    except KeyboardInterrupt:
        print_error("cancelled: nothing was changed", args.json)
        return EXIT_CANCELLED
    finally:
        ctx.close()
    if args.json:
        print_json(payload)
    return EXIT_OK
