#!/usr/bin/env python3
"""bench/sink.py: 1,000,000 score triples to an Oxigraph server and to a Turtle file.

(a) store: the SPARQL store sink publishing a model's graph (8,000 images x 40 classes) to
    `oxigraph serve` (chunked N-Triples POSTs to the Graph Store endpoint, the graph dropped
    first). Reference: one streaming HTTP POST of the same triples, already written as an
    N-Triples file, to the same server (the limit). Target: >= 0.8x the single POST. Both run
    --repeat times (default 3), alternating, each on a fresh server; the medians are compared.
(b) Turtle: the Turtle sink writing the same graph to a file. Reference: pyoxigraph's Turtle
    serializer (Rust) fed from the same triple generator, its terms built from monalia's
    triples as they come, with the same prefixes, to a file. Target: >= 0.8x its triples/s.
    Both run --repeat times, alternating; the medians are compared.
Each criterion is printed met or not; the last line is the worst criterion's.

Usage: .venv/bin/python bench/sink.py [--images N] [--classes C] [--only a|b] [--repeat R]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from benchlib import Criterion, Samples, alternate, verdict  # noqa: E402
from support.servers import OxigraphServer, oxigraph_binary  # noqa: E402

from monalia.api.plugin import PluginContext  # noqa: E402
from monalia.rdf.scores import (  # noqa: E402
    ImageScores,
    ModelClass,
    ModelInfo,
    model_graph_iri,
    model_triples,
    score_triples,
)
from monalia.rdf.terms import NTriplesWriter  # noqa: E402

BASE = "urn:monalia:"
STORE_TARGET = 0.8
TURTLE_TARGET = 0.8
PREFIXES = {
    "ml": "http://ns.inria.fr/monalia/",
    "prov": "http://www.w3.org/ns/prov#",
    "t": "http://data.culture.fr/thesaurus/resource/ark:/67717/",
}


def model_of(classes: int) -> ModelInfo:
    return ModelInfo(
        name="bench-efficientnet_lite0",
        classes=tuple(
            ModelClass(
                f"http://data.culture.fr/thesaurus/resource/ark:/67717/T523-{n}", f"c{n}", 0.5
            )
            for n in range(classes)
        ),
        backbone="efficientnet_lite0",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def images_of(model: ModelInfo, count: int):
    rng = random.Random(0)
    scored_at = datetime(2026, 1, 2, tzinfo=UTC)
    for n in range(count):
        yield ImageScores(
            n,
            f"https://jocondelab.iri-research.org/data/notice/{n:08d}",
            n,
            f"https://img.example.org/{n}.jpg",
            None,
            7,
            scored_at,
            {entry.uri: rng.random() for entry in model.classes},
        )


def all_triples(model: ModelInfo, count: int):
    return chain(
        model_triples(model, BASE, 7, datetime(2026, 1, 3, tzinfo=UTC)),
        score_triples(model, images_of(model, count), BASE),
    )


def bench_store(
    model: ModelInfo, count: int, folder: Path, repeat: int
) -> tuple[Samples, Samples, int]:
    from monalia.plugins.sinks.sparql_store import SparqlStoreSettings, SparqlStoreSink

    binary = oxigraph_binary()
    if binary is None:
        raise SystemExit("the oxigraph server is not installed (pip install oxigraph)")
    graph = model_graph_iri(BASE, model.name)
    dump = folder / "graph.nt"
    with dump.open("w", encoding="utf-8") as handle:
        writer = NTriplesWriter(handle)
        writer.write(all_triples(model, count))
    triples = writer.count

    graph_model = model_triples(model, BASE, 7, datetime(2026, 1, 3, tzinfo=UTC))
    header = list(graph_model)
    references, sinks = Samples("one POST", "s"), Samples("sparql-store sink", "s")
    # alternate the two, each on a fresh server, and keep the medians: one run of either swings
    # by a quarter on a small machine, as the server and the client share its cores
    for _ in range(repeat):
        server = OxigraphServer(binary)
        try:
            started = time.perf_counter()
            with dump.open("rb") as body:
                response = requests.post(
                    server.store_url,
                    params={"graph": graph},
                    data=body,
                    headers={"Content-Type": "application/n-triples"},
                    timeout=3600,
                )
            response.raise_for_status()
            references.values.append(time.perf_counter() - started)
        finally:
            server.stop()

        server = OxigraphServer(binary)
        try:
            sink = SparqlStoreSink(
                settings=SparqlStoreSettings(preset="oxigraph", url=server.url),
                context=PluginContext("store", folder, folder, BASE),
            )
            started = time.perf_counter()
            written = sink.publish_model(graph, model, header, images_of(model, count), BASE)
            sinks.values.append(time.perf_counter() - started)
            stored = server.select(
                f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}"
            )[0]["n"]
        finally:
            server.stop()
        assert written == triples == int(stored), (written, triples, stored)
    return sinks, references, triples


def bench_turtle(
    model: ModelInfo, count: int, folder: Path, repeat: int
) -> tuple[Samples, Samples, int]:
    import pyoxigraph as ox

    from monalia.plugins.sinks.turtle import TurtleSettings, TurtleSink
    from monalia.rdf.terms import Literal

    written = 0

    def sink() -> float:
        nonlocal written
        turtle = TurtleSink(
            settings=TurtleSettings(path=str(folder / "graph.ttl")),
            context=PluginContext("file", folder, folder, BASE),
        )
        started = time.perf_counter()
        written = turtle.publish_model(
            model_graph_iri(BASE, model.name),
            model,
            model_triples(model, BASE, 7, datetime(2026, 1, 3, tzinfo=UTC)),
            images_of(model, count),
            BASE,
        )
        return time.perf_counter() - started

    def reference() -> float:
        started = time.perf_counter()

        def term(value):
            if isinstance(value, Literal):
                if value.lang:
                    return ox.Literal(value.value, language=value.lang)
                if value.datatype:
                    return ox.Literal(value.value, datatype=ox.NamedNode(value.datatype))
                return ox.Literal(value.value)
            return ox.NamedNode(value)

        ox.serialize(
            (
                ox.Triple(ox.NamedNode(s), ox.NamedNode(p), term(o))
                for s, p, o in all_triples(model, count)
            ),
            str(folder / "oxigraph.ttl"),
            format=ox.RdfFormat.TURTLE,
            prefixes=PREFIXES,
        )
        return time.perf_counter() - started

    samples = alternate({"turtle sink": sink, "pyoxigraph serialize": reference}, repeat, "s")
    return samples["turtle sink"], samples["pyoxigraph serialize"], written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8000)
    parser.add_argument("--classes", type=int, default=40)
    parser.add_argument("--only", choices=["a", "b"])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; medians are kept")
    options = parser.parse_args()
    model = model_of(options.classes)
    criteria, figures = [], []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        if options.only in (None, "a"):
            sink, post, triples = bench_store(model, options.images, root, options.repeat)
            print(f"sparql-store sink: {sink.spread()}; one streaming POST: {post.spread()}")
            ratio = post.median / sink.median
            criteria.append(Criterion("store: sparql-store sink / one POST", ratio, STORE_TARGET))
            figures.append(
                f"store {triples / sink.median:,.0f} triples/s vs POST "
                f"{triples / post.median:,.0f} triples/s"
            )
        if options.only in (None, "b"):
            sink, oxigraph, triples = bench_turtle(model, options.images, root, options.repeat)
            print(f"turtle sink: {sink.spread()}; pyoxigraph serialize: {oxigraph.spread()}")
            ratio = oxigraph.median / sink.median
            criteria.append(
                Criterion("turtle: turtle sink / pyoxigraph serializer", ratio, TURTLE_TARGET)
            )
            figures.append(
                f"turtle {triples / sink.median:,.0f} triples/s vs pyoxigraph "
                f"{triples / oxigraph.median:,.0f} triples/s"
            )
    print(
        verdict(
            "sink",
            criteria,
            f"{'; '.join(figures)}; {triples:,} triples, medians of {options.repeat}",
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
