"""``python -m monalia``: the command line, as the ``monalia`` script runs it."""

from monalia.cli import main

main()
