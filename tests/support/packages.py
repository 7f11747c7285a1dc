"""Installing a package's source folder into a folder of its own, as a user's pip would install
it, without touching the test environment: put the folder on PYTHONPATH to use it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def install_into(site: Path, package: Path) -> Path:
    """`pip install` the package at `package` into `site` (no dependencies, no network)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(package),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return site
