"""`python -m studio` and the `studio` command: no arguments opens the app, else the CLI."""

from __future__ import annotations

import sys


def main() -> int:
    """Open the desktop app when called bare; otherwise run a CLI subcommand."""
    if len(sys.argv) <= 1:
        from studio.app import main as app_main

        return app_main()
    from studio.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
