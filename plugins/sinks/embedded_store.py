"""Sink: an embedded RDF store in a folder, with no server to run (pyoxigraph).

Each named graph is replaced: emptied, then loaded chunk by chunk. `monalia search` and
`monalia report` query this store by default; a SPARQL source harvests from it when its
`endpoint` names the folder. One process writes to the store at a time.
"""

from __future__ import annotations

import pyoxigraph as ox
from pydantic import Field

from monalia import hookimpl
from monalia.api.plugin import PluginSettings
from monalia.api.sink import Sink
from monalia.errors import MonaliaError
from monalia.rdf.local_store import LocalSparqlClient
from monalia.rdf.terms import Triple, nt_line


class EmbeddedStoreSettings(PluginSettings):
    path: str = "store"  # the store's folder, relative to the project file
    chunk_triples: int = Field(200_000, ge=1)  # triples loaded per transaction


class EmbeddedStoreSink(Sink):
    """RDF into an embedded pyoxigraph store on disk."""

    name = "embedded-store"
    keeps_other_graphs = True  # each graph is replaced alone
    query_priority = 10  # search and reports prefer it to the sinks numbered higher
    Settings = EmbeddedStoreSettings
    takes_ntriples = True

    @property
    def chunk_size(self) -> int:  # type: ignore[override]
        return self.settings.chunk_triples

    def location(self) -> str:
        return str(self.context.path(self.settings.path))

    def query_client(self):
        return LocalSparqlClient(self.context.path(self.settings.path))

    def open(self) -> None:
        folder = self.context.path(self.settings.path)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            self.store = ox.Store(str(folder))
        except OSError as exc:
            raise MonaliaError(
                f"cannot open the store in {folder}: {exc} (is another monalia command using it?)"
            ) from None

    def begin_graph(self, graph: str) -> None:
        node = ox.NamedNode(graph)
        if self.store.contains_named_graph(node):
            self.store.remove_graph(node)

    def write_chunk(self, graph: str, triples: list[Triple]) -> None:
        self.write_ntriples(graph, "".join(map(nt_line, triples)), len(triples))

    def write_ntriples(self, graph: str, text: str, count: int) -> None:
        # bulk_load writes sorted files straight to disk: 3x faster than a transaction per
        # chunk; a graph is emptied before it is written, so a half-written one is redone anyway
        self.store.bulk_load(
            text.encode("utf-8"), format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(graph)
        )

    def close(self, ok: bool) -> None:
        store = getattr(self, "store", None)
        if store is not None:
            store.flush()
            if ok:
                # bulk loads leave many small files; merging them makes the reports' lookups
                # several times faster, for a few seconds per million triples here
                store.optimize()
            del self.store


@hookimpl
def register_sinks():
    return [EmbeddedStoreSink]
