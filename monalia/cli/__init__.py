"""The ``monalia`` command line: stage commands wired to the plugins named in the project file.

One module per command or command group, named after it; `monalia.cli.app` holds what they
share. Importing this package registers every command on the root group.
"""

from __future__ import annotations

from monalia.cli import (  # noqa: F401  (each module registers its commands)
    audit,
    collection_map,
    dataset,
    db,
    demo,
    duplicates,
    enrich,
    harvest,
    images,
    init,
    label,
    plugins,
    publish,
    report,
    review,
    run,
    runs,
    search,
    serve,
    similar,
    teach,
    thesaurus,
    train,
    users,
)
from monalia.cli.app import App, cli

__all__ = ["App", "cli", "main"]


def main() -> None:
    """Entry point of the ``monalia`` console script."""
    import os
    import sys

    try:
        cli(prog_name="monalia")
    except BrokenPipeError:
        # `monalia runs | head`: the reader has what it wanted; say nothing more, and keep
        # Python from complaining while it flushes stdout on the way out
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
