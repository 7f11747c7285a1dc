"""A Ray cluster of several nodes on this machine, started with `ray start` as an operator
starts one (the multi-node tests and bench/enrich.py use it)."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path

RAY = str(Path(sys.executable).parent / "ray")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RayCluster:
    """Nodes started with `ray start`, each with its own temp folder under `root`; stopped by
    killing exactly the processes of those folders (other Ray clusters on the machine stay)."""

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        # token authentication, as a cluster across machines runs: every node and every
        # driver carries the cluster's own token (never the one in ~/.ray of whoever runs this)
        self.token = secrets.token_hex(32)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        self.env.update(self.driver_env())
        self.env["RAY_USAGE_STATS_ENABLED"] = "0"

    def start(self, name: str, cpus: int, head: bool = False) -> None:
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        where = (
            ["--head", f"--port={self.port}", "--include-dashboard=false"]
            if head
            else [f"--address={self.address}"]
        )
        started = subprocess.run(
            [
                RAY,
                "start",
                *where,
                f"--num-cpus={cpus}",
                f"--temp-dir={folder}",
                "--disable-usage-stats",
            ],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if started.returncode != 0:
            raise RuntimeError(f"ray start {name} failed: {started.stderr[-2000:]}")

    def raylet(self, name: str) -> int | None:
        """The pid of node `name`'s raylet."""
        marker = f"{self.root / name}/"
        for pid, line in self._processes():
            if "/raylet/raylet " in line and marker in line:
                return pid
        return None

    def driver_env(self) -> dict[str, str]:
        """What a process that joins the cluster needs in its environment."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token}

    def stop(self) -> None:
        """Kill the nodes' processes and what they started (their agents rename themselves and
        name no folder)."""
        from support.processes import children_of

        doomed = {pid for pid, line in self._processes() if str(self.root) in line}
        frontier = list(doomed)
        while frontier:
            children = [pid for pid in children_of(frontier.pop()) if pid not in doomed]
            doomed.update(children)
            frontier.extend(children)
        for pid in doomed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _processes(self):
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            yield int(cmdline.parent.name), line


def image_project(
    folder: Path, server_url: str, count: int, catalog: str | None = None, extra: str = ""
) -> Path:
    """A project of `count` records with one picture each from the test server's `/slow/` path
    (`iiif_server.slow_images`); `catalog`: its URL (a SQLite file in the folder by default)."""
    from conftest import write_jsonl

    catalog = catalog or f"sqlite:///{folder / 'catalog.sqlite'}"
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(
        folder / "records.jsonl",
        [{"id": f"k{i}", "images": [f"{server_url}/slow/k{i}.jpg"]} for i in range(count)],
    )
    (folder / "monalia.toml").write_text(
        f"""
[project]
catalog = "{catalog}"
data_dir = "data"
allow_private_addresses = true  # the test's image server is on this machine

[sources.local]
plugin = "jsonl"
path = "records.jsonl"

[images]
width = 128
height = 128
concurrency = 4
per_host = 4
backoff = 0.01

[executor]
cpus = 2
{extra}""",
        encoding="utf-8",
    )
    return folder
