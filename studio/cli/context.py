"""What every command gets (the data home, the parsed options, a lazily opened store) and may raise."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from studio.cli.printing import ProgressPrinter, set_quiet
from studio.engine.jobs import Job, run_job
from studio.home import DataHome


class Interrupted(Exception):  # noqa: N818 - it is what happened, not an error
    """Ctrl-C after the work was safely stopped: the message says what was kept."""


class Context:
    """What every command gets: the data home, the output mode and a lazily opened store."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        # Per command, before anything prints: notes stay silent under --quiet (errors and results do not).
        set_quiet(bool(getattr(args, "quiet", False)))
        self.home = DataHome.resolve(args.home)
        # --database wins over $STUDIO_DATABASE_URL (read by open_store when this is None).
        self.database: str | None = getattr(args, "database", None)
        self._store: Any = None

    @property
    def store(self) -> Any:
        """The store, opened (and migrated) on first use."""
        if self._store is None:
            # Imported here: `studio --help` and usage errors should not pay for SQLAlchemy.
            from studio.engine.launch import is_main_process
            from studio.store.database import open_store

            # A training worker of rank > 0 only reads: the store's upkeep is rank 0's (and the launcher's).
            self._store = open_store(self.home, self.database, maintenance=is_main_process())
        return self._store

    def run(self, job: Job) -> Any:
        """Drive a job with progress on stderr: a bar on a terminal, plain lines otherwise, none with --quiet."""
        printer = ProgressPrinter(sys.stderr, quiet=self.args.quiet)
        try:
            return run_job(job, printer)
        finally:
            printer.close()

    def close(self) -> None:
        """Release the store, and print as usual again (the next command in this process sets its own)."""
        set_quiet(False)
        if self._store is not None:
            self._store.close()
