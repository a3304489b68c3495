"""prowl's entry point: ``python run_pipeline.py SUBCOMMAND ...`` (also installed as ``prowl``).
Every command lives in the ``cli`` package."""

from __future__ import annotations

import sys

from cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
