"""The ``monalia`` command line: stage commands wired to the plugins named in the project file.

One module per command group; `monalia.cli.app` holds what they share. Importing this package
registers every command on the root group.
"""

from __future__ import annotations

from monalia.cli import (  # noqa: F401  (each module registers its commands)
    admin,
    chain,
    demo,
    enrich,
    harvest,
    images,
    label,
    report,
    runs,
    train,
)
from monalia.cli.app import App, cli

__all__ = ["App", "cli", "main"]


def main() -> None:
    """Entry point of the ``monalia`` console script."""
    cli(prog_name="monalia")
