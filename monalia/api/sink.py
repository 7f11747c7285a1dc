"""Base class of sink plugins: where monalia's RDF output goes (files, triple stores, databases).

The framework hands a sink one named graph at a time as a stream of triples and owns the
chunking; a sink writes chunks and says what "replace this graph" means for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import chain, islice
from typing import Any, ClassVar, Protocol

from monalia.api.plugin import Plugin
from monalia.rdf.scores import ImageScores, ModelInfo, score_ntriples, score_triples
from monalia.rdf.terms import Triple, nt_line


class SparqlQueryClient(Protocol):
    """What search and reports need of a store: SELECT results as SPARQL JSON bindings."""

    endpoint: str  # where the queries go, for messages (no credentials)

    def select(self, query: str) -> list[dict[str, Any]]: ...


class Sink(Plugin):
    """Base of every sink plugin. Subclasses implement `write_chunk`, and usually `begin`/`end`."""

    kind: ClassVar[str] = "sink"
    chunk_size: ClassVar[int] = 10_000
    unit: ClassVar[str] = "triples"  # what `publish_model` counts, for messages
    # True when the sink implements `write_ntriples`: scores then reach it already formatted,
    # skipping the triple objects (what a store fed N-Triples text would do with them anyway)
    takes_ntriples: ClassVar[bool] = False
    # When several sinks can answer queries (`query_client`), search and reports ask the one
    # with the lowest number, unless the project names one ([report] store or --store).
    query_priority: ClassVar[int] = 100
    # False for a sink that writes annotations, not RDF triples: `monalia publish` then hands
    # it the model's detections, near duplicates and review decisions instead of the records
    takes_triples: ClassVar[bool] = True
    # True when `publish_model` needs each image's record page, title and IIIF canvas
    wants_record_details: ClassVar[bool] = False
    # True for a store where publishing one graph leaves the others as they are (a file
    # rewritten whole by each publish is not): it then also gets the mention index
    # (monalia.rdf.mentions), which search and the reports read
    keeps_other_graphs: ClassVar[bool] = False

    # -- what a plugin writes ---------------------------------------------------------------

    def open(self) -> None:
        """Prepare for a publishing session (open a file, a connection)."""

    def begin_graph(self, graph: str) -> None:
        """A named graph starts; its earlier content is to be replaced by what follows."""

    def write_chunk(self, graph: str, triples: list[Triple]) -> None:
        """Write one chunk of triples of `graph`."""
        raise NotImplementedError(f"{type(self).__name__} must implement write_chunk()")

    def write_ntriples(self, graph: str, text: str, count: int) -> None:
        """Write `count` triples of `graph` given as N-Triples lines (with `takes_ntriples`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement write_ntriples()")

    def end_graph(self, graph: str) -> None:
        """The graph is complete."""

    def close(self, ok: bool) -> None:
        """End the session; `ok` is False when publishing failed and partial output should go."""

    # -- what an annotation sink (`takes_triples` False) writes besides `publish_model` -----

    def publish_links(self, pairs: Iterable[Any], tool: dict[str, Any]) -> int:
        """Replace the near-duplicate links with these `monalia.formats.web_annotation.
        LinkedPair`s; return how many were written. `tool` is monalia as a software agent."""
        return 0

    def publish_reviews(self, reviews: Iterable[Any], tool: dict[str, Any]) -> int:
        """Replace the curators' decisions with these `monalia.formats.web_annotation.
        ReviewedDetection`s; return how many were written."""
        return 0

    def write_manifests(self, manifests: Iterable[tuple[str, dict[str, Any]]]) -> int:
        """Given (URL fetched from, IIIF manifest) of the records just published, write what
        the sink makes of them (copies listing annotation pages, say); return how many."""
        return 0

    def location(self) -> str:
        """Where the output goes, for messages (a path, an endpoint without credentials)."""
        return self.context.instance

    def query_client(self) -> SparqlQueryClient | None:
        """A SPARQL client over what this sink holds, for search and reports; None when it
        cannot be queried (the default). Raise `monalia.errors.ConfigError` when it could be, but its
        settings do not say how."""
        return None

    # -- what the framework calls -----------------------------------------------------------

    def publish(
        self, graphs: Iterable[tuple[str, Iterable[Triple]]], progress=None
    ) -> dict[str, int]:
        """Write each (graph IRI, triples) pair, replacing the graph; return triples per graph."""
        written: dict[str, int] = {}
        self.open()
        ok = False
        try:
            for graph, triples in graphs:
                self.begin_graph(graph)
                count = 0
                for chunk in _chunks(triples, self.chunk_size):
                    self.write_chunk(graph, chunk)
                    count += len(chunk)
                    if progress is not None:
                        progress(len(chunk))
                self.end_graph(graph)
                written[graph] = count
            ok = True
        finally:
            self.close(ok)
        return written

    def publish_model(
        self,
        graph: str,
        model: ModelInfo,
        header: Iterable[Triple],
        images: Iterable[ImageScores],
        base_iri: str,
        min_score: float = 0.0,
    ) -> int:
        """Replace a model's output with these images' scores; return how much was written.

        The default writes the RDF of `monalia.rdf.scores` into the model's named graph; a sink
        that stores scores another way (rows in a database) overrides this.
        """
        if self.takes_ntriples:
            header_lines = [nt_line(triple) for triple in header]
            pieces = chain(
                [("".join(header_lines), len(header_lines))],
                score_ntriples(model, images, base_iri, min_score),
            )
            return self._publish_ntriples(graph, pieces)
        triples = chain(header, score_triples(model, images, base_iri, min_score))
        return self.publish([(graph, triples)])[graph]

    def _publish_ntriples(self, graph: str, pieces: Iterable[tuple[str, int]]) -> int:
        """Replace `graph` with N-Triples text given as (lines, count) pieces, chunk by chunk."""
        written = 0
        self.open()
        ok = False
        try:
            self.begin_graph(graph)
            chunk: list[str] = []
            count = 0
            for text, lines in pieces:
                chunk.append(text)
                count += lines
                if count >= self.chunk_size:
                    self.write_ntriples(graph, "".join(chunk), count)
                    written += count
                    chunk, count = [], 0
            if chunk:
                self.write_ntriples(graph, "".join(chunk), count)
                written += count
            self.end_graph(graph)
            ok = True
        finally:
            self.close(ok)
        return written


def _chunks(triples: Iterable[Triple], size: int) -> Iterator[list[Triple]]:
    iterator = iter(triples)
    while chunk := list(islice(iterator, size)):
        yield chunk
