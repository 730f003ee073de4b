"""The headless command line: thin subcommands over engine and store calls.

Every command accepts --json and then prints exactly one JSON object on stdout. Progress goes
to stderr. A user error prints one line and exits 1; it never shows a traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from studio.cli.context import Context, Interrupted
from studio.cli.parser import UsageError, build_parser
from studio.cli.printing import EXIT_CANCELLED, EXIT_OK, EXIT_USAGE, EXIT_USER_ERROR, print_error, print_json
from studio.errors import StudioError
from studio.failures import explain
from studio.home import HOME_ENV

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
    args.argv = argv  # as given: a command that starts workers (torchrun) gives them the same one
    for name, default in (("json", False), ("home", None), ("quiet", False)):
        if not hasattr(args, name):
            setattr(args, name, default)
    handler: Callable[[Context], dict[str, Any]] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE
    return _run(handler, args)


def _run(handler: Callable[[Context], dict[str, Any]], args: Any) -> int:
    """The one error boundary: every failure a user can cause ends here in one line and exit code 1."""
    ctx: Context | None = None
    try:
        ctx = Context(args)
        payload = handler(ctx)
        if args.json:
            print_json(payload)
    except StudioError as error:
        print_error(str(error), args.json)
        return EXIT_USER_ERROR
    except Interrupted as stopped:
        print_error(str(stopped), args.json)
        return EXIT_CANCELLED
    except KeyboardInterrupt:
        print_error("cancelled: nothing was changed", args.json)
        return EXIT_CANCELLED
    except BrokenPipeError:
        # The reader of stdout went away (`studio gallery list | head`): nothing left to tell it.
        _silence_stdout()
        return EXIT_USER_ERROR
    except Exception as error:  # noqa: BLE001 - the boundary: environment errors explained, bugs reported
        explained = explain(error, ctx.home.root if ctx is not None else _home_hint(args))
        if explained is not None:
            print_error(str(explained), args.json)
            return EXIT_USER_ERROR
        message = str(error).splitlines()[0] if str(error) else ""
        print_error(
            f"unexpected error ({type(error).__name__}: {message}): this is a bug in Studio; "
            "please report it with the traceback below",
            args.json,
        )
        traceback.print_exc(file=sys.stderr)
        return EXIT_USER_ERROR
    finally:
        if ctx is not None:
            # The command's outcome is decided (and reported): failing to release the store now
            # must not turn it into a traceback. Releasing never changes data.
            with contextlib.suppress(Exception):
                ctx.close()
    return EXIT_OK


def _home_hint(args: Any) -> Path | None:
    """The home a failed Context was asked for, to name it in the message."""
    chosen = args.home or os.environ.get(HOME_ENV)
    return Path(chosen).expanduser().absolute() if chosen else None


def _silence_stdout() -> None:
    """Point stdout at the null device, so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout has no file descriptor (captured in tests): nothing to flush
        pass
