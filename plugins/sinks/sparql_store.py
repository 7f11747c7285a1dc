"""Sink: any SPARQL store, through the SPARQL 1.1 Graph Store Protocol and Update.

Each named graph is replaced: the graph is dropped (SPARQL Update), then its triples are POSTed
as N-Triples in chunks to the Graph Store endpoint. A chunk is sent again after a timeout, a 5xx
or a broken connection (an RDF graph is a set: a chunk sent twice is still there once); after the
last try the run fails with the endpoint and the status, and publishing again repairs the graph.
With ``atomic = true`` the triples go to a staging graph first and replace the graph in one
``MOVE`` at the end, so readers never see a half-loaded graph (at the cost of a second copy).

Presets give the URL layout of common servers from their base ``url``; each endpoint can also
be set on its own. A password is read from the environment variable ``password_env`` names.
"""

from __future__ import annotations

import queue
import threading
from typing import Literal

from pydantic import Field

from monalia import hookimpl
from monalia.api.plugin import PluginSettings
from monalia.api.sink import Sink
from monalia.errors import ConfigError
from monalia.net.http import HttpClient, HttpSettings
from monalia.net.sparql_endpoint import sparql_client
from monalia.rdf.terms import Triple, nt_line

# Where each server answers queries, updates and Graph Store requests, from its base URL.
PRESETS = {
    # Fuseki: url = http://host:3030/DATASET
    "fuseki": ("{url}/query", "{url}/update", "{url}/data"),
    # Oxigraph (`oxigraph serve`): url = http://host:7878
    "oxigraph": ("{url}/query", "{url}/update", "{url}/store"),
    # GraphDB: url = http://host:7200/repositories/REPOSITORY
    "graphdb": ("{url}", "{url}/statements", "{url}/rdf-graphs/service"),
}


class SparqlStoreSettings(PluginSettings):
    # fuseki, oxigraph or graphdb: the three endpoints under url
    preset: Literal["fuseki", "oxigraph", "graphdb"] | None = None
    url: str | None = None  # the base URL the preset's layout starts from
    query_endpoint: str | None = None  # without a preset: the SPARQL query endpoint
    update_endpoint: str | None = None  # without a preset: the SPARQL update endpoint
    graph_store_endpoint: str | None = None  # without a preset: the Graph Store Protocol endpoint
    username: str | None = None  # user name for basic authentication
    password_env: str | None = None  # the variable holding the password (basic auth)
    chunk_triples: int = Field(50_000, ge=1)  # triples per POST
    atomic: bool = False  # load into a staging graph and swap it in with one MOVE
    http: HttpSettings = Field(default_factory=lambda: HttpSettings(timeout=120.0))


class SparqlStoreSink(Sink):
    """RDF to a SPARQL store over the Graph Store Protocol (Fuseki, Oxigraph, GraphDB, ...)."""

    name = "sparql-store"
    keeps_other_graphs = True  # each graph is replaced alone
    query_priority = 20  # search and reports prefer it to the sinks numbered higher
    Settings = SparqlStoreSettings
    takes_ntriples = True

    @property
    def endpoints(self) -> tuple[str, str, str]:
        settings = self.settings
        layout: tuple[str, ...] = (None, None, None)  # type: ignore[assignment]
        if settings.preset:
            if not settings.url:
                raise ConfigError(f"{self.context.instance}: preset {settings.preset} needs url")
            base = settings.url.rstrip("/")
            layout = tuple(part.format(url=base) for part in PRESETS[settings.preset])
        query = settings.query_endpoint or layout[0]
        update = settings.update_endpoint or layout[1]
        store = settings.graph_store_endpoint or layout[2]
        if not (update and store):
            raise ConfigError(
                f"{self.context.instance}: set preset and url (fuseki, oxigraph, graphdb), or "
                "update_endpoint and graph_store_endpoint"
            )
        return query or "", update, store

    @property
    def chunk_size(self) -> int:  # type: ignore[override]
        return self.settings.chunk_triples

    def location(self) -> str:
        return self.endpoints[2]

    def query_client(self):
        query = self.endpoints[0]
        if not query:
            raise ConfigError(
                f"sink {self.context.instance}: set query_endpoint (or a preset) to query it"
            )
        password = self.context.secret(self.settings.password_env, "the store's password")
        return sparql_client(
            query,
            self.context.project_dir,
            self.settings.http,
            self.settings.username,
            password,
            policy=self.context.url_policy,
        )

    def open(self) -> None:
        _, self._update, self._store = self.endpoints
        password = self.context.secret(self.settings.password_env, "the store's password")
        self._client = HttpClient(
            self.settings.http, secrets=[password or ""], policy=self.context.url_policy
        )
        if self.settings.username:
            self._client.session.auth = (self.settings.username, password or "")
        self._sender: _Sender | None = None

    def update(self, operation: str) -> None:
        """Run one SPARQL Update operation."""
        self._client.request(
            "POST",
            self._update,
            data=operation.encode("utf-8"),
            headers={"Content-Type": "application/sparql-update; charset=utf-8"},
        )

    def _target(self, graph: str) -> str:
        return f"{graph}/loading" if self.settings.atomic else graph

    def begin_graph(self, graph: str) -> None:
        self.update(f"DROP SILENT GRAPH <{self._target(graph)}>")
        self._sender = _Sender(self._client, self._store, self._target(graph))

    def write_chunk(self, graph: str, triples: list[Triple]) -> None:
        self.write_ntriples(graph, "".join(map(nt_line, triples)), len(triples))

    def write_ntriples(self, graph: str, text: str, count: int) -> None:
        assert self._sender is not None
        self._sender.send(text.encode("utf-8"))

    def end_graph(self, graph: str) -> None:
        assert self._sender is not None
        self._sender.finish()
        self._sender = None
        if self.settings.atomic:
            self.update(
                f"DROP SILENT GRAPH <{graph}> ; "
                f"MOVE SILENT GRAPH <{self._target(graph)}> TO GRAPH <{graph}>"
            )

    def close(self, ok: bool) -> None:
        if self._sender is not None:
            self._sender.abandon()
        self._client.close()


class _Sender:
    """POSTs chunks from a thread, so the next chunk is serialised while one is on the wire."""

    def __init__(self, client: HttpClient, store: str, graph: str):
        self.client, self.store, self.graph = client, store, graph
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="sparql-store-sender", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (body := self.queue.get()) is not None:
            if self.error is not None:
                continue  # drain: the failure is reported to the writer
            try:
                self.client.request(
                    "POST",
                    self.store,
                    params={"graph": self.graph},
                    data=body,
                    headers={"Content-Type": "application/n-triples"},
                )
            except BaseException as exc:
                self.error = exc

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def send(self, body: bytes) -> None:
        self._raise()
        self.queue.put(body)

    def finish(self) -> None:
        self.queue.put(None)
        self.thread.join()
        self._raise()

    def abandon(self) -> None:
        if self.thread.is_alive():
            self.error = self.error or RuntimeError("abandoned")
            self.queue.put(None)
            self.thread.join()


@hookimpl
def register_sinks():
    return [SparqlStoreSink]
