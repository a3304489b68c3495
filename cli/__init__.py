"""prowl's command line: ``prowl SUBCOMMAND ...`` or ``python run_pipeline.py SUBCOMMAND ...``.

This package is the only place that parses arguments, prints for the user and chooses exit
codes: 0 done, 2 a user-fixable error (one line on stderr), 130 stopped by a signal.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from cli.common import EXIT_INTERRUPTED, EXIT_USER_ERROR
from pipeline.core.errors import ProwlError

__all__ = ["build_parser", "main"]


class _OneLineParser(argparse.ArgumentParser):
    """argparse's usage errors as prowl's one line (the usage is one --help away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"prowl: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from cli import bench, eval_colours, evaluate, frame, ingest, query, reembed, serve, train

    parser = _OneLineParser(prog="prowl", description="Person retrieval in surveillance video.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (ingest, bench, query, frame, evaluate, eval_colours, train, reembed, serve):
        module.add_parsers(sub)
    parser.set_defaults(parser=parser)  # `prowl demo` runs ingest and query through it
    return parser


def _quiet_opencv(verbose: bool) -> None:
    """OpenCV's own warnings (a backend that cannot open a URL, a codec tag) are noise next
    to prowl's one-line errors; -v shows them."""
    import cv2

    cv2.utils.logging.setLogLevel(
        cv2.utils.logging.LOG_LEVEL_INFO if verbose else cv2.utils.logging.LOG_LEVEL_ERROR
    )


def main(argv: Sequence[str] | None = None) -> int:
    from sqlalchemy.exc import DBAPIError

    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_opencv(args.verbose)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="prowl: %(levelname)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except ProwlError as exc:
        print(f"prowl: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # the reader of our output went away (e.g. `| head`)
        sys.stderr.close()
        return 141
    except OSError as exc:  # a full or vanished disk, a permission change mid-run
        print(
            f"prowl: error: {exc.strerror or exc} ({exc.filename or 'data directory'}); "
            "free space or fix permissions, then run the same command to resume",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc).splitlines()[0]
        damaged = any(w in reason for w in ("not a database", "malformed", "corrupt"))
        full = "full" in reason or "No space" in reason
        advice = (
            "the database file is damaged; restore it from a backup or use another --data-dir"
            if damaged
            else "what was committed is kept; "
            + ("free space, then " if full else "")
            + "run the same command again to resume"
        )
        print(f"prowl: error: database: {reason}; {advice}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("prowl: aborted", file=sys.stderr)
        return EXIT_INTERRUPTED
