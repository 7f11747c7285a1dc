"""The ``monalia`` command line: stage commands wired to the plugins named in the project file.

One module per command or command group, named after it; `monalia.cli.app` holds what they
share. Importing this package registers every command on the root group.
"""

from __future__ import annotations

from monalia.cli.app import App, cli

# The module that registers each command: imported when the command runs (or for --help), so
# `monalia report noise` loads the report's code and no other command's.
COMMAND_MODULES = {
    "audit": "monalia.cli.audit",
    "check": "monalia.cli.init",
    "dataset": "monalia.cli.dataset",
    "db": "monalia.cli.db",
    "demo": "monalia.cli.demo",
    "duplicates": "monalia.cli.duplicates",
    "enrich": "monalia.cli.enrich",
    "evaluate": "monalia.cli.train",
    "harvest": "monalia.cli.harvest",
    "images": "monalia.cli.images",
    "init": "monalia.cli.init",
    "label": "monalia.cli.label",
    "map": "monalia.cli.collection_map",
    "models": "monalia.cli.train",
    "plugins": "monalia.cli.plugins",
    "publish": "monalia.cli.publish",
    "report": "monalia.cli.report",
    "review": "monalia.cli.review",
    "run": "monalia.cli.run",
    "runs": "monalia.cli.runs",
    "search": "monalia.cli.search",
    "serve": "monalia.cli.serve",
    "similar": "monalia.cli.similar",
    "teach": "monalia.cli.teach",
    "thesaurus": "monalia.cli.thesaurus",
    "train": "monalia.cli.train",
    "users": "monalia.cli.users",
}
cli.lazy_commands = COMMAND_MODULES


def load_all_commands():
    """The root group with every command module imported (for the generated reference)."""
    import importlib

    for module in sorted(set(COMMAND_MODULES.values())):
        importlib.import_module(module)
    return cli


def __getattr__(name: str):
    # `documented_cli`: what the CLI reference page renders, every command loaded
    if name == "documented_cli":
        return load_all_commands()
    raise AttributeError(name)


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
