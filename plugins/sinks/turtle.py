"""Sink: RDF written to Turtle or N-Triples files, streamed, optionally gzip-compressed.

``path`` may hold ``{graph}``: each named graph then goes to its own file (so that publishing
records and publishing scores do not overwrite each other); without it, every graph published in
one session goes to the one file. A file is written beside its final name and moved into place
only when complete, so a failed run leaves the previous output untouched.
"""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path
from typing import IO, Literal

from monalia import hookimpl
from monalia.api.plugin import PluginSettings
from monalia.api.sink import Sink
from monalia.rdf.local_store import LocalSparqlClient
from monalia.rdf.terms import NTriplesWriter, Triple, TurtleWriter


class TurtleSettings(PluginSettings):
    path: str  # the file (.ttl or .nt, either .gz); {graph} gives one file per named graph
    format: Literal["turtle", "ntriples"] | None = None  # from the file name when unset


def graph_slug(graph: str, base_iri: str) -> str:
    """A file-name-safe name for a graph IRI: its part after the base, punctuation as dashes."""
    tail = graph[len(base_iri) :] if graph.startswith(base_iri) else graph
    tail = tail.removeprefix("graph/")
    return re.sub(r"[^A-Za-z0-9._-]+", "-", tail).strip("-.") or "graph"


class TurtleSink(Sink):
    """RDF to Turtle or N-Triples files (gzip when the name ends in .gz)."""

    name = "turtle"
    query_priority = 30  # search and reports prefer it to the sinks numbered higher
    Settings = TurtleSettings

    def _target(self, graph: str | None) -> Path:
        path = self.settings.path
        if "{graph}" in path:
            path = path.replace("{graph}", graph_slug(graph or "graph", self.context.base_iri))
        return self.context.path(path)

    def _format(self, path: Path) -> str:
        if self.settings.format:
            return self.settings.format
        suffixes = [s for s in path.suffixes if s != ".gz"]
        return "ntriples" if suffixes and suffixes[-1] == ".nt" else "turtle"

    def location(self) -> str:
        return str(self.context.path(self.settings.path))

    def query_client(self):
        if "{graph}" in self.settings.path:
            return None  # one file per graph: no single file holds records and scores together
        return LocalSparqlClient(self.context.path(self.settings.path))

    def open(self) -> None:
        self._files: dict[Path, tuple[Path, IO[str], TurtleWriter | NTriplesWriter]] = {}
        self._writer: TurtleWriter | NTriplesWriter | None = None

    def begin_graph(self, graph: str) -> None:
        target = self._target(graph)
        if target not in self._files:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.partial")
            if target.suffix == ".gz":
                handle: IO[str] = gzip.open(partial, "wt", encoding="utf-8")  # noqa: SIM115
            else:
                handle = open(partial, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
            writer = (
                NTriplesWriter(handle)
                if self._format(target) == "ntriples"
                else TurtleWriter(handle)
            )
            self._files[target] = (partial, handle, writer)
        _, handle, writer = self._files[target]
        if isinstance(writer, TurtleWriter):
            writer.close()  # end the previous graph's last statement
            handle.write(f"\n# graph <{graph}>\n\n")
        self._writer = writer

    def write_chunk(self, graph: str, triples: list[Triple]) -> None:
        assert self._writer is not None
        self._writer.write(triples)

    def close(self, ok: bool) -> None:
        """Move each complete file into place; a failed run, or a file that cannot be finished
        (a full disk fails its last write or its close), leaves no partial file behind."""
        failure: BaseException | None = None
        for target, (partial, handle, writer) in self._files.items():
            try:
                try:
                    writer.close()
                finally:
                    handle.close()
                if ok and failure is None:
                    os.replace(partial, target)
                    continue
            except OSError as exc:
                failure = failure or OSError(
                    exc.errno,
                    f"sink {self.context.instance}: cannot finish {target}: {exc.strerror or exc}",
                )
            partial.unlink(missing_ok=True)
        self._files = {}
        if failure is not None:
            raise failure


@hookimpl
def register_sinks():
    return [TurtleSink]
