"""Real local servers the source tests talk to: a scriptable HTTP API and an Oxigraph store."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Reply:
    """One scripted answer. `body` is bytes, text or JSON-able; `cut` sends fewer bytes than
    Content-Length announces; `delay` holds the answer back (for timeouts)."""

    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    cut: bool = False
    delay: float = 0.0

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body).encode("utf-8")


@dataclass
class Seen:
    at: float
    path: str
    params: list[tuple[str, str]]
    headers: dict[str, str]

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.params if k == name), None)


class ApiServer:
    """An HTTP server answering GETs with `handler(path, params)`; failures can be queued
    ahead of it with `fail_next`, so a test says exactly which request fails and how."""

    def __init__(self, handler: Callable[[str, dict[str, str]], Reply]):
        self.handler = handler
        self.queued: list[Reply] = []
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                params = parse_qsl(parts.query, keep_blank_values=True)
                with server.lock:
                    server.seen.append(
                        Seen(time.monotonic(), parts.path, params, dict(self.headers))
                    )
                    reply = server.queued.pop(0) if server.queued else None
                if reply is None:
                    reply = server.handler(parts.path, dict(params))
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.payload()
                try:
                    self.send_response(reply.status)
                    content_type = (
                        "application/json"
                        if not isinstance(reply.body, bytes | str)
                        else "text/plain"
                    )
                    self.send_header(
                        "Content-Type", reply.headers.get("Content-Type", content_type)
                    )
                    self.send_header("Content-Length", str(len(body)))
                    if "Access-Control-Allow-Origin" not in reply.headers:
                        # as real IIIF and API servers answer: a viewer on another origin reads it
                        self.send_header("Access-Control-Allow-Origin", "*")
                    for name, value in reply.headers.items():
                        if name != "Content-Type":
                            self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2] if reply.cut else body)
                    if reply.cut:
                        self.close_connection = True
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def fail_next(self, *replies: Reply) -> None:
        with self.lock:
            self.queued.extend(replies)

    def __enter__(self) -> ApiServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def oxigraph_binary() -> str | None:
    return shutil.which("oxigraph") or next(
        (str(p) for p in [Path(__import__("sys").executable).parent / "oxigraph"] if p.exists()),
        None,
    )


class OxigraphServer:
    """An `oxigraph serve` process on a free port: in memory, or persisted in `location`."""

    def __init__(self, binary: str, location=None, union_default_graph: bool = False):
        self.binary = binary
        self.location = location
        self.union_default_graph = union_default_graph
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.query_url = self.url + "/query"
        self.store_url = self.url + "/store"
        self.update_url = self.url + "/update"
        self.start()

    def start(self) -> None:
        command = [self.binary, "serve", "--bind", f"127.0.0.1:{self.port}"]
        if self.location is not None:
            command += ["--location", str(self.location)]
        if self.union_default_graph:
            command.append("--union-default-graph")
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(self.url + "/query", params={"query": "ASK {}"}, timeout=1)
                return
            except requests.ConnectionError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"oxigraph exited: {self.process.stderr.read()!r}") from None
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("oxigraph did not start within 30 s")

    def kill(self) -> None:
        """SIGKILL, as a crash would end it."""
        self.process.kill()
        self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()

    def select(self, query: str) -> list[dict[str, str]]:
        response = requests.post(
            self.query_url,
            data={"query": query},
            headers={"Accept": "application/sparql-results+json"},
            timeout=60,
        )
        response.raise_for_status()
        return [
            {name: value["value"] for name, value in binding.items()}
            for binding in response.json()["results"]["bindings"]
        ]

    def load(self, data: bytes | str, content_type: str = "application/n-triples") -> None:
        body = data.encode("utf-8") if isinstance(data, str) else data
        response = requests.post(
            self.store_url + "?default",
            data=body,
            headers={"Content-Type": content_type},
            timeout=60,
        )
        if response.status_code >= 400:
            raise RuntimeError(f"oxigraph refused the data: {response.text[:500]}")

    def clear(self) -> None:
        requests.post(
            self.url + "/update", data={"update": "CLEAR ALL"}, timeout=30
        ).raise_for_status()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()
